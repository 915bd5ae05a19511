"""Calibration with parameter uncertainty: ABC-SMC over the behavioural parameters.

A likelihood-free posterior (approximate Bayesian computation by sequential Monte Carlo, Beaumont et
al. 2009 / Toni et al. 2009) fitted to the district populations, zone (一区两群) totals and city totals
observed after the run's start year and no later than ``fit_until`` (read through
``Observations.until``). The prior is uniform on the parameter box. Generation 0 samples the prior; each
later generation sets its tolerance ε to a quantile of the previous generation's distances, proposes
particles from the previous weighted population perturbed by a Gaussian kernel (twice the weighted
covariance), simulates them in batches on the sweep engine and keeps the first ``particles`` within ε.

Written on the sweep engine rather than with pyabc: pyabc's only deterministic sampler is single-core,
its parallel samplers (dynamic scheduling) give results that depend on worker timing, and the project
requires bit-identical results for any worker count. Here every proposal and seed is a function of the
spec's seed, so the posterior is identical serial or parallel. Reproduce with
``migration-abm calibrate experiments/calibration.toml``.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from migration_abm.errors import ConfigError, InputError
from migration_abm.observations import Observations
from migration_abm.schema import build, dumps_toml, param, read_toml_file
from migration_abm.storage import atomic_path, write_text_atomic

TARGET_KEYS = ("districts", "zones", "city", "backcast", "vital")
#: Target kinds that are city crude rates (their errors form the ``vital`` group).
VITAL = ("birth_rate", "death_rate")
BEGIN, END = "# BEGIN CALIBRATED", "# END CALIBRATED"
POSTERIOR = "posterior.csv"


# --------------------------------------------------------------------------------------------------
# targets and distance
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """One group of observations of one year: kind is 'districts' (known districts of a census), 'zones'
    (the ZONES totals) or 'city' (the city total), compared by relative error, or 'birth_rate' /
    'death_rate' (city crude rates per 1 000), compared by difference / 1 000 — the share of the
    population the year's births or deaths are off by, the unit of the other errors."""

    kind: str
    year: int
    observed: np.ndarray
    mask: np.ndarray | None = None


def build_targets(obs: Observations, start_year: int, fit_until: int, vital: bool = False) -> list[Target]:
    """Every observation after ``start_year`` up to ``fit_until``, read only through ``obs.until``
    (the city's crude birth and death rates only with ``vital``)."""
    seen = obs.until(fit_until)
    out = []
    for y in seen.census_years():
        if y > start_year:
            out.append(Target("districts", y, seen.district_population(y), ~seen.district_imputed(y)))
    for y in seen.years("region_total"):
        if y > start_year:
            out.append(Target("zones", y, seen.zone_totals(y)))
    for y in seen.years("city_total"):
        if y > start_year:
            out.append(Target("city", y, np.array([seen.city_total(y)])))
    for kind in VITAL if vital else ():
        out += [Target(kind, y, np.array([seen.value(kind, y)])) for y in seen.years(kind) if y > start_year]
    return out


