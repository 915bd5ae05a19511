"""The household migration model: accounting, reproducibility, synthetic population, policy directions,
scale invariance. Small configurations (many households per agent, short horizons) keep it fast."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from migration_abm.config import load_config
from migration_abm.errors import InputError
from migration_abm.geography import DESTINATION_REGIONS, ECO_REGIONS, REGIONS
from migration_abm.model import MigrationModel, simulate
from migration_abm.policy import HukouOffice
from migration_abm.results import Results

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
SMALL = {"run.households_per_agent": 2000.0, "run.end_year": 2016}


def cfg(name: str = "hindcast_2010", **over: object):
    """A packaged config at a small scale (default: the 2010 hindcast, whose years the tests name)."""
    return load_config(CONFIGS / f"{name}.toml", {**SMALL, **over})


@pytest.fixture(scope="module")
def run() -> Results:
    return simulate(cfg(), seed=11)


def test_accounting_is_exact_per_district_and_year(run: Results) -> None:
    a = run.arrays
    pop = a["population"]
    change = pop[1:] - pop[:-1]
    balance = a["births"][1:] - a["deaths"][1:] + a["in_migrants"][1:] - a["out_migrants"][1:]
    np.testing.assert_allclose(change, balance, rtol=0, atol=1e-6 * pop.max())
    assert (a["births"][1:] > 0).any() and (a["deaths"][1:] > 0).any()


def test_flows_match_migration_counts(run: Results) -> None:
    a = run.arrays
    internal_in = a["in_migrants"] - a["external_in"]
    internal_out = a["out_migrants"] - a["external_out"]
    np.testing.assert_allclose(a["flows"].sum(axis=2), internal_out, atol=1e-6)
    np.testing.assert_allclose(a["flows"].sum(axis=1), internal_in, atol=1e-6)
    assert np.all(np.diagonal(a["flows"], axis1=1, axis2=2) == 0)
    assert a["flows"][1:].sum() > 0


def test_base_year_matches_census_exactly(run: Results) -> None:
    from migration_abm.geography import Geography

    census = Geography.load().population(2010)
    np.testing.assert_allclose(run.arrays["population"][0], census, rtol=1e-12)
    assert run.population_by_region().iloc[0].sum() == pytest.approx(28_846_170, rel=1e-12)


def test_2020_base_year_matches_the_2020_census_and_structure() -> None:
    """The packaged baseline starts from the 2020 census: district totals exact, the census age
    structure (0-14 15.91 %, 60+ 21.87 %), household size 2.45, urbanisation 69.46 %, and migrants."""
    from migration_abm.geography import Geography

    res = simulate(cfg("baseline", **{"run.end_year": 2021}), seed=3)
    assert res.years[0] == 2020
    np.testing.assert_allclose(res.arrays["population"][0], Geography.load().population(2020), rtol=1e-12)
    ages = res.age_structure(2020).sum()
    assert ages[:15].sum() / ages.sum() == pytest.approx(0.1591, abs=0.01)
    assert ages[60:].sum() / ages.sum() == pytest.approx(0.2187, abs=0.01)
    a = res.arrays
    assert a["population"][0].sum() / a["households"][0].sum() == pytest.approx(2.45, abs=0.1)
    assert a["urban_population"][0].sum() / a["population"][0].sum() == pytest.approx(0.6946, abs=0.01)
    status = res.arrays["population_status_band"][0].sum(axis=(0, 2))  # by hukou status
    migrants = status[2:].sum() / status.sum()
    assert 0.05 < migrants < 0.3  # main-city residents registered elsewhere (2007 registered table)


def test_base_urban_share_reads_the_base_year_or_the_structure_of_an_earlier_census() -> None:
    """A base year's own urban column is used as it stands; without one, an earlier census gives each
    district's deviation from its region around the region rate; a later column is never read."""
    from migration_abm.config import Config
    from migration_abm.geography import Geography
    from migration_abm.population import base_urban_share

    geo = Geography.load()
    d = geo.districts
    c = Config()
    own = base_urban_share(geo, c, 2010)
    u10 = (d.urban_2010 / d.pop_2010).to_numpy(float)
    known = np.isfinite(u10)
    np.testing.assert_allclose(own[known], u10[known])
    share20 = base_urban_share(geo, c, 2020)
    nd = (d.functional_region == "new_development").to_numpy()
    m = nd & known
    logit = np.log(share20[m] / (1 - share20[m]))  # (渝中 is 100 % urban: no logit)
    rate = c.population.urban_share["new_development"]
    # centred on the region rate, ordered as in 2010, unknown districts at the rate itself
    assert np.average(logit, weights=d.pop_2010[m]) == pytest.approx(np.log(rate / (1 - rate)))
    assert np.array_equal(np.argsort(share20[m]), np.argsort(u10[m]))
    np.testing.assert_allclose(share20[nd & ~known], rate)
    later = Geography(d.assign(pop_2030=d.pop_2020, urban_2030=d.pop_2020 * 0.99), geo.boundaries)
    assert 2030 in later.census_years
    np.testing.assert_array_equal(base_urban_share(later, c, 2020), share20)


