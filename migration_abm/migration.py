"""The migration decision (as Flee's ``moving.py``): who considers moving, where to, and the moves.

Functions of the model's state, called by :meth:`MigrationModel.step` in this order each year:
external out/in migration (with arrivals and their placement), return migration, internal migration
(consideration, then a conditional-logit destination choice in which staying is one alternative), and
local urbanisation. Policy levers enter through :mod:`migration_abm.policy`. See docs/ODD.md §3.4.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from migration_abm import kernels
from migration_abm.geography import DESTINATION_REGIONS, ECO_REGIONS, REGIONS
from migration_abm.policy import (
    hukou_openness,
    nonlocal_rights,
    platform_covered,
    platform_uplift,
    recruitment_subsidy,
    relocation_rate,
)
from migration_abm.population import GROWTH, NO_MEMBER, OUTSIDE, Households

CHUNK = 1 << 13  # rows per destination-choice block: keeps the [rows × districts] buffer in cache
#: mean persons per arriving household (assumption; arrivals are mostly young couples and singles)
ARRIVAL_MEAN_SIZE = 1.9

Model = Any  # a MigrationModel; typed loosely so this module does not import model.py (no cycle)


def logit(p: float) -> float:
    """Log-odds of a probability, clipped away from 0 and 1."""
    p = min(max(p, 1e-12), 1 - 1e-12)
    return float(np.log(p / (1 - p)))


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function."""
    return 1.0 / (1.0 + np.exp(-x))


def geometric_path(points: dict[int, float], years: range, carry_forward: bool = False) -> dict[int, float]:
    """Yearly values between given (year → value) points by geometric interpolation; years after the
    last point carry it forward when ``carry_forward``, else are left out (before the first: first)."""
    ys = sorted(points)
    out: dict[int, float] = {}
    for y in years:
        if y in points:
            out[y] = points[y]
            continue
        lo = max([k for k in ys if k < y], default=ys[0])
        hi = min([k for k in ys if k > y], default=None)
        if hi is None:
            if carry_forward:
                out[y] = points[lo]
            continue
        out[y] = points[lo] * (points[hi] / points[lo]) ** ((y - lo) / (hi - lo))
    return out


