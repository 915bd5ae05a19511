"""Experiment specification: base scenario(s), parameters, design, replicates, outputs and seeds.

An experiment is read from TOML (:meth:`Experiment.from_toml`) or built from a dict
(:meth:`Experiment.from_dict`); both validate every parameter against the scenario config schema and
raise :class:`~migration_abm.errors.ConfigError` naming the file, key and value. See docs/EXPERIMENTS.md.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import qmc

from migration_abm.config import Config, load_config
from migration_abm.errors import ConfigError, InputError
from migration_abm.experiments.sensitivity import saltelli_unit
from migration_abm.results import DISTRICT_SERIES
from migration_abm.schema import build, param, read_toml_file

DESIGNS = ("grid", "lhs", "sobol", "none")
DEFAULT_OUTPUTS = ("population", "in_migrants", "out_migrants", "hukou_conversions", "external_in", "external_out")
DEFAULT_RUN_FUNCTION = "migration_abm.model:simulate"
#: Spawn key of the generator that draws LHS / Sobol designs (never used by a run: run keys have 2 items
#: (point, replicate), or 1 item (replicate) under common random numbers, and replicates < 2**40).
DESIGN_SPAWN_KEY = (0x5EED_DE51_6000,)
#: Parameters that would change the shape of the store or bypass the experiment's seeding.
FORBIDDEN_KEYS = ("run.start_year", "run.end_year", "run.seed", "data.regions")
PARAM_KEYS = ("keys", "values", "min", "max", "levels", "integer")


@dataclass
class ExperimentFile:
    """The top level of an experiment TOML, validated by the schema engine (:mod:`migration_abm.schema`)."""

    name: str = param("", doc="experiment name (default: the file's stem)")
    description: str = param("", doc="free text")
    base: Any = param(None, doc="scenario config TOML (relative to this file), a Config or a config table")
    scenarios: dict[str, Any] = param({}, doc="name = config TOML (or a table of config values)")
    design: str = param("", doc="grid, lhs, sobol or none (default: grid with parameters, else none)",
                        choices=DESIGNS)
    samples: int = param(0, 0, None, "base samples of an lhs/sobol design")
    replicates: int = param(1, 1, None, "seeded replicates per design point")
    seed: int | None = param(None, 0, None, "root entropy of every run's seed (default: drawn and recorded)")
    common_random_numbers: bool = param(True, doc="every design point runs the same replicate seeds")
    outputs: list[str] = param(list(DEFAULT_OUTPUTS), doc="district series stored per run",
                               choices=DISTRICT_SERIES)
    run_function: str = param(DEFAULT_RUN_FUNCTION, doc="'package.module:function' (config, seed) -> Results")
    set: dict[str, Any] = param({}, doc="config overrides (dotted keys) applied to every scenario")
    parameters: dict[str, Any] = param({}, doc="swept parameters: values = [...] or min/max(/levels)")


@dataclass(frozen=True)
class Parameter:
    """One uncertain or policy input: a range [min, max] or a list of values, applied to dotted keys."""

    name: str
    keys: tuple[str, ...]
    values: tuple[float | int | bool, ...] | None = None
    min: float | None = None
    max: float | None = None
    levels: int | None = None
    integer: bool = False

    def grid_values(self) -> list[Any]:
        """Values a full-factorial design uses: the list, or ``levels`` evenly spaced points."""
        if self.values is not None:
            return list(self.values)
        assert self.min is not None and self.max is not None and self.levels is not None
        pts = np.linspace(self.min, self.max, self.levels)
        return [int(round(v)) for v in pts] if self.integer else [float(v) for v in pts]

    def from_unit(self, u: np.ndarray) -> list[Any]:
        """Map uniform [0, 1) samples to this parameter (values: equal-probability categories)."""
        if self.values is not None:
            idx = np.minimum((u * len(self.values)).astype(int), len(self.values) - 1)
            return [self.values[i] for i in idx]
        assert self.min is not None and self.max is not None
        if self.integer:
            lo, hi = int(self.min), int(self.max)
            return [int(v) for v in np.minimum(np.floor(lo + u * (hi - lo + 1)), hi)]
        return [float(v) for v in self.min + u * (self.max - self.min)]

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"keys": list(self.keys)}
        for k in ("values", "min", "max", "levels"):
            v = getattr(self, k)
            if v is not None:
                d[k] = list(v) if k == "values" else v
        d["integer"] = self.integer
        return d


@dataclass(frozen=True)
class Scenario:
    """A named base configuration (the experiment's fixed ``set`` overrides already applied)."""

    name: str
    config: Config


@dataclass(frozen=True)
class DesignPoint:
    """One row of the design: scenario index, parameter values, and (Sobol) block / sample ids."""

    index: int
    scenario: int
    values: tuple[Any, ...]
    block: int = -1
    sample: int = -1


@dataclass
class Experiment:
    """A validated experiment. Build with :meth:`from_toml` or :meth:`from_dict`."""

    name: str
    scenarios: tuple[Scenario, ...]
    parameters: tuple[Parameter, ...] = ()
    design: str = "none"
    samples: int = 0
    replicates: int = 1
    seed: int | None = None
    common_random_numbers: bool = True
    outputs: tuple[str, ...] = DEFAULT_OUTPUTS
    run_function: str = DEFAULT_RUN_FUNCTION
    description: str = ""
    fixed: dict[str, Any] = field(default_factory=dict)
    source: str = "<dict>"

    def __post_init__(self) -> None:
        """Cheap structural checks for experiments built directly as a dataclass (from_dict checks more)."""
        src = self.source
        if not self.scenarios:
            raise ConfigError(src, "scenarios", (), "need at least one scenario")
        if self.design not in DESIGNS:
            raise ConfigError(src, "design", self.design, f"unknown design; use one of {', '.join(DESIGNS)}")
        if self.replicates < 1:
            raise ConfigError(src, "replicates", self.replicates, "must be >= 1")
        if self.design in ("lhs", "sobol") and self.samples < 1:
            raise ConfigError(src, "samples", self.samples, f"design '{self.design}' needs samples >= 1")
        if (self.design == "none") != (not self.parameters):
            raise ConfigError(src, "parameters", len(self.parameters), f"do not fit design '{self.design}'")
        for o in self.outputs:
            if o not in DISTRICT_SERIES:
                raise ConfigError(src, "outputs", o, f"unknown series; use any of {', '.join(DISTRICT_SERIES)}")
        self.scenarios, self.parameters, self.outputs = tuple(self.scenarios), tuple(self.parameters), tuple(self.outputs)

    # ---- construction ------------------------------------------------------------------------
    @classmethod
    def from_toml(cls, path: str | Path, overrides: dict[str, Any] | None = None) -> Experiment:
        """Read an experiment TOML; ``overrides`` update top-level keys (e.g. ``{"replicates": 2}``)."""
        path = Path(path)
        raw = read_toml_file(path, "experiment")
        raw.update(overrides or {})
        return cls.from_dict(raw, base_dir=path.resolve().parent, source=str(path.resolve()))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], base_dir: str | Path = ".", source: str = "<dict>") -> Experiment:
        """Build from a dict shaped like the TOML file. ``base`` / scenario values may be paths (relative
        to ``base_dir``), :class:`Config` objects or raw config dicts."""
        f = build(ExperimentFile, dict(raw), {}, source)
        name = f.name or (Path(source).stem if source != "<dict>" else "experiment")
        fixed = _flatten(f.set)
        if "run.seed" in fixed:
            raise ConfigError(source, "set.run.seed", fixed["run.seed"], "not allowed (seeds come from the experiment)")
        scenarios = _scenarios(raw, Path(base_dir), source, fixed)
        design = f.design or ("grid" if f.parameters else "none")
        samples, replicates, seed, crn, outputs, run_function = (f.samples, f.replicates, f.seed,
                                                                  f.common_random_numbers, f.outputs, f.run_function)
        if not outputs:
            raise ConfigError(source, "outputs", outputs, "must be a non-empty list of series names")
        if len(set(outputs)) != len(outputs):
            raise ConfigError(source, "outputs", outputs, "duplicate series")
        if ":" not in run_function:
            raise ConfigError(source, "run_function", run_function, "must be 'package.module:function'")
        params = _parameters(f.parameters, source, design, scenarios)
        if design == "none" and params:
            raise ConfigError(source, "design", design, "parameters given but design is 'none'")
        if design in ("lhs", "sobol") and samples < 1:
            raise ConfigError(source, "samples", samples, f"design '{design}' needs samples >= 1")
        if design in ("lhs", "sobol", "grid") and not params:
            raise ConfigError(source, "parameters", {}, f"design '{design}' needs at least one parameter")
        exp = cls(name=name, scenarios=scenarios, parameters=params, design=design, samples=samples,
                  replicates=replicates, seed=seed, common_random_numbers=crn, outputs=tuple(outputs),
                  run_function=run_function, description=f.description, fixed=fixed,
                  source=source)
        return exp

    # ---- derived quantities --------------------------------------------------------------------
    @property
    def years(self) -> np.ndarray:
        run = self.scenarios[0].config.run
        return np.arange(run.start_year, run.end_year + 1)

    def with_seed(self, seed: int) -> Experiment:
        """A copy with the root entropy set (used when the file gives none)."""
        import dataclasses

        return dataclasses.replace(self, seed=int(seed))

    def design_points(self) -> list[DesignPoint]:
        """All design points, scenario-major (point = scenario × design row); deterministic in ``seed``."""
        rows, blocks, samples = self._design_rows()
        pts = []
        for s in range(len(self.scenarios)):
            for i, row in enumerate(rows):
                pts.append(DesignPoint(len(pts), s, tuple(row), blocks[i], samples[i]))
        return pts

    def _design_rows(self) -> tuple[list[list[Any]], list[int], list[int]]:
        k = len(self.parameters)
        if self.design == "none":
            return [[]], [-1], [-1]
        if self.design == "grid":
            rows = [list(r) for r in itertools.product(*(p.grid_values() for p in self.parameters))]
            return rows, [-1] * len(rows), [-1] * len(rows)
        rng = np.random.default_rng(np.random.SeedSequence(self.entropy(), spawn_key=DESIGN_SPAWN_KEY))
        n = self.samples
        if self.design == "lhs":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                u = qmc.LatinHypercube(d=k, rng=rng).random(n)
            return self._map(u), [-1] * n, list(range(n))
        u = saltelli_unit(n, k, rng)
        blocks = [b for b in range(k + 2) for _ in range(n)]
        return self._map(u), blocks, list(range(n)) * (k + 2)

    def _map(self, u: np.ndarray) -> list[list[Any]]:
        cols = [p.from_unit(u[:, j]) for j, p in enumerate(self.parameters)]
        return [list(r) for r in zip(*cols, strict=True)]

    def entropy(self) -> int:
        if self.seed is None:
            raise InputError(self.source, "seed", None, "experiment has no root seed yet (see with_seed)")
        return self.seed

    def run_seed(self, point: int, replicate: int) -> np.random.SeedSequence:
        """Seed of one run: spawn key (point, replicate), or (replicate,) under common random numbers."""
        key = (replicate,) if self.common_random_numbers else (point, replicate)
        return np.random.SeedSequence(self.entropy(), spawn_key=key)

    def point_config(self, point: DesignPoint) -> Config:
        """The validated config of a design point (scenario base + parameter overrides)."""
        base = self.scenarios[point.scenario].config
        if not self.parameters:
            return base
        ov: dict[str, Any] = {}
        for p, v in zip(self.parameters, point.values, strict=True):
            for key in p.keys:
                ov[key] = v
        try:
            return base.with_overrides(ov, source=f"{self.source} [design point {point.index}]")
        except ConfigError as exc:
            raise ConfigError(self.source, f"design point {point.index}", exc.value, exc.reason) from None

    def spec_dict(self) -> dict[str, Any]:
        """Canonical, JSON-serialisable description (what a store records to check resumes against)."""
        return {
            "name": self.name, "description": self.description, "design": self.design, "samples": self.samples,
            "replicates": self.replicates, "seed": None if self.seed is None else str(self.seed),
            "common_random_numbers": self.common_random_numbers, "outputs": list(self.outputs),
            "run_function": self.run_function, "set": {k: self.fixed[k] for k in sorted(self.fixed)},
            "parameters": {p.name: p.to_dict() for p in self.parameters},
            "scenarios": {s.name: hashlib.sha256(s.config.to_toml().encode()).hexdigest() for s in self.scenarios},
        }

    def spec_json(self) -> str:
        return json.dumps(self.spec_dict(), sort_keys=True)

    @property
    def n_points(self) -> int:
        k = len(self.parameters)
        per = {"none": 1, "lhs": self.samples, "sobol": self.samples * (k + 2)}.get(self.design)
        if per is None:
            per = math.prod(len(p.grid_values()) for p in self.parameters)
        return per * len(self.scenarios)

    @property
    def n_runs(self) -> int:
        return self.n_points * self.replicates