def test_city_urbanisation_is_observed_or_extrapolated_from_earlier_years_only() -> None:
    """2000 and 2020 are observed; 2010 is the line through 2000 and 2007 (48.3 %), not through 2013; a
    base year's own census urban values survive the shift to that target."""
    from migration_abm.config import Config
    from migration_abm.geography import Geography
    from migration_abm.observations import Observations
    from migration_abm.population import base_urban_share

    geo = Geography.load()
    obs = Observations.load(geo)
    assert obs.city_urbanisation(2000) == pytest.approx(0.356)
    assert obs.city_urbanisation(2020) == pytest.approx(0.6946)
    assert obs.city_urbanisation(2010) == pytest.approx(0.483 + (0.483 - 0.356) * 3 / 7)
    assert obs.until(2010).city_urbanisation(2010) == obs.city_urbanisation(2010)
    with pytest.raises(InputError, match="need two city observations"):
        obs.city_urbanisation(1995)  # nothing before it: one line on the input, not a guess
    c = Config().with_overrides({"population.urban_share_city_observed": True})
    share = base_urban_share(geo, c, 2010)
    pop = geo.population(2010)
    assert np.average(share, weights=pop) == pytest.approx(obs.city_urbanisation(2010), abs=1e-9)
    u10 = (geo.districts.urban_2010 / geo.districts.pop_2010).to_numpy(float)
    known = np.isfinite(u10)
    np.testing.assert_allclose(share[known], u10[known])
    assert (share[~known] < base_urban_share(geo, Config(), 2010)[~known] + 1e-12).all()


def test_2020_base_urbanisation_tracks_the_observed_2022_zone_rates() -> None:
    """Forward check of the base-year urban structure: two simulated years from the 2020 base come within
    2.5 points of the observed 2022 urbanisation of the four zones on average (3.3 with the survey's
    expansion rate used for the larger expansion region)."""
    from migration_abm.geography import ZONES, Geography
    from migration_abm.observations import Observations

    res = simulate(cfg("baseline", **{"run.end_year": 2022, "run.households_per_agent": 200.0}), seed=5)
    geo = Geography.load()
    a = res.arrays
    sim = geo.to_zones(a["urban_population"][-1]) / geo.to_zones(a["population"][-1])
    obs = Observations.load(geo)
    observed = np.array([obs.value("urbanisation", 2022, z) for z in ZONES])
    assert np.abs(sim - observed).mean() < 0.025
    assert np.abs(sim - observed).max() < 0.04


def test_base_year_age_structure_and_household_size(run: Results) -> None:
    ages = run.age_structure(2010).sum()
    assert ages[:15].sum() / ages.sum() == pytest.approx(0.1698, abs=0.01)
    assert ages[65:].sum() / ages.sum() == pytest.approx(0.1156, abs=0.01)
    hh = run.arrays["households"][0].sum()
    assert run.arrays["population"][0].sum() / hh == pytest.approx(2.70, abs=0.05)


