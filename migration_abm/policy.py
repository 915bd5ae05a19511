"""Policy levers of the five-functional-regions strategy, in one home.

Each lever is a config block under ``[policy]`` that can be switched off (``enabled = false``) and has a
start year; the functions here translate a lever into what households and districts see in a given year
(hukou openness and admissions, migrant rights, the job-matching platform and its subsidies, the
land/fiscal link, ecological relocation). The labour market, the migration decision and the model call
them; adding a lever = its config block + its function here + its call site (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import mesa
import numpy as np

from migration_abm import kernels
from migration_abm.config import Config, RegionHukouRule
from migration_abm.geography import DESTINATION_REGIONS, ECO_REGIONS, REGIONS, Geography
from migration_abm.population import Households

#: years of required residence at which expected hukou access falls to 1/e
OPENNESS_SCALE_YEARS = 5.0


def active(block: object, year: int) -> bool:
    """Whether a policy block is switched on and has started by ``year``."""
    return bool(getattr(block, "enabled", False)) and year >= getattr(block, "start_year", 0)


# ---- hukou admission -----------------------------------------------------------------------------
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


def hukou_candidates(model: mesa.Model) -> dict[str, np.ndarray]:
    """Rows eligible for local urban hukou per regional office, in row order (one pass over the
    households): urban residents without local (or with agricultural) hukou, resident long enough,
    employed if the office requires it. An office's admissions change only its own districts' rows, so
    all offices' candidates can be taken before the first admits."""
    pol, geo, hh = model.cfg.policy.hukou, model.geo, model.households
    rules: list[RegionHukouRule] = [getattr(pol, r) for r in REGIONS]
    min_years = np.array([0 if rule.open_urban else rule.min_years for rule in rules], dtype=float)
    need_job = np.array([bool(rule.require_employment and not rule.open_urban) for rule in rules])
    rows, start = kernels.hukou_candidates(geo.region_index, min_years, need_job, hh.district, hh.urban,
                                           hh.hukou_district, hh.hukou_ag, hh.years_here, hh.employed,
                                           bool(pol.local_conversion))
    return {r: rows[start[k]:start[k + 1]] for k, r in enumerate(REGIONS)}


class HukouOffice(mesa.Agent):
    """Admits eligible residents of one functional region to local urban hukou under its rule."""

    def __init__(self, model: mesa.Model, region: str) -> None:
        super().__init__(model)
        self.region = region

    def step(self) -> None:
        """One year of admissions; conversions are reported to the model (counters, land/fiscal link)."""
        model = self.model
        cfg: Config = model.cfg
        pol = cfg.policy.hukou
        if not active(pol, model.year):
            return
        rule: RegionHukouRule = getattr(pol, self.region)
        hh: Households = model.households
        # every office's candidates at once when the model has computed them for this round of admissions
        pending = model.__dict__.get("pending_hukou_candidates")
        rows = (pending or hukou_candidates(model))[self.region]
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


# ---- migrant rights ------------------------------------------------------------------------------
def nonlocal_rights(cfg: Config, year: int) -> tuple[float, float]:
    """(schooling access, social-insurance access) of residents without local hukou."""
    base = cfg.behaviour.nonlocal_access
    mr = cfg.policy.migrant_rights
    if not active(mr, year):
        return base, base
    return max(base, mr.schooling_equal), max(base, mr.insurance_portability)


# ---- job-matching platform (对口招工) --------------------------------------------------------------
def platform_covered(geo: Geography, cfg: Config, year: int, hh: Households, rows: np.ndarray) -> np.ndarray:
    """Which of ``rows`` are eco-region households registered on the job platform this year."""
    jm = cfg.policy.job_matching
    if not jm.enabled or year < jm.start_year:
        return np.zeros(len(rows), dtype=bool)
    return geo.in_regions(ECO_REGIONS)[hh.district[rows]] & (hh.platform_u[rows] < jm.coverage)


def platform_uplift(geo: Geography, cfg: Config) -> np.ndarray:
    """Job-finding uplift per district for registered households: ``match_uplift`` on jobs in the
    expansion and new-development districts, 0 elsewhere."""
    return cfg.policy.job_matching.match_uplift * geo.in_regions(DESTINATION_REGIONS)


def recruitment_subsidy(cfg: Config, year: int) -> float:
    """Targeted recruitment subsidy (yuan) towards the destination regions for registered movers."""
    jm = cfg.policy.job_matching
    return jm.subsidy_yuan if active(jm, year) else 0.0


# ---- land / fiscal link (人地挂钩, 财政转移) ------------------------------------------------------
def land_fiscal_quotas(cfg: Config, year: int, settled: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(housing, service capacity) added per district for ``settled`` newly converted persons, or None
    when the link is off."""
    lf = cfg.policy.land_fiscal_link
    if not active(lf, year):
        return None
    return lf.housing_per_settled * settled, lf.service_per_settled * settled


# ---- ecological relocation (生态搬迁) -------------------------------------------------------------
def relocation_rate(geo: Geography, cfg: Config, year: int) -> np.ndarray | float:
    """Extra yearly probability that a rural household of an eco-region district moves to its towns."""
    reloc = cfg.policy.ecological_relocation
    if active(reloc, year) and year <= reloc.end_year:
        return reloc.rate * geo.in_regions(ECO_REGIONS)
    return 0.0