# ---- district state the decision reads ----------------------------------------------------------
def pressures(model: Model, pop: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(population, service per capita, housing pressure) per district, for destination choice
    (``pop``: the district populations when the caller has them)."""
    pop = model.district_persons() if pop is None else pop
    service_pc = model.service / np.maximum(pop, 1.0)
    pressure = np.clip(pop / np.maximum(model.housing, 1.0) - 0.9, 0, None) / 0.1
    return pop, service_pc, pressure


def network(model: Model) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Persons per district, migrant stock M[origin, district] (persons) and natives per origin district
    (one pass over the households, :func:`kernels.network_totals`)."""
    hh, n = model.households, model.geo.n
    pop, stock, natives = np.empty(n), np.empty((n, n)), np.empty(n)
    kernels.network_totals(hh.origin, hh.district, hh.persons(), np.empty((n, n + 1), dtype=bool), pop, stock, natives)
    return pop, stock, natives


# ---- the moves -------------------------------------------------------------------------------------
def move(model: Model, rows: np.ndarray, dest: np.ndarray) -> None:
    """Relocate households ``rows`` to districts ``dest`` and record the flows."""
    hh = model.households
    rows, dest, out, into = kernels.relocate(rows, dest.astype(np.int16), hh.district, hh.persons(),
                                             model.flow_matrix, model.geo.n)
    if not len(rows):
        return
    model.counts["out_migrants"] += out
    model.counts["in_migrants"] += into
    hh.urban[rows] = model.rng.random(len(rows)) < np.maximum(model.cfg.behaviour.mover_urban_share,
                                                               model.base_urban[dest])
    hh.years_here[rows] = 0
    hh.employed[rows] = False
    hire_arrivals(model, rows)


def hire_arrivals(model: Model, rows: np.ndarray) -> None:
    """Newly arrived job seekers look for work at once (platform registrants with the uplift)."""
    hh, geo, cfg = model.households, model.geo, model.cfg
    seekers = rows[hh.workers()[rows] > 0]
    if len(seekers):
        covered = platform_covered(geo, cfg, model.year, hh, seekers)
        model.labour.match(hh, model.rng, seekers, covered * platform_uplift(geo, cfg)[hh.district[seekers]])


# ---- destination choice ------------------------------------------------------------------------------
def destination_tables(model: Model, pop: np.ndarray, net_state: tuple[np.ndarray, np.ndarray]) -> dict[str, np.ndarray]:
    """District tables of the destination utility this year (``pop``, ``net_state``: district populations
    and :func:`network` now), looked up per household by the ``utilities`` kernel:
    ``inc[registered, j]`` = β_income · Harris–Todaro log expected wage (platform uplift if registered),
    ``place[home, j]`` (distance, stay bonus), ``net[origin, j]`` = β_network · log1p(1000 · migrant stock
    from the same origin / its natives), ``cost[registered, home, j]`` (row n of home/origin = none),
    ``common[j]`` = β_service · log service per capita − β_housing · pressure + β_size · log non-farm jobs
    + β_hukou · openness + β_insurance · insurance (+ β_trend · census trend), ``child_term[j]`` and, at
    the hukou district, ``local_gain`` and ``local_child_gain``. A new district-level term is one more
    addend of ``common`` (kernels.destination_terms). numpy takes the logarithms, the kernels the rest;
    :func:`decide` builds the same tables in its own buffers."""
    lab, n = model.labour, model.geo.n
    stock, natives = net_state
    y = _year_tables(model)
    logs, net_arg, pressure = np.empty((4, n)), np.empty((n, n)), np.empty(n)
    kernels.destination_log_args(model.service, pop, model.housing, lab.jobs, lab.wage, lab.find_rate, y["uplift"],
                                 model.cfg.economy.unemployed_income_share, stock, natives, logs, net_arg, pressure)
    np.log(logs, out=logs)
    np.log1p(net_arg, out=net_arg)
    inc, net, common = np.empty((2, n)), np.empty((n + 1, n)), np.empty(n)
    kernels.destination_terms(logs, net_arg, pressure, *y["destination_coef"][:4], y["openness"],
                              y["destination_coef"][4], y["insurance"], y["destination_coef"][5], model.census_trend,
                              *y["destination_coef"][6:], inc, net, common)
    return _tables(y, inc, net, common)


def _tables(y: dict, inc: np.ndarray, net: np.ndarray, common: np.ndarray) -> dict[str, np.ndarray]:
    """The destination tables the ``utilities`` kernel reads: this year's (``y``) and these."""
    return {"inc": inc, "place": y["place"], "net": net, "common": common, "cost": y["cost"],
            "child_term": y["child_term"], "local_gain": y["local_gain"], "local_child_gain": y["local_child_gain"]}


def _year_tables(model: Model) -> dict:
    """The parts of :func:`destination_tables` that change only with the year (policy levers, distances,
    job-platform registration, the coefficients the kernels take as arrays), computed once per year."""
    cached = model.__dict__.get("_decision_year_tables")
    if cached is not None and cached[0] == model.year:
        return cached[1]
    cfg, b, geo = model.cfg, model.cfg.behaviour, model.geo
    n = geo.n
    openness = hukou_openness(geo, cfg, model.year)
    school_nl, ins_nl = nonlocal_rights(cfg, model.year)
    school = openness + (1 - openness) * school_nl
    insurance = openness + (1 - openness) * ins_nl
    subsidy = recruitment_subsidy(cfg, model.year)
    dest_region = geo.in_regions(DESTINATION_REGIONS)
    # [home (n = no home), district]: distance, stay bonus; [registered?, home, district]: cost
    dist = np.vstack([geo.distance_km, np.zeros((1, n))])
    place = -b.beta_distance * np.log1p(dist)
    place[np.arange(n), np.arange(n)] += b.beta_stay
    cost = np.maximum(0.0, b.moving_cost_yuan + b.cost_per_km_yuan * dist
                      - subsidy * np.array([0.0, 1.0])[:, None, None] * dest_region)
    cost[:, np.arange(n), np.arange(n)] = 0.0
    jm = cfg.policy.job_matching
    tables = {"openness": openness, "insurance": insurance, "uplift": platform_uplift(geo, cfg), "place": place,
              "cost": cost, "child_term": b.beta_school * school,
              # local hukou unlocks full access: correction at the hukou district's column
              "local_gain": b.beta_hukou * (1 - openness) + b.beta_insurance * (1 - insurance),
              "local_child_gain": b.beta_school * (1 - school),
              # job-platform registration (as policy.platform_covered): eco-region district, platform_u < coverage
              # (compared in the type numpy would compare float32 platform_u with the coverage in)
              "platform": (bool(jm.enabled and model.year >= jm.start_year), geo.in_regions(ECO_REGIONS),
                           np.result_type(np.float32, jm.coverage).type(jm.coverage)),
              "consider_coef": np.array([logit(b.consider_base), b.consider_young, b.consider_old,
                                         b.consider_unemployed, b.consider_rural, b.consider_overload,
                                         b.consider_network]),
              "destination_coef": np.array([b.beta_service, b.beta_housing, b.beta_size, b.beta_hukou,
                                            b.beta_insurance, b.beta_trend, b.beta_income, b.beta_network])}
    model.__dict__["_decision_year_tables"] = (model.year, tables)
    return tables


def choose(model: Model, rows: np.ndarray, home: np.ndarray, income_now: np.ndarray,
           network_origin: np.ndarray, pop: np.ndarray,
           net_state: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Multinomial-logit destination choice for ``rows`` (staying at ``home`` is one alternative).

    ``home`` is the district a household would stay in (−1: none, e.g. arrivals from outside);
    distances and moving costs are measured from it. Utility terms: log expected income
    (Harris–Todaro), hukou accessibility and what it unlocks (schooling, insurance), public services
    per capita, district size, distance and moving cost net of recruitment subsidies, the migrant
    network from the same origin, housing pressure, and inertia for staying (docs/ODD.md §3.4).
    ``pop`` and ``net_state`` (:func:`network`) are the district populations and migrant stocks now.

    Every term is a district table (:func:`destination_tables`) indexed by a few household keys; the
    compiled kernel gathers them per household, numpy takes the exp and the logarithms of the stay gain,
    and one uniform per household makes the inverse-CDF draw. benchmarks/per_object.py is the same
    computation written per household in plain Python.
    """
    if not len(rows):
        return np.empty(0, dtype=np.int16)
    hh = model.households
    t = destination_tables(model, pop, net_state)
    stay = np.empty((len(rows), 2))
    kernels.stay_log_args(rows, income_now, hh.skill, hh.workers(), model.labour.skill_premium, stay)
    np.log(stay, out=stay)
    return _draw(model, rows, home, network_origin, income_now, stay, t)


def _draw(model: Model, rows: np.ndarray, home: np.ndarray, network_origin: np.ndarray, income: np.ndarray,
          stay_logs: np.ndarray, t: dict[str, np.ndarray]) -> np.ndarray:
    """Destination utilities of ``rows`` (blocks of ``CHUNK`` rows in a reused buffer), numpy's exp, and
    the inverse-CDF draw with one uniform per household."""
    hh, b, n = model.households, model.cfg.behaviour, model.geo.n
    platform_on, eco, coverage = _year_tables(model)["platform"]
    kids = hh.counts()["kids"]
    out = np.empty(len(rows), dtype=np.int16)
    buf = hh.scratch(6, min(CHUNK, len(rows)) * n).reshape(-1, n)
    for lo in range(0, len(rows), CHUNK):
        u = buf[:min(CHUNK, len(rows) - lo)]
        kernels.utilities(u, lo, rows, home, network_origin, income, stay_logs, hh.district, hh.platform_u, eco,
                          coverage, platform_on, kids, hh.hukou_district, b.beta_cost, b.beta_income, t["inc"],
                          t["place"], t["net"], t["common"], t["cost"], t["child_term"], t["local_gain"],
                          t["local_child_gain"])
        np.exp(u, out=u)
        kernels.inverse_cdf(u, model.rng.random(len(u)), out, lo)
    return out


# ---- the yearly flows ----------------------------------------------------------------------------------
class _DecisionBuffers:
    """Work arrays of :func:`decide` for ``n`` districts, kept with the model (its district tables are
    rebuilt in them every call)."""

    def __init__(self, geo: Any) -> None:
        n = geo.n
        self.present, self.slot = np.empty((n, n + 1), dtype=bool), np.empty((n, n + 1), dtype=np.int64)
        self.pairs, self.dense = np.empty(n * (n + 1), dtype=np.int64), np.empty(n * (n + 1) * 12)
        # dtype of the households' index into the dense stage-1 table [district, origin + 1, class]
        self.key_dtype = np.int16 if 12 * n * (n + 1) <= np.iinfo(np.int16).max else np.int32
        self.pop, self.stock, self.natives = np.empty(n), np.empty((n, n)), np.empty(n)
        self.p = np.empty(n * (n + 1) * 12)  # stage-1 table, 12 household classes per present (district, origin)
        self.logs, self.net_arg, self.pressure = np.empty((4, n)), np.empty((n, n)), np.empty(n)
        self.inc, self.net, self.common = np.empty((2, n)), np.empty((n + 1, n)), np.empty(n)
        self.region_rows = np.concatenate([np.flatnonzero(geo.region_index == r) for r in range(len(REGIONS))])
        self.region_start = np.searchsorted(geo.region_index[self.region_rows], np.arange(len(REGIONS) + 1))
        self._rows, self._views, self._buffers = 0, (), ()

    def per_row(self, n: int) -> tuple[np.ndarray, ...]:
        """(stage-1 table index, considering rows, their home, origin, income, stay-gain arguments) for
        ``n`` households, in buffers kept from year to year (with ``GROWTH`` spare capacity)."""
        if n != self._rows:
            if not self._buffers or len(self._buffers[0]) < n:
                cap = int(n * GROWTH) + 1024
                self._buffers = (np.empty(cap, self.key_dtype), np.empty(cap, np.int64), np.empty(cap, np.int16),
                                 np.empty(cap, np.int16), np.empty(cap), np.empty((cap, 2)))
            self._rows, self._views = n, tuple(b[:n] for b in self._buffers)
        return self._views


def decide(model: Model) -> tuple[np.ndarray, np.ndarray]:
    """The yearly decision: stage 1, who considers moving (one uniform per household); stage 2, where
    to (one uniform per considering household). Returns (rows, chosen district) — staying included;
    ``rows`` is valid until the next decision.

    Stage 1 is logistic in the household head's age (18-34, 60+), joblessness, rural residence, its
    region's overload and the share of its origin's natives living elsewhere; stage 2 is :func:`choose`'s
    destination choice. Four compiled calls (the district tables; stage 1 with the considering
    households' keys, incomes and the destination tables; then per block of rows the utilities and the
    draw) around numpy's exp, logarithms and uniforms."""
    hh, geo, lab = model.households, model.geo, model.labour
    ws = model.__dict__.get("_decision_buffers")
    if ws is None:
        ws = model.__dict__["_decision_buffers"] = _DecisionBuffers(geo)
    y = _year_tables(model)
    fallback = model.cfg.economy.unemployed_income_share
    key, rows, home, origin, income, stay = ws.per_row(hh.n)
    m = kernels.decision_tables(hh.origin, hh.district, hh.persons(), hh.head_age(), hh.workers(), hh.employed,
                                hh.urban, key, ws.present, ws.pop, ws.stock, ws.natives, ws.region_rows,
                                ws.region_start, geo.region_index, model.carrying_capacity, y["consider_coef"],
                                ws.slot, ws.pairs, ws.p, model.service, model.housing, lab.jobs, lab.wage,
                                lab.find_rate, y["uplift"], fallback, ws.logs, ws.net_arg, ws.pressure)
    p = ws.p[:12 * m]
    np.exp(p, out=p)
    np.log(ws.logs, out=ws.logs)
    np.log1p(ws.net_arg, out=ws.net_arg)
    k = kernels.consider(hh.uniforms(model.rng), p, ws.pairs[:m], ws.dense, key, hh.employed, hh.workers(),
                         hh.district, hh.origin, hh.sector, hh.skill, lab.wage, lab.skill_premium, fallback, rows, home,
                         origin, income, stay, ws.logs, ws.net_arg, ws.pressure, y["destination_coef"], y["openness"],
                         y["insurance"], model.census_trend, ws.inc, ws.net, ws.common)
    if not k:
        return rows[:0], np.empty(0, dtype=np.int16)
    stay = stay[:k]
    np.log(stay, out=stay)
    return rows[:k], _draw(model, rows[:k], home[:k], origin[:k], income[:k], stay, _tables(y, ws.inc, ws.net, ws.common))


def internal_migration(model: Model) -> None:
    """Internal migration: :func:`decide`, then the moves."""
    move(model, *decide(model))


def return_migration(model: Model) -> None:
    """Unsettled migrants (no local hukou) go back to their origin district."""
    hh, b = model.households, model.cfg.behaviour
    p = sigmoid(logit(b.return_rate) + b.return_unemployed * np.array([False, True]))  # [jobless?]
    rows = kernels.returners(hh.uniforms(model.rng), hh.origin, hh.district, hh.hukou_district, hh.employed,
                             hh.workers(), p)
    move(model, rows, hh.origin[rows])


def external_out_and_in(model: Model) -> None:
    """Migration to and from the rest of China, optionally scaled to hit a city control total."""
    hh, ext, rng, lab = model.households, model.cfg.external, model.rng, model.labour
    if not ext.enabled:
        return
    city_wage = np.average(lab.nonfarm_wage(), weights=np.maximum(model.district_persons(), 1))
    gap = np.log(city_wage / lab.nonfarm_wage())
    flag = np.array([False, True])
    # [jobless?, head aged 18-34?, district]
    table = sigmoid(logit(ext.out_rate) + ext.out_unemployed * flag[:, None, None]
                    + ext.out_young * flag[None, :, None] + ext.out_wage_gap * gap[None, None, :])
    p_out = hh.scratch(1)
    kernels.external_p(hh.head_age(), hh.employed, hh.workers(), hh.district, table, p_out)
    persons = hh.persons()
    ref = ext.in_reference_year or model.cfg.run.start_year + 1
    arrivals = ext.in_persons_per_year * (1 + ext.in_growth) ** (model.year - ref)
    target = model.control.get(model.year)
    if target is not None:
        net_needed = target - hh.live_sum(persons)  # (as over the rows that stay: see Households.keep_empty)
        expected_out = hh.live_sum(np.multiply(p_out, persons, out=hh.scratch(0)))
        if net_needed >= arrivals - expected_out:
            arrivals = net_needed + expected_out
        else:
            np.multiply(p_out, arrivals - net_needed, out=p_out)
            np.divide(p_out, max(expected_out, 1e-9), out=p_out)
            np.minimum(1.0, p_out, out=p_out)
    keep = np.empty(hh.n, dtype=bool)
    gone = kernels.leave(hh.uniforms(rng), p_out, hh.district, persons, keep, model.geo.n)
    model.counts["external_out"] += gone
    model.counts["out_migrants"] += gone
    model.drop(keep)
    arrive(model, arrivals)


def arrive(model: Model, persons_target: float) -> None:
    """Create arriving households (returning natives and other-province migrants) and place them."""
    if persons_target <= 0:
        return
    cfg, rng, geo = model.cfg, model.rng, model.geo
    k = model.households.ages.shape[1]
    n_exp = persons_target / (ARRIVAL_MEAN_SIZE * cfg.run.households_per_agent)
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
    origin = np.where(returner, rng.choice(geo.n, size=n, p=model.returner_origin_p), OUTSIDE).astype(np.int16)
    skill = rng.choice(3, size=n, p=[0.4, 0.45, 0.15]).astype(np.int8)
    new = Households(ages=ages, district=np.maximum(origin, 0).astype(np.int16), urban=np.ones(n, bool),
                     origin=origin, hukou_district=origin.copy(), hukou_ag=np.ones(n, bool), skill=skill,
                     employed=np.zeros(n, bool), sector=np.ones(n, np.int8), years_here=np.zeros(n, np.int16),
                     platform_u=rng.random(n, dtype=np.float32),
                     weight=np.full(n, float(cfg.run.households_per_agent)))
    hh = model.households
    start = hh.n
    hh.extend(new)
    rows = np.arange(start, hh.n)
    # arrivals earn what a newcomer would: use the city's mean wage as their reference income
    pop, stock, natives = network(model)  # (arrivals counted where they entered)
    ref = np.full(n, np.average(model.labour.nonfarm_wage(), weights=np.maximum(pop, 1)))
    # returning natives weigh destinations from their home district (going home = staying);
    # other-province migrants have no home district in Chongqing
    dest = choose(model, rows, origin, ref, origin, pop, (stock, natives))
    hh.district[rows] = dest
    hh.urban[rows] = rng.random(n) < np.maximum(cfg.behaviour.mover_urban_share, model.base_urban[dest])
    persons = hh.persons()[rows]
    model.add_count("external_in", dest, persons)
    model.add_count("in_migrants", dest, persons)
    hire_arrivals(model, rows)


def local_urbanisation(model: Model) -> None:
    """Rural households move to their own district's towns; eco-region relocation adds to it."""
    hh, cfg = model.households, model.cfg
    p = np.full(model.geo.n, cfg.behaviour.rural_to_urban_rate)  # per district
    reloc = relocation_rate(model.geo, cfg, model.year)
    if not np.isscalar(reloc):
        p += reloc
    kernels.urbanise(hh.uniforms(model.rng), p, hh.district, hh.urban, hh.years_here)