def test_vital_rates_are_the_base_years_else_the_latest_earlier_ones() -> None:
    """2020 is observed; 2010 takes 2009 (not 2012 or 2013); 2000, before any, takes the earliest (2006)."""
    from migration_abm.observations import Observations

    obs = Observations.load()
    assert obs.vital_rates(2020) == (pytest.approx(7.47), pytest.approx(7.70), 2020)
    assert obs.vital_rates(2010) == (pytest.approx(9.9), pytest.approx(6.2), 2009)
    assert obs.vital_rates(2011) == obs.vital_rates(2010)
    assert obs.vital_rates(2000)[2] == 2006


def test_share_80_plus_tilts_the_old_age_band_smoothly_and_keeps_its_total() -> None:
    """The old-age band keeps its share, holds the configured 80+ share (a district its scaled share),
    and still falls with age from 65 on (no step at 80); 0 leaves the survival curve alone."""
    from migration_abm.config import Config
    from migration_abm.population import age_pmf, death_hazard

    c = Config().with_overrides({"population.old_age": 60, "population.share_65_plus": 0.2187,
                                 "population.share_0_14": 0.1591, "population.share_80_plus": 0.0298})
    p = age_pmf(c)
    assert p.sum() == pytest.approx(1.0) and p[60:].sum() == pytest.approx(0.2187)
    assert p[80:].sum() == pytest.approx(0.0298, rel=1e-6)
    assert np.all(np.diff(p[65:]) < 0)
    q = age_pmf(c, 0.2, 0.1)  # a district with half the city's old-age share: half its 80+ share
    assert q[80:].sum() == pytest.approx(0.0298 * 0.1 / 0.2187, rel=1e-6)
    plain = age_pmf(c.with_overrides({"population.share_80_plus": 0.0}))
    surv = np.exp(-np.cumsum(death_hazard(c, np.arange(60, 101))))
    np.testing.assert_allclose(plain[60:], 0.2187 * surv / surv.sum())
    assert plain[80:].sum() > 0.04  # the survival curve alone: about a quarter of the 60+ at 80+


def test_observed_vital_rates_set_the_first_years_births_and_deaths() -> None:
    """With demography.vital_rates_observed the first simulated year's crude rates are the observed ones
    of the base year (2020: 7.47 / 7.70 per 1 000) when no fertility trend applies, within the sampling noise
    of a small run; the run's config stays as given and records the solved levels beside it."""
    res = simulate(cfg("baseline", **{"run.end_year": 2021, "run.households_per_agent": 200.0,
                                      "demography.fertility_trend": 0.0}), seed=5)
    pop = res.arrays["population"].sum(axis=1)
    mid = (pop[0] + pop[1]) / 2
    assert 1000 * res.arrays["births"][1].sum() / mid == pytest.approx(7.47, rel=0.04)
    assert 1000 * res.arrays["deaths"][1].sum() / mid == pytest.approx(7.70, rel=0.04)
    assert "vital_rates_observed = true" in res.config_toml
    assert res.attrs["mortality_gompertz_a"] != load_config(CONFIGS / "baseline.toml").demography.mortality_gompertz_a
    off = simulate(cfg("baseline", **{"run.end_year": 2021, "run.households_per_agent": 200.0,
                                      "demography.vital_rates_observed": False}), seed=5)
    assert 1000 * off.arrays["deaths"][1].sum() / mid > 9.0  # the default levels: far more deaths
    trend = load_config(CONFIGS / "baseline.toml").demography.fertility_trend  # the packaged, fitted trend
    packaged = simulate(cfg("baseline", **{"run.end_year": 2021, "run.households_per_agent": 200.0}), seed=5)
    assert 1000 * packaged.arrays["births"][1].sum() / mid == pytest.approx(7.47 * (1 + trend), rel=0.04)


