"""Validation harness: the ABM and every baseline on the same targets, fitted on the same data.

Tests (docs/VALIDATION.md): *temporal* (fit ≤ ``fit_until``, predict the 2020 districts and the 2022
zone totals), *allocation* (given the 2013 and 2022 zone totals, distribute 2020 among districts),
*backcast* (dynamics fitted on 2010 onwards, run from the 2000 census, predict 2010), *forward* (from the
2020 census, the 2022 zone totals) and *interval coverage* of the model's projection intervals.
All methods are scaled to the observed city total of the target year, so the tables measure how people
are distributed; the ABM's own city total is reported separately. Fitted and predicted targets are kept
apart (column ``role``). The model is called as ``simulate(config, seed)`` with ``run.start_year`` set
per test.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from migration_abm.baselines import BASELINES, Baseline, RegionalInterpolation, ShareTrend
from migration_abm.errors import InputError
from migration_abm.geography import REGIONS, ZONES, Geography, haversine_km
from migration_abm.observations import DISTRICT, Observations, load_observed, log_interpolate

TESTS = ("temporal", "allocation", "backcast", "forward")
ABM = "ABM (median of replicates)"
ABM_OWN = "ABM, own city total"
ALLOCATED = "[allocated to the given zone totals]"
REPLICATES_ONLY = "replicate spread only"
#: the model combined with the share trend (equal weights): averages of methods are hard to beat
COMBINED = "mean of ABM and district share trend"
TREND = ShareTrend.name
#: Methods that need zone totals of the target period and are therefore left out of the backcast.
REGIONAL = ("regional interpolation × census shares within zones", "mean of share trend and regional interpolation")


@dataclass(frozen=True)
class Test:
    """One validation test: what the methods are fitted on, where the model starts, what is scored."""

    name: str
    start_year: int
    fit: Observations
    fitted: dict[int, str]      # year -> level scored in-sample ("zone" or "district")
    predicted: dict[int, str]   # year -> level scored out of sample
    allocate: bool = False      # scale every prediction to the zone totals interpolated from ``fit``
    note: str = ""


def _split(targets: dict[int, str], fit_until: int) -> tuple[dict[int, str], dict[int, str]]:
    """(fitted, predicted): the targets the fit reaches (year ≤ ``fit_until``) and those it does not."""
    return ({y: lv for y, lv in targets.items() if y <= fit_until},
            {y: lv for y, lv in targets.items() if y > fit_until})


def build_tests(obs: Observations, fit_until: int = 2013, tests: tuple[str, ...] = TESTS) -> list[Test]:
    """The tests of issue 10 on the packaged observations; each says exactly which data its fit sees."""
    out = []
    for name in tests:
        if name == "temporal":
            fit = obs.until(fit_until)
            zones = {y: "zone" for y in fit.years("region_total") if y > fit.census_years()[-1]}
            reached, ahead = _split({2020: "district", 2022: "zone"}, fit_until)
            out.append(Test(name, 2010, fit, zones | reached, ahead,
                            note=f"all data ≤ {fit_until}; origin: the {fit.census_years()[-1]} census"))
        elif name == "allocation":
            fit = obs.until(fit_until) | obs.select("region_total", [2022])
            out.append(Test(name, 2010, fit, *_split({2020: "district"}, fit_until), allocate=True,
                            note=f"data ≤ {fit_until} plus the observed 2022 zone totals; 2020 zone totals "
                                 "interpolated geometrically and given to every method"))
        elif name == "backcast":
            fit = obs.exclude(DISTRICT, [2000]).until(2020)
            out.append(Test(name, 2000, fit, {}, {2010: "district"},
                            note="dynamics fitted on the 2010 and 2020 censuses; run from the 2000 census "
                                 "(7 districts imputed); the 2010 census predicted"))
        elif name == "forward":
            fit = obs.until(2020)
            out.append(Test(name, 2020, fit, {}, {2022: "zone"},
                            note="all data ≤ 2020; origin: the 2020 census (4 districts imputed)"))
        else:
            raise ValueError(name)
    return out


# --------------------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------------------

def averaged_relative_difference(pred: np.ndarray, obs: np.ndarray) -> float:
    """Flee's validation metric: mean over areas of |pred − obs| / obs."""
    return float(np.mean(np.abs(np.asarray(pred, float) - obs) / obs))


