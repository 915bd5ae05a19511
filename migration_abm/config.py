"""Scenario configuration: one typed schema, TOML files with ``extends``, dotted ``--set`` overrides.

Every field carries its valid range; anything unknown, mistyped or out of range raises a
:class:`ConfigError` naming the file, the dotted key and the value. Defaults document their source or
say plainly that they are assumptions (most are then calibrated, see ``docs/VALIDATION.md``).
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migration_abm.errors import ConfigError
from migration_abm.geography import REGIONS
from migration_abm.schema import apply_overrides, build, dumps_toml, load
from migration_abm.schema import param as _p

#: path-valued keys, resolved relative to the TOML file that names them
PATH_KEYS = {"data": ("regions", "boundaries"), "run": ("posterior",)}


@dataclass
class RunConfig:
    start_year: int = _p(2010, 1900, 2200, "base year; the district table must have pop_<start_year>")
    end_year: int = _p(2035, 1900, 2200, "last simulated year (inclusive)")
    seed: int = _p(20100728, 0, None, "root seed of the run's numpy SeedSequence")
    households_per_agent: float = _p(100.0, 1.0, 1e6, "households represented by one agent row (1 = full scale)")
    posterior: str = _p("", doc="calibration posterior CSV (written by `calibrate --apply`) whose draws give "
                        "ensemble projections (`run --replicates`) their parameter uncertainty; '' = none")
    share_discrepancy_sd: float = _p(0.0, 0.0, 1.0, "model discrepancy of the bands: log sd over 10 years of a district's "
                                     "share of the city beyond the replicates' spread (scaled by √(years/10); "
                                     "`migration-abm validate` estimates it from the 2000→2010 backcast); 0 = none")


@dataclass
class DataConfig:
    regions: str = _p("chongqing", doc="'chongqing' (packaged) or a path to a district CSV with the same columns")
    boundaries: str = _p("chongqing", doc="'chongqing' (packaged), 'none', or a GeoJSON path with properties.code")
    circuity: float = _p(1.2, 1.0, 3.0, "road distance / great-circle distance between district centroids")


@dataclass
class PopulationConfig:
    household_size: float = _p(2.70, 1.0, 8.0, "mean persons per household at the base year (2010 census: 2.70)")
    max_household_size: int = _p(8, 3, 12, "largest household generated (>= 3: arrivals are head, spouse and child)")
    share_0_14: float = _p(0.1698, 0.0, 1.0, "city age share 0-14 at the base year (2010 census 16.98 %)")
    share_65_plus: float = _p(0.1156, 0.0, 1.0, "city age share 65+ at the base year (2010 census 11.56 %)")
    old_age: int = _p(65, 60, 65, "lower age of the share_65_plus band: 65, or 60 for censuses that report 60+ "
                      "(the 2020 census: 60+ 21.87 %)")
    share_80_plus: float = _p(0.0, 0.0, 1.0, "if > 0: the base year's share aged 80+ of all residents; the old-age "
                              "band then follows the survival curve × exp(−r·(age − old_age)), a stable population's "
                              "shape, with r set to give it (0: the survival curve alone). 2020: 2.98 %, derived (2017 registered 80+ / 60+ = 13.62 % × the 2020 "
                              "census's 60+ 21.87 %; DATA.md)")
    urban_share: dict[str, float] = _p(
        {"core": 1.0, "expansion": 0.8688, "new_development": 0.5486, "northeast_eco": 0.4180,
         "southeast_eco": 0.3464}, 0.0, 1.0,
        "urban share by region (2013 1 % survey; 渝中 100 %; expansion derived for our boundary, DATA.md): "
        "where a district's own urban_<year> is missing, and the level the within-region structure of an "
        "earlier census column is centred on")
    urban_share_city: float = _p(0.0, 0.0, 1.0, "if > 0: the city-wide urban share at the base year; the regional "
                                 "urban_share values are shifted by one common logit offset to match it (2020 "
                                 "census 69.46 %, derived from 2021's 70.32 % − 0.86 points; FACTS §2)")
    urban_share_city_observed: bool = _p(False, doc="take the base year's city-wide urban share from the packaged "
                                         "observations instead of urban_share_city: that year's figure, else the "
                                         "line through the two latest earlier ones (2000 35.6 %, 2010 53.74 % from "
                                         "2000 and 2007, 2020 69.46 %)")
    district_age_structure: bool = _p(False, doc="draw each district's base-year ages from its own 0-14 and old-age "
                                      "shares: the 2010 district shares (chongqing_age_2010_districts.csv; regions' "
                                      "pooled known districts, the main city the municipal residual; DATA.md §9) "
                                      "scaled to average the configured city shares")
    migrant_stock: bool = _p(False, doc="give the base year migrant stocks: in districts whose residents exceed "
                             "their 2007 registered population (chongqing_registered_2007.csv), that excess lives "
                             "there with hukou elsewhere (origins ∝ registered-minus-resident gaps, or outside)")
    migrant_outside_share: float = _p(0.3, 0.0, 1.0, "assumption: share of the base-year migrant stock registered "
                                      "outside Chongqing (2021: 2.23 M in-migrants from other provinces, FACTS §3)")
    urban_agricultural_hukou_share: float = _p(
        0.47, 0.0, 1.0, "share of urban residents holding agricultural hukou at base year "
        "(derived: (53.3 % resident urbanisation in 2010, linear between 2007 48.3 % and 2013 58.34 %, "
        "- 28 % non-agricultural hukou) / 53.3 %, FACTS §1-2)")
    high_skill_share_urban: float = _p(0.25, 0.0, 1.0, "assumption: share of urban households with post-secondary education")
    high_skill_share_rural: float = _p(0.04, 0.0, 1.0, "assumption: same for rural households")
    low_skill_share_urban: float = _p(0.35, 0.0, 1.0, "assumption: share of urban households with primary education or less")
    low_skill_share_rural: float = _p(0.65, 0.0, 1.0, "assumption: same for rural households")


@dataclass
class DemographyConfig:
    fertility_rate: float = _p(1.3, 0.0, 8.0, "assumption (calibrated): total fertility rate, births spread over ages 20-39")
    fertility_trend: float = _p(0.0, -0.3, 0.3, "yearly relative change of the fertility rate after the base year: "
                                "year y has fertility_rate × (1 + trend)^(min(y, fertility_trend_until) − start_year) "
                                "(power at least 0); fitted to the 2021-2022 birth rates in the forward fit")
    fertility_trend_until: int = _p(0, 0, 2200, "last year fertility_trend applies; the rate is held after it (0: "
                                    "every year). Baseline: 2022, the last observed birth rate (assumption: held)")
    fertility_child_ratio_elasticity: float = _p(
        0.0, 0.0, 2.0, "district fertility ∝ the district's 2010 children (0-14) per resident aged 15-64 to this power "
        "(0: one rate everywhere; 1: the child-adult ratio's full spread, 彭水 1.8× the city; "
        "chongqing_age_2010_districts.csv, DATA.md §9); calibrated")
    vital_rates_observed: bool = _p(False, doc="replace fertility_rate and mortality_gompertz_a by the values at "
                                    "which the base-year population's expected crude birth and death rates equal the "
                                    "observed city rates of the base year (else the latest earlier year with both; "
                                    "observed_chongqing.csv: 2009 9.90 / 6.20 ‰, 2020 7.47 / 7.70 ‰)")
    mortality_makeham: float = _p(0.0005, 0.0, 0.1, "assumption: age-independent annual death hazard")
    mortality_gompertz_a: float = _p(0.00003, 0.0, 0.1, "assumption: Gompertz level (hazard at age 0)")
    mortality_gompertz_b: float = _p(0.095, 0.0, 0.3, "assumption: Gompertz slope per year of age")
    leave_home_rate: float = _p(0.05, 0.0, 1.0, "assumption: yearly probability a non-head member aged 20-29 forms own household")
    leaver_upskill: float = _p(0.4, 0.0, 1.0, "assumption: probability a leaver is one education level above the parents")


@dataclass
class SectorGrowth:
    agriculture: float = _p(-0.03, -0.5, 0.5, "annual growth of agricultural jobs")
    industry: float = _p(0.02, -0.5, 0.5, "annual growth of industrial jobs")
    services: float = _p(0.03, -0.5, 0.5, "annual growth of service jobs")
    wage_growth: float = _p(0.07, -0.5, 0.5, "annual real wage growth")


def _growth(agri: float, ind: float, serv: float, wage: float) -> Any:
    return field(default_factory=lambda: SectorGrowth(agri, ind, serv, wage), metadata={"doc": ""})


@dataclass
class EconomyConfig:
    """Economy scenario per region (strategy: services in the core, emerging industries in the expansion
    area, industry in new development, ecology in the eco regions). Rates are assumptions."""

    # Wage growth: 7 %/yr real everywhere (assumption). An earlier default gave the eco regions a premium
    # derived from 2010→2020 GDP growth, i.e. from data after a 2010 run's start; it was dropped.
    # Job growth by sector follows the strategy's roles (assumptions).
    core: SectorGrowth = _growth(-0.05, 0.0, 0.04, 0.07)
    expansion: SectorGrowth = _growth(-0.04, 0.045, 0.045, 0.07)
    new_development: SectorGrowth = _growth(-0.03, 0.04, 0.03, 0.07)
    northeast_eco: SectorGrowth = _growth(-0.03, 0.005, 0.02, 0.07)
    southeast_eco: SectorGrowth = _growth(-0.03, 0.005, 0.02, 0.07)
    gdp_per_capita_by_region: dict[str, float] = _p(
        {"core": 46809.0, "expansion": 46809.0, "new_development": 26056.0, "northeast_eco": 16109.0,
         "southeast_eco": 15259.0}, 1.0, None,
        "yuan, 2010: regional GDP (yearbook 2011 t.2-13: main city = 都市发达经济圈 3,490.83 亿, new development = "
        "一小时经济圈 − main city 2,654.49 亿, 渝东北翼 1,347.53, 渝东南翼 432.73) / 2010 census population of the "
        "region's districts (derived; core and expansion share the main city's figure); >= 1, as wages are "
        "proportional to it and a zero wage has no logarithm")
    district_gdp_year: int = _p(0, 0, 2200, "use this year's district GDP per resident (packaged table: 2020, 31 "
                                "districts; the others take their region's mean) instead of the regional 2010 "
                                "figures; 0 = regional figures. Must be <= run.start_year: no information from "
                                "after a run's start enters its inputs")
    productivity_elasticity: float = _p(0.5, 0.0, 2.0, "assumption (calibrated): elasticity of wages to relative "
                                        "district GDP per capita (wage gaps are narrower than GDP-per-capita gaps: "
                                        "2020 private-unit wages differ by 1.23× between the main-city zone and the "
                                        "south-east, GDP per capita by ~3×)")
    sector_wage_premium: dict[str, float] = _p({"agriculture": 0.45, "industry": 1.0, "services": 1.05}, 0.0, None,
                                               "assumption: sector wage relative to industry")
    urban_services_share: dict[str, float] = _p(
        {"core": 0.75, "expansion": 0.55, "new_development": 0.45, "northeast_eco": 0.5, "southeast_eco": 0.5},
        0.0, 1.0, "assumption: share of urban jobs in services at the base year")
    rural_agriculture_share: float = _p(0.7, 0.0, 1.0, "assumption: share of employed rural households farming")
    labour_share: float = _p(0.5, 0.05, 1.0, "assumption: wage bill / GDP, turns GDP per capita into wages "
                                "(>= 0.05: a zero share gives zero wages, whose logarithms the income terms take)")
    skill_wage_premium: list[float] = _p([0.75, 1.0, 1.6], 0.05, None, "assumption: wage relative to middle skill "
                                          "(low, middle, high); >= 0.05, as a zero wage has no logarithm")
    employment_rate: float = _p(0.85, 0.0, 1.0, "assumption: initial share of working-age households employed")
    vacancy_rate: float = _p(0.03, 0.0, 1.0, "assumption: initial vacancies as a share of jobs")
    separation_rate: float = _p(0.08, 0.0, 1.0, "assumption: yearly job separation probability")
    matching_efficiency: float = _p(0.7, 0.0, 5.0, "Cobb-Douglas matching efficiency (hires = m U^0.5 V^0.5)")
    unemployed_income_share: float = _p(0.3, 0.0, 1.0, "income of a jobless household relative to local wage")


@dataclass
class BehaviourConfig:
    consider_base: float = _p(0.04, 0.0, 1.0, "yearly probability a household considers moving, all else neutral")
    consider_young: float = _p(0.8, -10, 10, "log-odds added if the head is 18-34")
    consider_old: float = _p(-1.5, -10, 10, "log-odds added if the head is 60+")
    consider_unemployed: float = _p(0.7, -10, 10, "log-odds added if the household has no job")
    consider_rural: float = _p(0.3, -10, 10, "log-odds added for rural residents")
    consider_overload: float = _p(2.0, 0.0, 50, "log-odds per unit of overload (population / carrying capacity - 1)")
    consider_network: float = _p(4.0, 0.0, 100, "log-odds per unit share of the origin's population already moved")
    carrying_capacity: dict[str, float] = _p({"northeast_eco": 0.9, "southeast_eco": 0.9}, 0.01, 10.0,
                                             "assumption: ecological carrying capacity as a share of base-year population "
                                             "(>= 0.01: the overload term divides by it)")
    beta_income: float = _p(1.6, 0.0, 20, "utility per unit log expected income (wage × job-finding probability)")
    beta_hukou: float = _p(0.6, 0.0, 20, "utility of hukou accessibility (policy openness in [0, 1])")
    beta_school: float = _p(0.6, 0.0, 20, "utility of schooling access for households with children")
    beta_insurance: float = _p(0.3, 0.0, 20, "utility of social-insurance access")
    beta_service: float = _p(0.5, 0.0, 20, "utility per unit log public-service provision per capita")
    beta_size: float = _p(1.0, 0.0, 5.0, "utility per unit log non-farm jobs: size of a district as an aggregate of elementary destinations (1 in theory)")
    beta_distance: float = _p(0.8, 0.0, 20, "disutility per unit log(1 + km)")
    beta_cost: float = _p(1.0, 0.0, 20, "disutility per unit of moving cost / household income")
    beta_network: float = _p(0.4, 0.0, 20, "utility per unit log(1 + migrants from the same origin per 1000 residents)")
    beta_housing: float = _p(3.0, 0.0, 50, "disutility per unit housing pressure (occupancy above 90 %)")
    nonlocal_access: float = _p(0.3, 0.0, 1.0, "schooling / insurance access of non-hukou residents without migrant-rights policy")
    beta_trend: float = _p(0.0, -20, 20, "utility per %/yr of the district's population-share trend over the "
                           "latest intercensal decade ending at or before the start year (persistent attractiveness "
                           "not captured by the other terms; see geography.census_trend)")
    beta_stay: float = _p(2.0, -20, 20, "utility bonus of staying (inertia / place attachment)")
    moving_cost_yuan: float = _p(8000.0, 0.0, None, "assumption: fixed cost of an inter-district move (yuan)")
    cost_per_km_yuan: float = _p(15.0, 0.0, None, "assumption: moving cost per km (yuan)")
    return_rate: float = _p(0.03, 0.0, 1.0, "yearly probability a migrant household returns to its origin")
    return_unemployed: float = _p(1.0, -10, 10, "log-odds added to returning if jobless")
    mover_urban_share: float = _p(0.85, 0.0, 1.0, "assumption: share of inter-district movers settling in the destination's urban area")
    rural_to_urban_rate: float = _p(0.02, 0.0, 1.0, "yearly probability a staying rural household moves to its district's urban area")


@dataclass
class ExternalConfig:
    """Migration to and from the rest of China."""

    enabled: bool = _p(True)
    out_rate: float = _p(0.008, 0.0, 1.0, "yearly probability a household leaves the municipality (before modifiers)")
    out_unemployed: float = _p(1.0, -10, 10, "log-odds added to leaving if jobless")
    out_wage_gap: float = _p(1.0, -10, 10, "log-odds per unit log(city mean wage / local wage)")
    out_young: float = _p(0.5, -10, 10, "log-odds added to leaving if the head is 18-34")
    in_persons_per_year: float = _p(300000.0, 0.0, 1e7, "persons arriving from the rest of China in the first simulated year (before control)")
    in_reference_year: int = _p(0, 0, 2200, "calendar year whose arrivals in_persons_per_year gives (0 = the first "
                                "simulated year); a 2020 projection and a 2010 hindcast then share one arrivals path")
    in_growth: float = _p(0.0, -0.2, 0.2, "yearly relative change of arrivals (negative: a shrinking pool of migrants and returners)")
    in_return_share: float = _p(0.5, 0.0, 1.0, "share of arrivals that are returning Chongqing natives (go to origin with their hukou)")
    control_total: dict[str, float] = _p({}, 0.0, 2e9, "optional city totals by year ('2020' = 32054159): external net flow adjusted to hit them")


@dataclass
class RegionHukouRule:
    min_years: int = _p(5, 0, 50, "years of residence (and work, if required) before admission")
    require_employment: bool = _p(True, doc="admission needs a job (years of work, not just residence)")
    quota: float = _p(0.0, 0.0, None, "persons admitted per year (0 = no quota)")
    open_urban: bool = _p(False, doc="fully open (0 years) in district seats and central towns")


def _rule(years: int, open_urban: bool = False) -> Any:
    return field(default_factory=lambda: RegionHukouRule(years, True, 0.0, open_urban), metadata={"doc": ""})


@dataclass
class HukouPolicy:
    """July 2010 reform: 5 years of work downtown, 3 in a county seat (FACTS §1); 2013 strategy opens
    new-development district seats."""

    enabled: bool = _p(True)
    start_year: int = _p(2010, 1900, 2200)
    apply_rate: float = _p(0.35, 0.0, 1.0, "yearly probability an eligible household applies")
    local_conversion: bool = _p(True, doc="rural-hukou urban residents may convert in their own district")
    core: RegionHukouRule = _rule(5)
    expansion: RegionHukouRule = _rule(5)
    new_development: RegionHukouRule = _rule(3, True)
    northeast_eco: RegionHukouRule = _rule(3)
    southeast_eco: RegionHukouRule = _rule(3)


@dataclass
class JobMatchingPolicy:
    """HR database / 对口招工 platform and 定向招工 recruitment subsidies for eco-region job seekers."""

    enabled: bool = _p(True)
    start_year: int = _p(2013, 1900, 2200)
    coverage: float = _p(0.3, 0.0, 1.0, "share of eco-region job seekers registered on the platform")
    match_uplift: float = _p(0.5, 0.0, 10.0, "relative rise of job-finding probability for covered seekers")
    subsidy_yuan: float = _p(3000.0, 0.0, None, "recruitment subsidy per covered mover to expansion/new-development jobs")


@dataclass
class MigrantRightsPolicy:
    """Social-insurance portability and equal schooling of migrant children (随迁子女)."""

    enabled: bool = _p(True)
    start_year: int = _p(2013, 1900, 2200)
    insurance_portability: float = _p(0.6, 0.0, 1.0, "share of social-insurance entitlement a non-hukou migrant keeps")
    schooling_equal: float = _p(0.6, 0.0, 1.0, "share of schooling access a non-hukou migrant child gets")


@dataclass
class LandFiscalLinkPolicy:
    """人地挂钩 / 人钱挂钩: land quotas and fiscal transfers follow settled migrants."""

    enabled: bool = _p(True)
    start_year: int = _p(2013, 1900, 2200)
    housing_per_settled: float = _p(1.0, 0.0, 10.0, "housing capacity (persons) added per person granted hukou")
    service_per_settled: float = _p(1.0, 0.0, 10.0, "service capacity (persons served) added per person granted hukou")


@dataclass
class EcologicalRelocationPolicy:
    """高山生态扶贫搬迁: rural households in eco regions resettled to towns of their own district."""

    enabled: bool = _p(True)
    start_year: int = _p(2013, 1900, 2200)
    end_year: int = _p(2020, 1900, 2200)
    rate: float = _p(0.01, 0.0, 1.0, "yearly share of rural eco-region households resettled")


@dataclass
class PolicyConfig:
    hukou: HukouPolicy = field(default_factory=HukouPolicy)
    job_matching: JobMatchingPolicy = field(default_factory=JobMatchingPolicy)
    migrant_rights: MigrantRightsPolicy = field(default_factory=MigrantRightsPolicy)
    land_fiscal_link: LandFiscalLinkPolicy = field(default_factory=LandFiscalLinkPolicy)
    ecological_relocation: EcologicalRelocationPolicy = field(default_factory=EcologicalRelocationPolicy)


@dataclass
class CapacityConfig:
    housing_slack: float = _p(0.08, 0.0, 5.0, "assumption: initial housing capacity above base population, scaled by "
                              "the land left below max_density_per_km2 (none where the district is at the ceiling: 渝中)")
    housing_growth: dict[str, float] = _p(
        {"core": 0.005, "expansion": 0.03, "new_development": 0.025, "northeast_eco": 0.01, "southeast_eco": 0.01},
        0.0, 1.0, "assumption: yearly growth of housing capacity by region (planned construction)")
    supply_response: float = _p(0.5, 0.0, 10.0, "extra yearly housing growth per unit occupancy above 90 % (builders follow demand)")
    max_density_per_km2: float = _p(27400.0, 100.0, None, "residents per km² of district area above which no housing is added: "
                                    "the 2010 density of 渝中, the densest district (derived: 630 090 / 23 km²)")
    service_growth: float = _p(0.01, 0.0, 1.0, "assumption: yearly growth of public-service capacity")


@dataclass
class Config:
    """A fully resolved scenario."""

    run: RunConfig = field(default_factory=RunConfig)
    data: DataConfig = field(default_factory=DataConfig)
    population: PopulationConfig = field(default_factory=PopulationConfig)
    demography: DemographyConfig = field(default_factory=DemographyConfig)
    economy: EconomyConfig = field(default_factory=EconomyConfig)
    behaviour: BehaviourConfig = field(default_factory=BehaviourConfig)
    external: ExternalConfig = field(default_factory=ExternalConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    capacity: CapacityConfig = field(default_factory=CapacityConfig)
    siting: dict[str, Any] = field(default_factory=dict, metadata={"doc": "siting settings (see docs/SITING.md)"})
    source: str = field(default="<defaults>", metadata={"internal": True})

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict of every setting (no provenance)."""
        d = dataclasses.asdict(self)
        d.pop("source")
        return d

    def to_toml(self) -> str:
        """The resolved config as TOML text (round-trips through :func:`from_toml_text`)."""
        return dumps_toml(self.to_dict())

    def with_overrides(self, overrides: dict[str, Any] | list[str], source: str = "--set") -> Config:
        """A new validated Config with dotted-key overrides (``{"run.seed": 3}`` or ``["run.seed=3"]``)."""
        raw = self.to_dict()
        prov: dict[str, str] = {}
        apply_overrides(raw, overrides, source, prov)
        return build_config(raw, self.source, prov)