def test_fertility_trend_scales_births_and_stops_at_its_last_year() -> None:
    """Year y's fertility is the base rate × (1 + trend)^(min(y, until) − start): with the same seed, a
    trend of −30 % cuts the first year's births to 0.7 and the second's to 0.49, and is held after."""
    from migration_abm.model import MigrationModel

    over = {"run.end_year": 2024, "run.households_per_agent": 500.0}
    base = MigrationModel(cfg("baseline", **over, **{"demography.fertility_trend": 0.0}), rng=2)
    low = MigrationModel(cfg("baseline", **over, **{"demography.fertility_trend": -0.3,
                                                     "demography.fertility_trend_until": 2022}), rng=2)
    ratios = []
    for _ in range(4):
        base.step()
        low.step()
        ratios.append(low.counts["births"].sum() / base.counts["births"].sum())
    np.testing.assert_allclose(ratios, [0.7, 0.49, 0.49, 0.49], rtol=0.1)


def test_vital_rates_observed_refuses_a_mortality_that_cannot_reach_them() -> None:
    with pytest.raises(InputError, match=r"demography\.vital_rates_observed = True: no Gompertz level"):
        MigrationModel(cfg("baseline", **{"run.end_year": 2021, "demography.mortality_makeham": 0.02}), rng=1)
    with pytest.raises(InputError, match=r"population\.share_80_plus = 0\.3: must be below share_65_plus"):
        cfg("baseline", **{"run.end_year": 2021, "population.share_80_plus": 0.3})


def test_migrant_stocks_are_reused_per_census_but_never_shared() -> None:
    """The migrant-stock matrix is computed once per district codes, residents and regions: a caller
    editing its copy does not change the next caller's, and other residents give another matrix."""
    from dataclasses import replace

    from migration_abm.geography import Geography
    from migration_abm.population import migrant_stock_shares

    geo = Geography.load()
    first = migrant_stock_shares(geo, 2010)
    kept = first.copy()
    first[:] = -1.0
    np.testing.assert_array_equal(migrant_stock_shares(geo, 2010), kept)
    districts = geo.districts.copy()
    districts.loc[districts.index[0], "pop_2010"] *= 2.0
    other = migrant_stock_shares(replace(geo, districts=districts), 2010)
    assert not np.array_equal(other, kept)
    assert (kept >= 0).all() and kept.sum(axis=1).max() > 0


def test_observed_city_readings_are_memoised_on_the_totals_table_alone() -> None:
    """The memoised city readings of a set-up do not depend on the census columns of the first caller's
    geography (the memo keys on the observed file and the year only), and a district reading cannot be
    served from it."""
    from dataclasses import replace

    from migration_abm.geography import Geography
    from migration_abm.observations import Observations
    from migration_abm.population import _observed_city, _observed_city_reading

    geo = Geography.load()
    expected = Observations.load(geo).city_urbanisation(2020), Observations.load(geo).vital_rates(2020)
    _observed_city_reading.cache_clear()
    odd = replace(geo, districts=geo.districts.assign(pop_2010=1.0, pop_2020=1e12))
    assert (_observed_city(odd, "city_urbanisation", 2020), _observed_city(odd, "vital_rates", 2020)) == expected
    assert (_observed_city(geo, "city_urbanisation", 2020), _observed_city(geo, "vital_rates", 2020)) == expected
    with pytest.raises(InputError, match="district"):
        _observed_city(geo, "district_population", 2010)


