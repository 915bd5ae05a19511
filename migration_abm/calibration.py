"""Calibration of behavioural and external-migration parameters to the fitted targets only
(2013 regional totals, city totals), with the sweep engine: a global Latin hypercube, then a local
Latin hypercube around the best point. Reproducible from ``migration-abm calibrate FILE``.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from migration_abm.errors import ConfigError
from migration_abm.schema import dumps_toml, read_toml_file
from migration_abm.storage import write_text_atomic
from migration_abm.validation import GROUP_NAMES, load_observed, observed_groups, to_groups

CAL_KEYS = ("name", "description", "base", "seed", "replicates", "samples", "refine_samples", "refine_width",
            "race_points", "race_replicates", "set", "targets", "parameters", "apply_to")
BEGIN, END = "# BEGIN CALIBRATED", "# END CALIBRATED"


@dataclass
class CalibrationSpec:
    """A calibration file: base config, fixed settings, parameter box, design sizes, target weights."""

    name: str
    base: Path
    parameters: dict[str, tuple[float, float]]
    fixed: dict[str, Any]
    seed: int
    replicates: int = 2
    samples: int = 120
    refine_samples: int = 60
    refine_width: float = 0.25
    race_points: int = 10
    race_replicates: int = 6
    weight_regions: float = 1.0
    weight_city: float = 1.0
    fit_year: int = 2013
    apply_to: Path | None = None
    source: str = "<dict>"

    @classmethod
    def from_toml(cls, path: str | Path) -> CalibrationSpec:
        path = Path(path).resolve()
        src = str(path)
        raw = read_toml_file(path, "calibration")
        for k in raw:
            if k not in CAL_KEYS:
                raise ConfigError(src, k, raw[k], f"unknown key; use one of {', '.join(CAL_KEYS)}")
        params = {}
        for key, box in raw.get("parameters", {}).items():
            if not isinstance(box, dict) or set(box) != {"min", "max"}:
                raise ConfigError(src, f"parameters.{key}", box, "needs exactly min and max")
            lo, hi = box["min"], box["max"]
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lo, hi)) or lo >= hi:
                raise ConfigError(src, f"parameters.{key}", box, "min and max must be numbers with min < max")
            params[key] = (float(lo), float(hi))
        if not params:
            raise ConfigError(src, "parameters", {}, "at least one parameter to calibrate")
        targets = raw.get("targets", {})
        for k, v in targets.items():
            if k not in ("regions", "city", "fit_year"):
                raise ConfigError(src, f"targets.{k}", v, "use regions, city (weights) or fit_year")
        spec = cls(name=str(raw.get("name", path.stem)), base=(path.parent / raw.get("base", "")).resolve(),
                   parameters=params, fixed=dict(raw.get("set", {})), seed=int(raw.get("seed", 2013)),
                   replicates=int(raw.get("replicates", 2)), samples=int(raw.get("samples", 120)),
                   refine_samples=int(raw.get("refine_samples", 60)),
                   refine_width=float(raw.get("refine_width", 0.25)),
                   race_points=int(raw.get("race_points", 10)), race_replicates=int(raw.get("race_replicates", 6)),
                   weight_regions=float(targets.get("regions", 1.0)), weight_city=float(targets.get("city", 1.0)),
                   fit_year=int(targets.get("fit_year", 2013)),
                   apply_to=(path.parent / raw["apply_to"]).resolve() if "apply_to" in raw else None, source=src)
        for key, lo in (("replicates", 1), ("samples", 2), ("refine_samples", 0), ("race_points", 0),
                        ("race_replicates", 1)):
            if getattr(spec, key) < lo:
                raise ConfigError(src, key, getattr(spec, key), f"must be >= {lo}")
        if not 0 < spec.refine_width <= 1:
            raise ConfigError(src, "refine_width", spec.refine_width, "must be in (0, 1]")
        if not spec.base.is_file():
            raise ConfigError(src, "base", str(spec.base), "base config not found")
        return spec

    def experiment(self, stage: int, box: dict[str, tuple[float, float]], samples: int) -> Any:
        """The sweep-engine experiment of one stage (LHS over ``box``)."""
        from migration_abm.experiments import Experiment

        raw = {"name": f"{self.name}_stage{stage}", "base": str(self.base), "design": "lhs", "samples": samples,
               "replicates": self.replicates, "seed": self.seed + stage, "common_random_numbers": True,
               "outputs": ["population"], "set": self.fixed,
               "parameters": {k: {"min": lo, "max": hi} for k, (lo, hi) in box.items()}}
        return Experiment.from_dict(raw, base_dir=self.base.parent, source=self.source)


def score(pop: np.ndarray, years: np.ndarray, geo: Any, obs: pd.DataFrame, spec: CalibrationSpec) -> pd.DataFrame:
    """Loss per design point from populations [point, replicate, year, district] (replicate mean)."""
    mean = np.nanmean(pop, axis=1)
    groups = to_groups(geo, mean)                  # [point, year, group]
    t = int(np.flatnonzero(years == spec.fit_year)[0])
    target = observed_groups(obs, spec.fit_year)
    rel_reg = groups[:, t] / target - 1
    city = obs[(obs.kind == "city_total") & obs.year.isin(years)]
    idx = [int(np.flatnonzero(years == y)[0]) for y in city.year]
    rel_city = mean[:, idx].sum(axis=2) / city.value.to_numpy() - 1
    loss = spec.weight_regions * np.mean(rel_reg**2, axis=1) + spec.weight_city * np.mean(rel_city**2, axis=1)
    df = pd.DataFrame({"loss": loss})
    for g, name in enumerate(GROUP_NAMES):
        df[f"rel_{name}_{spec.fit_year}"] = rel_reg[:, g]
    for j, y in enumerate(city.year):
        df[f"rel_city_{y}"] = rel_city[:, j]
    return df


def calibrate(spec: CalibrationSpec, out_dir: str | Path, workers: int | None = None,
              resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Run both stages, write the run table, the fitted values and a report; return the fit summary."""
    from migration_abm.experiments import load_sweep, run_sweep
    from migration_abm.geography import Geography

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    obs = load_observed()
    t0 = time.perf_counter()
    box = dict(spec.parameters)
    tables, n_runs = [], 0
    best: pd.Series | None = None
    for stage, samples in ((1, spec.samples), (2, spec.refine_samples)):
        if samples == 0:
            continue
        if stage == 2:
            box = {k: (max(lo, float(best[k]) - spec.refine_width * (hi - lo) / 2),
                       min(hi, float(best[k]) + spec.refine_width * (hi - lo) / 2))
                   for k, (lo, hi) in spec.parameters.items()}
        exp = spec.experiment(stage, box, samples)
        store = out / f"stage{stage}.h5"
        run_sweep(exp, store, "process" if (workers or 2) > 1 else "serial", workers=workers,
                  resume=resume and store.exists(), overwrite=not resume, progress=progress)
        sw = load_sweep(store)
        geo = Geography.from_config(exp.scenarios[0].config.data)
        table = score(sw.array("population"), np.asarray(exp.years), geo, obs, spec)
        table = pd.concat([sw.points[list(spec.parameters)].reset_index(drop=True), table], axis=1)
        table.insert(0, "stage", stage)
        tables.append(table)
        n_runs += int((sw.status == 1).sum())
        allt = pd.concat(tables, ignore_index=True)
        best = allt.loc[allt["loss"].idxmin()]
    runs = pd.concat(tables, ignore_index=True)
    race = None
    if spec.race_points > 1:
        race, raced = _race(spec, runs, out, obs, workers, resume, progress)
        n_runs += raced
        best = race.loc[race["loss"].idxmin()]
    elapsed = time.perf_counter() - t0
    runs.to_csv(out / "calibration_runs.csv", index=False)
    if race is not None:
        race.to_csv(out / "calibration_race.csv", index=False)
    fitted = {k: _round(float(best[k])) for k in spec.parameters}
    summary = {"fitted": fitted, "loss": float(best["loss"]), "runs": n_runs, "seconds": elapsed,
               "errors": {c: float(best[c]) for c in best.index if c.startswith("rel_")},
               "date": dt.date.today().isoformat(), "spec": spec.source}
    write_text_atomic(out / "fitted.toml", fitted_block(summary))
    write_text_atomic(out / "calibration.md", report(summary, runs, spec, race))
    return summary


