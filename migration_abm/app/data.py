"""What the planners' page shows, as plain data: scenarios (replicate runs), bands, differences, key
figures, district values, and the run files and sweep stores found under a results folder.

No Solara here: every function is testable without a browser, and every number comes from the library
(``Results``, ``load_sweep``, ``validation``); this module only reads, groups and summarises.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from migration_abm.errors import InputError
from migration_abm.geography import REGIONS, ZONES, census_years, data_path, load_districts
from migration_abm.reporting import REGION_LABELS
from migration_abm.results import Results

ZONE_LABELS = {"main_city": "中心城区 main city", "new_development": "主城新区 new main-city districts",
               "northeast_eco": "渝东北 north-east group", "southeast_eco": "渝东南 south-east group"}
LEVELS = ("region", "zone")
MEASURES = {"population": "population (persons)", "change": "change since base year (%)",
            "migration": "migration balance in the year (persons)"}
Q_LO, Q_HI = 0.05, 0.95
FLOW_SERIES = ("in_migrants", "out_migrants", "external_in", "external_out")


@dataclass
class Scenario:
    """One scenario: replicate runs of a config, as [replicate, year, district] arrays in persons."""

    name: str
    years: np.ndarray
    codes: np.ndarray
    regions: np.ndarray
    pop: np.ndarray
    net_migration: np.ndarray
    sources: list[str]
    seeds: list[str] = field(default_factory=list)
    results: list[Results] = field(default_factory=list, repr=False)
    share_sd: float = 0.0  # the config's run.share_discrepancy_sd (model discrepancy of the levels)
    _levels: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def n_replicates(self) -> int:
        return int(self.pop.shape[0])


def share_sd_of(config_toml: str | bytes) -> float:
    """``run.share_discrepancy_sd`` of a stored resolved config (0 when the config has none)."""
    import tomllib

    text = config_toml.decode() if isinstance(config_toml, bytes) else str(config_toml or "")
    return float(tomllib.loads(text).get("run", {}).get("share_discrepancy_sd", 0.0)) if text else 0.0


def levels(scn: Scenario) -> np.ndarray:
    """[sample, year, district] population levels carrying the model discrepancy of the scenario's config,
    as ``run``'s bands and ``compare``'s levels do (``ensemble.with_share_discrepancy``, one stream for
    every scenario); the replicates themselves when ``share_sd`` is 0. Differences never use these."""
    if scn._levels is None:
        from migration_abm.ensemble import discrepancy_draws, discrepancy_stream, with_share_discrepancy
        from migration_abm.experiments.compare import DEFAULT_SEED  # compare's stream: the same draws

        scn._levels = with_share_discrepancy(scn.pop, scn.years, int(scn.years[0]), scn.share_sd,
                                             discrepancy_stream(DEFAULT_SEED), discrepancy_draws(scn.n_replicates))
    return scn._levels


def uncertainty_text(scns: list[Scenario]) -> str:
    """What the population bands of these scenarios carry, for the page's notes."""
    sds = sorted({s.share_sd for s in scns})
    if not any(sds):
        return "replicates only (no run.share_discrepancy_sd in the configs: no model discrepancy)"
    return ("replicates (stochastic and, with run.posterior, parameter uncertainty) and the model discrepancy "
            f"of district shares (run.share_discrepancy_sd = {', '.join(f'{v:g}' for v in sds)} per 10 years); "
            "the differences are paired per replicate and leave the discrepancy out")


def _net(arrays: dict[str, np.ndarray]) -> np.ndarray:
    a = [np.asarray(arrays[k], float) for k in FLOW_SERIES]
    return a[0] - a[1] + a[2] - a[3]


def scenario_from_results(name: str, runs: list[Results], sources: list[str]) -> Scenario:
    """A scenario from run files (replicates of one config with different seeds)."""
    if not runs:
        raise InputError("app", "runs", name, "a scenario needs at least one run")
    first = runs[0]
    for r, src in zip(runs[1:], sources[1:], strict=True):
        if not (np.array_equal(r.years, first.years) and np.array_equal(r.codes, first.codes)):
            raise InputError(src, "years/districts", src, f"differ from {sources[0]}; cannot be replicates")
    return Scenario(name, np.asarray(first.years), np.asarray(first.codes).astype(str),
                    np.asarray(first.regions).astype(str),
                    np.stack([r.arrays["population"] for r in runs]).astype(float),
                    np.stack([_net(r.arrays) for r in runs]), list(sources), [r.seed for r in runs], list(runs),
                    share_sd_of(first.config_toml))


