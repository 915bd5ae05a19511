"""The migration decision (as Flee's ``moving.py``): who considers moving, where to, and the moves.

Functions of the model's state, called by :meth:`MigrationModel.step` in this order each year:
external out/in migration (with arrivals and their placement), return migration, internal migration
(consideration, then a conditional-logit destination choice in which staying is one alternative), and
local urbanisation. Policy levers enter through :mod:`migration_abm.policy`. See docs/ODD.md §3.4.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from migration_abm.geography import DESTINATION_REGIONS
from migration_abm.policy import (
    hukou_openness,
    nonlocal_rights,
    platform_covered,
    platform_uplift,
    recruitment_subsidy,
    relocation_rate,
)
from migration_abm.population import NO_MEMBER, OUTSIDE, Households

CHUNK = 1 << 17  # rows per destination-choice block: bounds the [rows × districts] temporaries
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
def pressures(model: Model) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(population, service per capita, housing pressure) per district, for destination choice."""
    pop = model.district_persons()
    service_pc = model.service / np.maximum(pop, 1.0)
    pressure = np.clip(pop / np.maximum(model.housing, 1.0) - 0.9, 0, None) / 0.1
    return pop, service_pc, pressure


def network(model: Model) -> tuple[np.ndarray, np.ndarray]:
    """Migrant stock M[origin, district] (persons) and natives per origin district."""
    hh, n = model.households, model.geo.n
    inside = hh.origin >= 0
    idx = hh.origin[inside].astype(np.int64) * n + hh.district[inside]
    stock = np.bincount(idx, weights=hh.persons()[inside], minlength=n * n).reshape(n, n)
    natives = stock.sum(axis=1)
    np.fill_diagonal(stock, 0.0)
    return stock, natives


