"""Ensemble projections: replicate runs of one scenario whose spread combines stochastic uncertainty
(independent seeds), parameter uncertainty when a calibration posterior is given (one posterior draw
per replicate) and, when ``run.share_discrepancy_sd`` is set, the model's structural error in each
district's share (log-normal noise whose size was measured on a past prediction). Quantile bands by
一区两群 zone and for the city, for figures and tables."""

from __future__ import annotations

import numpy as np
import pandas as pd

from migration_abm.config import Config
from migration_abm.errors import InputError
from migration_abm.geography import ZONES, Geography
from migration_abm.model import simulate
from migration_abm.results import Results

#: quantiles of the bands (80 % and 95 % intervals around the median)
QUANTILES = (0.025, 0.1, 0.5, 0.9, 0.975)


#: spawn key of the stream that picks a run's posterior draw (runs themselves use the seed's own stream)
DRAW_SPAWN_KEY = 0x9057
#: spawn key of the stream that draws the share discrepancy of the bands
DISCREPANCY_SPAWN_KEY = 0x5D15
#: discrepancy draws per replicate (the bands' quantiles are taken over replicates × draws)
DISCREPANCY_DRAWS = 50


def posterior_config(cfg: Config, seed: np.random.SeedSequence, fixed: tuple[str, ...] = ()) -> Config:
    """``cfg`` with one parameter set from its ``run.posterior`` (weighted draw chosen by ``seed``), or
    ``cfg`` itself without a posterior. The same seed picks the same draw whatever the scenario, so
    paired comparisons under common random numbers share parameter sets too. Keys in ``fixed`` (a
    user's explicit overrides) keep the config's value instead of the drawn one."""
    if not cfg.run.posterior:
        return cfg
    from migration_abm.calibration import posterior_parameters, read_posterior

    post = read_posterior(cfg.run.posterior)
    names = posterior_parameters(post, fixed)
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


def share_discrepancy(reps: np.ndarray, observed: np.ndarray, known: np.ndarray, horizon_years: float) -> float:
    """Model discrepancy measured on a past prediction ``reps`` [replicate, district] of ``observed``: the
    log sd, over 10 years, of the district shares' error that the replicates' own spread does not explain,
    √(max(0, mean e² − mean var) · 10 / horizon), over the ``known`` districts (e = log median share − log
    observed share; a random walk's variance grows with the horizon)."""
    share = reps / reps.sum(axis=-1, keepdims=True)
    err = np.log(np.median(share, axis=0) / (observed / observed.sum()))[known]
    spread = np.var(np.log(share), axis=0)[known]
    return float(np.sqrt(max(0.0, float(np.mean(err ** 2) - np.mean(spread))) * 10.0 / horizon_years))


def discrepancy_stream(seed: int) -> np.random.SeedSequence:
    """The discrepancy draws' own stream for ``seed``: one per seed, so every config gets the same draws."""
    return np.random.SeedSequence(seed, spawn_key=(DISCREPANCY_SPAWN_KEY,))


def discrepancy_draws(replicates: int) -> int:
    """Discrepancy draws per replicate: ``DISCREPANCY_DRAWS``, fewer for many replicates (≤ 2 000 samples)."""
    return max(1, min(DISCREPANCY_DRAWS, 2000 // max(replicates, 1)))


def with_share_discrepancy(pop: np.ndarray, years: np.ndarray, start_year: int, sd_10y: float,
                           seed: np.random.SeedSequence | int, draws: int = DISCREPANCY_DRAWS) -> np.ndarray:
    """Samples [replicate × draw, year, district] of ``pop`` [replicate, year, district] whose district
    shares carry log-normal discrepancy of sd ``sd_10y`` · √((year − start_year) / 10); each sample keeps
    its replicate's city total. ``sd_10y`` = 0 returns ``pop`` unchanged."""
    if sd_10y <= 0:
        return pop
    scale = sd_10y * np.sqrt(np.maximum(np.asarray(years, float) - start_year, 0.0) / 10.0)
    eps = np.random.default_rng(seed).standard_normal((pop.shape[0], draws, *pop.shape[1:]))
    noisy = pop[:, None] * np.exp(eps * scale[None, None, :, None])
    noisy *= pop.sum(axis=-1)[:, None, :, None] / noisy.sum(axis=-1, keepdims=True)
    return noisy.reshape(-1, *pop.shape[1:])


def bands(runs: list[Results], geo: Geography, share_sd: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """Tidy quantile table: one row per year × area (zones and city), columns q2.5 … q97.5 (persons).

    With ``share_sd`` > 0 the quantiles are over replicates × discrepancy draws (stream ``seed``)."""
    pop = np.stack([r.arrays["population"] for r in runs])
    years = runs[0].years
    pop = with_share_discrepancy(pop, years, int(years[0]), share_sd, discrepancy_stream(seed))
    arr = np.concatenate([geo.to_zones(pop), pop.sum(axis=-1, keepdims=True)], axis=-1)
    q = np.quantile(arr, QUANTILES, axis=0)  # [quantile, year, area]
    areas = [*ZONES, "city"]
    rows = [{"year": int(y), "area": a, **{f"q{100 * p:g}": float(q[k, t, j]) for k, p in enumerate(QUANTILES)}}
            for t, y in enumerate(years) for j, a in enumerate(areas)]
    out = pd.DataFrame(rows)
    out.attrs["replicates"] = len(runs)
    out.attrs["share_discrepancy_sd"] = share_sd
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
            except InputError:  # a census too incomplete to split: no point that year
                continue
            rows += [{"year": y, "area": z, "value": float(v)} for z, v in zip(ZONES, totals, strict=True)]
    rows += [{"year": y, "area": "city", "value": obs.city_total(y)}
             for y in obs.years("city_total") if first_year <= y <= last_year]
    return pd.DataFrame(rows, columns=["year", "area", "value"])