def district_metrics(pred: np.ndarray, obs: np.ndarray, known: np.ndarray) -> dict[str, float]:
    """MAPE, MedAPE and population-weighted absolute percentage error over the known districts."""
    p, o = np.asarray(pred, float)[known], np.asarray(obs, float)[known]
    ape = np.abs(p - o) / o
    return {"MAPE": float(ape.mean()), "MedAPE": float(np.median(ape)), "WAPE": float(np.abs(p - o).sum() / o.sum())}


def allocate_to_zones(geo: Geography, pop: np.ndarray, zone_totals: np.ndarray) -> np.ndarray:
    """Rescale district values so each zone sums to the given total (keeps within-zone shares)."""
    pop = np.asarray(pop, float)
    return pop * (zone_totals / geo.to_zones(pop))[geo.zone_index]


def score_prediction(test: str, method: str, role: str, year: int, level: str, pop: np.ndarray,
                     truth: Observations) -> list[dict[str, Any]]:
    """Rows of the long table for one district-level prediction against the held observations."""
    geo = truth.geography
    rows: list[dict[str, Any]] = []

    def add(lvl: str, metric: str, value: float, area: str = "all") -> None:
        rows.append({"test": test, "method": method, "role": role, "year": year, "level": lvl,
                     "area": area, "metric": metric, "value": value})

    if level == "district":
        obs = truth.district_population(year)
        known = ~truth.district_imputed(year)
        for k, v in district_metrics(pop, obs, known).items():
            add("district", k, v)
        full = truth.complete_district_population(year)
        for lvl, names, agg in (("region", REGIONS, geo.to_regions), ("zone", list(ZONES), geo.to_zones)):
            o, p = agg(full), agg(pop)
            add(lvl, "ARD", averaged_relative_difference(p, o))
            for name, pv, ov in zip(names, p, o, strict=True):
                add(lvl, "rel_error", float(pv / ov - 1), name)
    else:
        o, p = truth.zone_totals(year), geo.to_zones(pop)
        add("zone", "ARD", averaged_relative_difference(p, o))
        for name, pv, ov in zip(ZONES, p, o, strict=True):
            add("zone", "rel_error", float(pv / ov - 1), name)
    return rows


# --------------------------------------------------------------------------------------------------
# the model
# --------------------------------------------------------------------------------------------------

def without_later_fits(config: Any, start_year: int, fitted_until: int | None) -> Any:
    """``config`` for a test from ``start_year`` by a posterior fitted up to ``fitted_until``: the configs'
    fertility trend, fitted to the birth rates after 2020 (calibrated_2020.toml), is dropped (fertility
    held at the base year's rate) when the posterior saw nothing after the start; otherwise unchanged."""
    if fitted_until is None or fitted_until > start_year or not config.demography.fertility_trend:
        return config
    return config.with_overrides({"demography.fertility_trend": 0.0}, f"validate [posterior fitted to <= {fitted_until}]")


def run_model(config: Any, start_year: int, until: int, replicates: int, obs: Observations,
              posterior: str | Path | None = None) -> tuple[np.ndarray, list]:
    """District populations [replicate, year, district] of ``replicates`` runs from ``start_year``.

    Seeds are spawned from ``run.seed``; with a posterior file each replicate also draws its own
    parameter set (so the spread combines parameter and stochastic uncertainty)."""
    from migration_abm.model import simulate

    cfg = config.with_overrides({"run.start_year": start_year, "run.end_year": until})
    draws: list[dict[str, float]] = [{}] * replicates
    if posterior is not None:
        from migration_abm.calibration import posterior_draws

        draws = posterior_draws(posterior, replicates, seed=config.run.seed)
    geo = obs.completed_geography(Geography.from_config(cfg.data), start_year)
    seeds = np.random.SeedSequence(config.run.seed).spawn(replicates)
    runs = [simulate(cfg.with_overrides(d) if d else cfg, s, until=until, geography=geo)
            for d, s in zip(draws, seeds, strict=True)]
    return np.stack([r.arrays["population"] for r in runs]), runs


