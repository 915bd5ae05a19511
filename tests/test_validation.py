"""Validation metrics, baselines, the validate command and calibration plumbing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from migration_abm.calibration import (
    BEGIN,
    END,
    CalibrationSpec,
    apply_fitted,
    calibrate,
    fitted_block,
    score,
)
from migration_abm.cli import main
from migration_abm.errors import ConfigError
from migration_abm.geography import Geography
from migration_abm.validation import (
    GROUP_NAMES,
    Gravity,
    Persistence,
    Radiation,
    ShareTrend,
    averaged_relative_difference,
    city_totals,
    error_table,
    load_observed,
    observed_groups,
    to_groups,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def toy_geo(tmp_path: Path) -> Geography:
    """Five districts, one per validation group plus a core district (main city = core + expansion)."""
    csv = tmp_path / "toy.csv"
    csv.write_text(
        "code,name_zh,name_en,kind,functional_region,area_km2,lat,lon,pop_2000,pop_2010\n"
        "1,a,A,district,core,10,29.5,106.5,100,200\n"
        "2,b,B,district,expansion,10,29.6,106.6,300,300\n"
        "3,c,C,district,new_development,10,29.8,106.2,400,300\n"
        "4,d,D,district,northeast_eco,10,30.8,108.4,150,120\n"
        "5,e,E,district,southeast_eco,10,29.0,108.8,50,80\n", encoding="utf-8")
    return Geography.load(csv, None, 1.2)


def test_persistence_on_a_hand_made_example(toy_geo: Geography) -> None:
    totals = {2022: 2000.0}
    pred = to_groups(toy_geo, Persistence().predict(toy_geo, totals, 2022))
    # 2010 shares: main 500/1000, new dev 300/1000, NE 120/1000, SE 80/1000 -> × 2000
    np.testing.assert_allclose(pred, [1000.0, 600.0, 240.0, 160.0])
    obs = np.array([1100.0, 500.0, 240.0, 200.0])
    tab = error_table(pred, obs)
    np.testing.assert_allclose(tab["rel_error"], [-100 / 1100, 100 / 500, 0.0, -40 / 200])
    assert averaged_relative_difference(pred, obs) == pytest.approx((100 / 1100 + 0.2 + 0 + 0.2) / 4)


def test_share_trend_continues_the_2000_2010_log_share_change(toy_geo: Geography) -> None:
    pred = to_groups(toy_geo, ShareTrend().predict(toy_geo, {2020: 1000.0, 2010: 1000.0}, 2020))
    g00 = np.array([400.0, 400.0, 150.0, 50.0]) / 1000
    g10 = np.array([500.0, 300.0, 120.0, 80.0]) / 1000
    expect = g10 * (g10 / g00)
    np.testing.assert_allclose(pred, 1000 * expect / expect.sum())
    np.testing.assert_allclose(to_groups(toy_geo, ShareTrend().predict(toy_geo, {2010: 1000.0}, 2010)),
                               1000 * g10)


def test_flow_baselines_conserve_population_and_respect_totals() -> None:
    geo = Geography.load(circuity=1.2)
    pop = geo.population(2010)
    t = Radiation().flows(pop, geo.distance_km, np.array([-3.0]))
    assert np.all(t >= 0) and np.all(np.diag(t) == 0)
    assert np.all(t.sum(axis=1) <= pop / (1 + np.exp(3.0)) + 1e-6)
    g = Gravity().flows(pop, geo.distance_km, np.array([0.0, 1.0, 2.0]))
    np.testing.assert_allclose(g.sum(axis=1), 0.1 * pop)  # tau = 0.2 · sigmoid(0)
    obs = load_observed()
    totals = city_totals(obs, 2010, float(pop.sum()), range(2010, 2023))
    assert totals[2013] == 29_700_000 and totals[2022] == 32_133_400
    assert totals[2010] < totals[2011] < totals[2013]
    fitted = Radiation().fit(geo, obs)
    assert to_groups(geo, fitted.predict(geo, totals, 2022)).sum() == pytest.approx(totals[2022])


def test_observed_targets_are_consistent() -> None:
    obs = load_observed()
    for year in (2013, 2022):
        total = obs[(obs.kind == "city_total") & (obs.year == year)]["value"].iloc[0]
        assert observed_groups(obs, year).sum() == pytest.approx(total, rel=1e-6)
    assert set(obs[obs.year == 2022]["use"]) == {"calibration", "validation"}
    assert (obs[(obs.kind == "region_total") & (obs.year == 2022)]["use"] == "validation").all()


def test_validate_command_on_a_reduced_configuration(tmp_path: Path) -> None:
    out = tmp_path / "val"
    code = main(["validate", "--config", str(ROOT / "configs/hindcast_2010.toml"), "--replicates", "2",
                 "--set", "run.households_per_agent=5000", "--out", str(out), "-q"])
    assert code == 0
    for name in ("validation_table.csv", "validation.md", "city_checks.csv", "district_plausibility.csv",
                 "regions_observed_vs_simulated.png", "district_trajectories.png"):
        assert (out / name).stat().st_size > 0, name
    tab = pd.read_csv(out / "validation_table.csv")
    rows = tab[tab.area != "ARD (mean |rel|)"]
    np.testing.assert_allclose(rows.rel_error, (rows.predicted - rows.observed) / rows.observed)
    for (model, year), g in rows.groupby(["model", "year"]):
        ard = tab[(tab.model == model) & (tab.year == year) & (tab.area == "ARD (mean |rel|)")].rel_error.iloc[0]
        assert ard == pytest.approx(g.rel_error.abs().mean())
        assert list(g.area) == list(GROUP_NAMES)
    # the persistence row equals 2010 census shares × the observed city total, by hand
    geo = Geography.load()
    shares = to_groups(geo, geo.population(2010)) / geo.population(2010).sum()
    pers = rows[(rows.model == "persistence of 2010 shares") & (rows.year == 2022)].predicted.to_numpy()
    np.testing.assert_allclose(pers, shares * 32_133_400)
    flags = pd.read_csv(out / "district_plausibility.csv")
    assert len(flags) == 38 and set(flags.columns) >= {"trend_2000_2010", "flag"}
    assert not (flags["flag"] & flags["policy_reason"]).any()


def test_calibration_score_and_apply(tmp_path: Path) -> None:
    spec_file = tmp_path / "cal.toml"
    spec_file.write_text(f'base = "{ROOT / "configs/hindcast_2010.toml"}"\nreplicates = 1\nsamples = 2\n'
                         'refine_samples = 0\nrace_points = 2\nrace_replicates = 1\nseed = 1\n[set]\n'
                         '"run.households_per_agent" = 8000.0\n'
                         '[parameters."behaviour.consider_base"]\nmin = 0.01\nmax = 0.05\n', encoding="utf-8")
    spec = CalibrationSpec.from_toml(spec_file)
    geo = Geography.load()
    obs = load_observed()
    years = np.arange(2010, 2024)
    # a perfect point: districts scaled so groups hit 2013 targets and the city totals
    pop = np.tile(geo.population(2010), (len(years), 1)).astype(float)
    gi_target = observed_groups(obs, 2013) / to_groups(geo, geo.population(2010))
    from migration_abm.validation import group_index
    pop[3] = geo.population(2010) * gi_target[group_index(geo)]
    for y, v in obs[obs.kind == "city_total"][["year", "value"]].values:
        t = int(y) - 2010
        if t != 3:
            pop[t] *= v / pop[t].sum()
    arr = np.stack([pop, pop * 1.1])[:, None]  # [point, replicate, year, district]
    table = score(arr, years, geo, obs, spec)
    assert table.loss.iloc[0] == pytest.approx(0.0, abs=1e-12)
    assert table.loss.iloc[1] == pytest.approx(0.01 + 0.01, rel=1e-6)
    summary = calibrate(spec, tmp_path / "out", workers=1, progress=False)
    assert summary["runs"] == 2 + 2 and 0.01 <= summary["fitted"]["behaviour.consider_base"] <= 0.05
    race = pd.read_csv(tmp_path / "out" / "calibration_race.csv")
    assert len(race) == 2 and summary["loss"] == pytest.approx(race["loss"].min())
    cfg = tmp_path / "base.toml"
    cfg.write_text("[run]\nseed = 1\n", encoding="utf-8")
    apply_fitted(cfg, fitted_block(summary))
    apply_fitted(cfg, fitted_block(summary))  # idempotent: replaces, never duplicates
    text = cfg.read_text(encoding="utf-8")
    assert text.count(BEGIN) == 1 and text.count(END) == 1 and "consider_base" in text


def test_bad_calibration_file_is_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(f'base = "{ROOT / "configs/hindcast_2010.toml"}"\n[parameters."behaviour.beta_income"]\n'
                   'min = 3.0\nmax = 1.0\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"parameters\.behaviour\.beta_income"):
        CalibrationSpec.from_toml(bad)
    assert main(["calibrate", str(bad), "--out", str(tmp_path / "o")]) == 2