def test_district_age_shares_follow_the_2010_table_and_its_stated_imputation() -> None:
    """Read districts keep their 2010 shares, the others of their region take the region's pooled shares,
    the main city the residual, so the 38 districts sum to the municipal row; scaled to a base year's city
    shares, the population-weighted mean is that city share and the districts keep their ratios."""
    import pandas as pd

    from migration_abm.geography import Geography, data_path
    from migration_abm.population import age_shares_2010, district_age_shares

    geo = Geography.load()
    s, imputed = age_shares_2010(geo)
    t = pd.read_csv(data_path("chongqing_age_2010_districts.csv"), dtype={"code": str}).set_index("code")
    codes = list(geo.codes)
    for code in ("500243", "500155", "500110", "500151", "500115"):  # 彭水 梁平 綦江 铜梁 长寿
        i = codes.index(code)
        assert not imputed[i] and s[0, i] == pytest.approx(t.share_0_14[code] / 100, rel=1e-12)
        assert s[1, i] == pytest.approx(t.share_65p[code] / 100, rel=1e-12)
    assert imputed.sum() == 33
    reg = geo.districts.functional_region.to_numpy()
    assert np.allclose(s[:, reg == "southeast_eco"], s[:, [codes.index("500243")]])  # 彭水's shares
    nd = reg == "new_development"
    assert np.ptp(s[:, nd & imputed], axis=1).max() < 1e-12
    pop = geo.districts.pop_2010.to_numpy(float)
    np.testing.assert_allclose((s * pop).sum(axis=1) / pop.sum(), [0.1698, 0.1156], rtol=1e-12)
    main = np.isin(reg, ["core", "expansion"])
    assert s[0, main].max() < s[0, nd].min() < s[0, reg == "northeast_eco"].min()
    c = load_config(CONFIGS / "baseline.toml")
    p20 = geo.population(2020)
    b = district_age_shares(geo, c, p20)
    np.testing.assert_allclose((b * p20).sum(axis=1) / p20.sum(), [0.1591, 0.2187], rtol=1e-12)
    np.testing.assert_allclose(b / s, (b / s)[:, :1] * np.ones_like(s), rtol=1e-12)


def test_district_age_structure_refuses_a_region_table_the_2010_age_table_does_not_cover(tmp_path: Path) -> None:
    """A user's region table with none of the five districts (codes recoded): one line naming the option
    that needs the table, whether it is the age structure or the district fertility."""
    import pandas as pd

    from migration_abm.errors import ConfigError
    from migration_abm.geography import data_path

    table = pd.read_csv(data_path("chongqing_districts.csv"), dtype={"code": str})
    table["code"] = "9" + table["code"].str[1:]
    path = tmp_path / "mine.csv"
    table.to_csv(path, index=False)
    base = {"data.regions": str(path), "data.boundaries": "none", "economy.district_gdp_year": 0}
    with pytest.raises(ConfigError, match=r"population\.district_age_structure = True: no district"):
        MigrationModel(cfg(**base, **{"population.district_age_structure": True}), rng=1)
    with pytest.raises(ConfigError, match=r"demography\.fertility_child_ratio_elasticity = 0\.5: no district"):
        MigrationModel(cfg(**base, **{"demography.fertility_child_ratio_elasticity": 0.5,
                                      "population.district_age_structure": False}), rng=1)


def test_district_age_structure_is_drawn_per_district() -> None:
    """With ``population.district_age_structure`` each district's base-year children share follows its
    own 2010 share (彭水 26.9 % against the main city's 10.7 %), the city's stays the configured one."""
    from migration_abm.geography import Geography
    from migration_abm.population import district_age_shares

    c = cfg(**{"run.households_per_agent": 300.0, "run.end_year": 2011, "population.district_age_structure": True})
    res = simulate(c, seed=4)
    ages = res.arrays["population_age"][0]  # [district, age]
    kids = ages[:, :15].sum(axis=1) / ages.sum(axis=1)
    geo = Geography.load()
    want = district_age_shares(geo, c, geo.population(2010))[0]
    assert np.abs(kids - want).max() < 0.03 and np.corrcoef(kids, want)[0, 1] > 0.97
    assert ages[:, :15].sum() / ages.sum() == pytest.approx(0.1698, abs=0.005)
    flat = simulate(c.with_overrides({"population.district_age_structure": False}), seed=4)
    fk = flat.arrays["population_age"][0]
    assert np.ptp(fk[:, :15].sum(axis=1) / fk.sum(axis=1)) < 0.06 < 0.12 < np.ptp(kids)


