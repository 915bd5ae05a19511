"""MigrationModel: households move between Chongqing's districts year by year under hukou,
job-matching, migrant-rights, land/fiscal-link and relocation policies.

Households are rows of a column store (:mod:`migration_abm.population`); the labour market and the
five regional hukou offices are Mesa agents. See docs/ODD.md for the full description.
"""

from __future__ import annotations

import functools
from pathlib import Path

import mesa
import numpy as np

from migration_abm import kernels, migration
from migration_abm.config import Config, load_config
from migration_abm.geography import REGIONS, Geography
from migration_abm.labour import LabourMarket
from migration_abm.migration import geometric_path
from migration_abm.policy import HukouOffice, active, hukou_candidates, land_fiscal_quotas
from migration_abm.population import (
    AGE_MAX,
    SECTORS,
    age_and_die,
    base_urban_share,
    birth_probability,
    give_birth,
    leave_home,
    synthesize,
    with_observed_vital_rates,
)
from migration_abm.results import AGE_BANDS, DISTRICT_SERIES, HUKOU_STATUS, Results


def as_seed_sequence(seed: int | np.random.SeedSequence | None, default: int) -> np.random.SeedSequence:
    """Normalise a seed argument to a SeedSequence (``None`` → the config's ``run.seed``)."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    return np.random.SeedSequence(default if seed is None else int(seed))


class MigrationModel(mesa.Model):
    """One scenario run. One step = one calendar year; ``run(until=year)`` steps to that year."""

    def __init__(self, config: Config, *, rng: int | np.random.SeedSequence | None = None,
                 geography: Geography | None = None) -> None:
        self.seed_sequence = as_seed_sequence(rng, config.run.seed)
        super().__init__(rng=np.random.default_rng(self.seed_sequence))
        self.cfg = config
        self.geo = geography or Geography.from_config(config.data)
        # the config with the solved fertility and mortality levels (demography.vital_rates_observed) for the
        # demography; ``cfg`` stays the config as given, which re-solves to the same levels
        self.demography_cfg = with_observed_vital_rates(self.geo, config)
        self.year = config.run.start_year
        g = self.geo
        self.base_urban = base_urban_share(g, config, config.run.start_year)
        self.households = synthesize(g, self.demography_cfg, self.rng, self.base_urban)
        self.households.reserve()  # spare capacity now rather than when the first year appends rows
        self.labour = LabourMarket(self, g, config, self.households)
        for region in REGIONS:
            HukouOffice(self, region)
        pop = self.district_persons()
        self.service = pop.copy()
        self._area = g.districts["area_km2"].to_numpy(float)
        self.housing = pop * (1 + config.capacity.housing_slack * self._land_left(pop))
        self._settled_housing = np.zeros(g.n)
        self._housing_growth = np.array([config.capacity.housing_growth.get(r, 0.0) for r in REGIONS])[g.region_index]
        # ecological carrying capacity per region in persons (inf where none is set)
        share = np.array([config.behaviour.carrying_capacity.get(r, np.inf) for r in REGIONS])
        self.carrying_capacity = g.to_regions(pop) * share
        self.census_trend = g.census_trend(config.run.start_year)[0]
        self.birth_p = birth_probability(g, self.demography_cfg, pop)
        self.returner_origin_p = self._returner_origins()
        self.control = self._control_path(float(pop.sum()))
        self._reset_counters()
        self.pending_hukou_candidates: dict[str, np.ndarray] | None = None  # set for a round of admissions
        self._snapshot: dict[str, np.ndarray] = {}
        names = [*DISTRICT_SERIES, "flows", "population_age", "population_status_band"]
        self.datacollector = mesa.DataCollector(
            model_reporters={k: functools.partial(MigrationModel._snap, key=k) for k in names})
        self._collect()

    # ---- bookkeeping -----------------------------------------------------------------------------
    def _snap(self, key: str) -> np.ndarray:
        return self._snapshot[key]

    def district_persons(self, mask: np.ndarray | None = None) -> np.ndarray:
        """Persons per district (of the households in ``mask`` when given)."""
        hh = self.households
        if mask is None:
            return kernels.persons_by(hh.district, hh.persons(), self.geo.n)
        return np.bincount(hh.district, weights=hh.persons() * mask, minlength=self.geo.n)

    def _reset_counters(self) -> None:
        n = self.geo.n
        self.counts = {k: np.zeros(n) for k in ("births", "deaths", "in_migrants", "out_migrants",
                                                "external_in", "external_out", "hukou_conversions")}
        self.flow_matrix = np.zeros((n, n))

    def add_count(self, key: str, district: np.ndarray, persons: np.ndarray) -> None:
        """Add ``persons`` to this year's per-district counter ``key``."""
        self.counts[key] += np.bincount(district, weights=persons, minlength=self.geo.n)

    def record_conversions(self, rows: np.ndarray, persons: np.ndarray) -> None:
        """Called by hukou offices: count conversions and apply the land/fiscal link."""
        hh = self.households
        self.add_count("hukou_conversions", hh.district[rows], persons)
        settled = np.bincount(hh.district[rows], weights=persons, minlength=self.geo.n)
        quotas = land_fiscal_quotas(self.cfg, self.year, settled)
        if quotas is not None:
            self._settled_housing += quotas[0]  # built in _update_capacity
            self.service += quotas[1]

    def _measure(self) -> dict[str, np.ndarray]:
        hh, n = self.households, self.geo.n
        ns, na = len(HUKOU_STATUS), AGE_MAX + 2  # age bin 0 catches empty slots (age −1)
        hist, pop, households, urban_pop, unemployed, emp = kernels.measure(
            hh.ages, hh.district, hh.hukou_district, hh.hukou_ag, hh.urban, hh.employed, hh.sector, hh.workers(),
            hh.weight, hh.persons(), n, ns, na, len(SECTORS))
        by_status_age = hist.reshape(n, ns, na)[:, :, 1:]
        by_age = by_status_age.sum(axis=1)
        status_band = np.stack([by_status_age[:, :, lo:hi + 1].sum(axis=2) for _, lo, hi in AGE_BANDS], axis=2)
        snap = {
            "population": pop,
            "households": households,
            "urban_population": urban_pop,
            "employed": emp.sum(axis=1),
            "jobs": self.labour.jobs.sum(axis=1).copy(),
            "unemployed": unemployed,
            "children_primary": by_age[:, 6:12].sum(axis=1),
            "children_lower_secondary": by_age[:, 12:15].sum(axis=1),
            "elderly": by_age[:, 65:].sum(axis=1),
            "housing_capacity": self.housing.copy(),
            "service_capacity": self.service.copy(),
            "flows": self.flow_matrix,
            "population_age": by_age,
            "population_status_band": status_band,
            **self.counts,
        }
        return snap

    def _collect(self) -> None:
        self._snapshot = self._measure()
        self.datacollector.collect(self)

    # ---- the year --------------------------------------------------------------------------------
    def step(self) -> None:
        """Simulate one calendar year: demography, labour market, migration, hukou, capacities."""
        self.year += 1
        self._reset_counters()
        hh, rng, cfg = self.households, self.rng, self.cfg
        self.counts["deaths"] += age_and_die(hh, self.demography_cfg, rng, self.geo.n)
        d = cfg.demography
        years = max(0, min(self.year, d.fertility_trend_until or self.year) - cfg.run.start_year)
        trend = (1 + d.fertility_trend) ** years
        self.counts["births"] += give_birth(hh, self.birth_p * trend, rng)
        leavers = leave_home(hh, cfg, rng)
        hh.keep_empty()  # households whose last member died: dropped with the year's one compaction
        hh.extend(leavers)
        hh.years_here += 1
        self.labour.step()
        migration.external_out_and_in(self)  # drops them with the households that leave Chongqing
        hh.compact()  # (where none left: external migration off)
        migration.return_migration(self)
        migration.internal_migration(self)
        migration.local_urbanisation(self)
        if active(cfg.policy.hukou, self.year):  # every office's candidates in one pass
            self.pending_hukou_candidates = hukou_candidates(self)
        self.agents_by_type[HukouOffice].do("step")
        self.pending_hukou_candidates = None
        self._update_capacity()
        self._collect()

    def _update_capacity(self) -> None:
        """Housing: planned growth, supply response to occupancy and land/fiscal-link quotas, all
        scaled by the land left below the density ceiling; services: planned growth."""
        cap = self.cfg.capacity
        pop, _, pressure = migration.pressures(self)
        land = self._land_left(pop)
        self.housing *= 1 + land * (self._housing_growth + cap.supply_response * 0.1 * pressure)
        self.housing += land * self._settled_housing
        self._settled_housing[:] = 0.0
        self.service *= 1 + cap.service_growth

    def _land_left(self, pop: np.ndarray) -> np.ndarray:
        """Share of each district's land left below ``capacity.max_density_per_km2`` at population ``pop``."""
        return np.clip(1 - pop / self._area / self.cfg.capacity.max_density_per_km2, 0.0, 1.0)

    def run(self, until: int | None = None, progress: bool = False) -> None:
        """Step to the end of year ``until`` (default ``run.end_year``)."""
        until = self.cfg.run.end_year if until is None else until
        years = range(self.year + 1, until + 1)
        if progress:
            from tqdm import tqdm
            years = tqdm(years, desc="simulating", unit="yr")
        for _ in years:
            self.step()

    def drop(self, keep: np.ndarray) -> None:
        """Remove the households not in the boolean mask ``keep``."""
        self.households.compact(keep)

    # ---- set-up helpers --------------------------------------------------------------------------
    def _returner_origins(self) -> np.ndarray:
        """Home districts of returning natives ∝ rural population (assumption: migrant workers are
        mostly rural-registered; district registered-minus-resident counts are not available)."""
        rural = self.district_persons(~self.households.urban)
        return rural / rural.sum()

    def _control_path(self, base_total: float) -> dict[int, float]:
        """Yearly city-total targets: the configured years, geometric interpolation from the base year."""
        ctl = {int(k): float(v) for k, v in self.cfg.external.control_total.items()}
        if not ctl:
            return {}
        start = self.cfg.run.start_year
        return geometric_path({start: base_total, **ctl}, range(start + 1, max(ctl) + 1))

    # ---- results ---------------------------------------------------------------------------------
    def results(self) -> Results:
        """Everything collected so far as a :class:`Results`."""
        mv = self.datacollector.model_vars
        arrays = {k: np.stack(v) for k, v in mv.items()}
        dims = {k: ("year", "district") for k in DISTRICT_SERIES}
        dims.update(flows=("year", "origin", "destination"), population_age=("year", "district", "age"),
                    population_status_band=("year", "district", "hukou_status", "age_band"))
        years = np.arange(self.cfg.run.start_year, self.year + 1)
        ss = self.seed_sequence
        seed = f"entropy={ss.entropy};spawn_key={','.join(map(str, ss.spawn_key))}"
        return Results(years=years, codes=self.geo.codes, regions=self.geo.districts["functional_region"].to_numpy(str),
                       arrays=arrays, dims=dims, config_toml=self.cfg.to_toml(), seed=seed,
                       attrs={"config_source": self.cfg.source, "households_per_agent": self.cfg.run.households_per_agent,
                              "fertility_rate": self.demography_cfg.demography.fertility_rate,
                              "mortality_gompertz_a": self.demography_cfg.demography.mortality_gompertz_a})


def simulate(config: Config | str | Path | None = None, seed: int | np.random.SeedSequence | None = None,
             *, until: int | None = None, progress: bool = False, geography: Geography | None = None) -> Results:
    """Build a model from a config (object, TOML path or None for defaults), run it, return Results."""
    cfg = config if isinstance(config, Config) else load_config(config)
    model = MigrationModel(cfg, rng=seed, geography=geography)
    model.run(until, progress=progress)
    return model.results()