def _validate(cfg: Config, prov: dict[str, str]) -> None:
    def src(key: str) -> str:
        return prov.get(key, cfg.source)

    if cfg.run.end_year < cfg.run.start_year:
        raise ConfigError(src("run.end_year"), "run.end_year", cfg.run.end_year,
                          f"must be >= run.start_year ({cfg.run.start_year})")
    p = cfg.population
    if p.share_0_14 + p.share_65_plus >= 1:
        raise ConfigError(src("population.share_65_plus"), "population.share_65_plus", p.share_65_plus,
                          "share_0_14 + share_65_plus must be < 1")
    if p.share_80_plus >= p.share_65_plus and p.share_80_plus:
        raise ConfigError(src("population.share_80_plus"), "population.share_80_plus", p.share_80_plus,
                          f"must be below share_65_plus ({p.share_65_plus}), the whole old-age band (or 0 = off)")
    if p.urban_share_city and not 0 < p.urban_share_city < 1:
        raise ConfigError(src("population.urban_share_city"), "population.urban_share_city", p.urban_share_city,
                          "must be strictly between 0 and 1 (or 0 = off)")
    for area in ("urban", "rural"):
        hi, lo = getattr(p, f"high_skill_share_{area}"), getattr(p, f"low_skill_share_{area}")
        if hi + lo > 1:
            raise ConfigError(src(f"population.low_skill_share_{area}"), f"population.low_skill_share_{area}",
                              lo, f"high + low skill shares must be <= 1 (high = {hi})")
    if len(cfg.economy.skill_wage_premium) != 3:
        raise ConfigError(src("economy.skill_wage_premium"), "economy.skill_wage_premium",
                          cfg.economy.skill_wage_premium, "needs 3 values (low, middle, high)")
    region_dicts = {"population.urban_share": p.urban_share, "economy.urban_services_share": cfg.economy.urban_services_share, "behaviour.carrying_capacity": cfg.behaviour.carrying_capacity,
                    "economy.gdp_per_capita_by_region": cfg.economy.gdp_per_capita_by_region,
                    "capacity.housing_growth": cfg.capacity.housing_growth}
    for key, d in region_dicts.items():
        for k, v in d.items():
            if k not in REGIONS:
                raise ConfigError(src(f"{key}.{k}"), f"{key}.{k}", v, f"unknown region; use one of {', '.join(REGIONS)}")
    for k in cfg.economy.sector_wage_premium:
        if k not in ("agriculture", "industry", "services"):
            raise ConfigError(src(f"economy.sector_wage_premium.{k}"), f"economy.sector_wage_premium.{k}", k,
                              "unknown sector; use agriculture, industry or services")
    for k, v in cfg.external.control_total.items():
        if not (k.isdigit() and len(k) == 4):
            raise ConfigError(src(f"external.control_total.{k}"), f"external.control_total.{k}", v, "key must be a year")
    if cfg.siting:
        _validate_siting(cfg, src)
    gy = cfg.economy.district_gdp_year
    if gy and gy > cfg.run.start_year:
        raise ConfigError(src("economy.district_gdp_year"), "economy.district_gdp_year", gy,
                          f"must be <= run.start_year ({cfg.run.start_year}): no data from after a run's start")
    if gy and cfg.data.regions == "chongqing":
        from migration_abm.geography import data_path

        with data_path("chongqing_district_economy.csv").open(encoding="utf-8") as fh:
            have = sorted(int(c[4:]) for c in fh.readline().strip().split(",") if re.fullmatch(r"gdp_\d{4}", c))
        if gy not in have:
            raise ConfigError(src("economy.district_gdp_year"), "economy.district_gdp_year", gy,
                              f"no district GDP for that year; use 0 or one of {have}")
    ref = cfg.external.in_reference_year
    if ref and not 1900 <= ref <= 2200:
        raise ConfigError(src("external.in_reference_year"), "external.in_reference_year", ref,
                          "must be 0 (the first simulated year) or a calendar year in [1900, 2200]")
    _validate_demography(cfg, src)
    reloc = cfg.policy.ecological_relocation
    if reloc.end_year < reloc.start_year:
        raise ConfigError(src("policy.ecological_relocation.end_year"), "policy.ecological_relocation.end_year",
                          reloc.end_year, "must be >= start_year")