def target_errors(pop: np.ndarray, years: np.ndarray, geo: Any, targets: list[Target],
                  events: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Errors per target (``kind_year``, the rates ``vital_kind_year`` → array) of populations
    [..., year, district]; the rate targets read ``events['births']`` / ``events['deaths']`` (same shape) over the mean of the year's two populations."""
    out = {}
    for t in targets:
        i = int(np.flatnonzero(years == t.year)[0])
        sim = pop[..., i, :]
        if t.kind in VITAL:
            if events is None:
                raise ValueError("rate targets need the births and deaths")
            n = events[t.kind.replace("_rate", "s")][..., i, :].sum(axis=-1, keepdims=True)
            rate = 1000 * n / ((sim + pop[..., i - 1, :]).sum(axis=-1, keepdims=True) / 2)
            out[f"vital_{t.kind}_{t.year}"] = (rate - t.observed) / 1000
            continue
        if t.kind == "districts":
            rel = sim[..., t.mask] / t.observed[t.mask] - 1
        elif t.kind == "zones":
            rel = geo.to_zones(sim) / t.observed - 1
        else:
            rel = sim.sum(axis=-1, keepdims=True) / t.observed - 1
        out[f"{t.kind}_{t.year}"] = rel
    return out


def distance(errors: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """Root of the weighted mean (over target groups) of each group's mean squared relative error."""
    num, den = 0.0, 0.0
    for key, rel in errors.items():
        w = weights.get(key.split("_")[0], 1.0)
        num = num + w * np.mean(np.square(rel), axis=-1)
        den += w
    return np.sqrt(num / den)


# --------------------------------------------------------------------------------------------------
# ABC-SMC (generic)
# --------------------------------------------------------------------------------------------------

@dataclass
class AbcResult:
    """All generations: particles (parameters, distance, weight) and the tolerance schedule."""

    names: list[str]
    particles: pd.DataFrame
    generations: pd.DataFrame
    extra: dict[str, Any] = field(default_factory=dict)

    def final(self) -> pd.DataFrame:
        """The last generation's particles (the posterior sample)."""
        g = self.particles["generation"].max()
        return self.particles[self.particles["generation"] == g].reset_index(drop=True)


def _weighted_cov(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    mean = w @ x
    d = x - mean
    return np.atleast_2d((w[:, None] * d).T @ d)


def abc_smc(simulate: Callable[[np.ndarray, int, int], np.ndarray], box: dict[str, tuple[float, float]],
            particles: int, generations: int, seed: int, quantile: float = 0.5, min_acceptance: float = 0.02,
            max_batches: int = 20) -> AbcResult:
    """ABC-SMC with a uniform prior on ``box``. ``simulate(thetas [n, k], generation, batch)`` returns
    one distance per row; every random draw derives from ``seed`` (generation and batch numbers enter
    the seed of each simulation batch), so the result does not depend on how batches are executed."""
    names = list(box)
    lo = np.array([box[k][0] for k in names])
    hi = np.array([box[k][1] for k in names])
    root = np.random.SeedSequence(seed)
    rng = np.random.default_rng(root.spawn(1)[0])
    theta = lo + rng.random((particles, len(names))) * (hi - lo)
    dist = np.asarray(simulate(theta, 0, 0), float)
    ok = np.isfinite(dist)
    theta, dist = theta[ok], dist[ok]
    w = np.full(len(theta), 1.0 / len(theta))
    rows = [_frame(names, 0, theta, dist, w)]
    gens = [{"generation": 0, "epsilon": np.inf, "proposed": particles, "accepted": len(theta),
             "acceptance": len(theta) / particles}]
    for g in range(1, generations):
        eps = float(np.quantile(dist, quantile))
        cov = 2.0 * _weighted_cov(theta, w) + 1e-12 * np.eye(len(names))
        chol = np.linalg.cholesky(cov)
        acc_t, acc_d, proposed = [], [], 0
        for b in range(max_batches):
            prop = _propose(rng, theta, w, chol, lo, hi, particles)
            d = np.asarray(simulate(prop, g, b), float)
            proposed += len(prop)
            keep = np.isfinite(d) & (d <= eps)
            acc_t.append(prop[keep])
            acc_d.append(d[keep])
            if sum(len(a) for a in acc_t) >= particles:
                break
        new_t = np.concatenate(acc_t)[:particles]
        new_d = np.concatenate(acc_d)[:particles]
        rate = len(np.concatenate(acc_t)) / proposed
        if len(new_t) < 2:
            gens.append({"generation": g, "epsilon": eps, "proposed": proposed, "accepted": len(new_t),
                         "acceptance": rate, "stopped": "fewer than 2 particles accepted"})
            break
        # importance weights: uniform prior / mixture of perturbation kernels around the old particles
        inv = np.linalg.inv(cov)
        diff = new_t[:, None, :] - theta[None, :, :]
        kern = np.exp(-0.5 * np.einsum("ijk,kl,ijl->ij", diff, inv, diff))
        new_w = 1.0 / (kern @ w)
        new_w /= new_w.sum()
        theta, dist, w = new_t, new_d, new_w
        rows.append(_frame(names, g, theta, dist, w))
        gens.append({"generation": g, "epsilon": eps, "proposed": proposed, "accepted": len(theta),
                     "acceptance": rate})
        if rate < min_acceptance or len(theta) < particles:
            gens[-1]["stopped"] = (f"acceptance {rate:.3f} < {min_acceptance}" if rate < min_acceptance
                                   else f"only {len(theta)} accepted in {max_batches} batches")
            break
    return AbcResult(names, pd.concat(rows, ignore_index=True), pd.DataFrame(gens))


def _propose(rng: np.random.Generator, theta: np.ndarray, w: np.ndarray, chol: np.ndarray, lo: np.ndarray,
             hi: np.ndarray, n: int) -> np.ndarray:
    """``n`` perturbed draws from the weighted population, redrawn until inside the prior box."""
    out = np.empty((0, theta.shape[1]))
    while len(out) < n:
        idx = rng.choice(len(theta), size=2 * n, p=w)
        cand = theta[idx] + rng.standard_normal((2 * n, theta.shape[1])) @ chol.T
        cand = cand[np.all((cand >= lo) & (cand <= hi), axis=1)]
        out = np.concatenate([out, cand])
    return out[:n]


def _frame(names: list[str], g: int, theta: np.ndarray, dist: np.ndarray, w: np.ndarray) -> pd.DataFrame:
    df = pd.DataFrame(theta, columns=names)
    df.insert(0, "particle", np.arange(len(theta)))
    df.insert(0, "generation", g)
    df["distance"] = dist
    df["weight"] = w
    return df


# --------------------------------------------------------------------------------------------------
# the calibration spec and the model
# --------------------------------------------------------------------------------------------------

@dataclass
class PriorBox:
    """A uniform prior on [min, max]."""

    min: float | None = param(None, doc="lower end of the uniform prior")
    max: float | None = param(None, doc="upper end of the uniform prior")


@dataclass
class TargetWeights:
    """Weights of the target groups in the ABC distance."""

    districts: float = param(1.0, 0.0, None, "district censuses")
    zones: float = param(1.0, 0.0, None, "zone (一区两群) totals")
    city: float = param(1.0, 0.0, None, "city totals")
    backcast: float = param(1.0, 0.0, None, "district shares at the base start year, run from `backcast_from`")
    vital: float = param(0.0, 0.0, None, "city crude birth and death rates (0: not fitted)")


@dataclass
class CalibrationFile:
    """The calibration TOML as the schema engine (:mod:`migration_abm.schema`) validates it."""

    name: str = param("", doc="calibration name (default: the file's stem)")
    description: str = param("", doc="free text")
    base: str = param("", doc="base scenario TOML (relative to this file)")
    seed: int = param(2013, 0, None, "root seed of proposals and run seeds")
    fit_until: int = param(2013, 1900, 2200, "last year of the observations the fit may read")
    particles: int = param(100, 4, None, "particles per generation")
    generations: int = param(5, 1, None, "ABC-SMC generations")
    quantile: float = param(0.5, 0.0, 1.0, "tolerance = this quantile of the previous generation's distances")
    min_acceptance: float = param(0.02, 0.0, 1.0, "stop when the acceptance rate falls below this")
    max_batches: int = param(20, 1, None, "simulation batches per generation at most")
    replicates: int = param(1, 1, None, "replicates per particle")
    backcast_from: int = param(0, 0, 2200, "also run every particle from this census to the base config's start "
                               "year and fit the district shares of the start-year census there (0 = off)")
    set: dict[str, Any] = param({}, doc="config overrides applied to every run")
    targets: TargetWeights = field(default_factory=TargetWeights, metadata={"doc": "target group weights"})
    parameters: dict[str, PriorBox] = param({}, doc="calibrated config keys with their uniform prior boxes")
    apply_to: str = param("", doc="config file whose calibrated block --apply rewrites")


@dataclass
class CalibrationSpec:
    """A calibration file: base config, fixed settings, prior box, ABC-SMC sizes, target weights."""

    name: str
    base: Path
    parameters: dict[str, tuple[float, float]]
    fixed: dict[str, Any]
    seed: int
    fit_until: int = 2013
    particles: int = 100
    generations: int = 5
    quantile: float = 0.5
    min_acceptance: float = 0.02
    max_batches: int = 20
    replicates: int = 1
    backcast_from: int = 0
    weights: dict[str, float] = field(default_factory=lambda: dict.fromkeys(TARGET_KEYS, 1.0))
    apply_to: Path | None = None
    source: str = "<dict>"

    @classmethod
    def from_toml(cls, path: str | Path) -> CalibrationSpec:
        path = Path(path).resolve()
        src = str(path)
        f = build(CalibrationFile, read_toml_file(path, "calibration"), {}, src)
        params = {}
        for key, box in f.parameters.items():
            if box.min is None or box.max is None or box.min >= box.max:
                raise ConfigError(src, f"parameters.{key}", {"min": box.min, "max": box.max},
                                  "needs min and max with min < max")
            params[key] = (float(box.min), float(box.max))
        if not params:
            raise ConfigError(src, "parameters", {}, "at least one parameter to calibrate")
        spec = cls(name=f.name or path.stem, base=(path.parent / f.base).resolve(), parameters=params,
                   fixed=dict(f.set), seed=f.seed, fit_until=f.fit_until, particles=f.particles,
                   generations=f.generations, quantile=f.quantile, min_acceptance=f.min_acceptance,
                   max_batches=f.max_batches, replicates=f.replicates, backcast_from=f.backcast_from,
                   weights={k: float(getattr(f.targets, k)) for k in TARGET_KEYS},
                   apply_to=(path.parent / f.apply_to).resolve() if f.apply_to else None, source=src)
        if not 0 < spec.quantile < 1:
            raise ConfigError(src, "quantile", spec.quantile, "must be in (0, 1)")
        if not spec.base.is_file():
            raise ConfigError(src, "base", str(spec.base), "base config not found")
        return spec

    def base_config(self) -> Any:
        """The base scenario with the fixed settings, run only to ``fit_until``."""
        from migration_abm.config import load_config

        cfg = load_config(self.base, self.fixed, override_source=f"{self.source} [set]")
        if self.fit_until <= cfg.run.start_year:
            raise ConfigError(self.source, "fit_until", self.fit_until,
                              f"must be after the base config's run.start_year ({cfg.run.start_year})")
        return cfg.with_overrides({"run.end_year": self.fit_until}, source=f"{self.source} [fit_until]")


def simulate_from_census(config: Any, seed: Any) -> Any:
    """Run function for backcast sweeps: ``model.simulate`` from a census the district table may lack
    districts of, completed by the observations' stated imputation rule (as the validation does)."""
    from migration_abm.geography import Geography
    from migration_abm.model import simulate

    geo = Geography.from_config(config.data)
    return simulate(config, seed, geography=Observations.load(geo).completed_geography(geo, config.run.start_year))


def share_errors(pop: np.ndarray, observed: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Relative errors of district shares of the city (``pop`` [..., district]) over the known districts."""
    share = pop / pop.sum(axis=-1, keepdims=True)
    return (share / (observed / observed.sum()) - 1)[..., known]


def model_simulator(spec: CalibrationSpec, out: Path, obs: Observations, workers: int | None, resume: bool,
                    progress: bool) -> Callable[[np.ndarray, int, int], np.ndarray]:
    """A batch simulator for :func:`abc_smc`: one sweep store per generation and batch under ``out``
    (and, with ``backcast_from``, a second store of the same particles run from that census)."""
    from migration_abm.experiments import Experiment, load_sweep, run_sweep
    from migration_abm.geography import Geography

    base = spec.base_config()
    geo = Geography.from_config(base.data)
    start = base.run.start_year
    vital = spec.weights.get("vital", 0.0) > 0
    targets = build_targets(obs, start, spec.fit_until, vital)
    outputs = ["population", "births", "deaths"] if vital else ["population"]
    if not targets:
        raise ConfigError(spec.source, "fit_until", spec.fit_until, f"no observation after {start} up to it to fit")
    names = list(spec.parameters)
    back = None
    if spec.backcast_from:
        seen = obs.until(spec.fit_until)
        if spec.backcast_from >= start or not {spec.backcast_from, start} <= set(seen.census_years()):
            raise ConfigError(spec.source, "backcast_from", spec.backcast_from, f"needs a census before the base "
                              f"start year {start} and one at {start} (censuses: {seen.census_years()})")
        back = base.with_overrides({"run.start_year": spec.backcast_from, "run.end_year": start},
                                   source=f"{spec.source} [backcast_from]")
        observed, known = seen.complete_district_population(start), ~seen.district_imputed(start)

    def sweep(cfg: Any, theta: np.ndarray, name: str, tag: str, seed: int,
              run_function: str | None) -> tuple[dict[str, np.ndarray], np.ndarray]:
        scenarios = {f"p{i}": cfg.with_overrides(dict(zip(names, map(float, row), strict=True)))
                     for i, row in enumerate(theta)}
        raw = {"name": name, "scenarios": scenarios, "seed": seed, "replicates": spec.replicates,
               "common_random_numbers": False, "outputs": outputs}
        exp = Experiment.from_dict(raw | ({"run_function": run_function} if run_function else {}),
                                   base_dir=spec.base.parent, source=spec.source)
        store = out / f"{tag}.h5"
        done = run_sweep(exp, store, "process" if (workers or 1) > 1 else "serial", workers=workers,
                         resume=resume and store.exists(), overwrite=not resume, progress=progress)
        if done.interrupted:
            raise KeyboardInterrupt  # stop the whole calibration; `--resume` continues from the stores
        swept = load_sweep(store)  # [point, year, district] per output
        return {k: np.nanmean(swept.array(k), axis=1) for k in outputs}, np.asarray(exp.years)

    def simulate(theta: np.ndarray, generation: int, batch: int) -> np.ndarray:
        seed = spec.seed * 1000 + generation * 50 + batch
        tag = f"gen{generation:02d}_batch{batch:02d}"
        name = f"{spec.name}_g{generation}_b{batch}"
        runs, years = sweep(base, theta, name, tag, seed, None)
        errors = target_errors(runs["population"], years, geo, targets, runs)
        if back is not None:
            past, _ = sweep(back, theta, f"{name}_backcast", f"{tag}_backcast", seed,
                            f"{__name__}:simulate_from_census")
            errors[f"backcast_{start}"] = share_errors(past["population"][:, -1], observed, known)
        return distance(errors, spec.weights)

    return simulate


def calibrate(spec: CalibrationSpec, out_dir: str | Path, workers: int | None = None, resume: bool = False,
              progress: bool = True, observations: Observations | None = None) -> dict[str, Any]:
    """Run ABC-SMC, write the posterior (all generations), the fitted point and a report; return a summary."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    obs = observations if observations is not None else Observations.load()
    t0 = time.perf_counter()
    sim = model_simulator(spec, out, obs, workers, resume, progress)
    res = abc_smc(sim, spec.parameters, spec.particles, spec.generations, spec.seed, spec.quantile,
                  spec.min_acceptance, spec.max_batches)
    elapsed = time.perf_counter() - t0
    final = res.final()
    best = final.loc[final["distance"].idxmin()]
    summary = {"fitted": {k: _round(float(best[k])) for k in spec.parameters}, "distance": float(best["distance"]),
               "runs": int(res.generations["proposed"].sum()) * spec.replicates * (2 if spec.backcast_from else 1), "seconds": elapsed,
               "fit_until": spec.fit_until, "date": dt.date.today().isoformat(), "spec": spec.source,
               "posterior": str(out / POSTERIOR), "generations": res.generations.to_dict("records")}
    with atomic_path(out / POSTERIOR) as tmp:
        res.particles.to_csv(tmp, index=False)
    write_text_atomic(out / "calibration.json", json.dumps(summary, indent=2, default=float) + "\n")
    write_text_atomic(out / "fitted.toml", fitted_block(summary))
    write_text_atomic(out / "calibration.md", report(summary, res, spec))
    return summary


# --------------------------------------------------------------------------------------------------
# using the posterior
# --------------------------------------------------------------------------------------------------

#: columns of a posterior file that are not parameters
POSTERIOR_META = ("generation", "particle", "distance", "weight")


def posterior_parameters(post: pd.DataFrame, fixed: tuple[str, ...] = ()) -> list[str]:
    """The parameter columns of a posterior table, without the keys in ``fixed``."""
    return [c for c in post.columns if c not in (*POSTERIOR_META, *fixed)]


def read_posterior(path: str | Path) -> pd.DataFrame:
    """The last generation of a posterior file written by :func:`calibrate` (read once per file version:
    an ensemble or sweep asks for it once per run). Treat the table as read-only."""
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as exc:
        raise InputError(str(path), "file", str(path), f"not a readable posterior ({exc})") from None
    return _read_posterior(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _read_posterior(path: str, _mtime_ns: int, _size: int) -> pd.DataFrame:
    try:
        table = pd.read_csv(path)
    except (FileNotFoundError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(str(path), "file", str(path), f"not a readable posterior ({exc})") from None
    for col in ("generation", "weight"):
        if col not in table.columns:
            raise InputError(str(path), "columns", col, "missing (not a posterior written by calibrate)")
    return table[table["generation"] == table["generation"].max()].reset_index(drop=True)


def posterior_draws(path: str | Path, n: int, seed: int) -> list[dict[str, float]]:
    """``n`` parameter sets drawn (with replacement, by weight) from a posterior, as override dicts for
    ``Config.with_overrides``; the same seed gives the same draws."""
    post = read_posterior(path)
    names = posterior_parameters(post)
    w = post["weight"].to_numpy(float)
    idx = np.random.default_rng(np.random.SeedSequence(seed)).choice(len(post), size=n, p=w / w.sum())
    return [{k: float(post.at[i, k]) for k in names} for i in idx]


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


def fitted_block(summary: dict[str, Any], posterior: str = "") -> str:
    """The best posterior particle as TOML tables, with a comment saying what it was fitted to and when;
    with ``posterior`` also ``run.posterior`` (relative to the config file) for ensemble projections."""
    head = (f"{BEGIN}\n# Fitted {summary['date']} by `migration-abm calibrate {Path(summary['spec']).name}` (ABC-SMC) to\n"
            f"# district, zone and city observations up to {summary['fit_until']} only; {summary['runs']} runs, "
            f"{summary['seconds']:.0f} s.\n# Best particle of the final generation (distance "
            f"{summary['distance']:.4f}); run.posterior = its final generation (weighted draws).\n")
    values = dict(summary["fitted"])
    if posterior:
        values["run.posterior"] = posterior
    return head + dumps_toml(_nest(values)).replace("\n\n", "\n") + END + "\n"


def apply_calibration(config_path: Path, summary: dict[str, Any]) -> Path:
    """Write the calibration into a config: the final posterior generation is copied next to it as
    ``<stem>_posterior.csv`` (so the repository holds what projections draw from) and the fitted block
    (best particle + ``run.posterior``) replaces the one between the markers. Returns the copy's path."""
    config_path = Path(config_path)
    copy = config_path.with_name(f"{config_path.stem}_posterior.csv")
    with atomic_path(copy) as tmp:
        read_posterior(summary["posterior"]).to_csv(tmp, index=False)
    apply_fitted(config_path, fitted_block(summary, copy.name))
    return copy


def apply_fitted(path: Path, block: str) -> None:
    """Replace the calibrated block of a config file (between the BEGIN/END markers) atomically."""
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END) + r"\n?", re.S)
    new = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + block
    write_text_atomic(path, new)


def report(summary: dict[str, Any], res: AbcResult, spec: CalibrationSpec) -> str:
    """Markdown summary of a calibration: schedule, posterior summaries, best particle."""
    final = res.final()
    w = final["weight"].to_numpy()
    lines = [f"# Calibration `{spec.name}` (ABC-SMC)", "",
             f"Targets: every district census, zone total and city total after the base config's start year up to "
             f"fit_until = {spec.fit_until}"
             + (f", and the district shares of the base start-year census in runs from the {spec.backcast_from} "
                "census (group 'backcast')" if spec.backcast_from else "")
             + f" (weights {spec.weights}). Distance: root of the weighted mean of each "
             f"target group's mean squared relative error. Uniform prior on the box below; {spec.particles} "
             f"particles, ε = {spec.quantile:.0%} quantile of the previous generation's distances. "
             f"{summary['runs']} runs in {summary['seconds']:.0f} s.", "", "## Generations", "",
             res.generations.to_string(index=False), "", "## Posterior (final generation, weighted)", "",
             "| parameter | prior box | mean | sd | 10 % | 50 % | 90 % | best |", "|---|---|---|---|---|---|---|---|"]
    for k, (lo, hi) in spec.parameters.items():
        x = final[k].to_numpy()
        order = np.argsort(x)
        cdf = np.cumsum(w[order])
        q = [x[order][np.searchsorted(cdf, p)] for p in (0.1, 0.5, 0.9)]
        mean = float(w @ x)
        sd = float(np.sqrt(w @ (x - mean) ** 2))
        lines.append(f"| `{k}` | {lo:g}–{hi:g} | {mean:.4g} | {sd:.3g} | {q[0]:.4g} | {q[1]:.4g} | {q[2]:.4g} | "
                     f"{summary['fitted'][k]:.4g} |")
    return "\n".join(lines) + "\n"
