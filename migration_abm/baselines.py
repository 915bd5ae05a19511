"""Simple projection methods a model must beat, each fitted only on the :class:`Observations` it is given.

Every baseline projects district *shares* of the city total from an origin census (by default the last
census it is given, missing districts imputed by :meth:`Observations.complete_district_population`) and
scales them to a city total: the one passed to :meth:`Baseline.predict` (the validation harness passes
the observed total of the target year to every method alike), or else the city totals it was given,
geometrically interpolated and extrapolated. ``fit(obs)`` reads nothing but ``obs``; cut it with
``Observations.until(fit_until)`` first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from migration_abm.errors import InputError
from migration_abm.geography import REGIONS, ZONES
from migration_abm.observations import Observations, log_interpolate

LEVELS = ("district", "region", "zone")


class Baseline:
    """Fit on observations, then ``predict(year, level)``; subclasses define :meth:`shares`."""

    name = "baseline"

    def fit(self, obs: Observations) -> Baseline:
        """Learn from ``obs`` only; the origin is its last census."""
        self.obs_ = obs
        self.geo_ = obs.geography
        years = obs.census_years()
        if not years:
            raise InputError("observations", "district_population", None, f"{self.name} needs a district census")
        self.start_from(years[-1], obs.complete_district_population(years[-1]))
        self._fit(obs)
        return self

    def _fit(self, obs: Observations) -> None:
        """Parameters beyond the origin (none by default)."""

    def start_from(self, year: int, population: np.ndarray) -> Baseline:
        """Project from another origin (e.g. a backcast from 2000) with the dynamics already fitted."""
        self.origin_year_ = int(year)
        self.origin_ = np.asarray(population, float)
        return self

    def shares(self, year: int) -> np.ndarray:
        raise NotImplementedError

    def city_total(self, year: int) -> float:
        """City total from the observations given to ``fit`` (interpolated, or the last trend continued)."""
        pts = {y: self.obs_.city_total(y) for y in self.obs_.city_years()}
        return float(log_interpolate(pts, year))

    def predict(self, year: int, level: str = "district", total: float | None = None) -> pd.Series:
        """Population of ``year`` by district, functional region or zone."""
        if level not in LEVELS:
            raise InputError("predict", "level", level, f"use one of {', '.join(LEVELS)}")
        pop = self.shares(year) * (self.city_total(year) if total is None else float(total))
        return aggregate(self.geo_, pop, level)


def aggregate(geo: object, pop: np.ndarray, level: str) -> pd.Series:
    """District values summed to ``level`` (district, region or zone) as a labelled Series."""
    pop = np.asarray(pop, float)
    if level == "district":
        return pd.Series(pop, index=pd.Index(geo.codes, name="district"))
    if level == "region":
        return pd.Series(geo.to_regions(pop), index=pd.Index(REGIONS, name="region"))
    return pd.Series(geo.to_zones(pop), index=pd.Index(list(ZONES), name="zone"))


def _last_two_censuses(obs: Observations) -> tuple[int, np.ndarray, int, np.ndarray]:
    years = obs.census_years()
    if len(years) < 2:
        raise InputError("observations", "district_population", years, "a trend needs two district censuses")
    y0, y1 = years[-2], years[-1]
    return y0, obs.complete_district_population(y0), y1, obs.complete_district_population(y1)


class Persistence(Baseline):
    """District shares stay at the origin census's."""

    name = "persistence of census shares"

    def shares(self, year: int) -> np.ndarray:
        return self.origin_ / self.origin_.sum()


class ShareTrend(Baseline):
    """Each district's log share changes at its rate between the last two censuses, renormalised."""

    name = "district share trend"

    def _fit(self, obs: Observations) -> None:
        y0, p0, y1, p1 = _last_two_censuses(obs)
        self.rate_ = (np.log(p1 / p1.sum()) - np.log(p0 / p0.sum())) / (y1 - y0)

    def horizon(self, year: int) -> float:
        """Years of trend applied from the origin to ``year``."""
        return float(year - self.origin_year_)

    def shares(self, year: int) -> np.ndarray:
        s = self.origin_ / self.origin_.sum() * np.exp(self.rate_ * self.horizon(year))
        return s / s.sum()


