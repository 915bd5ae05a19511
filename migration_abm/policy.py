"""Policy levers of the five-functional-regions strategy and the hukou offices that apply them.

Each lever is a config block that can be switched off (``enabled = false``) and has a start year; the
functions here translate a lever into what households see (openness, access) in a given year.
"""

from __future__ import annotations

import mesa
import numpy as np

from migration_abm.config import Config, RegionHukouRule
from migration_abm.geography import REGIONS, Geography
from migration_abm.population import Households

#: years of required residence at which expected hukou access falls to 1/e
OPENNESS_SCALE_YEARS = 5.0


def active(block: object, year: int) -> bool:
    """Whether a policy block is switched on and has started by ``year``."""
    return bool(getattr(block, "enabled", False)) and year >= getattr(block, "start_year", 0)


def hukou_openness(geo: Geography, cfg: Config, year: int) -> np.ndarray:
    """Expected hukou access for a newcomer per district in [0, 1]: exp(−min_years / 5), 1 where the
    region is fully open in towns, 0 when the hukou reform is off (pre-2010: closed to farmers)."""
    pol = cfg.policy.hukou
    if not active(pol, year):
        return np.zeros(geo.n)
    per_region = []
    for r in REGIONS:
        rule: RegionHukouRule = getattr(pol, r)
        per_region.append(1.0 if rule.open_urban else float(np.exp(-rule.min_years / OPENNESS_SCALE_YEARS)))
    return np.array(per_region)[geo.region_index]


def nonlocal_rights(cfg: Config, year: int) -> tuple[float, float]:
    """(schooling access, social-insurance access) of residents without local hukou."""
    base = cfg.behaviour.nonlocal_access
    mr = cfg.policy.migrant_rights
    if not active(mr, year):
        return base, base
    return max(base, mr.schooling_equal), max(base, mr.insurance_portability)


class HukouOffice(mesa.Agent):
    """Admits eligible residents of one functional region to local urban hukou under its rule."""

    def __init__(self, model: mesa.Model, region: str, geo: Geography) -> None:
        super().__init__(model)
        self.region = region
        self.districts = geo.in_regions((region,))

    def step(self) -> None:
        """One year of admissions; conversions are added to the model's per-district counter."""
        model = self.model
        cfg: Config = model.cfg
        pol = cfg.policy.hukou
        if not active(pol, model.year):
            return
        rule: RegionHukouRule = getattr(pol, self.region)
        hh: Households = model.households
        here = self.districts[hh.district] & hh.urban
        nonlocal_ = hh.hukou_district != hh.district
        candidates = here & (nonlocal_ | (hh.hukou_ag & pol.local_conversion))
        min_years = 0 if rule.open_urban else rule.min_years
        ok = candidates & (hh.years_here >= min_years)
        if rule.require_employment and not rule.open_urban:
            ok &= hh.employed
        rows = np.flatnonzero(ok)
        rows = rows[model.rng.random(len(rows)) < pol.apply_rate]
        if rule.quota > 0 and len(rows):
            rows = model.rng.permutation(rows)
            persons = hh.persons()[rows]
            rows = rows[np.cumsum(persons) <= rule.quota]
        if not len(rows):
            return
        persons = hh.persons()[rows]
        hh.hukou_district[rows] = hh.district[rows]
        hh.hukou_ag[rows] = False
        model.record_conversions(rows, persons)