def test_district_birth_rates_scale_with_the_child_adult_ratio_and_keep_the_city_rate() -> None:
    """Elasticity 0: one rate everywhere, exactly TFR / 40; elasticity κ: rate ∝ (0-14 / 15-64)^κ, averaging
    TFR / 40 over the base-year residents; more births per person in the south-east than the main city."""
    from migration_abm.geography import Geography
    from migration_abm.population import age_shares_2010, birth_probability

    geo = Geography.load()
    pop = geo.population(2010)
    c0 = cfg(**{"demography.fertility_child_ratio_elasticity": 0.0})
    assert (birth_probability(geo, c0, pop) == c0.demography.fertility_rate / 40).all()
    c1 = cfg(**{"demography.fertility_child_ratio_elasticity": 0.8})
    p = birth_probability(geo, c1, pop)
    s = age_shares_2010(geo)[0]
    r = s[0] / (1 - s[0] - s[1])
    np.testing.assert_allclose(p / p[0], (r / r[0]) ** 0.8, rtol=1e-12)
    assert (p * pop).sum() / pop.sum() == pytest.approx(c1.demography.fertility_rate / 40, rel=1e-12)
    b0 = simulate(c0.with_overrides({"run.households_per_agent": 300.0}), seed=2).arrays["births"][1:].sum(axis=0)
    b1 = simulate(c1.with_overrides({"run.households_per_agent": 300.0}), seed=2).arrays["births"][1:].sum(axis=0)
    reg = geo.districts.functional_region.to_numpy()
    se, main = reg == "southeast_eco", np.isin(reg, ["core", "expansion"])
    assert b1[se].sum() > 1.3 * b0[se].sum() and b1[main].sum() < 0.8 * b0[main].sum()


def test_base_housing_has_no_vacancy_where_the_density_ceiling_is_reached() -> None:
    """Base-year housing = residents × (1 + slack × land left below the density ceiling): 渝中, at the
    ceiling, starts full (occupancy 1), a sparse district with nearly the whole slack."""
    m = MigrationModel(cfg(**{"run.households_per_agent": 3000.0}), rng=1)
    pop = m.district_persons()
    codes = list(m.geo.codes)
    yz, yb = codes.index("500103"), codes.index("500112")  # 渝中, 渝北
    slack = m.cfg.capacity.housing_slack
    assert m.housing[yz] / pop[yz] < 1 + 0.01 * slack
    assert 1 + 0.9 * slack < m.housing[yb] / pop[yb] <= 1 + slack


def test_same_seed_is_bit_identical_and_other_seed_differs() -> None:
    a, b, c = simulate(cfg(), seed=5), simulate(cfg(), seed=5), simulate(cfg(), seed=6)
    for name in a.arrays:
        assert np.array_equal(a.arrays[name], b.arrays[name]), name
    assert not np.array_equal(a.arrays["population"], c.arrays["population"])


def test_mesa_model_conventions() -> None:
    m = MigrationModel(cfg(), rng=3)
    assert len(m.agents_by_type[HukouOffice]) == len(REGIONS)
    m.step()
    assert m.time == 1.0 and m.year == 2011
    m.run(until=2013)
    assert m.year == 2013 and m.time == 3.0
    res = m.results()
    assert list(res.years) == [2010, 2011, 2012, 2013]


def test_results_api_and_hdf5_roundtrip(run: Results, tmp_path: Path) -> None:
    pbr = run.population_by_region()
    assert list(pbr.columns) == list(REGIONS) and pbr.index.name == "year"
    pbd = run.population_by_district()
    assert all(isinstance(c, str) and len(c) == 6 for c in pbd.columns)
    np.testing.assert_allclose(pbr.sum(axis=1), pbd.sum(axis=1))
    assert run.flows(2012).shape == (38, 38)
    out = run.to_hdf5(tmp_path / "r.h5")
    back = Results.from_hdf5(out)
    for k in run.arrays:
        assert np.array_equal(back.arrays[k], run.arrays[k])
    assert back.config_toml == run.config_toml and back.seed == run.seed
    hukou = run.hukou_table(2016)
    assert hukou["persons"].sum() == pytest.approx(run.arrays["population"][-1].sum(), rel=1e-9)


def _share(res: Results, regions: tuple[str, ...]) -> float:
    pop = res.population_by_region().iloc[-1]
    return float(pop[list(regions)].sum() / pop.sum())


def _paired(a: list[float], b: list[float]) -> tuple[float, float]:
    d = np.asarray(a) - np.asarray(b)
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d)))


REPS = 5  # paired replicates (common random numbers): seeds 100..104 for both arms


