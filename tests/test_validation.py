"""Validation harness: metrics, tests, the packaged observations and the validate command."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from migration_abm.cli import main
from migration_abm.ensemble import DISCREPANCY_DRAWS, share_discrepancy, with_share_discrepancy
from migration_abm.geography import ZONES
from migration_abm.observations import Observations, load_observed
from migration_abm.validation import (
    ABM,
    ABM_OWN,
    ALLOCATED,
    REPLICATES_ONLY,
    _ridge_loo,
    allocate_to_zones,
    attractiveness_cv,
    averaged_relative_difference,
    build_tests,
    coverage_rows,
    district_metrics,
    run_test,
    summary_table,
)

ROOT = Path(__file__).resolve().parents[1]


def test_metrics_by_hand() -> None:
    pred, obs = np.array([110.0, 90.0, 50.0, 7.0]), np.array([100.0, 100.0, 100.0, 1.0])
    m = district_metrics(pred, obs, np.array([True, True, True, False]))
    assert m["MAPE"] == pytest.approx((0.1 + 0.1 + 0.5) / 3)
    assert m["MedAPE"] == pytest.approx(0.1)
    assert m["WAPE"] == pytest.approx(70 / 300)
    assert averaged_relative_difference([1100, 500], np.array([1000, 1000])) == pytest.approx((0.1 + 0.5) / 2)


def test_allocation_keeps_within_zone_shares() -> None:
    obs = Observations.load()
    geo = obs.geography
    pop = obs.district_population(2010)
    alloc = allocate_to_zones(geo, pop, np.array([1.0, 2.0, 3.0, 4.0]))
    np.testing.assert_allclose(geo.to_zones(alloc), [1, 2, 3, 4])
    main_city = geo.zone_index == 0
    np.testing.assert_allclose(alloc[main_city] / alloc[main_city].sum(), pop[main_city] / pop[main_city].sum())


def test_packaged_observations_are_consistent() -> None:
    obs = Observations.load()
    assert obs.census_years() == [2000, 2010, 2020]
    for year in (2013, 2022):  # zone totals of the surveys sum to the city totals (to rounding)
        assert obs.zone_totals(year).sum() == pytest.approx(obs.city_total(year), rel=2e-3)
    for year in (2000, 2010, 2020):
        assert obs.complete_district_population(year).sum() == pytest.approx(obs.city_total(year))
    p20 = obs.district_population(2020)
    assert obs.district_imputed(2020).sum() == 4 and p20.sum() == 32_054_159
    # the four imputed 2020 values are the rule's (complete_district_population with them left out):
    # the residual split in proportion to 2010 times the region's change over its known districts
    imp = obs.district_imputed(2020)
    codes = set(obs.geography.codes[imp])
    blank = replace(obs, table=obs.table[~((obs.table.year == 2020) & obs.table.area.isin(codes))])
    assert np.isnan(blank.district_population(2020)[imp]).all()
    np.testing.assert_allclose(blank.complete_district_population(2020)[imp], p20[imp], atol=1)
    p10, region = obs.district_population(2010), obs.geography.region_index
    ne, se = np.flatnonzero(imp)[[0, -1]]  # 忠县 (north-east), 酉阳 (south-east)
    assert region[ne] != region[se]
    change = [p20[(region == region[i]) & ~imp].sum() / p10[(region == region[i]) & ~imp].sum() for i in (ne, se)]
    assert p20[se] / p20[ne] == pytest.approx(p10[se] * change[1] / (p10[ne] * change[0]), rel=1e-5)
    raw = load_observed()
    assert {"kind", "year", "area", "value", "source"} <= set(raw.columns) and raw.source.notna().all()
    assert set(raw[raw.kind == "region_total"].area) == set(ZONES)


def test_each_test_fits_only_on_its_stated_data() -> None:
    obs = Observations.load()
    tests = {t.name: t for t in build_tests(obs, 2013)}
    assert tests["temporal"].fit.last_year == 2013
    assert tests["allocation"].fit.years("region_total") == [2013, 2022]
    assert tests["allocation"].fit.census_years() == [2000, 2010]
    assert tests["backcast"].fit.census_years() == [2010, 2020] and tests["backcast"].start_year == 2000
    assert tests["forward"].fit.last_year == 2020 and tests["forward"].start_year == 2020
    # no target is in the data its methods are fitted on; except by design in the backcast, whose
    # dynamics are fitted on 2010 onwards and which is scored on the 2010 census from a 2000 start.
    # A later cut-off moves the targets it reaches to "fitted" rather than calling them predicted.
    for until in (2013, 2020, 2023):
        tests = {t.name: t for t in build_tests(obs, until)}
        for t in (tests["temporal"], tests["allocation"], tests["forward"]):
            for year, level in t.predicted.items():
                kind = "district_population" if level == "district" else "region_total"
                assert year not in t.fit.years(kind), (until, t.name, year)
    late = {t.name: t for t in build_tests(obs, 2023)}
    assert late["temporal"].predicted == {} and late["temporal"].fitted[2020] == "district"
    assert late["allocation"].fitted == {2020: "district"} and late["forward"].predicted == {2022: "zone"}


def test_run_test_scores_baselines_and_model_with_roles_apart() -> None:
    obs = Observations.load()
    test = next(t for t in build_tests(obs, 2013, ("temporal",)))
    # a fake "model": the 2020 census itself for every replicate, so its scores must be 0 and coverage 1
    years = np.array([2010, 2013, 2020, 2022])
    p20 = obs.complete_district_population(2020)
    reps = np.stack([np.stack([p20] * 4) * f for f in (0.98, 1.0, 1.02)])
    tab = run_test(test, obs, reps, years)
    summ = summary_table(tab)
    model20 = summ[(summ.method == ABM) & (summ.year == 2020)].iloc[0]
    assert model20["MAPE"] == pytest.approx(0, abs=1e-12) and model20["role"] == "predicted"
    cov = tab[(tab.metric == "coverage_80")].value.iloc[0]
    assert cov == pytest.approx(1.0)
    assert set(summ[summ.year == 2013].role) == {"fitted"} and set(summ[summ.year == 2022].role) == {"predicted"}
    pers = summ[(summ.method == "persistence of census shares") & (summ.year == 2020)].iloc[0]
    known = ~obs.district_imputed(2020)
    p10 = obs.district_population(2010)
    by_hand = np.mean(np.abs(p10 / p10.sum() * obs.city_total(2020) / p20 - 1)[known])
    assert pers["MAPE"] == pytest.approx(by_hand)
    assert by_hand == pytest.approx(0.139, abs=0.001)  # issue 10's figure
    rows = coverage_rows("t", 2020, np.stack([p20 * 0.5, p20 * 0.6]), obs, 2010)
    assert [r["value"] for r in rows] == [0.0, 0.0] and rows[0]["method"] == f"{ABM_OWN}, {REPLICATES_ONLY}"


def test_model_rows_are_fitted_up_to_the_posterior_cut_off() -> None:
    # the forward baselines see data <= 2020 only, but a forward posterior fitted to 2023 has seen 2022:
    # its rows (and only its rows) must say "fitted"
    obs = Observations.load()
    test = next(t for t in build_tests(obs, 2023, ("forward",)))
    years = np.array([2020, 2021, 2022])
    p20 = obs.complete_district_population(2020)
    reps = np.stack([np.stack([p20] * 3) * f for f in (0.99, 1.01)])
    roles = {}
    for until in (None, 2013, 2023):
        tab = run_test(test, obs, reps, years, model_fitted_until=until)
        roles[until] = tab.groupby("method").role.agg(set)
    assert roles[None][ABM] == roles[2013][ABM] == {"predicted"}
    assert roles[2023][ABM] == roles[2023][ABM_OWN] == {"fitted"}
    assert roles[2023]["persistence of census shares"] == {"predicted"}


def test_share_discrepancy_recovers_a_known_noise_and_widens_intervals() -> None:
    """Shares perturbed by log-normal noise of sd 0.08 over 10 years: the estimator finds 0.08 (and the
    replicates' own spread of 0.03 is not counted); with the right shares it finds about 0."""
    rng = np.random.default_rng(5)
    obs = rng.uniform(2e5, 2e6, 400)
    truth_sd = 0.08
    reps = obs * np.exp(rng.normal(0, truth_sd, 400))[None, :] * np.exp(rng.normal(0, 0.03, (60, 400)))
    assert share_discrepancy(reps, obs, np.ones(400, bool), 10) == pytest.approx(truth_sd, rel=0.1)
    # over 20 years the same error is sqrt(2) smaller per 10 years
    assert share_discrepancy(reps, obs, np.ones(400, bool), 20) == pytest.approx(truth_sd / np.sqrt(2), rel=0.1)
    exact = obs[None, :] * np.exp(rng.normal(0, 0.03, (60, 400)))
    assert share_discrepancy(exact, obs, np.ones(400, bool), 10) < 0.01
    # samples: city total of each replicate kept, spread grows with the horizon, none at the start year
    pop = np.stack([np.tile(obs, (3, 1))] * 4)  # [replicate, year, district]
    out = with_share_discrepancy(pop, np.array([2020, 2030, 2060]), 2020, 0.1, 3)
    assert out.shape == (4 * DISCREPANCY_DRAWS, 3, 400)
    np.testing.assert_allclose(out.sum(axis=-1), obs.sum())
    np.testing.assert_allclose(out[:, 0], pop[0, 0][None].repeat(len(out), 0))
    sd = np.log(out[:, 1:] / obs).std(axis=0).mean(axis=-1)
    assert sd == pytest.approx([0.1, 0.2], rel=0.1)
    assert with_share_discrepancy(pop, np.array([2020, 2030, 2060]), 2020, 0.0, 3) is pop


def test_coverage_with_discrepancy_on_a_known_error() -> None:
    """Replicates that agree on shares 10 % off: spread alone covers nothing; with a discrepancy of
    0.1 per 10 years, the 80 % interval covers the truth (about 1.3 sd wide on each side)."""
    obs = Observations.load()
    p20 = obs.district_population(2020)
    sign = np.where(np.arange(len(p20)) % 2 == 0, 1.1, 1 / 1.1)
    reps = np.stack([p20 * sign * (1 + 0.001 * k) for k in range(5)])
    rows = {(r["method"], r["metric"]): r["value"] for r in coverage_rows("t", 2020, reps, obs, 2010, 0.1)}
    assert rows[(f"{ABM_OWN}, {REPLICATES_ONLY}", "coverage_80")] == 0.0
    assert rows[(ABM_OWN, "coverage_80")] > 0.9 and rows[(ABM_OWN, "coverage_95")] == 1.0


def test_validate_command_on_a_reduced_configuration(tmp_path: Path) -> None:
    out = tmp_path / "val"
    code = main(["validate", "--config", str(ROOT / "configs/hindcast_2010.toml"), "--replicates", "2",
                 "--forward-config", str(ROOT / "configs/baseline.toml"),
                 "--set", "run.households_per_agent=5000", "--out", str(out), "-q"])
    assert code == 0
    for name in ("validation_table.csv", "validation.md", "city_checks.csv", "district_plausibility.csv",
                 "regions_observed_vs_simulated.png", "district_trajectories.png"):
        assert (out / name).stat().st_size > 0, name
    tab = pd.read_csv(out / "validation_table.csv")
    assert set(tab.test) == {"temporal", "allocation", "backcast", "forward"}
    assert {ABM, ABM_OWN, f"{ABM} {ALLOCATED}"} <= set(tab.method)
    assert tab.groupby(["test", "method", "role", "year", "level", "area", "metric"]).size().max() == 1
    ard = tab[(tab.metric == "ARD")]
    for _, row in ard.iterrows():
        rel = tab[(tab.test == row.test) & (tab.method == row.method) & (tab.year == row.year)
                  & (tab.level == row.level) & (tab.metric == "rel_error")]
        assert row.value == pytest.approx(rel.value.abs().mean())
    text = (out / "validation.md").read_text(encoding="utf-8")
    assert "fitted" in text and "predicted" in text and "zone: main_city" in text
    assert "model config" in text and "baseline.toml" in text  # the forward test ran the 2020-base config
    flags = pd.read_csv(out / "district_plausibility.csv")
    assert len(flags) == 38 and not (flags["flag"] & flags["policy_reason"]).any()


def test_validate_rejects_bad_flags(tmp_path: Path) -> None:
    assert main(["validate", "--tests", "nope", "--out", str(tmp_path)]) == 2
    assert main(["validate", "--posterior", str(tmp_path / "missing.csv"), "--out", str(tmp_path)]) == 2


def test_ridge_leave_one_out_matches_refitting() -> None:
    """The hat-matrix shortcut equals refitting the ridge without each district in turn."""
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(12, 3)), rng.normal(size=12)
    fast = _ridge_loo(x, y, 0.5)
    for i in range(12):
        keep = np.arange(12) != i
        coef = np.linalg.solve(x[keep].T @ x[keep] + 0.5 * np.eye(3), x[keep].T @ y[keep])
        assert fast[i] == pytest.approx(x[i] @ coef)


