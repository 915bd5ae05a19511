"""A tiny pure-numpy stand-in for :func:`migration_abm.model.simulate` (same signature, same Results).

It exists so the sweep engine, executors and stores can be tested in milliseconds and on dask workers
(it is importable as ``migration_abm.experiments.toy:toy_simulate``). Its numbers mean nothing.
It raises deliberately when ``behaviour.beta_stay < -19`` so tests can check failure isolation, and
sleeps ``$MIGRATION_ABM_TOY_DELAY`` seconds per run (default 0) so tests can interrupt a sweep mid-way.
"""

from __future__ import annotations

import os
import time

import numpy as np

from migration_abm.config import Config
from migration_abm.geography import ECO_REGIONS, load_districts
from migration_abm.results import DISTRICT_SERIES, Results

_TABLES: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def _districts(regions: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if regions not in _TABLES:
        t = load_districts(None if regions == "chongqing" else regions)
        _TABLES[regions] = (t["code"].to_numpy(str), t["functional_region"].to_numpy(str),
                            t["pop_2010"].to_numpy(float))
    return _TABLES[regions]


def toy_simulate(config: Config, seed: int | np.random.SeedSequence | None = None) -> Results:
    """Random-walk populations nudged by a few config values; deterministic in ``seed``."""
    if config.behaviour.beta_stay < -19:
        raise RuntimeError(f"toy model: deliberate failure (behaviour.beta_stay = {config.behaviour.beta_stay})")
    time.sleep(float(os.environ.get("MIGRATION_ABM_TOY_DELAY", "0")))
    rng = np.random.default_rng(config.run.seed if seed is None else seed)
    codes, regions, pop0 = _districts(config.data.regions)
    years = np.arange(config.run.start_year, config.run.end_year + 1)
    n_y, n_d = len(years), len(codes)
    eco = np.isin(regions, ECO_REGIONS)
    pull = 0.004 * config.behaviour.beta_income * (~eco) - 0.01 * config.policy.job_matching.coverage * eco
    arrays = {k: np.zeros((n_y, n_d)) for k in DISTRICT_SERIES}
    pop = pop0.copy()
    arrays["population"][0] = pop
    for t in range(1, n_y):
        rate = 0.002 + pull + rng.normal(0.0, 0.003, n_d)
        moves = pop * 0.02 * rng.uniform(0.5, 1.5, n_d)
        arrays["out_migrants"][t] = moves
        arrays["in_migrants"][t] = moves + pop * rate
        arrays["hukou_conversions"][t] = pop * 0.003 / (1 + config.policy.hukou.expansion.min_years)
        arrays["external_in"][t] = pop * 0.005 * rng.uniform(0.8, 1.2, n_d)
        arrays["external_out"][t] = pop * 0.006 * rng.uniform(0.8, 1.2, n_d)
        pop = pop * (1 + rate) + arrays["external_in"][t] - arrays["external_out"][t]
        arrays["population"][t] = pop
    dims = {k: ("year", "district") for k in arrays}
    return Results(years=years, codes=codes, regions=regions, arrays=arrays, dims=dims,
                   config_toml=config.to_toml(), seed=str(seed))