# --------------------------------------------------------------------------------------------------
# the harness
# --------------------------------------------------------------------------------------------------

def run_test(test: Test, truth: Observations, model_pop: np.ndarray | None, model_years: np.ndarray | None,
             baselines: tuple[type[Baseline], ...] = BASELINES, share_sd: float = 0.0,
             model_fitted_until: int | None = None) -> pd.DataFrame:
    """Score every baseline (fitted on ``test.fit`` only) and the model runs on the test's targets;
    ``share_sd`` is the model discrepancy added to the model's intervals (:func:`coverage_rows`).
    ``model_fitted_until``: the last year the model's parameters were fitted to; its rows of a target
    year up to then are role "fitted" even where the baselines predict (a forward posterior fitted to 2023)."""
    rows: list[dict[str, Any]] = []
    given = RegionalInterpolation().fit(test.fit) if test.allocate else None
    fitted = []
    for cls in baselines:
        b = cls()
        if test.name == "backcast" and b.name in REGIONAL:
            continue
        b.fit(test.fit)
        if test.start_year != b.origin_year_:
            b.start_from(test.start_year, truth.complete_district_population(test.start_year))
        fitted.append(b)
    targets = [(y, lvl, "fitted") for y, lvl in test.fitted.items()]
    targets += [(y, lvl, "predicted") for y, lvl in test.predicted.items()]
    for year, level, role in targets:
        total = truth.city_total(year)
        preds = {b.name: b.predict(year, "district", total).to_numpy() for b in fitted}
        if model_pop is not None and year in model_years:
            t = int(np.flatnonzero(model_years == year)[0])
            reps = model_pop[:, t]
            preds[ABM] = np.median(reps / reps.sum(axis=1, keepdims=True), axis=0) * total
            if not test.allocate:
                preds[ABM_OWN] = np.median(reps, axis=0)
            if TREND in preds:
                preds[COMBINED] = (preds[ABM] + preds[TREND]) / 2
        model_role = "fitted" if model_fitted_until is not None and year <= model_fitted_until else role
        for name, pop in preds.items():
            r = model_role if name in (ABM, ABM_OWN, COMBINED) else role
            rows += score_prediction(test.name, name, r, year, level, pop, truth)
            if given is not None:
                alloc = allocate_to_zones(truth.geography, pop, log_interpolate(given.points_, year))
                rows += score_prediction(test.name, f"{name} {ALLOCATED}", r, year, level, alloc, truth)
        if model_role == "predicted" and ABM_OWN in preds and level == "district":
            rows += coverage_rows(test.name, year, model_pop[:, t], truth, test.start_year, share_sd)
    return pd.DataFrame(rows)


def coverage_rows(test: str, year: int, reps: np.ndarray, truth: Observations, start_year: int,
                  share_sd: float = 0.0) -> list[dict[str, Any]]:
    """Share of known districts whose census value lies inside the model's 80 % and 95 % intervals: of
    the replicates alone, and (``share_sd`` > 0) with the share discrepancy added as in the projections."""
    from migration_abm.ensemble import with_share_discrepancy

    obs = truth.district_population(year)
    known = ~truth.district_imputed(year)
    samples = {f"{ABM_OWN}, {REPLICATES_ONLY}": reps}
    if share_sd > 0:
        seed = np.random.SeedSequence([year, start_year])
        samples[ABM_OWN] = with_share_discrepancy(reps[:, None], np.array([year]), start_year, share_sd, seed)[:, 0]
    rows = []
    for method, sample in samples.items():
        for level in (0.80, 0.95):
            lo, hi = np.quantile(sample, [(1 - level) / 2, (1 + level) / 2], axis=0)
            inside = (obs >= lo) & (obs <= hi)
            rows.append({"test": test, "method": method, "role": "predicted", "year": year, "level": "district",
                         "area": "all", "metric": f"coverage_{round(100 * level)}",
                         "value": float(inside[known].mean())})
    return rows