def _race(spec: CalibrationSpec, runs: pd.DataFrame, out: Path, obs: pd.DataFrame, workers: int | None,
          resume: bool, progress: bool) -> tuple[pd.DataFrame, int]:
    """Re-run the best ``race_points`` points with ``race_replicates`` fresh seeds and rank them by
    their mean loss, so the pick is not the point that was luckiest with two replicates."""
    from migration_abm.config import load_config
    from migration_abm.experiments import Experiment, load_sweep, run_sweep
    from migration_abm.geography import Geography

    top = runs.nsmallest(spec.race_points, "loss").reset_index(drop=True)
    base = load_config(spec.base, spec.fixed, override_source=f"{spec.source} [set]")
    scenarios = {f"candidate{i}": base.with_overrides({k: float(row[k]) for k in spec.parameters})
                 for i, row in top.iterrows()}
    exp = Experiment.from_dict({"name": f"{spec.name}_race", "scenarios": scenarios, "seed": spec.seed + 3,
                                "replicates": spec.race_replicates, "common_random_numbers": True,
                                "outputs": ["population"]}, base_dir=spec.base.parent, source=spec.source)
    store = out / "race.h5"
    run_sweep(exp, store, "process" if (workers or 2) > 1 else "serial", workers=workers,
              resume=resume and store.exists(), overwrite=not resume, progress=progress)
    sw = load_sweep(store)
    scored = score(sw.array("population"), np.asarray(exp.years), Geography.from_config(base.data), obs, spec)
    race = pd.concat([top[list(spec.parameters)], scored], axis=1)
    race.insert(0, "first_pass_loss", top["loss"])
    race.insert(0, "stage", "race")
    return race, int((sw.status == 1).sum())


