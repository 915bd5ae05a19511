"""The yearly migration decision written per household: the fair per-object baseline of the kernels.

Each household is a ``mesa.Agent`` holding the same state as its row of the column store; ``step()``
makes the same two-stage decision as :func:`migration_abm.migration.decide` — the same stage-1 terms
(migrant network and regional overload included), the same destination utility terms read from the
same district tables (:func:`migration_abm.migration.destination_tables`), and the same uniforms, one
per stage — in plain Python with ``math.exp``/``math.log``, driven by ``model.agents.do("step")``.
Movers relocate (district, flows). tests/test_kernels.py checks that it picks the same households and
the same destinations as the kernels; it is also the readable reference of what they compute.
"""

from __future__ import annotations

import math

import mesa
import numpy as np

from migration_abm.migration import destination_tables, logit, network
from migration_abm.policy import platform_covered


class HouseholdAgent(mesa.Agent):
    """One household: its state as Python scalars and the yearly decision in plain Python."""

    def __init__(self, model: ObjectModel, index: int, state: dict) -> None:
        super().__init__(model)
        self.index = index
        self.__dict__.update(state)
        self.choice = -1  # destination chosen this year (−1: did not consider moving)

    def step(self) -> None:
        m = self.model
        b = m.b
        h, o = self.head, self.origin
        jobless = (not self.employed) and self.workers > 0
        # stage 1: consider moving (logistic in the same terms as the kernel)
        x = (m.consider_base + b.consider_young * (1.0 if 18 <= h <= 34 else 0.0)
             + b.consider_old * (1.0 if h >= 60 else 0.0) + b.consider_unemployed * (1.0 if jobless else 0.0)
             + b.consider_rural * (1.0 if not self.urban else 0.0) + b.consider_overload * m.overload[self.district]
             + b.consider_network * m.moved_share[max(o, 0)] * (1.0 if o >= 0 else 0.0))
        if not m.u_consider[self.index] < 1.0 / (1.0 + math.exp(-x)):
            return
        # stage 2: destination utilities (staying at home keeps the current income)
        n, home = m.n, self.district
        earners = max(self.workers, 1)
        if self.employed and self.workers > 0:
            income = m.wage[home][self.sector] * m.skill_premium[self.skill] * earners
        else:
            income = m.fallback * m.nonfarm[home] * earners
        prem = m.skill_premium[self.skill] * earners
        cov = 1 if self.covered else 0
        cs = b.beta_cost / max(income, 1000.0)
        origin = o if o >= 0 else n
        inc, place, net, cost = m.inc[cov], m.place[home], m.net[origin], m.cost[cov][home]
        common = m.common
        u = [inc[j] + place[j] + net[j] + common[j] - cs * cost[j] for j in range(n)]
        if self.children:
            u = [u[j] + m.child_term[j] for j in range(n)]
        hk = self.hukou
        if hk >= 0:
            u[hk] += m.local_gain[hk] + (1.0 if self.children else 0.0) * m.local_child_gain[hk]
        u[home] += b.beta_income * (math.log(max(income, 1.0)) - math.log(prem))
        u[home] -= inc[home]
        top = max(u)
        cum, acc = [], 0.0
        for v in u:
            acc += math.exp(v - top)
            cum.append(acc)
        draw = m.next_choice_uniform() * acc
        self.choice = min(sum(1 for c in cum if c < draw), n - 1)
        if self.choice != home:  # move
            m.flows[home][self.choice] += self.persons
            self.district = self.choice
            self.years_here = 0
            self.employed = False


class ObjectModel(mesa.Model):
    """One :class:`HouseholdAgent` per household row of a :class:`MigrationModel`, with that model's
    district tables for this year; ``u_consider`` (one per household) and ``u_choose`` (one per
    considering household, in row order) are the uniforms of the two stages."""

    def __init__(self, src, u_consider: np.ndarray, u_choose: np.ndarray) -> None:
        super().__init__(rng=np.random.default_rng(0))
        hh, lab, cfg = src.households, src.labour, src.cfg
        self.b, self.n = cfg.behaviour, src.geo.n
        pop, stock, natives = network(src)
        # regional overload per district and the share of each origin's natives living elsewhere
        overload = np.clip(src.geo.to_regions(pop) / src.carrying_capacity - 1, 0, None)[src.geo.region_index]
        moved_share = stock.sum(axis=1) / np.maximum(natives, 1.0)
        self.overload, self.moved_share = overload.tolist(), moved_share.tolist()
        self.consider_base = logit(self.b.consider_base)
        for k, v in destination_tables(src, pop, (stock, natives)).items():
            setattr(self, k, v.tolist())
        self.wage, self.nonfarm = lab.wage.tolist(), lab.nonfarm_wage().tolist()
        self.skill_premium = lab.skill_premium.tolist()
        self.fallback = cfg.economy.unemployed_income_share
        self.u_consider, self._u_choose = u_consider.tolist(), iter(u_choose.tolist())
        self.flows = [[0.0] * self.n for _ in range(self.n)]
        covered = platform_covered(src.geo, cfg, src.year, hh, np.arange(hh.n))
        cols = {"head": hh.head_age(), "employed": hh.employed, "workers": hh.workers(), "urban": hh.urban,
                "district": hh.district, "origin": hh.origin, "hukou": hh.hukou_district, "sector": hh.sector,
                "skill": hh.skill, "children": hh.has_children(), "covered": covered, "persons": hh.persons(),
                "years_here": hh.years_here}
        lists = {k: v.tolist() for k, v in cols.items()}
        for i in range(hh.n):
            HouseholdAgent(self, i, {k: v[i] for k, v in lists.items()})

    def next_choice_uniform(self) -> float:
        return next(self._u_choose)

    def step(self) -> None:
        self.agents.do("step")

    def decisions(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows that considered moving, their chosen district), as :func:`migration.decide` returns."""
        chosen = [(a.index, a.choice) for a in self.agents if a.choice >= 0]
        rows, dest = zip(*chosen, strict=True) if chosen else ((), ())
        return np.asarray(rows, dtype=np.int64), np.asarray(dest, dtype=np.int16)
