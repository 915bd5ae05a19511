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

from migration_abm.config import Config, load_config
from migration_abm.geography import DESTINATION_REGIONS, ECO_REGIONS, REGIONS, Geography
from migration_abm.labour import LabourMarket, platform_covered, platform_uplift
from migration_abm.policy import HukouOffice, active, hukou_openness, nonlocal_rights
from migration_abm.population import (
    AGE_MAX,
    NO_MEMBER,
    OUTSIDE,
    Households,
    age_and_die,
    base_urban_share,
    give_birth,
    leave_home,
    synthesize,
)
from migration_abm.results import AGE_BANDS, DISTRICT_SERIES, HUKOU_STATUS, Results

CHUNK = 1 << 17  # rows per destination-choice block: bounds the [rows × districts] temporaries


def _logit(p: float) -> float:
    p = min(max(p, 1e-12), 1 - 1e-12)
    return float(np.log(p / (1 - p)))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def as_seed_sequence(seed: int | np.random.SeedSequence | None, default: int) -> np.random.SeedSequence:
    """Normalise a seed argument to a SeedSequence (``None`` → the config's ``run.seed``)."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    return np.random.SeedSequence(default if seed is None else int(seed))


def geography_for(cfg: Config) -> Geography:
    """The district table and boundaries a config names (packaged Chongqing by default)."""
    d = cfg.data
    regions = None if d.regions == "chongqing" else d.regions
    geo = Geography.load(regions, None if d.boundaries in ("chongqing", "none") else d.boundaries, d.circuity)
    if d.boundaries == "none":
        geo.boundaries = None
    return geo


class MigrationModel(mesa.Model):
    """One scenario run. One step = one calendar year; ``run(until=year)`` steps to that year."""

    def __init__(self, config: Config, *, rng: int | np.random.SeedSequence | None = None,
                 geography: Geography | None = None) -> None:
        self.seed_sequence = as_seed_sequence(rng, config.run.seed)
        super().__init__(rng=np.random.default_rng(self.seed_sequence))
        self.cfg = config
        self.geo = geography or geography_for(config)
        self.year = config.run.start_year
        g = self.geo
        self.households = synthesize(g, config, self.rng)
        self.labour = LabourMarket(self, g, config, self.households)
        for region in REGIONS:
            HukouOffice(self, region, g)
        pop = self._district_persons()
        self.housing = pop * (1 + config.capacity.housing_slack)
        self.service = pop.copy()
        self._area = g.districts["area_km2"].to_numpy(float)
        self._settled_housing = np.zeros(g.n)
        self._housing_growth = np.array([config.capacity.housing_growth.get(r, 0.0) for r in REGIONS])[g.region_index]
        # ecological carrying capacity per region in persons (inf where none is set)
        share = np.array([config.behaviour.carrying_capacity.get(r, np.inf) for r in REGIONS])
        self.carrying_capacity = g.to_regions(pop) * share
        self._base_urban = base_urban_share(g, config, config.run.start_year)
        self._returner_origin_p = self._returner_origins()
        self._control = self._control_path(float(pop.sum()))
        self._reset_counters()
        self._snapshot: dict[str, np.ndarray] = {}
        names = [*DISTRICT_SERIES, "flows", "population_age", "population_status_band"]
        self.datacollector = mesa.DataCollector(
            model_reporters={k: functools.partial(MigrationModel._snap, key=k) for k in names})
        self._collect()

    # ---- bookkeeping -----------------------------------------------------------------------------
    def _snap(self, key: str) -> np.ndarray:
        return self._snapshot[key]

    def _district_persons(self, mask: np.ndarray | None = None) -> np.ndarray:
        hh = self.households
        w = hh.persons() if mask is None else hh.persons() * mask
        return np.bincount(hh.district, weights=w, minlength=self.geo.n)

    def _reset_counters(self) -> None:
        n = self.geo.n
        self.counts = {k: np.zeros(n) for k in ("births", "deaths", "in_migrants", "out_migrants",
                                                "external_in", "external_out", "hukou_conversions")}
        self.flow_matrix = np.zeros((n, n))

    def _add(self, key: str, district: np.ndarray, persons: np.ndarray) -> None:
        self.counts[key] += np.bincount(district, weights=persons, minlength=self.geo.n)

    def record_conversions(self, rows: np.ndarray, persons: np.ndarray) -> None:
        """Called by hukou offices: count conversions and apply the land/fiscal link."""
        hh = self.households
        self._add("hukou_conversions", hh.district[rows], persons)
        lf = self.cfg.policy.land_fiscal_link
        if active(lf, self.year):
            settled = np.bincount(hh.district[rows], weights=persons, minlength=self.geo.n)
            self._settled_housing += lf.housing_per_settled * settled  # built in _update_capacity
            self.service += lf.service_per_settled * settled

    def _measure(self) -> dict[str, np.ndarray]:
        hh, n = self.households, self.geo.n
        persons = hh.persons()
        status = np.where(hh.hukou_district == OUTSIDE, 3,
                          np.where(hh.hukou_district != hh.district, 2, np.where(hh.hukou_ag, 1, 0)))
        ns, na = len(HUKOU_STATUS), AGE_MAX + 2  # age bin 0 catches empty slots (age −1)
        key = (hh.district.astype(np.int64) * ns + status) * na + 1
        hist = np.zeros(n * ns * na)
        for c in range(int(hh.size().max(initial=0))):  # members sorted: slot c is empty beyond size c
            hist += np.bincount(key + hh.ages[:, c], weights=hh.weight, minlength=n * ns * na)
        by_status_age = hist.reshape(n, ns, na)[:, :, 1:]
        by_age = by_status_age.sum(axis=1)
        status_band = np.stack([by_status_age[:, :, lo:hi + 1].sum(axis=2) for _, lo, hi in AGE_BANDS], axis=2)
        workers = hh.workers() * hh.weight
        snap = {
            "population": np.bincount(hh.district, weights=persons, minlength=n),
            "households": np.bincount(hh.district, weights=hh.weight, minlength=n),
            "urban_population": self._district_persons(hh.urban),
            "employed": self.labour.employment(hh).sum(axis=1),
            "jobs": self.labour.jobs.sum(axis=1).copy(),
            "unemployed": np.bincount(hh.district, weights=workers * ~hh.employed, minlength=n),
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
        deaths = age_and_die(hh, cfg, rng)
        self._add("deaths", hh.district, deaths * hh.weight)
        births = give_birth(hh, cfg, rng)
        self._add("births", hh.district, births * hh.weight)
        hh.extend(leave_home(hh, cfg, rng))
        self._drop(hh.size() > 0)
        self.households.years_here += 1
        self.labour.step()
        self._external_out_and_in()
        self._return_migration()
        self._internal_migration()
        self._local_urbanisation()
        self.agents_by_type[HukouOffice].do("step")
        self._update_capacity()
        self._collect()

    def _update_capacity(self) -> None:
        """Housing: planned growth, supply response to occupancy and land/fiscal-link quotas, all
        scaled by the land left below the density ceiling; services: planned growth."""
        cap = self.cfg.capacity
        pop, _, pressure = self._pressures()
        land = np.clip(1 - pop / self._area / cap.max_density_per_km2, 0.0, 1.0)
        self.housing *= 1 + land * (self._housing_growth + cap.supply_response * 0.1 * pressure)
        self.housing += land * self._settled_housing
        self._settled_housing[:] = 0.0
        self.service *= 1 + cap.service_growth

    def run(self, until: int | None = None, progress: bool = False) -> None:
        """Step to the end of year ``until`` (default ``run.end_year``)."""
        until = self.cfg.run.end_year if until is None else until
        years = range(self.year + 1, until + 1)
        if progress:
            from tqdm import tqdm
            years = tqdm(years, desc="simulating", unit="yr")
        for _ in years:
            self.step()

    def _drop(self, keep: np.ndarray) -> None:
        if not keep.all():
            self.households = self.households.take(keep)

    # ---- migration -------------------------------------------------------------------------------
    def _move(self, rows: np.ndarray, dest: np.ndarray) -> None:
        """Relocate households ``rows`` to districts ``dest`` and record the flows."""
        hh = self.households
        moving = dest != hh.district[rows]
        rows, dest = rows[moving], dest[moving]
        if not len(rows):
            return
        persons = hh.persons()[rows]
        orig = hh.district[rows]
        np.add.at(self.flow_matrix, (orig, dest), persons)
        self._add("out_migrants", orig, persons)
        self._add("in_migrants", dest, persons)
        hh.district[rows] = dest
        hh.urban[rows] = self.rng.random(len(rows)) < np.maximum(self.cfg.behaviour.mover_urban_share,
                                                                  self._base_urban[dest])
        hh.years_here[rows] = 0
        hh.employed[rows] = False
        self._hire_arrivals(rows)

    def _hire_arrivals(self, rows: np.ndarray) -> None:
        hh = self.households
        seekers = rows[hh.workers()[rows] > 0]
        if len(seekers):
            covered = platform_covered(self.geo, self.cfg, self.year, hh, seekers)
            self.labour.match(hh, self.rng, seekers, covered * platform_uplift(self.geo, self.cfg)[hh.district[seekers]])

    def _pressures(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(population, service per capita, housing pressure) per district, for destination choice."""
        pop = self._district_persons()
        service_pc = self.service / np.maximum(pop, 1.0)
        pressure = np.clip(pop / np.maximum(self.housing, 1.0) - 0.9, 0, None) / 0.1
        return pop, service_pc, pressure

    def _network(self) -> tuple[np.ndarray, np.ndarray]:
        """Migrant stock M[origin, district] (persons) and natives per origin district."""
        hh, n = self.households, self.geo.n
        inside = hh.origin >= 0
        idx = hh.origin[inside].astype(np.int64) * n + hh.district[inside]
        stock = np.bincount(idx, weights=hh.persons()[inside], minlength=n * n).reshape(n, n)
        natives = stock.sum(axis=1)
        np.fill_diagonal(stock, 0.0)
        return stock, natives

    def _choose(self, rows: np.ndarray, home: np.ndarray, income_now: np.ndarray,
                network_origin: np.ndarray) -> np.ndarray:
        """Multinomial-logit destination choice for ``rows`` (staying at ``home`` is one alternative).

        ``home`` is the district a household would stay in (−1: none, e.g. arrivals from outside);
        distances and moving costs are measured from it. Utility terms: log expected income
        (Harris–Todaro), hukou accessibility and what it unlocks (schooling, insurance), public services
        per capita, district size, distance and moving cost net of recruitment subsidies, the migrant
        network from the same origin, housing pressure, and inertia for staying (docs/ODD.md §3.4).

        Every term is a district table indexed by a few household keys (home, origin, platform
        registration, children) plus a household-specific cost scale, so utilities are gathered rather
        than recomputed: no transcendental function per household × district except the draw.
        """
        cfg, b, geo, hh = self.cfg, self.cfg.behaviour, self.geo, self.households
        out = np.empty(len(rows), dtype=np.int16)
        if not len(rows):
            return out
        n = geo.n
        _, service_pc, pressure = self._pressures()
        stock, natives = self._network()
        openness = hukou_openness(geo, cfg, self.year)
        school_nl, ins_nl = nonlocal_rights(cfg, self.year)
        school = openness + (1 - openness) * school_nl
        insurance = openness + (1 - openness) * ins_nl
        jm = cfg.policy.job_matching
        subsidy = jm.subsidy_yuan if active(jm, self.year) else 0.0
        dest_region = geo.in_regions(DESTINATION_REGIONS)
        size = np.log(np.maximum(self.labour.jobs[:, 1:].sum(axis=1), 1.0))
        common = (b.beta_service * np.log(np.maximum(service_pc, 1e-6)) - b.beta_housing * pressure
                  + b.beta_size * size + b.beta_hukou * openness + b.beta_insurance * insurance)
        child_term = b.beta_school * school
        # [registered?, district]: Harris–Todaro log expected wage (platform uplift if registered)
        inc = b.beta_income * np.stack([self.labour.log_expected_wage(np.zeros(n)),
                                        self.labour.log_expected_wage(platform_uplift(geo, cfg))])
        # [home (n = no home), district]: distance, stay bonus; [registered?, home, district]: cost
        dist = np.vstack([geo.distance_km, np.zeros((1, n))])
        place = -b.beta_distance * np.log1p(dist)
        place[np.arange(n), np.arange(n)] += b.beta_stay
        cost = np.maximum(0.0, b.moving_cost_yuan + b.cost_per_km_yuan * dist
                          - subsidy * np.array([0.0, 1.0])[:, None, None] * dest_region)
        cost[:, np.arange(n), np.arange(n)] = 0.0
        # [origin (n = outside), district]: migrant network from the same origin
        net = np.vstack([b.beta_network * np.log1p(1000.0 * stock / np.maximum(natives, 1.0)[:, None]),
                         np.zeros((1, n))])
        # local hukou unlocks full access: correction at the hukou district's column
        local_gain = b.beta_hukou * (1 - openness) + b.beta_insurance * (1 - insurance)
        local_child_gain = b.beta_school * (1 - school)
        prem = self.labour.skill_premium[hh.skill[rows]] * np.maximum(hh.workers()[rows], 1)
        covered = platform_covered(geo, cfg, self.year, hh, rows).astype(np.int64)
        children = hh.has_children()[rows]
        home_i = np.where(home >= 0, home, n).astype(np.int64)
        origin_i = np.where(network_origin >= 0, network_origin, n).astype(np.int64)
        hukou = hh.hukou_district[rows].astype(np.int64)
        cost_scale = b.beta_cost / np.maximum(income_now, 1000.0)
        for lo in range(0, len(rows), CHUNK):
            sl = slice(lo, lo + CHUNK)
            m = len(rows[sl])
            h, cov = home_i[sl], covered[sl]
            u = inc[cov] + place[h] + net[origin_i[sl]]
            u += common
            u -= cost_scale[sl, None] * cost[cov, h]
            ch = np.flatnonzero(children[sl])
            u[ch] += child_term
            loc = np.flatnonzero(hukou[sl] >= 0)
            j = hukou[sl][loc]
            u[loc, j] += local_gain[j] + children[sl][loc] * local_child_gain[j]
            # staying keeps the current income instead of the expected one
            st = np.flatnonzero(h < n)
            hj = h[st]
            u[st, hj] += b.beta_income * (np.log(np.maximum(income_now[sl][st], 1.0)) - np.log(prem[sl][st]))
            u[st, hj] -= inc[cov[st], hj]
            # inverse-CDF draw from the logit probabilities (one uniform per household)
            u -= u.max(axis=1, keepdims=True)
            np.exp(u, out=u)
            np.cumsum(u, axis=1, out=u)
            draw = self.rng.random(m) * u[:, -1]
            out[sl] = np.minimum((u < draw[:, None]).sum(axis=1), n - 1)
        return out

    def _internal_migration(self) -> None:
        """Stage 1: who considers moving this year; stage 2: where to (staying is an option)."""
        hh, b, geo = self.households, self.cfg.behaviour, self.geo
        pop, _, _ = self._pressures()
        overload = np.clip(geo.to_regions(pop) / self.carrying_capacity - 1, 0, None)[geo.region_index]
        stock, natives = self._network()
        moved_share = stock.sum(axis=1) / np.maximum(natives, 1.0)
        head = hh.head_age()
        jobless = ~hh.employed & (hh.workers() > 0)
        x = (_logit(b.consider_base) + b.consider_young * ((head >= 18) & (head <= 34))
             + b.consider_old * (head >= 60) + b.consider_unemployed * jobless + b.consider_rural * ~hh.urban
             + b.consider_overload * overload[hh.district]
             + b.consider_network * moved_share[np.maximum(hh.origin, 0)] * (hh.origin >= 0))
        rows = np.flatnonzero(self.rng.random(hh.n) < _sigmoid(x))
        income = self.labour.income(hh)[rows]
        dest = self._choose(rows, hh.district[rows], income, hh.origin[rows])
        self._move(rows, dest)

    def _return_migration(self) -> None:
        """Unsettled migrants (no local hukou) go back to their origin district."""
        hh, b = self.households, self.cfg.behaviour
        away = (hh.origin >= 0) & (hh.origin != hh.district) & (hh.hukou_district != hh.district)
        jobless = ~hh.employed & (hh.workers() > 0)
        p = _sigmoid(_logit(b.return_rate) + b.return_unemployed * jobless)
        rows = np.flatnonzero(away & (self.rng.random(hh.n) < p))
        self._move(rows, hh.origin[rows].astype(np.int16))

    def _external_out_and_in(self) -> None:
        """Migration to and from the rest of China, optionally scaled to hit a city control total."""
        hh, ext, rng, lab = self.households, self.cfg.external, self.rng, self.labour
        if not ext.enabled:
            return
        head = hh.head_age()
        jobless = ~hh.employed & (hh.workers() > 0)
        city_wage = np.average(lab.nonfarm_wage(), weights=np.maximum(self._district_persons(), 1))
        gap = np.log(city_wage / lab.nonfarm_wage())[hh.district]
        p_out = _sigmoid(_logit(ext.out_rate) + ext.out_unemployed * jobless
                         + ext.out_young * ((head >= 18) & (head <= 34)) + ext.out_wage_gap * gap)
        persons = hh.persons()
        arrivals = ext.in_persons_per_year * (1 + ext.in_growth) ** (self.year - self.cfg.run.start_year - 1)
        target = self._control.get(self.year)
        if target is not None:
            net_needed = target - persons.sum()
            expected_out = float((p_out * persons).sum())
            if net_needed >= arrivals - expected_out:
                arrivals = net_needed + expected_out
            else:
                p_out = np.minimum(1.0, p_out * (arrivals - net_needed) / max(expected_out, 1e-9))
        leave = rng.random(hh.n) < p_out
        self._add("external_out", hh.district[leave], persons[leave])
        self._add("out_migrants", hh.district[leave], persons[leave])
        self._drop(~leave)
        self._arrive(arrivals)

    def _arrive(self, persons_target: float) -> None:
        """Create arriving households (returning natives and other-province migrants) and place them."""
        if persons_target <= 0:
            return
        cfg, rng, geo = self.cfg, self.rng, self.geo
        k = self.households.ages.shape[1]
        mean_size = 1.9
        n_exp = persons_target / (mean_size * cfg.run.households_per_agent)
        n = int(np.floor(n_exp) + (rng.random() < n_exp - np.floor(n_exp)))
        if n == 0:
            return
        ages = np.full((n, k), NO_MEMBER, dtype=np.int8)
        ages[:, 0] = rng.integers(20, 46, n)
        spouse = rng.random(n) < 0.5
        ages[spouse, 1] = np.clip(ages[spouse, 0] + rng.integers(-3, 4, spouse.sum()), 18, 60)
        child = rng.random(n) < 0.4
        ages[child, 2] = rng.integers(0, 15, child.sum())
        ages = -np.sort(-ages, axis=1)
        returner = rng.random(n) < cfg.external.in_return_share
        origin = np.where(returner, rng.choice(geo.n, size=n, p=self._returner_origin_p), OUTSIDE).astype(np.int16)
        skill = rng.choice(3, size=n, p=[0.4, 0.45, 0.15]).astype(np.int8)
        new = Households(ages=ages, district=np.maximum(origin, 0).astype(np.int16), urban=np.ones(n, bool),
                         origin=origin, hukou_district=origin.copy(), hukou_ag=np.ones(n, bool), skill=skill,
                         employed=np.zeros(n, bool), sector=np.ones(n, np.int8), years_here=np.zeros(n, np.int16),
                         platform_u=rng.random(n, dtype=np.float32),
                         weight=np.full(n, float(cfg.run.households_per_agent)))
        hh = self.households
        start = hh.n
        hh.extend(new)
        rows = np.arange(start, hh.n)
        # arrivals earn what a newcomer would: use the city's mean wage as their reference income
        ref = np.full(n, np.average(self.labour.nonfarm_wage(), weights=np.maximum(self._district_persons(), 1)))
        # returning natives weigh destinations from their home district (going home = staying);
        # other-province migrants have no home district in Chongqing
        dest = self._choose(rows, origin, ref, origin)
        hh.district[rows] = dest
        hh.urban[rows] = rng.random(n) < np.maximum(cfg.behaviour.mover_urban_share, self._base_urban[dest])
        persons = hh.persons()[rows]
        self._add("external_in", dest, persons)
        self._add("in_migrants", dest, persons)
        self._hire_arrivals(rows)

    def _local_urbanisation(self) -> None:
        """Rural households move to their own district's towns; eco-region relocation adds to it."""
        hh, rng, cfg = self.households, self.rng, self.cfg
        p = np.full(hh.n, cfg.behaviour.rural_to_urban_rate)
        reloc = cfg.policy.ecological_relocation
        if active(reloc, self.year) and self.year <= reloc.end_year:
            p += reloc.rate * self.geo.in_regions(ECO_REGIONS)[hh.district]
        go = ~hh.urban & (rng.random(hh.n) < p)
        hh.urban[go] = True
        hh.years_here[go] = 0

    # ---- set-up helpers --------------------------------------------------------------------------
    def _returner_origins(self) -> np.ndarray:
        """Home districts of returning natives ∝ rural population (assumption: migrant workers are
        mostly rural-registered; district registered-minus-resident counts are not available)."""
        rural = self._district_persons(~self.households.urban)
        return rural / rural.sum()

    def _control_path(self, base_total: float) -> dict[int, float]:
        """Yearly city-total targets: given years, geometric interpolation from the base year between."""
        ctl = {int(k): float(v) for k, v in self.cfg.external.control_total.items()}
        if not ctl:
            return {}
        pts = sorted(ctl.items())
        path: dict[int, float] = {}
        prev_y, prev_v = self.cfg.run.start_year, base_total
        for y, v in pts:
            for t in range(prev_y + 1, y + 1):
                path[t] = prev_v * (v / prev_v) ** ((t - prev_y) / (y - prev_y))
            prev_y, prev_v = y, v
        return path

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
                       attrs={"config_source": self.cfg.source, "households_per_agent": self.cfg.run.households_per_agent})


def simulate(config: Config | str | Path | None = None, seed: int | np.random.SeedSequence | None = None,
             *, until: int | None = None, progress: bool = False, geography: Geography | None = None) -> Results:
    """Build a model from a config (object, TOML path or None for defaults), run it, return Results."""
    cfg = config if isinstance(config, Config) else load_config(config)
    model = MigrationModel(cfg, rng=seed, geography=geography)
    model.run(until, progress=progress)
    return model.results()
