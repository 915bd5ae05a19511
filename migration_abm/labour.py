"""Labour market: jobs and wages per district and sector, vacancies, separations and job finding.

A single Mesa agent holds the [district, sector] tables; households' employment lives in the
household columns, so matching is one vectorised pass over job seekers.
"""

from __future__ import annotations

import mesa
import numpy as np

from migration_abm import kernels
from migration_abm.config import Config
from migration_abm.geography import REGIONS, Geography, data_path
from migration_abm.population import SECTORS, Households


def district_productivity(geo: Geography, cfg: Config) -> np.ndarray:
    """Relative productivity per district, as the city mean × (GDP per capita / city mean) raised to
    ``productivity_elasticity`` (wage gaps are narrower than GDP-per-capita gaps).

    GDP per capita: with ``economy.district_gdp_year`` (at most the run's start year, checked by the
    config) the district's own GDP per resident of that year where the packaged table has it, else its
    region's population-weighted mean of the districts that have it; without it, the region's figure
    ``economy.gdp_per_capita_by_region`` (2010 regional GDP)."""
    import pandas as pd

    e = cfg.economy
    gdp_pc = np.array([e.gdp_per_capita_by_region.get(r, np.nan) for r in REGIONS])[geo.region_index]
    if np.isnan(gdp_pc).any():
        gdp_pc = np.where(np.isnan(gdp_pc), np.nanmean(gdp_pc), gdp_pc)
    year = e.district_gdp_year
    if year and geo.source == "chongqing":
        econ = pd.read_csv(data_path("chongqing_district_economy.csv"), dtype={"code": str}).set_index("code")
        residents = geo.population(year)
        own = econ[f"gdp_{year}"].reindex(geo.codes).to_numpy(float) * 1e8 / residents
        for r in np.unique(geo.region_index):
            m = geo.region_index == r
            known = m & np.isfinite(own)
            if known.any():
                gdp_pc[m] = np.where(np.isfinite(own[m]), own[m], np.average(own[known], weights=residents[known]))
    weights = geo.population(cfg.run.start_year)
    mean = np.average(gdp_pc, weights=np.where(np.isfinite(weights), weights, 0.0))
    return mean * (gdp_pc / mean) ** e.productivity_elasticity


class LabourMarket(mesa.Agent):
    """Jobs J[d, s], wages W[d, s] and the yearly job-finding rate per district."""

    def __init__(self, model: mesa.Model, geo: Geography, cfg: Config, hh: Households) -> None:
        super().__init__(model)
        self.geo, self.cfg = geo, cfg
        e = cfg.economy
        workers = hh.workers() * hh.weight
        persons = hh.persons().sum()
        employed_share = workers[hh.employed].sum() / persons
        premium = np.array([e.sector_wage_premium.get(s, 1.0) for s in SECTORS])
        self.wage = (district_productivity(geo, cfg) * e.labour_share / max(employed_share, 1e-9))[:, None] * premium
        self.jobs = self.employment(hh) * (1 + e.vacancy_rate)
        self.find_rate = np.full(geo.n, 0.5)
        growth = [getattr(e, r) for r in REGIONS]
        self._job_growth = np.array([[g.agriculture, g.industry, g.services] for g in growth])[geo.region_index]
        self._wage_growth = np.array([g.wage_growth for g in growth])[geo.region_index]
        self.skill_premium = np.asarray(e.skill_wage_premium, dtype=float)

    def employment(self, hh: Households) -> np.ndarray:
        """Employed workers (persons) by [district, sector]."""
        return kernels.employment(hh.district, hh.sector, hh.employed, hh.workers(), hh.weight, self.geo.n,
                                  len(SECTORS))

    def nonfarm_wage(self) -> np.ndarray:
        """Mean of industry and service wages per district (what a mover expects to earn; the sum and
        division ``wage[:, 1:].mean(axis=1)`` makes, without its overhead)."""
        return (self.wage[:, 1] + self.wage[:, 2]) / 2

    def grow(self) -> None:
        """Apply the economy scenario: jobs and wages grow at their regional rates."""
        self.jobs *= 1 + self._job_growth
        self.wage *= (1 + self._wage_growth)[:, None]

    def step(self) -> None:
        """Grow the economy, separate workers, match job seekers (households in the model's columns)."""
        hh: Households = self.model.households
        rng = self.model.rng
        self.grow()
        # separations: churn plus layoffs where employment exceeds jobs (e.g. shrinking farming)
        emp = self.employment(hh)
        excess = np.clip((emp - self.jobs) / np.maximum(emp, 1e-9), 0, 1)
        p_sep = 1 - (1 - self.cfg.economy.separation_rate) * (1 - excess)  # [district, sector]
        seekers = kernels.separate(hh.uniforms(rng), p_sep, hh.district, hh.sector, hh.employed, hh.workers())
        self.match(hh, rng, seekers)

    def match(self, hh: Households, rng: np.random.Generator, seekers: np.ndarray,
              uplift: np.ndarray | None = None) -> None:
        """Hire seekers (row indices) in their current district: hires = m·sqrt(U·V), capped at V.

        ``uplift`` (per seeker) raises the hiring odds of job-platform registrants.
        """
        n = self.geo.n
        vac = np.clip(self.jobs - self.employment(hh), 0, None)
        u = kernels.seeking_workers(seekers, hh.district, hh.workers(), hh.weight, n)
        v = vac.sum(axis=1)
        hires = np.minimum(v, self.cfg.economy.matching_efficiency * np.sqrt(u * v))
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = np.where(u > 0, np.minimum(1.0, hires / u), 1.0)
        self.find_rate = 0.5 * self.find_rate + 0.5 * rate
        hired = kernels.hired(seekers, hh.district, rate, np.zeros(0) if uplift is None else uplift, uplift is not None,
                              rng.random(out=hh.scratch(2, len(seekers))))
        if not len(hired):
            return
        # sector drawn in proportion to vacancies (farm jobs only for rural residents; industry and
        # services half and half where no vacancy is left)
        kernels.take_jobs(hired, hh.district, hh.urban, vac, rng.random(out=hh.scratch(2, len(hired))), hh.sector,
                          hh.employed)

    def log_expected_wage(self, uplift: np.ndarray) -> np.ndarray:
        """Harris–Todaro log expected wage per district for a middle-skill worker:
        ln(W_j · (P_j + (1 − P_j) · fallback)), P_j = min(1, job-finding rate × (1 + uplift_j))."""
        p = np.minimum(1.0, self.find_rate * (1 + uplift))
        fallback = self.cfg.economy.unemployed_income_share
        return np.log(self.nonfarm_wage() * (p + (1 - p) * fallback))