def scenarios_from_sweep(path: str | Path) -> list[Scenario]:
    """One scenario per design point of a sweep store (finished replicates only)."""
    from migration_abm.experiments import load_sweep
    from migration_abm.experiments.worker import DONE

    sw = load_sweep(path)
    sds = dict(zip(sw.scenarios, (share_sd_of(t) for t in sw.config_tomls()), strict=True))
    if "population" not in sw.outputs:
        raise InputError(str(path), "outputs", sw.outputs, "the store has no population output")
    pop = sw.array("population")
    flows = {k: sw.array(k) for k in FLOW_SERIES if k in sw.outputs}
    out = []
    pts = sw.points
    for p in range(sw.n_points):
        done = np.flatnonzero(sw.status[p] == DONE)
        if not len(done):
            continue
        label = str(pts.at[p, "scenario"])
        params = [f"{k}={pts.at[p, k]:.4g}" for k in sw.parameters]
        if sw.n_points > len(sw.scenarios):
            label += f" #{p}" + (f" ({', '.join(params)})" if params else "")
        net = _net({k: flows[k][p, done] for k in FLOW_SERIES}) if len(flows) == len(FLOW_SERIES) \
            else np.full_like(pop[p, done], np.nan)
        out.append(Scenario(f"{Path(path).stem}: {label}", sw.years, sw.codes.astype(str), sw.regions.astype(str),
                            pop[p, done].astype(float), net, [str(path)], [f"replicate {r}" for r in done],
                            share_sd=sds[str(pts.at[p, "scenario"])]))
    return out


# ---- results folder ----------------------------------------------------------------------------------

def list_results(root: str | Path) -> pd.DataFrame:
    """Run files and sweep stores under ``root`` (recursively), newest first."""
    import h5py

    rows = []
    root = Path(root)
    for p in sorted(root.rglob("*.h5")) + sorted(root.rglob("*.hdf5")):
        try:
            with h5py.File(p, "r") as f:
                layout = f.attrs.get("layout", b"")
                layout = layout.decode() if isinstance(layout, bytes) else str(layout)
                kind = "sweep" if "experiment_json" in f.attrs else ("run" if layout == "migration_abm.run" else "")
                if kind == "run":
                    years = f["year"][()] if "year" in f else f["coords/year"][()]  # run-file layout 2 or 1
                    detail = f"seed {_attr(f, 'seed')}, {years[0]}–{years[-1]}"
                elif kind == "sweep":
                    status = f["status/code"][()]
                    exp = json.loads(_attr(f, "experiment_json"))
                    detail = (f"{exp.get('name', '')}: {status.shape[0]} point(s) × {status.shape[1]} replicate(s), "
                              f"{int((status == 1).sum())} done")
        except OSError:
            continue
        if kind:
            rows.append({"path": str(p), "file": str(p.relative_to(root)), "kind": kind, "detail": detail,
                         "modified": pd.Timestamp(p.stat().st_mtime, unit="s").strftime("%Y-%m-%d %H:%M"),
                         "mtime": p.stat().st_mtime})
    df = pd.DataFrame(rows, columns=["path", "file", "kind", "detail", "modified", "mtime"])
    return df.sort_values("mtime", ascending=False).drop(columns="mtime").reset_index(drop=True)


def _attr(f: Any, key: str) -> str:
    v = f.attrs.get(key, "")
    if isinstance(v, np.ndarray) and v.shape == (1,):  # netCDF-style scalar attribute
        v = v[0]
    return v.decode() if isinstance(v, bytes) else str(v)