def _round(v: float) -> float:
    return float(f"{v:.4g}")


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, v in flat.items():
        node = out
        *parts, last = key.split(".")
        for p in parts:
            node = node.setdefault(p, {})
        node[last] = v
    return out


def fitted_block(summary: dict[str, Any]) -> str:
    """The fitted values as TOML tables, with a comment saying what they were fitted to and when."""
    errs = ", ".join(f"{k[4:]} {100 * v:+.2f} %" for k, v in summary["errors"].items())
    head = (f"{BEGIN}\n# Fitted {summary['date']} by `migration-abm calibrate {Path(summary['spec']).name}` to the 2013\n"
            f"# regional totals (1 % survey) and the city totals 2013/2020-2023 only (2022 regional totals are held\n"
            f"# out for validation). {summary['runs']} runs, {summary['seconds']:.0f} s. Fit errors: {errs}.\n")
    return head + dumps_toml(_nest(summary["fitted"])).replace("\n\n", "\n") + END + "\n"


def apply_fitted(path: Path, block: str) -> None:
    """Replace the calibrated block of a config file (between the BEGIN/END markers) atomically."""
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END) + r"\n?", re.S)
    new = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + block
    write_text_atomic(path, new)


def report(summary: dict[str, Any], runs: pd.DataFrame, spec: CalibrationSpec,
           race: pd.DataFrame | None = None) -> str:
    """Markdown summary of a calibration."""
    top = runs.nsmallest(10, "loss")
    lines = [f"# Calibration `{spec.name}`", "",
             f"{summary['runs']} runs ({spec.replicates} replicates per point; stage 1: {spec.samples}-point LHS over "
             f"the full box, stage 2: {spec.refine_samples}-point LHS in a box {spec.refine_width:.0%} as wide around "
             f"the stage-1 best) in {summary['seconds']:.0f} s. Loss = mean squared relative error of the "
             f"{spec.fit_year} regional totals (weight {spec.weight_regions}) + of the city totals (weight "
             f"{spec.weight_city}).", "", "## Fitted values", ""]
    lines += [f"- `{k}` = {v} (box {spec.parameters[k][0]}–{spec.parameters[k][1]})" for k, v in summary["fitted"].items()]
    lines += ["", "## Fit errors at the best point", ""]
    lines += [f"- {k[4:]}: {100 * v:+.2f} %" for k, v in summary["errors"].items()]
    lines += ["", "## Ten best points of the first two stages", "", top.round(5).to_string(index=False)]
    if race is not None:
        spread = race[list(spec.parameters)].agg(["min", "max"]).T
        lines += ["", f"## Race: the {len(race)} best points re-run with {spec.race_replicates} fresh replicates",
                  "", "The pick is the lowest mean loss here. The spread of parameter values among these "
                  "near-equal fits shows how weakly the fitted targets identify them (equifinality):", "",
                  spread.round(5).to_string(), "", race.round(5).to_string(index=False)]
    return "\n".join(lines) + "\n"