# ---- the moves -------------------------------------------------------------------------------------
def move(model: Model, rows: np.ndarray, dest: np.ndarray) -> None:
    """Relocate households ``rows`` to districts ``dest`` and record the flows."""
    hh = model.households
    moving = dest != hh.district[rows]
    rows, dest = rows[moving], dest[moving]
    if not len(rows):
        return
    persons = hh.persons()[rows]
    orig = hh.district[rows]
    np.add.at(model.flow_matrix, (orig, dest), persons)
    model.add_count("out_migrants", orig, persons)
    model.add_count("in_migrants", dest, persons)
    hh.district[rows] = dest
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
def choose(model: Model, rows: np.ndarray, home: np.ndarray, income_now: np.ndarray,
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
    cfg, b, geo, hh, lab = model.cfg, model.cfg.behaviour, model.geo, model.households, model.labour
    out = np.empty(len(rows), dtype=np.int16)
    if not len(rows):
        return out
    n = geo.n
    _, service_pc, pressure = pressures(model)
    stock, natives = network(model)
    openness = hukou_openness(geo, cfg, model.year)
    school_nl, ins_nl = nonlocal_rights(cfg, model.year)
    school = openness + (1 - openness) * school_nl
    insurance = openness + (1 - openness) * ins_nl
    subsidy = recruitment_subsidy(cfg, model.year)
    dest_region = geo.in_regions(DESTINATION_REGIONS)
    size = np.log(np.maximum(lab.jobs[:, 1:].sum(axis=1), 1.0))
    common = (b.beta_service * np.log(np.maximum(service_pc, 1e-6)) - b.beta_housing * pressure
              + b.beta_size * size + b.beta_hukou * openness + b.beta_insurance * insurance)
    if b.beta_trend:
        common += b.beta_trend * model.census_trend
    child_term = b.beta_school * school
    # [registered?, district]: Harris–Todaro log expected wage (platform uplift if registered)
    inc = b.beta_income * np.stack([lab.log_expected_wage(np.zeros(n)),
                                    lab.log_expected_wage(platform_uplift(geo, cfg))])
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
    prem = lab.skill_premium[hh.skill[rows]] * np.maximum(hh.workers()[rows], 1)
    covered = platform_covered(geo, cfg, model.year, hh, rows).astype(np.int64)
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
        draw = model.rng.random(m) * u[:, -1]
        out[sl] = np.minimum((u < draw[:, None]).sum(axis=1), n - 1)
    return out


# ---- the yearly flows ----------------------------------------------------------------------------------
def internal_migration(model: Model) -> None:
    """Stage 1: who considers moving this year; stage 2: where to (staying is an option)."""
    hh, b, geo = model.households, model.cfg.behaviour, model.geo
    pop, _, _ = pressures(model)
    overload = np.clip(geo.to_regions(pop) / model.carrying_capacity - 1, 0, None)[geo.region_index]
    stock, natives = network(model)
    moved_share = stock.sum(axis=1) / np.maximum(natives, 1.0)
    head = hh.head_age()
    jobless = ~hh.employed & (hh.workers() > 0)
    x = (logit(b.consider_base) + b.consider_young * ((head >= 18) & (head <= 34))
         + b.consider_old * (head >= 60) + b.consider_unemployed * jobless + b.consider_rural * ~hh.urban
         + b.consider_overload * overload[hh.district]
         + b.consider_network * moved_share[np.maximum(hh.origin, 0)] * (hh.origin >= 0))
    rows = np.flatnonzero(model.rng.random(hh.n) < sigmoid(x))
    income = model.labour.income(hh)[rows]
    dest = choose(model, rows, hh.district[rows], income, hh.origin[rows])
    move(model, rows, dest)


def return_migration(model: Model) -> None:
    """Unsettled migrants (no local hukou) go back to their origin district."""
    hh, b = model.households, model.cfg.behaviour
    away = (hh.origin >= 0) & (hh.origin != hh.district) & (hh.hukou_district != hh.district)
    jobless = ~hh.employed & (hh.workers() > 0)
    p = sigmoid(logit(b.return_rate) + b.return_unemployed * jobless)
    rows = np.flatnonzero(away & (model.rng.random(hh.n) < p))
    move(model, rows, hh.origin[rows].astype(np.int16))


def external_out_and_in(model: Model) -> None:
    """Migration to and from the rest of China, optionally scaled to hit a city control total."""
    hh, ext, rng, lab = model.households, model.cfg.external, model.rng, model.labour
    if not ext.enabled:
        return
    head = hh.head_age()
    jobless = ~hh.employed & (hh.workers() > 0)
    city_wage = np.average(lab.nonfarm_wage(), weights=np.maximum(model.district_persons(), 1))
    gap = np.log(city_wage / lab.nonfarm_wage())[hh.district]
    p_out = sigmoid(logit(ext.out_rate) + ext.out_unemployed * jobless
                    + ext.out_young * ((head >= 18) & (head <= 34)) + ext.out_wage_gap * gap)
    persons = hh.persons()
    ref = ext.in_reference_year or model.cfg.run.start_year + 1
    arrivals = ext.in_persons_per_year * (1 + ext.in_growth) ** (model.year - ref)
    target = model.control.get(model.year)
    if target is not None:
        net_needed = target - persons.sum()
        expected_out = float((p_out * persons).sum())
        if net_needed >= arrivals - expected_out:
            arrivals = net_needed + expected_out
        else:
            p_out = np.minimum(1.0, p_out * (arrivals - net_needed) / max(expected_out, 1e-9))
    leave = rng.random(hh.n) < p_out
    model.add_count("external_out", hh.district[leave], persons[leave])
    model.add_count("out_migrants", hh.district[leave], persons[leave])
    model.drop(~leave)
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
    ref = np.full(n, np.average(model.labour.nonfarm_wage(), weights=np.maximum(model.district_persons(), 1)))
    # returning natives weigh destinations from their home district (going home = staying);
    # other-province migrants have no home district in Chongqing
    dest = choose(model, rows, origin, ref, origin)
    hh.district[rows] = dest
    hh.urban[rows] = rng.random(n) < np.maximum(cfg.behaviour.mover_urban_share, model.base_urban[dest])
    persons = hh.persons()[rows]
    model.add_count("external_in", dest, persons)
    model.add_count("in_migrants", dest, persons)
    hire_arrivals(model, rows)


def local_urbanisation(model: Model) -> None:
    """Rural households move to their own district's towns; eco-region relocation adds to it."""
    hh, rng, cfg = model.households, model.rng, model.cfg
    p = np.full(hh.n, cfg.behaviour.rural_to_urban_rate)
    reloc = relocation_rate(model.geo, cfg, model.year)
    if not np.isscalar(reloc):
        p += reloc[hh.district]
    go = ~hh.urban & (rng.random(hh.n) < p)
    hh.urban[go] = True
    hh.years_here[go] = 0