def open_entry(path: str | Path) -> list[Scenario]:
    """Scenarios in one results entry: a run file gives one, a sweep store one per design point."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            is_sweep = "experiment_json" in f.attrs
    except OSError as exc:
        raise InputError(str(path), "file", str(path), f"not a readable HDF5 file ({exc})") from None
    if is_sweep:
        return scenarios_from_sweep(path)
    res = Results.from_hdf5(path)
    return [scenario_from_results(Path(path).stem, [res], [str(path)])]


def list_plans(root: str | Path) -> list[str]:
    """Siting plan folders (with sites.csv and districts.csv) under ``root``, newest first."""
    dirs = [p.parent for p in Path(root).rglob("sites.csv") if (p.parent / "districts.csv").exists()]
    return [str(d) for d in sorted(dirs, key=lambda d: d.stat().st_mtime, reverse=True)]


# ---- config levers -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Lever:
    """One editable config field with its schema range and documentation."""

    key: str
    kind: str  # "bool", "int" or "float"
    value: Any
    lo: float | None
    hi: float | None
    doc: str

    @property
    def range_text(self) -> str:
        if self.kind == "bool":
            return "true / false"
        lo = "−∞" if self.lo is None else f"{self.lo:g}"
        hi = "∞" if self.hi is None else f"{self.hi:g}"
        return f"[{lo}, {hi}]"


def levers(obj: Any, prefix: str) -> list[Lever]:
    """Scalar fields of a config section (nested dataclasses flattened to dotted keys)."""
    import dataclasses
    import typing

    out: list[Lever] = []
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        key = f"{prefix}.{f.name}"
        if dataclasses.is_dataclass(v):
            out += levers(v, key)
        elif hints[f.name] in (bool, int, float):
            out.append(Lever(key, hints[f.name].__name__, v, f.metadata.get("min"), f.metadata.get("max"),
                             f.metadata.get("doc", "")))
    return out


def config_choices(extra_dirs: tuple[Path, ...] = ()) -> list[str]:
    """Scenario TOMLs shipped with the project: ./configs (a checkout) and any packaged configs. Shared
    fragments that no scenario runs on their own (no ``run.start_year`` anywhere in their ``extends``
    chain: calibrated blocks, policies_adopted.toml) are left out."""
    from migration_abm.errors import ConfigError
    from migration_abm.schema import read_toml

    dirs = [Path("configs"), data_path("").parent / "configs", *extra_dirs]
    seen: list[str] = []
    for d in dirs:
        if d.is_dir():
            for p in sorted(d.glob("*.toml")):
                try:
                    scenario = "start_year" in read_toml(p, {}).get("run", {})
                except ConfigError:
                    scenario = True  # listed, so choosing it shows the file's one-line error
                if scenario and str(p) not in seen:
                    seen.append(str(p))
    return seen


# ---- running -----------------------------------------------------------------------------------------

def run_seed(res: Results) -> int:
    """The integer seed of a run (its SeedSequence entropy), 0 when the run does not record one."""
    head = str(res.seed).split(";")[0].removeprefix("entropy=")
    return int(head) if head.isdigit() else 0


def config_digest(cfg: Any) -> str:
    """Short digest of a resolved config: names the run files of one exact scenario."""
    return hashlib.sha256(cfg.to_toml().encode()).hexdigest()[:8]


def run_scenario(cfg: Any, name: str, seeds: list[int], out_dir: str | Path,
                 progress: Callable[[float], None] | None = None,
                 fixed: tuple[str, ...] = ()) -> tuple[Scenario, int]:
    """Run ``cfg`` once per seed (or reuse a run file of the same config and seed: results are
    bit-identical), write ``<out_dir>/<name>_<digest>_seed<s>.h5``; returns the scenario and the reuse count.
    With ``run.posterior`` each seed also draws its parameter set, as ``run`` and ``compare`` do (the same
    seed draws the same set under every scenario), except the keys in ``fixed`` (the user's edits)."""
    from migration_abm.ensemble import posterior_config
    from migration_abm.model import MigrationModel

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    digest = config_digest(cfg)
    n_years = cfg.run.end_year - cfg.run.start_year
    runs, paths, reused = [], [], 0
    for i, seed in enumerate(seeds):
        ss = np.random.SeedSequence(seed)
        drawn = posterior_config(cfg, ss, fixed)
        toml = drawn.to_toml()
        path = out_dir / f"{name}_{digest}_seed{seed}.h5"
        res = None
        if path.exists():
            old = Results.from_hdf5(path)
            if old.config_toml == toml and old.seed.startswith(f"entropy={seed};"):
                res, reused = old, reused + 1
            else:  # never overwrite an earlier, different result
                k = 2
                while path.exists():
                    path, k = out_dir / f"{name}_{digest}_seed{seed}_{k}.h5", k + 1
        if res is None:
            model = MigrationModel(drawn, rng=ss)
            for t in range(n_years):
                model.step()
                if progress:
                    progress((i + (t + 1) / max(n_years, 1)) / len(seeds))
            res = model.results()
            res.to_hdf5(path)
        if progress:
            progress((i + 1) / len(seeds))
        runs.append(res)
        paths.append(str(path))
    return scenario_from_results(name, runs, paths), reused


# ---- summaries ---------------------------------------------------------------------------------------

def areas(level: str) -> dict[str, tuple[str, ...]]:
    """Areas of a reporting level: functional regions or 一区两群 zones (each as a tuple of regions)."""
    if level == "region":
        return {r: (r,) for r in REGIONS}
    if level == "zone":
        return ZONES
    raise InputError("app", "level", level, "use region or zone")


def area_labels(level: str) -> dict[str, str]:
    return REGION_LABELS if level == "region" else ZONE_LABELS


def by_area(scn: Scenario, level: str, what: str = "pop") -> np.ndarray:
    """[replicate, year, area] sums of ``pop``, ``net_migration`` or ``levels`` (population with the
    model discrepancy, [sample, year, area]; see :func:`levels`) over each area's districts."""
    arr = levels(scn) if what == "levels" else getattr(scn, what)
    return np.stack([arr[..., np.isin(scn.regions, regs)].sum(axis=-1) for regs in areas(level).values()], axis=-1)


def bands(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median and the 5–95 % range across replicates (axis 0)."""
    return np.median(x, axis=0), np.quantile(x, Q_LO, axis=0), np.quantile(x, Q_HI, axis=0)


def difference(scn: Scenario, ref: Scenario, level: str) -> tuple[np.ndarray, bool]:
    """[replicate, year, area] of scenario − reference. Paired per replicate when both have the same
    seeds (common random numbers); otherwise the difference of replicate means (one row)."""
    if not np.array_equal(scn.years, ref.years):
        raise InputError(scn.name, "years", f"{scn.years[0]}–{scn.years[-1]}",
                         f"differ from the reference {ref.name} ({ref.years[0]}–{ref.years[-1]})")
    a, b = by_area(scn, level), by_area(ref, level)
    if scn.seeds == ref.seeds and a.shape == b.shape:
        return a - b, True
    return (a.mean(axis=0) - b.mean(axis=0))[None], False


def observed(level: str) -> dict[str, list[tuple[int, float]]]:
    """Observed totals per area (year, persons): census sums of the packaged district table (imputed
    districts included, as flagged there) and the survey/bulletin totals of ``observed_chongqing.csv``."""
    from migration_abm.observations import load_observed

    out: dict[str, list[tuple[int, float]]] = {a: [] for a in areas(level)}
    table = load_districts()
    for year in census_years(table):
        pop = table[f"pop_{year}"]
        if pop.notna().all():
            for a, regs in areas(level).items():
                out[a].append((year, float(pop[table["functional_region"].isin(regs)].sum())))
    obs = load_observed()
    obs = obs[obs["kind"] == "region_total"]
    for area, year, value in obs[["area", "year", "value"]].itertuples(index=False):
        if area in out:
            out[area].append((int(year), float(value)))
    return out


def key_figures(scns: list[Scenario], ref: Scenario, level: str, year: int) -> pd.DataFrame:
    """Population by area in ``year``: median and 5–95 % per scenario (with the model discrepancy, see
    :func:`levels`), and the paired difference to ``ref``."""
    labels = area_labels(level)
    rows = []
    for s in scns:
        t = int(np.flatnonzero(s.years == year)[0]) if year in s.years else None
        if t is None:
            continue
        val = by_area(s, level, "levels")[:, t]
        diff, paired = difference(s, ref, level)
        med, lo, hi = bands(val)
        dmed, dlo, dhi = bands(diff[:, t])
        for j, area in enumerate(areas(level)):
            rows.append({"scenario": s.name, "area": area, "label": labels[area], "year": int(year),
                         "replicates": s.n_replicates, "population_median": round(float(med[j])),
                         "population_q05": round(float(lo[j])), "population_q95": round(float(hi[j])),
                         "difference_vs_reference": round(float(dmed[j])),
                         "difference_q05": round(float(dlo[j])) if paired else None,
                         "difference_q95": round(float(dhi[j])) if paired else None,
                         "reference": ref.name, "paired": paired})
    return pd.DataFrame(rows)


def district_table() -> pd.DataFrame:
    """Codes, names and functional regions of the packaged districts."""
    return load_districts()[["code", "name_zh", "name_en", "functional_region"]]


def district_values(scn: Scenario, year: int, measure: str) -> pd.Series:
    """Median across replicates per district of a map measure (see MEASURES) in ``year``."""
    if year not in scn.years:
        raise InputError(scn.name, "year", year, f"not simulated ({scn.years[0]}–{scn.years[-1]})")
    t = int(np.flatnonzero(scn.years == year)[0])
    if measure == "population":
        v = np.median(scn.pop[:, t], axis=0)
    elif measure == "change":
        v = np.median(100 * (scn.pop[:, t] / scn.pop[:, 0] - 1), axis=0)
    elif measure == "migration":
        v = np.median(scn.net_migration[:, t], axis=0)
    else:
        raise InputError("app", "measure", measure, f"use one of {', '.join(MEASURES)}")
    return pd.Series(v, index=pd.Index(scn.codes, name="district"), name=measure)


def boundaries_geojson() -> dict[str, Any]:
    """The packaged district GeoJSON with ``properties.name`` = map label (English + Chinese name)."""
    gj = json.loads(data_path("chongqing_districts.geojson").read_text(encoding="utf-8"))
    for feat in gj["features"]:
        p = feat["properties"]
        p["name"] = district_label(p["code"], p.get("name_en", ""), p.get("name_zh", ""))
    return gj


def district_label(code: str, name_en: str, name_zh: str) -> str:
    return f"{name_en} {name_zh}".strip() or str(code)


def labels_by_code() -> dict[str, str]:
    t = district_table()
    return {str(c): district_label(c, e, z) for c, e, z in zip(t["code"], t["name_en"], t["name_zh"], strict=True)}