def test_attractiveness_cv_scores_terms_against_zero_change() -> None:
    obs = Observations.load()
    from migration_abm.config import load_config
    from migration_abm.geography import Geography

    geo = Geography.from_config(load_config(ROOT / "configs/hindcast_2010.toml").data)
    tab = attractiveness_cv(geo, Observations.load(geo)).set_index("model")
    assert tab.attrs["districts"] == int((~obs.district_imputed(2000) & ~obs.district_imputed(2020)).sum())
    zero = tab.loc["no change (zero)"]
    # the zero model's error is the spread of the within-zone growth itself, by hand for 2000-10
    p00, p10 = obs.complete_district_population(2000), obs.complete_district_population(2010)
    ok = ~obs.district_imputed(2000) & ~obs.district_imputed(2020)
    g = np.log((p10 / p10.sum()) / (p00 / p00.sum())) / 10
    for z in range(4):
        m = geo.zone_index == z
        g[m] -= g[m & ok].mean()
    assert zero["LOO RMSE 2000-10"] == pytest.approx(np.sqrt(np.mean(g[ok] ** 2)))
    assert len(tab) == 6 and (tab["LOO RMSE 2000-10"].dropna() > 0).all()


def test_a_posterior_fitted_before_the_start_never_uses_the_later_fertility_trend() -> None:
    """The forward test from 2020 with a ≤ 2013 posterior holds fertility at 2020's rate (the packaged
    trend is fitted to 2021-2022 births); a posterior fitted to 2023, or no posterior, keeps the config's."""
    from migration_abm.config import load_config
    from migration_abm.validation import without_later_fits

    cfg = load_config(ROOT / "configs" / "baseline.toml", {"demography.fertility_trend": -0.1})
    assert without_later_fits(cfg, 2020, 2013).demography.fertility_trend == 0.0
    assert without_later_fits(cfg, 2020, 2020).demography.fertility_trend == 0.0
    assert without_later_fits(cfg, 2020, 2023).demography.fertility_trend == -0.1
    assert without_later_fits(cfg, 2020, None) is cfg
