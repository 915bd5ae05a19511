"""Ensemble projections: replicate runs of one scenario whose spread combines stochastic uncertainty
(independent seeds) and, when a calibration posterior is given, parameter uncertainty (one posterior
draw per replicate). Quantile bands by 一区两群 zone and for the city, for figures and tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from migration_abm.config import Config
from migration_abm.geography import ZONES, Geography
from migration_abm.model import simulate
from migration_abm.results import Results

#: quantiles of the bands (80 % and 95 % intervals around the median)
QUANTILES = (0.025, 0.1, 0.5, 0.9, 0.975)


def ensemble(cfg: Config, seed: int, replicates: int, posterior: str | Path | None = None,
             progress: bool = False) -> list[Results]:
    """``replicates`` runs of ``cfg``: seeds spawned from ``seed``; with a posterior file (written by
    ``migration-abm calibrate``), replicate i uses posterior draw i (drawn reproducibly from ``seed``)."""
    if posterior:
        from migration_abm.calibration import posterior_draws

        draws = posterior_draws(posterior, replicates, seed)
    else:
        draws = [{}] * replicates
    geo = Geography.from_config(cfg.data)
    seeds = np.random.SeedSequence(seed).spawn(replicates)
    reps = range(replicates)
    if progress:
        from tqdm import tqdm

        reps = tqdm(reps, desc="replicates", unit="run")
    return [simulate(cfg.with_overrides(draws[i], source="posterior") if draws[i] else cfg, seeds[i],
                     geography=geo) for i in reps]


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