# ---- parsing helpers ---------------------------------------------------------------------------

def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _int(v: Any, src: str, key: str, lo: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError(src, key, v, "must be an integer")
    if v < lo:
        raise ConfigError(src, key, v, f"must be >= {lo}")
    return v


def _scenarios(raw: dict[str, Any], base_dir: Path, src: str, fixed: dict[str, Any]) -> tuple[Scenario, ...]:
    if "base" in raw and "scenarios" in raw:
        raise ConfigError(src, "scenarios", raw["scenarios"], "give either base or scenarios, not both")
    if "scenarios" in raw:
        sc = raw["scenarios"]
        if not isinstance(sc, dict) or not sc:
            raise ConfigError(src, "scenarios", sc, "must be a table name = config path")
        items = list(sc.items())
    else:
        items = [("base", raw.get("base"))]
    out = []
    for name, base in items:
        key = "base" if "scenarios" not in raw else f"scenarios.{name}"
        try:
            if isinstance(base, Config):
                cfg = base.with_overrides(fixed, source=f"{src} [set]") if fixed else base
            elif isinstance(base, dict):
                from migration_abm.config import build_config

                cfg = build_config(base, f"{src} [{key}]")
                cfg = cfg.with_overrides(fixed, source=f"{src} [set]") if fixed else cfg
            elif base is None:
                cfg = load_config(None, fixed, override_source=f"{src} [set]")
            elif isinstance(base, (str, Path)):
                p = Path(base)
                p = p if p.is_absolute() else base_dir / p
                if not p.exists():
                    raise ConfigError(src, key, str(base), f"config file not found ({p})")
                cfg = load_config(p, fixed, override_source=f"{src} [set]")
            else:
                raise ConfigError(src, key, base, "must be a config path")
        except ConfigError as exc:
            if exc.source == src:
                raise
            if "[set]" in exc.source:  # the experiment's own [set] table: name its key, not the base
                raise ConfigError(src, f"set.{exc.field}", exc.value, exc.reason) from None
            raise ConfigError(src, key, exc.value, f"{exc.source}: {exc.field}: {exc.reason}") from None
        out.append(Scenario(str(name), cfg))
    first = out[0].config
    for s in out[1:]:
        c = s.config
        if (c.run.start_year, c.run.end_year, c.data.regions) != (first.run.start_year, first.run.end_year,
                                                                     first.data.regions):
            raise ConfigError(src, f"scenarios.{s.name}", s.name,
                              "scenarios must share run.start_year, run.end_year and data.regions")
    return tuple(out)


def _lookup(d: dict[str, Any], key: str) -> tuple[bool, Any]:
    node: Any = d
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _parameters(raw: Any, src: str, design: str, scenarios: tuple[Scenario, ...]) -> tuple[Parameter, ...]:
    if not isinstance(raw, dict):
        raise ConfigError(src, "parameters", raw, "must be a table of parameter tables")
    base = scenarios[0].config.to_dict()
    out = []
    for name, spec in raw.items():
        f = f"parameters.{name}"
        if not isinstance(spec, dict):
            raise ConfigError(src, f, spec, "must be a table with values = [...] or min/max")
        for k in spec:
            if k not in PARAM_KEYS:
                raise ConfigError(src, f"{f}.{k}", spec[k], f"unknown parameter key; use {', '.join(PARAM_KEYS)}")
        keys = spec.get("keys", [name])
        if isinstance(keys, str):
            keys = [keys]
        if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
            raise ConfigError(src, f"{f}.keys", keys, "must be a list of dotted config keys")
        kinds = set()
        for key in keys:
            if key in FORBIDDEN_KEYS:
                raise ConfigError(src, f"{f}.keys", key, "cannot vary this key in an experiment")
            found, cur = _lookup(base, key)
            if not found or isinstance(cur, dict):
                raise ConfigError(src, f"{f}.keys", key, "unknown config key")
            kinds.add(type(cur))
        integer = spec.get("integer", kinds == {int})
        values = spec.get("values")
        lo, hi, levels = spec.get("min"), spec.get("max"), spec.get("levels")
        if values is not None:
            if lo is not None or hi is not None:
                raise ConfigError(src, f, spec, "give values or min/max, not both")
            if not isinstance(values, list) or not values:
                raise ConfigError(src, f"{f}.values", values, "must be a non-empty list")
            for v in values:
                if not isinstance(v, (int, float, bool)) or (isinstance(v, float) and not math.isfinite(v)):
                    raise ConfigError(src, f"{f}.values", v, "values must be finite numbers or booleans")
            values = tuple(values)
        else:
            for k, v in (("min", lo), ("max", hi)):
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    raise ConfigError(src, f"{f}.{k}", v, "must be a finite number (or give values = [...])")
            if lo >= hi:
                raise ConfigError(src, f"{f}.max", hi, f"must be > min ({lo})")
            if design == "grid":
                if levels is None:
                    raise ConfigError(src, f"{f}.levels", None, "a grid over a range needs levels >= 2")
                _int(levels, src, f"{f}.levels", 2)
            elif levels is not None:
                raise ConfigError(src, f"{f}.levels", levels, f"levels only apply to grid designs, not {design}")
        p = Parameter(str(name), tuple(keys), values, None if lo is None else float(lo),
                      None if hi is None else float(hi), levels, bool(integer))
        if design == "grid" and len(set(p.grid_values())) < len(p.grid_values()):
            raise ConfigError(src, f"{f}.levels", levels, f"gives repeated grid values {p.grid_values()}")
        probe = list(values) if values is not None else [p.from_unit(np.array([0.0]))[0], p.from_unit(np.array([0.999999]))[0]]
        for v in probe:
            for s in scenarios:
                try:
                    s.config.with_overrides({key: v for key in keys}, source=src)
                except ConfigError as exc:
                    raise ConfigError(src, f, v, f"invalid for {exc.field}: {exc.reason}") from None
        out.append(p)
    return tuple(out)


def load_experiment(path: str | Path, overrides: dict[str, Any] | None = None) -> Experiment:
    """Read and validate an experiment TOML (shorthand for :meth:`Experiment.from_toml`)."""
    return Experiment.from_toml(path, overrides)