#: largest death hazard accepted at the old-age threshold (63 % die within the year): beyond it the
#: old-age survival curve underflows to zero and the base-year age distribution cannot be drawn
MAX_OLD_AGE_HAZARD = 1.0
#: fewest adults per household on average: every generated household needs one
MIN_ADULTS_PER_HOUSEHOLD = 1.02


def _validate_demography(cfg: Config, src: Any) -> None:
    """Cross-field limits the population synthesis needs: a drawable old-age survival curve and enough
    adults for every household to have one."""
    d, p = cfg.demography, cfg.population
    hazard = d.mortality_makeham + d.mortality_gompertz_a * math.exp(d.mortality_gompertz_b * p.old_age)
    if hazard > MAX_OLD_AGE_HAZARD:
        raise ConfigError(src("demography.mortality_gompertz_b"), "demography.mortality_gompertz_b",
                          d.mortality_gompertz_b, f"with mortality_gompertz_a = {d.mortality_gompertz_a} the death "
                          f"hazard at age {p.old_age} is {hazard:.3g} (must be <= {MAX_OLD_AGE_HAZARD})")
    # ages 15..old_age-1 are uniform within their band, so 15-17 take 3 of its years
    adult_share = 1 - p.share_0_14 - 3 * (1 - p.share_0_14 - p.share_65_plus) / (p.old_age - 15)
    lam, k_max = p.household_size - 1, p.max_household_size
    pois = [1.0] + [0.0] * (k_max - 1) if lam <= 0 else \
        [math.exp(-lam + k * math.log(lam) - math.lgamma(k + 1)) for k in range(k_max)]
    size = sum((1 + k) * q for k, q in enumerate(pois)) + k_max * max(0.0, 1 - sum(pois))  # E[min(1 + Poisson, K)]
    if adult_share * size < MIN_ADULTS_PER_HOUSEHOLD:
        raise ConfigError(src("population.household_size"), "population.household_size", p.household_size,
                          f"too few adults for every household to have one ({adult_share * size:.2f} adults per "
                          f"household with share_0_14 = {p.share_0_14}; need >= {MIN_ADULTS_PER_HOUSEHOLD})")