def test_baseline_moves_people_out_of_eco_regions_relative_to_no_policy() -> None:
    """Direction: with the strategy's policies the eco regions' share is lower and the expansion +
    new-development share higher in 2030 than without them, projected from 2020 (paired over replicates; the mean
    difference must exceed 2 standard errors)."""
    over = {"run.end_year": 2030, "run.households_per_agent": 500.0}
    base = [simulate(cfg("baseline", **over), seed=100 + i) for i in range(REPS)]
    none = [simulate(cfg("no_policy", **over), seed=100 + i) for i in range(REPS)]
    m, se = _paired([_share(r, ECO_REGIONS) for r in base], [_share(r, ECO_REGIONS) for r in none])
    assert m < -2 * se and m < 0
    m, se = _paired([_share(r, DESTINATION_REGIONS) for r in base], [_share(r, DESTINATION_REGIONS) for r in none])
    assert m > 2 * se and m > 0


def _eco_out(res: Results) -> float:
    return float(res.by_region("out_migrants")[list(ECO_REGIONS)].to_numpy()[1:].sum())


def test_more_job_matching_coverage_raises_eco_out_migration() -> None:
    over = {"run.end_year": 2022, "run.households_per_agent": 500.0}
    lo = [simulate(cfg(**over, **{"policy.job_matching.coverage": 0.0}), seed=200 + i) for i in range(REPS)]
    hi = [simulate(cfg(**over, **{"policy.job_matching.coverage": 1.0}), seed=200 + i) for i in range(REPS)]
    m, se = _paired([_eco_out(r) for r in hi], [_eco_out(r) for r in lo])
    assert m > 2 * se and m > 0


def test_tighter_hukou_in_expansion_lowers_settlement_there() -> None:
    """Settlement = residents of the expansion area at the end (in-migration net of returns)."""
    tight = {"policy.hukou.expansion.min_years": 15, "policy.hukou.expansion.quota": 1.0}
    loose = {"policy.hukou.expansion.min_years": 0}
    t = [simulate(cfg(**tight), seed=300 + i) for i in range(REPS)]
    lo = [simulate(cfg(**loose), seed=300 + i) for i in range(REPS)]
    pop = lambda r: float(r.population_by_region()["expansion"].iloc[-1])  # noqa: E731
    m, se = _paired([pop(r) for r in t], [pop(r) for r in lo])
    assert m < -2 * se and m < 0
    conv = lambda r: float(r.by_region("hukou_conversions")["expansion"].sum())  # noqa: E731
    assert np.mean([conv(r) for r in t]) < np.mean([conv(r) for r in lo])


def test_results_per_person_do_not_depend_on_households_per_agent() -> None:
    """Regional shares in 2016 at 400 and 2000 households per agent agree within sampling noise
    (replicate means within 4 standard errors, and within half a percentage point)."""
    shares = {}
    for hpa in (400.0, 2000.0):
        runs = [simulate(cfg(**{"run.households_per_agent": hpa}), seed=400 + i) for i in range(4)]
        s = np.array([r.population_by_region().iloc[-1].to_numpy() / r.population_by_region().iloc[-1].sum()
                      for r in runs])
        shares[hpa] = (s.mean(axis=0), s.std(axis=0, ddof=1) / np.sqrt(len(runs)))
    (m1, se1), (m2, se2) = shares[400.0], shares[2000.0]
    tol = np.maximum(4 * np.sqrt(se1**2 + se2**2), 1e-4)
    assert np.all(np.abs(m1 - m2) < tol + 0.002)
    assert np.all(np.abs(m1 - m2) < 0.005)


def test_every_lever_scenario_changes_the_projection() -> None:
    """Each one-lever scenario differs from no_policy within the projection period (a lever whose years
    fall before the 2020 base year would silently reproduce no_policy)."""
    years = {"run.end_year": 2023}
    ref = simulate(cfg("no_policy", **years), seed=4).arrays
    for path in sorted(CONFIGS.glob("lever_*.toml")):
        a = simulate(cfg(path.stem, **years), seed=4).arrays
        assert any(not np.array_equal(a[k], ref[k]) for k in ("population", "urban_population", "hukou_conversions")), path.name