@dataclass
class DampedTrend(ShareTrend):
    """The share trend damped by ``phi`` a year (Gardner & McKenzie): the horizon h becomes
    φ + φ² + … + φ^h. φ is fitted on the zone totals observed after the origin census if there are any
    (grid 0.50–1.00), else it stays at ``phi`` (an assumption)."""

    phi: float = 0.9
    name = "damped share trend"

    def _fit(self, obs: Observations) -> None:
        super()._fit(obs)
        later = [y for y in obs.years("region_total") if y > self.origin_year_]
        if not later:
            self.phi_ = self.phi
            return
        grid = np.round(np.arange(0.50, 1.0001, 0.01), 2)
        loss = []
        for phi in grid:
            self.phi_ = float(phi)
            err = [self.predict(y, "zone", obs.city_total(y)).to_numpy() / obs.zone_totals(y) - 1 for y in later]
            loss.append(float(np.sum(np.square(err))))
        self.phi_ = float(grid[int(np.argmin(loss))])

    def horizon(self, year: int) -> float:
        h = year - self.origin_year_
        if self.phi_ == 1.0 or h == 0:
            return float(h)
        sign = 1 if h > 0 else -1
        return sign * float(np.sum(self.phi_ ** np.arange(1, abs(h) + 1)))


class CspVsg(Baseline):
    """Wilson's averaged model: the mean of constant share of population (CSP: origin shares) and
    variable share of growth (VSG). VSG as implemented here: each district's change over the last
    intercensal period is continued linearly, and the difference between the city total and the sum of
    the continued districts is spread in proportion to the size of each district's change (so districts
    keep their direction unless the city's growth reverses); negative results are set to 0."""

    name = "CSP-VSG averaged model"

    def _fit(self, obs: Observations) -> None:
        y0, p0, y1, p1 = _last_two_censuses(obs)
        self.change_ = (p1 - p0) / (y1 - y0)

    def predict(self, year: int, level: str = "district", total: float | None = None) -> pd.Series:
        tot = self.city_total(year) if total is None else float(total)
        csp = self.origin_ / self.origin_.sum() * tot
        lin = self.origin_ + self.change_ * (year - self.origin_year_)
        weight = np.abs(self.change_) / np.abs(self.change_).sum()
        vsg = np.maximum(lin + weight * (tot - lin.sum()), 0.0)
        vsg *= tot / vsg.sum()
        return aggregate(self.geo_, (csp + vsg) / 2, level)

    def shares(self, year: int) -> np.ndarray:
        pop = self.predict(year, "district", 1.0).to_numpy()
        return pop / pop.sum()


class RegionalInterpolation(Baseline):
    """Zone totals interpolated geometrically between the observed years (extrapolated from the last
    two beyond them) × the within-zone district shares of the origin census."""

    name = "regional interpolation × census shares within zones"

    def _fit(self, obs: Observations) -> None:
        self.points_ = {y: obs.zone_totals(y) for y in obs.zone_years()}

    def shares(self, year: int) -> np.ndarray:
        zi = self.geo_.zone_index
        zones = log_interpolate(self.points_, year)
        within = self.origin_ / self.geo_.to_zones(self.origin_)[zi]
        pop = zones[zi] * within
        return pop / pop.sum()


class TrendRegionalMean(Baseline):
    """The average of the district share trend and the regional interpolation (each scaled to the
    same city total)."""

    name = "mean of share trend and regional interpolation"

    def _fit(self, obs: Observations) -> None:
        self.parts_ = [ShareTrend().fit(obs), RegionalInterpolation().fit(obs)]

    def start_from(self, year: int, population: np.ndarray) -> Baseline:
        super().start_from(year, population)
        for part in getattr(self, "parts_", []):
            part.start_from(year, population)
        return self

    def shares(self, year: int) -> np.ndarray:
        return np.mean([p.shares(year) for p in self.parts_], axis=0)