def backcast_discrepancy(model_pop: np.ndarray, years: np.ndarray, truth: Observations, start_year: int,
                         year: int) -> float:
    """The share discrepancy (:func:`ensemble.share_discrepancy`) of the model's own prediction of
    ``year``'s census from ``start_year`` — measured on data the temporal test may see (both ≤ 2010)."""
    from migration_abm.ensemble import share_discrepancy

    reps = model_pop[:, int(np.flatnonzero(years == year)[0])]
    return share_discrepancy(reps, truth.complete_district_population(year), ~truth.district_imputed(year),
                             year - start_year)


def validate(config: Any, out_dir: str | Path, replicates: int = 5, *, fit_until: int = 2013,
             tests: tuple[str, ...] = TESTS, posterior: str | Path | None = None,
             observations: Observations | None = None, forward_config: Any | None = None) -> pd.DataFrame:
    """Run every test for the model and the baselines, write tables, figures and the report.

    ``config`` drives the tests from 2010 and 2000 (a hindcast config with start-year inputs), the
    forward test uses ``forward_config`` (a 2020-base config) if given. ``posterior`` is never taken from
    the configs' ``run.posterior``: that one may be fitted to data after ``fit_until``."""
    from migration_abm.plotting import plot_district_trajectories, plot_validation_bands
    from migration_abm.storage import write_text_atomic


    bad = [t for t in tests if t not in TESTS]
    if bad or not tests:
        raise InputError("validate", "tests", ",".join(tests), f"use one or more of {', '.join(TESTS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    truth = observations if observations is not None else Observations.load()
    parts, notes, temporal_runs = [], {}, None
    # the backcast runs first: its error on the 2010 districts sizes the discrepancy term of the intervals
    share_sd = float(config.run.share_discrepancy_sd)
    for test in sorted(build_tests(truth, fit_until, tests), key=lambda t: t.name != "backcast"):
        until = max([*test.predicted, *test.fitted])
        model_pop = years = None
        if replicates > 0:
            cfg = forward_config if test.name == "forward" and forward_config is not None else config
            cfg = without_later_fits(cfg, test.start_year, fit_until if posterior is not None else None)
            model_pop, runs = run_model(cfg, test.start_year, max(until, 2023 if test.name == "temporal" else until),
                                        replicates, truth, posterior)
            years = runs[0].years
            if test.name == "temporal":
                temporal_runs = runs
        parts.append(run_test(test, truth, model_pop, years, share_sd=0.0 if test.name == "backcast" else share_sd,
                              # the backcast scores the 2010 census from 2000 by design (build_tests)
                              model_fitted_until=fit_until if posterior is not None and test.name != "backcast"
                              else None))
        notes[test.name] = test.note
        if test.name == "backcast" and model_pop is not None:
            share_sd = backcast_discrepancy(model_pop, years, truth, test.start_year, min(test.predicted))
            notes["discrepancy"] = (f"share discrepancy of the intervals: {share_sd:.4f} (log sd per 10 years), "
                                    "measured on this backcast's 2010 district shares beyond the replicates' "
                                    "spread and added to the other tests' intervals")
    table = pd.concat(parts, ignore_index=True)
    table.to_csv(out / "validation_table.csv", index=False)
    extras = flags = attract = None
    if temporal_runs is not None:
        geo = truth.completed_geography(Geography.from_config(config.data), 2010)
        extras = city_level_checks(temporal_runs, load_observed(), fit_until)
        extras.to_csv(out / "city_checks.csv", index=False)
        flags = district_plausibility(geo, temporal_runs)
        flags.to_csv(out / "district_plausibility.csv", index=False)
        attract = attractiveness_cv(geo, truth)
        attract.to_csv(out / "attractiveness_cv.csv", index=False)
        pop = np.stack([r.arrays["population"] for r in temporal_runs])
        plot_validation_bands(temporal_runs[0].years, geo.to_zones(pop), load_observed(), list(ZONES),
                              out / "regions_observed_vs_simulated.png")
        plot_district_trajectories(geo, temporal_runs, flags, out / "district_trajectories.png")
    if forward_config is not None and "forward" in notes:
        notes["forward"] += f"; model config `{forward_config.source}`"
    write_text_atomic(out / "validation.md", render_markdown(table, notes, extras, flags, replicates, config,
                                                             fit_until, posterior, attract))
    return table


def summary_table(table: pd.DataFrame) -> pd.DataFrame:
    """One row per test × method × role × year: district MAPE/MedAPE/WAPE, region and zone ARD, coverage."""
    overall = table[table.area == "all"].copy()
    overall["column"] = np.where(overall.level == "district", overall.metric, overall.level + " ARD")
    wide = overall.pivot_table(index=["test", "role", "year", "method"], columns="column", values="value",
                               sort=False)
    order = [c for c in ("MAPE", "MedAPE", "WAPE", "region ARD", "zone ARD", "coverage_80", "coverage_95")
             if c in wide.columns]
    return wide[order].reset_index()


def area_table(table: pd.DataFrame) -> pd.DataFrame:
    """Relative error per functional region and per zone (columns) for every test × method × year."""
    rel = table[table.metric == "rel_error"].copy()
    rel["column"] = rel.level + ": " + rel.area
    wide = rel.pivot_table(index=["test", "role", "year", "method"], columns="column", values="value", sort=False)
    cols = [f"region: {r}" for r in REGIONS] + [f"zone: {z}" for z in ZONES]
    return wide[[c for c in cols if c in wide.columns]].reset_index()


def _area_mask(res: Any, area: str) -> np.ndarray:
    """Districts of a Results object in ``area`` ('city' or a zone name)."""
    return np.ones(len(res.regions), bool) if area == "city" else np.isin(res.regions, ZONES[area])


def city_level_checks(runs: list, obs: pd.DataFrame, fit_until: int) -> pd.DataFrame:
    """City totals, age structure, urbanisation, household size and hukou conversions vs observed; role
    'base' at the start year, 'fitted' for city totals up to ``fit_until``, else 'predicted'."""
    years = runs[0].years
    rows = []

    def med(values: list[float]) -> float:
        return float(np.median(values))

    for _, o in obs[obs.kind.isin(["city_total", "urbanisation", "household_size", "age_share",
                                   "hukou_conversions"])].iterrows():
        y = int(o.year)
        if y not in years:
            continue
        t = int(np.flatnonzero(years == y)[0])
        vals = []
        for r in runs:
            pop = r.arrays["population"][t].sum()
            if o.kind == "city_total":
                vals.append(pop)
            elif o.kind == "urbanisation":
                mask = _area_mask(r, o.area)
                vals.append(r.arrays["urban_population"][t][mask].sum() / r.arrays["population"][t][mask].sum())
            elif o.kind == "household_size":
                vals.append(pop / r.arrays["households"][t].sum())
            elif o.kind == "age_share":
                ages = r.arrays["population_age"][t].sum(axis=0)
                lo, hi = (int(o.area[:-1]), 200) if o.area.endswith("+") else map(int, o.area.split("-"))
                vals.append(ages[lo:hi + 1].sum() / ages.sum())
            elif o.kind == "hukou_conversions":
                vals.append(r.arrays["hukou_conversions"][1:t + 1].sum())
        pred = med(vals)
        role = ("base" if y == years[0] else
                "fitted" if o.kind == "city_total" and y <= fit_until else "predicted")
        rows.append({"kind": o.kind, "year": y, "area": o.area, "role": role, "observed": o.value,
                     "predicted": pred, "rel_error": (pred - o.value) / o.value})
    return pd.DataFrame(rows).sort_values(["kind", "area", "year"], kind="stable").reset_index(drop=True)


#: ridge penalties tried for the attractiveness regressions (chosen by leave-one-district-out error)
RIDGE_PENALTIES = (0.01, 0.1, 1.0, 10.0)


def _ridge_loo(x: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    """Leave-one-out predictions of a ridge regression (standardised columns, no intercept: ``y`` and
    ``x`` are already centred within zones) by the hat-matrix identity e_i / (1 − h_ii)."""
    if x.shape[1] == 0:
        return np.zeros_like(y)
    hat = x @ np.linalg.solve(x.T @ x + lam * np.eye(x.shape[1]), x.T)
    return y - (y - hat @ y) / (1 - np.diag(hat))


def attractiveness_cv(geo: Geography, truth: Observations) -> pd.DataFrame:
    """District attractiveness from data ≤ 2010 (issue 10 §3): how well interpretable district terms
    explain each district's within-zone growth, by leave-one-district-out cross-validation.

    Target: the yearly change of a district's log share of the city, 2000 → 2010, centred within its
    一区两群 zone (zone totals are the regional part). Terms (standardised, centred within zones): log
    distance to the centre of 渝中, log density 2010, base-year migrant stock share (registered 2007 vs
    resident 2010, the network term). Ridge penalty chosen by the LOO error. Also scored: how the
    2000 → 2010 fit predicts 2010 → 2020 (the terms at 2010), against zero change and the district's own
    2000 → 2010 trend (what ``behaviour.beta_trend`` carries forward). RMSE of the yearly log change."""
    from migration_abm.population import migrant_stock_shares

    p00, p10, p20 = (truth.complete_district_population(y) for y in (2000, 2010, 2020))
    ok = ~truth.district_imputed(2000) & ~truth.district_imputed(2020)
    zone = geo.zone_index

    def within(v: np.ndarray) -> np.ndarray:
        out = v.astype(float).copy()
        for z in np.unique(zone):
            m = (zone == z) & ok
            out[zone == z] -= out[m].mean()
        return out

    g1 = within(np.log((p10 / p10.sum()) / (p00 / p00.sum())) / 10)
    g2 = within(np.log((p20 / p20.sum()) / (p10 / p10.sum())) / 10)
    d = geo.districts
    core = d.index[d.functional_region == "core"]
    lat0, lon0 = float(d.loc[core, "lat"].mean()), float(d.loc[core, "lon"].mean())
    km = haversine_km(d.lat.to_numpy(float), d.lon.to_numpy(float), lat0, lon0)
    terms = {"log distance to 渝中": np.log1p(km), "log density 2010": np.log(p10 / d.area_km2.to_numpy(float)),
             "migrant stock share 2010": migrant_stock_shares(geo, 2010).sum(axis=1)}
    cols = {k: within(v) for k, v in terms.items()}
    cols = {k: (v / v[ok].std() if v[ok].std() > 0 else v) for k, v in cols.items()}

    def rmse(e: np.ndarray) -> float:
        return float(np.sqrt(np.mean(np.square(e))))

    rows = [{"model": "no change (zero)", "terms": 0, "penalty": "", "LOO RMSE 2000-10": rmse(g1[ok]),
             "RMSE 2010-20 (fit 2000-10)": rmse(g2[ok])},
            {"model": "own 2000-10 trend carried forward", "terms": 1, "penalty": "",
             "LOO RMSE 2000-10": np.nan, "RMSE 2010-20 (fit 2000-10)": rmse((g2 - g1)[ok])}]
    sets = [[k] for k in cols] + [list(cols)]
    for names in sets:
        x = np.column_stack([cols[k][ok] for k in names])
        loo = {lam: rmse(g1[ok] - _ridge_loo(x, g1[ok], lam)) for lam in RIDGE_PENALTIES}
        lam = min(loo, key=loo.get)
        coef = np.linalg.solve(x.T @ x + lam * np.eye(x.shape[1]), x.T @ g1[ok])
        rows.append({"model": " + ".join(names), "terms": len(names), "penalty": f"{lam:g}", "LOO RMSE 2000-10": loo[lam],
                     "RMSE 2010-20 (fit 2000-10)": rmse(g2[ok] - x @ coef)})
    out = pd.DataFrame(rows)
    out.attrs["districts"] = int(ok.sum())
    return out


def district_plausibility(geo: Geography, runs: list, start: int = 2010, end: int = 2022) -> pd.DataFrame:
    """Simulated 2010→2022 change per district vs the 2000→2010 census trend; flags sign reversals that
    no policy explains (growth in destination regions and decline in eco regions are policy-driven)."""
    years = runs[0].years
    t0, t1 = int(np.flatnonzero(years == start)[0]), int(np.flatnonzero(years == end)[0])
    pop = np.median(np.stack([r.arrays["population"] for r in runs]), axis=0)
    sim = pop[t1] / pop[t0] - 1
    p00, p10 = geo.population(2000), geo.population(2010)
    trend = p10 / p00 - 1
    region = geo.districts["functional_region"].to_numpy()
    reversed_ = np.isfinite(trend) & (np.sign(sim) != np.sign(trend))
    policy = ((np.isin(region, ["expansion", "new_development", "core"]) & (sim > 0))
              | (np.isin(region, ["northeast_eco", "southeast_eco"]) & (sim < 0)))
    return pd.DataFrame({"code": geo.codes, "name_en": geo.districts["name_en"], "region": region,
                         "trend_2000_2010": trend, f"sim_{start}_{end}": sim,
                         "sign_reversed": reversed_, "policy_reason": reversed_ & policy,
                         "flag": reversed_ & ~policy})


def _fmt_table(df: pd.DataFrame, pct: tuple[str, ...] = ()) -> str:
    """Percentages for error columns, thousands separators for counts, via reporting.markdown_table."""
    from migration_abm.reporting import markdown_table

    d = df.copy()
    for c in d.columns:
        if c in ("observed", "predicted"):
            d[c] = d[c].map(lambda v: "" if pd.isna(v) else (f"{v:,.0f}" if abs(v) > 10 else f"{v:.4f}"))
        elif c in pct or (c != "year" and d[c].dtype.kind == "f"):
            d[c] = d[c].map(lambda v: "" if pd.isna(v) else f"{100 * v:.2f} %")
    return markdown_table(d, index=False)


def render_markdown(table: pd.DataFrame, notes: dict[str, str], extras: pd.DataFrame | None,
                    flags: pd.DataFrame | None, replicates: int, config: Any, fit_until: int,
                    posterior: str | Path | None = None, attract: pd.DataFrame | None = None) -> str:
    """The validation report as Markdown: one summary table, one table by region and zone, checks."""
    head = (f"Config: `{getattr(config, 'source', '')}`; {replicates} replicates per test"
            f"{f', parameters drawn from the posterior `{posterior}`' if posterior else ' at the config parameters'}; "
            f"households per agent {config.run.households_per_agent}; fit_until = {fit_until}. Every method is scaled "
            f"to the observed city total of the target year (the row '{ABM_OWN}' keeps the model's own total). "
            "Error metrics over districts with an observed (not imputed) census value; ARD = mean |relative "
            "error| over areas. Role 'fitted' = in-sample, 'predicted' = out of sample; with a posterior, the "
            "model's rows of years ≤ fit_until are 'fitted'. Without one the config's own parameters are used: "
            "the packaged ones are fitted to data ≤ 2023, so the model's 'predicted' rows are then in-sample.")
    parts = ["# Validation report", head, "## Tests"]
    parts.append("\n".join(f"- **{k}**: {v}" for k, v in notes.items()))
    parts.append("## Summary (all tests, all methods)\n\n" + _fmt_table(summary_table(table)))
    parts.append("## Relative error by functional region and by 一区两群 zone\n\n" + _fmt_table(area_table(table)))
    if extras is not None:
        parts.append("## City-level checks (temporal test runs)\n\n" + _fmt_table(extras, ("rel_error",)))
    if flags is not None:
        n_flag = int(flags["flag"].sum())
        parts.append(f"## District plausibility\n\n{n_flag} district(s) flagged (simulated 2010→2022 change of "
                     "opposite sign to the 2000→2010 census trend with no policy reason).\n\n"
                     + _fmt_table(flags[flags.sign_reversed]))
    if attract is not None:
        parts.append("## District attractiveness from data ≤ 2010 (leave-one-district-out)\n\n"
                     f"RMSE of the within-zone yearly change of each district's log share (per year), "
                     f"{attract.attrs.get('districts', '')} districts with both censuses; see "
                     "`validation.attractiveness_cv`.\n\n" + _fmt_table(attract))
    return "\n\n".join(parts) + "\n"
