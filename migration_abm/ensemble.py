"""Ensemble projections: replicate runs of one scenario whose spread combines stochastic uncertainty
(independent seeds) and, when a calibration posterior is given, parameter uncertainty (one posterior
draw per replicate). Quantile bands by 一区两群 zone and for the city, for figures and tables."""

from __future__ import annotations

import numpy as np
import pandas as pd

from migration_abm.config import Config
from migration_abm.geography import ZONES, Geography
from migration_abm.model import simulate
from migration_abm.results import Results

#: quantiles of the bands (80 % and 95 % intervals around the median)
QUANTILES = (0.025, 0.1, 0.5, 0.9, 0.975)


#: spawn key of the stream that picks a run's posterior draw (runs themselves use the seed's own stream)
DRAW_SPAWN_KEY = 0x9057


def posterior_config(cfg: Config, seed: np.random.SeedSequence, fixed: tuple[str, ...] = ()) -> Config:
    """``cfg`` with one parameter set from its ``run.posterior`` (weighted draw chosen by ``seed``), or
    ``cfg`` itself without a posterior. The same seed picks the same draw whatever the scenario, so
    paired comparisons under common random numbers share parameter sets too. Keys in ``fixed`` (a
    user's explicit overrides) keep the config's value instead of the drawn one."""
    if not cfg.run.posterior:
        return cfg
    from migration_abm.calibration import read_posterior

    post = read_posterior(cfg.run.posterior)
    names = [c for c in post.columns if c not in ("generation", "particle", "distance", "weight", *fixed)]
    w = post["weight"].to_numpy(float)
    stream = np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, DRAW_SPAWN_KEY))
    i = int(np.random.default_rng(stream).choice(len(post), p=w / w.sum()))
    return cfg.with_overrides({k: float(post.at[i, k]) for k in names}, source=f"{cfg.run.posterior} [draw {i}]")


def simulate_draw(config: Config, seed: int | np.random.SeedSequence | None = None,
                  geography: Geography | None = None, fixed: tuple[str, ...] = ()) -> Results:
    """Run function for sweeps and comparisons: one posterior draw (if ``run.posterior``), then simulate."""
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(
        config.run.seed if seed is None else int(seed))
    return simulate(posterior_config(config, ss, fixed), ss, geography=geography)


def ensemble(cfg: Config, seed: int, replicates: int, progress: bool = False,
             fixed: tuple[str, ...] = ()) -> list[Results]:
    """``replicates`` runs of ``cfg`` with seeds spawned from ``seed``; with ``run.posterior`` each
    replicate also draws its own parameter set (:func:`simulate_draw`), except the keys in ``fixed``."""
    geo = Geography.from_config(cfg.data)
    seeds = np.random.SeedSequence(seed).spawn(replicates)
    reps = range(replicates)
    if progress:
        from tqdm import tqdm

        reps = tqdm(reps, desc="replicates", unit="run")
    return [simulate_draw(cfg, seeds[i], geography=geo, fixed=fixed) for i in reps]


def zone_populations(runs: list[Results], geo: Geography) -> tuple[np.ndarray, np.ndarray]:
    """(years, persons[replicate, year, zone + city]) — the four zones of ZONES, then the city."""
    pop = np.stack([r.arrays["population"] for r in runs])
    zones = geo.to_zones(pop)
    return runs[0].years, np.concatenate([zones, pop.sum(axis=-1, keepdims=True)], axis=-1)


def bands(runs: list[Results], geo: Geography) -> pd.DataFrame:
    """Tidy quantile table: one row per year × area (zones and city), columns q2.5 … q97.5 (persons)."""
    years, arr = zone_populations(runs, geo)
    q = np.quantile(arr, QUANTILES, axis=0)  # [quantile, year, area]
    areas = [*ZONES, "city"]
    rows = [{"year": int(y), "area": a, **{f"q{100 * p:g}": float(q[k, t, j]) for k, p in enumerate(QUANTILES)}}
            for t, y in enumerate(years) for j, a in enumerate(areas)]
    out = pd.DataFrame(rows)
    out.attrs["replicates"] = len(runs)
    return out


def observed_points(geo: Geography, first_year: int, last_year: int) -> pd.DataFrame:
    """Observed zone and city totals (censuses, surveys, year-end figures) between two years, in the
    long format of :func:`bands` (columns year, area, value) for plotting beside a projection."""
    from migration_abm.observations import Observations

    obs = Observations.load(geo)
    rows = []
    for y in obs.zone_years():
        if first_year <= y <= last_year:
            try:
                totals = obs.zone_totals(y)
            except Exception:  # noqa: BLE001 - a census too incomplete to split: no point that year
                continue
            rows += [{"year": y, "area": z, "value": float(v)} for z, v in zip(ZONES, totals, strict=True)]
    rows += [{"year": y, "area": "city", "value": obs.city_total(y)}
             for y in obs.years("city_total") if first_year <= y <= last_year]
    return pd.DataFrame(rows, columns=["year", "area", "value"])