@dataclass
class FlowModel(Baseline):
    """Yearly flows T_ij between districts redistribute population, rescaled each year to the city
    total; the kernel's parameters are fitted by least squares on the log ratio of projected to observed
    district populations over the last intercensal period (from the earlier census to the later)."""

    params_: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def flows(self, pop: np.ndarray, dist: np.ndarray, params: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def starts(self) -> list[np.ndarray]:
        raise NotImplementedError

    def _run(self, pop: np.ndarray, y0: int, y1: int, params: np.ndarray) -> np.ndarray:
        if y1 < y0:
            raise InputError(self.name, "year", y1, f"flows run forward only, from {y0}")
        dist = self.geo_.distance_km
        for _ in range(y0, y1):
            t = self.flows(pop, dist, params)
            pop = np.maximum(pop + t.sum(axis=0) - t.sum(axis=1), 0.0)
            pop = pop / pop.sum()
        return pop

    def _fit(self, obs: Observations) -> None:
        from scipy.optimize import minimize

        y0, p0, y1, p1 = _last_two_censuses(obs)
        known = ~obs.district_imputed(y1) & ~obs.district_imputed(y0)
        target = p1 / p1.sum()

        def loss(x: np.ndarray) -> float:
            with np.errstate(all="ignore"):
                pred = self._run(p0 / p0.sum(), y0, y1, x)
                value = float(np.sum(np.log(pred[known] / target[known]) ** 2))
            return value if np.isfinite(value) else 1e12

        best = None
        for x0 in self.starts():
            res = minimize(loss, x0, method="Nelder-Mead", options={"xatol": 1e-4, "fatol": 1e-10, "maxiter": 2000})
            if best is None or res.fun < best.fun:
                best = res
        self.params_ = best.x
        self.fit_loss_ = float(best.fun)

    def shares(self, year: int) -> np.ndarray:
        return self._run(self.origin_ / self.origin_.sum(), self.origin_year_, year, self.params_)


class Gravity(FlowModel):
    """Production-constrained gravity model (Wilson 1971): a share τ ≤ 20 % of each district moves each
    year, to j with probability ∝ P_j^γ · d_ij^−β; fitted: τ, γ, β."""

    name = "district gravity model"

    def flows(self, pop: np.ndarray, dist: np.ndarray, params: np.ndarray) -> np.ndarray:
        tau = 0.2 / (1 + np.exp(-params[0]))
        gamma, beta = params[1], params[2]
        d = np.where(dist > 0, dist, np.inf)
        attract = (pop / pop.mean())[None, :] ** gamma * d ** -beta
        return tau * pop[:, None] * attract / attract.sum(axis=1, keepdims=True)

    def starts(self) -> list[np.ndarray]:
        return [np.array([t, g, b]) for t in (-3.0, 0.0) for g in (0.8, 1.5) for b in (1.0, 2.0)]


class Radiation(FlowModel):
    """Radiation model (Simini et al. 2012): T_ij = τ P_i · P_i P_j / ((P_i + s_ij)(P_i + P_j + s_ij)),
    s_ij = population within d_ij of i (excluding i and j); fitted: the outflow rate τ."""

    name = "district radiation model"

    def flows(self, pop: np.ndarray, dist: np.ndarray, params: np.ndarray) -> np.ndarray:
        tau = 1 / (1 + np.exp(-params[0]))
        order = np.argsort(dist, axis=1)
        sorted_pop = pop[order]
        cum = np.cumsum(sorted_pop, axis=1) - sorted_pop  # population strictly closer (incl. i at rank 0)
        s = np.empty_like(dist)
        np.put_along_axis(s, order, cum, axis=1)
        s = np.maximum(s - pop[:, None], 0.0)  # exclude the origin itself
        pi, pj = pop[:, None], pop[None, :]
        t = tau * pi * (pi * pj) / ((pi + s) * (pi + pj + s))
        np.fill_diagonal(t, 0.0)
        return t

    def starts(self) -> list[np.ndarray]:
        return [np.array([x]) for x in (-6.0, -4.0, -2.0)]


#: Every baseline the validation harness runs, in reporting order.
BASELINES: tuple[type[Baseline], ...] = (Persistence, ShareTrend, DampedTrend, CspVsg, Gravity, Radiation,
                                         RegionalInterpolation, TrendRegionalMean)