def _validate_siting(cfg: Config, src: Any) -> None:
    """The [siting] table: the siting settings' own rules, plus district codes that must exist."""
    from migration_abm.errors import InputError
    from migration_abm.geography import load_districts
    from migration_abm.siting.settings import SitingSettings

    try:
        SitingSettings.from_dict(cfg.siting, source=src("siting"))
    except InputError as exc:
        raise ConfigError(src(f"siting.{exc.field}"), f"siting.{exc.field}", exc.value, exc.reason) from None
    own = cfg.siting.get("district_circuity", {})
    known = set(load_districts(None if cfg.data.regions == "chongqing" else cfg.data.regions)["code"]) if own else set()
    for code in own:
        if str(code) not in known:
            key = f"siting.district_circuity.{code}"
            raise ConfigError(src(key), key, code, "unknown district code")


def build_config(raw: dict, source: str = "<dict>", prov: dict[str, str] | None = None) -> Config:
    """Validate a raw nested dict into a :class:`Config` (defaults fill what is missing)."""
    prov = prov or {}
    cfg = build(Config, raw, prov, source)
    cfg.source = source
    _validate(cfg, prov)
    return cfg


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | list[str] = (),
                override_source: str = "--set") -> Config:
    """Read a scenario TOML (following ``extends``), apply overrides, validate. ``None`` = defaults."""
    return load(Config, path, overrides, override_source, PATH_KEYS, _validate)


def from_toml_text(text: str, source: str = "<toml>") -> Config:
    """Rebuild a Config from TOML text (e.g. the copy stored in a results file)."""
    return build_config(tomllib.loads(text), source)


