"""Baselines on hand-made examples (answers computed by hand) and the fit_until rule."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from migration_abm.baselines import (
    BASELINES,
    CspVsg,
    DampedTrend,
    Gravity,
    Persistence,
    Radiation,
    RegionalInterpolation,
    ShareTrend,
    TrendRegionalMean,
)
from migration_abm.errors import InputError
from migration_abm.geography import Geography
from migration_abm.observations import Observations, log_interpolate

#: Five districts, one per functional region (zones: main city = A + B, then C, D, E).
TOY = ("code,name_zh,name_en,kind,functional_region,area_km2,lat,lon,pop_2000,pop_2010\n"
       "1,a,A,district,core,10,29.5,106.5,100,200\n"
       "2,b,B,district,expansion,10,29.6,106.6,300,300\n"
       "3,c,C,district,new_development,10,29.8,106.2,400,300\n"
       "4,d,D,district,northeast_eco,10,30.8,108.4,,120\n"
       "5,e,E,district,southeast_eco,10,29.0,108.8,50,80\n")
OBSERVED = pd.DataFrame({"kind": ["city_total", "region_total", "region_total", "region_total", "region_total"],
                         "year": [2000, 2013, 2013, 2013, 2013],
                         "area": ["city", "main_city", "new_development", "northeast_eco", "southeast_eco"],
                         "value": [1000.0, 600.0, 250.0, 100.0, 150.0]})


@pytest.fixture()
def toy(tmp_path: Path) -> Observations:
    csv = tmp_path / "toy.csv"
    csv.write_text(TOY, encoding="utf-8")
    return Observations.load(Geography.load(csv, None, 1.2), OBSERVED)


S00 = np.array([100, 300, 400, 150, 50]) / 1000   # D imputed: city total 1000 − 850 known = 150
S10 = np.array([200, 300, 300, 120, 80]) / 1000


def test_missing_census_values_are_imputed_by_the_stated_rule(toy: Observations) -> None:
    np.testing.assert_allclose(toy.complete_district_population(2000), 1000 * S00)
    assert list(toy.district_imputed(2000)) == [False, False, False, True, False]
    # two missing districts: the residual is split in proportion to their populations in 2010
    obs = replace(toy, table=toy.table[~((toy.table.area == "5") & (toy.table.year == 2000))])
    pop = obs.complete_district_population(2000)
    np.testing.assert_allclose(pop[[3, 4]], 200 * np.array([120, 80]) / 200)


def test_imputation_follows_the_missing_districts_region(tmp_path: Path) -> None:
    # A and B core, C and D new development, E south-east; 2000 known for B and C only
    csv = tmp_path / "toy.csv"
    csv.write_text(TOY.replace("2,b,B,district,expansion", "2,b,B,district,core").replace(
        "4,d,D,district,northeast_eco", "4,d,D,district,new_development").replace(",100,200\n", ",,200\n")
        .replace("5,e,E,district,southeast_eco,10,29.0,108.8,50,80", "5,e,E,district,southeast_eco,10,29.0,108.8,,80"),
        encoding="utf-8")
    obs = Observations.load(Geography.load(csv, None, 1.2), OBSERVED)
    # 2000: A (core: B went 300 -> 300, ratio 1), D (new development: C 300 -> 400, ratio 4/3) and
    # E (south-east: none known, the known districts' 600 -> 700) share 1000 - 700 = 300
    w = np.array([200 * 1.0, 120 * 4 / 3, 80 * 7 / 6])
    pop = obs.complete_district_population(2000)
    np.testing.assert_allclose(pop[[0, 3, 4]], 300 * w / w.sum())


def test_persistence_keeps_the_origin_shares(toy: Observations) -> None:
    pred = Persistence().fit(toy.until(2010)).predict(2022, "zone", total=2000.0)
    np.testing.assert_allclose(pred, [1000.0, 600.0, 240.0, 160.0])
    assert list(pred.index) == ["main_city", "new_development", "northeast_eco", "southeast_eco"]


def test_share_trend_continues_the_log_share_change(toy: Observations) -> None:
    expect = S10 * S10 / S00
    pred = ShareTrend().fit(toy.until(2010)).predict(2020, "district", total=1000.0)
    np.testing.assert_allclose(pred, 1000 * expect / expect.sum())
    # the default city total continues the 2000→2010 growth: 1000 → 1000 → 1000
    assert ShareTrend().fit(toy.until(2010)).city_total(2020) == pytest.approx(1000.0)


def test_damped_trend_with_a_fixed_phi(toy: Observations) -> None:
    b = DampedTrend(phi=0.5).fit(toy.until(2010))   # no zone totals after 2010: phi stays at 0.5
    h = sum(0.5**k for k in range(1, 11))
    expect = S10 * (S10 / S00) ** (h / 10)
    np.testing.assert_allclose(b.predict(2020, total=1.0), expect / expect.sum())
    assert b.phi_ == 0.5
    # with the 2013 zone totals it fits phi on them (grid 0.50–1.00)
    assert 0.5 <= DampedTrend().fit(toy.until(2013)).phi_ <= 1.0


def test_csp_vsg_by_hand(toy: Observations) -> None:
    pred = CspVsg().fit(toy.until(2010)).predict(2020, total=1100.0).to_numpy()
    csp = S10 * 1100
    lin = np.array([300, 300, 200, 90, 110.0])               # 2010 + the 2000→2010 change again
    change = np.array([100, 0, 100, 30, 30.0])               # |change| → weights of the +100 residual
    vsg = lin + change / change.sum() * (1100 - 1000)
    np.testing.assert_allclose(pred, (csp + vsg) / 2)
    assert pred.sum() == pytest.approx(1100)


def test_regional_interpolation_hits_the_given_zone_totals(toy: Observations) -> None:
    b = RegionalInterpolation().fit(toy.until(2013))
    pred = b.predict(2013, "district", total=1100.0)
    # 2013 zone totals (sum 1100) spread by 2010 within-zone shares: A 200/500, B 300/500 of the main city
    np.testing.assert_allclose(pred, [240, 360, 250, 100, 150])
    # between 2010 (census) and 2013 the zone totals are interpolated geometrically
    z2011 = b.predict(2011, "zone", total=1.0).to_numpy()
    g = np.array([500, 300, 120, 80.0]) * (np.array([600, 250, 100, 150]) / np.array([500, 300, 120, 80])) ** (1 / 3)
    np.testing.assert_allclose(z2011, g / g.sum())


def test_trend_regional_mean_is_the_average(toy: Observations) -> None:
    obs = toy.until(2013)
    both = [ShareTrend().fit(obs), RegionalInterpolation().fit(obs)]
    mean = TrendRegionalMean().fit(obs).predict(2020, total=1.0)
    np.testing.assert_allclose(mean, (both[0].shares(2020) + both[1].shares(2020)) / 2)


def test_flow_models_conserve_population_and_fit_a_known_change() -> None:
    obs = Observations.load().until(2010)
    geo = obs.geography
    pop = obs.district_population(2010)
    t = Radiation().flows(pop, geo.distance_km, np.array([-3.0]))
    assert np.all(t >= 0) and np.all(np.diag(t) == 0)
    assert np.all(t.sum(axis=1) <= pop / (1 + np.exp(3.0)) + 1e-6)
    g = Gravity().fit(obs)
    # the fitted kernel reproduces the 2000→2010 change better than no change at all
    p0 = obs.complete_district_population(2000)
    known = ~obs.district_imputed(2000)
    still = float(np.sum(np.log((p0 / p0.sum())[known] / (pop / pop.sum())[known]) ** 2))
    assert g.fit_loss_ < still
    assert g.predict(2020, total=1.0).sum() == pytest.approx(1.0)


def test_start_from_another_origin(toy: Observations) -> None:
    b = ShareTrend().fit(toy.until(2010)).start_from(2000, 1000 * S00)
    np.testing.assert_allclose(b.predict(2010, total=1.0), S10 / S10.sum(), rtol=1e-12)
    with pytest.raises(InputError, match="forward only"):
        Gravity().fit(Observations.load().until(2010)).start_from(2010, np.ones(38)).predict(2000)


def test_log_interpolate() -> None:
    pts = {2010: 100.0, 2020: 400.0}
    assert log_interpolate(pts, 2015) == pytest.approx(200.0)
    assert log_interpolate(pts, 2025) == pytest.approx(800.0)
    assert log_interpolate({2010: 5.0}, 2030) == 5.0


# ---- the fit_until rule --------------------------------------------------------------------------

def _poison(obs: Observations, after: int, value: float) -> Observations:
    table = obs.table.copy()
    table.loc[table.year > after, "value"] = value
    return replace(obs, table=table)


@pytest.fixture(scope="module")
def clean_fits() -> dict[str, tuple[np.ndarray, float]]:
    obs = Observations.load().until(2013)
    fits = [cls().fit(obs) for cls in BASELINES]
    return {b.name: (b.predict(2020, "district", total=32e6).to_numpy(), b.city_total(2020)) for b in fits}


@pytest.mark.parametrize("poison", [np.nan, 1e15])
def test_a_fit_never_reads_data_after_its_cutoff(poison: float, clean_fits: dict) -> None:
    bad = _poison(Observations.load(), 2013, poison)
    for cls in BASELINES:
        b = cls().fit(bad.until(2013))
        pred, total = clean_fits[b.name]
        np.testing.assert_array_equal(b.predict(2020, "district", total=32e6).to_numpy(), pred, err_msg=b.name)
        assert b.city_total(2020) == total  # the default city total too comes from data ≤ 2013 only
    # and the poison does reach a fit that is allowed to see it (so the check above can fail)
    seen = ShareTrend().fit(bad.until(2020)).predict(2022, total=32e6).to_numpy()
    unseen = ShareTrend().fit(Observations.load().until(2020)).predict(2022, total=32e6).to_numpy()
    assert not np.array_equal(seen, unseen, equal_nan=True)


def test_cut_observations_refuse_later_years_and_carry_no_census_columns() -> None:
    cut = Observations.load().until(2013)
    assert cut.last_year <= 2013 and cut.census_years() == [2000, 2010]
    with pytest.raises(InputError, match="up to 2013"):
        cut.district_population(2020)
    assert not [c for c in cut.geography.districts.columns if str(c).startswith(("pop_", "urban_", "rural_"))]
    assert cut.until(2020).cutoff == 2013  # a cut can only narrow
