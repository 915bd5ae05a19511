"""Location models with spopt's vocabulary (``from_cost_matrix``, predefined facilities, ``fac2cli``,
``cli2fac``, ``n_cli_uncov``, ``perc_cov``) on sparse coverage, solved by the ladder in ``solvers``.

The constructor holds parameters, ``solve()`` does the work and sets trailing-underscore results.
Unlike spopt, ``p`` counts NEW facilities (predefined ones are open on top), weighted coverage is
reported next to point coverage, and a time limit returns the best incumbent with bound and gap.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from migration_abm.siting import solvers
from migration_abm.siting.coverage import coverage_matrix


def _cover_from_cost(cost_matrix: np.ndarray | sp.spmatrix, service_radius: float) -> sp.csr_matrix:
    if sp.issparse(cost_matrix):
        c = sp.csr_matrix(cost_matrix)
        keep = c.data <= service_radius
        out = sp.csr_matrix((keep.astype(float), c.indices, c.indptr), shape=c.shape)
        out.eliminate_zeros()
        return out
    return sp.csr_matrix(np.asarray(cost_matrix) <= service_radius, dtype=float)


def _mask(m: int, predefined: np.ndarray | None) -> np.ndarray:
    mask = np.zeros(m, dtype=bool)
    if predefined is not None and len(predefined):
        arr = np.asarray(predefined)
        mask[arr if arr.dtype != bool else np.flatnonzero(arr)] = True
    return mask


class _CoverageModel:
    """Shared coverage bookkeeping: after ``solve`` fills ``open_``, derive spopt-style attributes."""

    name = "coverage"

    def __init__(self, coverage: sp.spmatrix, weights: np.ndarray | None = None,
                 predefined_facilities: np.ndarray | None = None, *, time_limit: float = 60.0,
                 mip_gap: float = 1e-4, exact: bool = True) -> None:
        self.coverage = sp.csr_matrix(coverage, dtype=float)
        n, m = self.coverage.shape
        self.weights = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
        if self.weights.shape != (n,) or np.any(self.weights < 0) or not np.all(np.isfinite(self.weights)):
            raise ValueError("weights must be finite, non-negative and one per demand row")
        self.predefined = _mask(m, predefined_facilities)
        self.time_limit, self.mip_gap, self.exact = float(time_limit), float(mip_gap), bool(exact)

    def _finish(self, res: solvers.SolveResult) -> None:
        m = self.coverage.shape[1]
        self.result_ = res
        self.selected_ = np.asarray(res.selected, dtype=np.int64)
        self.open_ = np.zeros(m, dtype=bool)
        self.open_[self.predefined] = True
        self.open_[self.selected_] = True
        self.objective_, self.bound_, self.gap_ = res.objective, res.bound, res.gap
        self.status_, self.solve_time_ = res.status, res.seconds
        sub = self.coverage[:, self.open_]
        cols = np.flatnonzero(self.open_)
        self.covered_ = np.diff(sub.indptr) > 0
        csr = sp.csr_matrix(sub)
        self.cli2fac = [cols[csr.indices[csr.indptr[i]:csr.indptr[i + 1]]] for i in range(csr.shape[0])]
        csc = self.coverage.tocsc()
        self.fac2cli = [csc.indices[csc.indptr[j]:csc.indptr[j + 1]] if self.open_[j] else np.zeros(0, np.int64)
                        for j in range(m)]
        n = self.coverage.shape[0]
        self.n_cli_uncov = int(n - self.covered_.sum())
        self.perc_cov = 100.0 * self.covered_.sum() / max(n, 1)
        tot = float(self.weights.sum())
        self.perc_cov_weighted = 100.0 * float(self.weights[self.covered_].sum()) / tot if tot > 0 else 100.0

    def coverage_before(self) -> tuple[float, float]:
        """(percent of points, percent of weight) covered by the predefined facilities alone."""
        cov = np.asarray(self.coverage @ self.predefined.astype(float)).ravel() > 0
        tot = float(self.weights.sum())
        return (100.0 * cov.mean() if len(cov) else 100.0,
                100.0 * float(self.weights[cov].sum()) / tot if tot > 0 else 100.0)


class LSCP(_CoverageModel):
    """Location set covering: fewest new facilities so every reachable demand point is covered.

    Points no candidate reaches are reported in ``uncoverable_`` instead of making the model infeasible.
    """

    name = "lscp"

    @classmethod
    def from_cost_matrix(cls, cost_matrix: np.ndarray | sp.spmatrix, service_radius: float,
                         predefined_facilities_arr: np.ndarray | None = None, **kw: object) -> LSCP:
        """Build from a client × facility cost matrix (dense, or sparse with explicit finite costs)."""
        return cls(_cover_from_cost(cost_matrix, service_radius), None, predefined_facilities_arr, **kw)

    def solve(self) -> LSCP:
        """Reduce, greedy set cover, then HiGHS; sets ``selected_``, ``objective_`` (= new sites), …"""
        res, unc = solvers.solve_lscp(self.coverage, np.flatnonzero(self.predefined), time_limit=self.time_limit,
                                      gap=self.mip_gap, exact=self.exact)
        self.uncoverable_ = unc
        self._finish(res)
        return self


class MCLP(_CoverageModel):
    """Maximal covering: at most ``p`` new facilities maximising covered weighted demand."""

    name = "mclp"

    def __init__(self, coverage: sp.spmatrix, weights: np.ndarray | None, p: int,
                 predefined_facilities: np.ndarray | None = None, *, heuristic_time: float = 1.0,
                 seed: int = 0, **kw: object) -> None:
        super().__init__(coverage, weights, predefined_facilities, **kw)  # type: ignore[arg-type]
        if int(p) < 0:
            raise ValueError("p must be >= 0")
        if not heuristic_time >= 0:
            raise ValueError("heuristic_time must be >= 0")
        self.p = int(p)
        self.heuristic_time, self.seed = float(heuristic_time), int(seed)

    @classmethod
    def from_cost_matrix(cls, cost_matrix: np.ndarray | sp.spmatrix, weights: np.ndarray | None,
                         service_radius: float, p_facilities: int,
                         predefined_facilities_arr: np.ndarray | None = None, **kw: object) -> MCLP:
        """Build from a client × facility cost matrix, like ``spopt.locate.MCLP.from_cost_matrix``."""
        return cls(_cover_from_cost(cost_matrix, service_radius), weights, p_facilities,
                   predefined_facilities_arr, **kw)

    @classmethod
    def from_points(cls, demand_lonlat: np.ndarray, site_lonlat: np.ndarray, weights: np.ndarray | None,
                    radius_km: float | np.ndarray, p: int, predefined_facilities: np.ndarray | None = None,
                    **kw: object) -> MCLP:
        """Build from lon/lat points with a great-circle service radius (km, scalar or per point)."""
        return cls(coverage_matrix(demand_lonlat, site_lonlat, radius_km), weights, p, predefined_facilities, **kw)

    def solve(self) -> MCLP:
        """Run the ladder (reduce → lazy greedy → swap → Lagrangian bound → HiGHS) within the time limit."""
        self._finish(solvers.solve_mclp(self.coverage, self.weights, self.p, np.flatnonzero(self.predefined),
                                        time_limit=self.time_limit, gap=self.mip_gap, exact=self.exact,
                                        heuristic_time=self.heuristic_time, seed=self.seed))
        return self


class CapacitatedMCLP(MCLP):
    """MCLP where each open facility serves at most its capacity (splittable demand on coverage arcs).

    Coverage attributes (``perc_cov`` …) count a point as covered only if it is actually served;
    ``served_`` holds the served amount per demand point and ``flow_`` the demand × facility assignment.
    """

    name = "capacitated_mclp"

    def __init__(self, coverage: sp.spmatrix, weights: np.ndarray | None, p: int, capacities: np.ndarray,
                 predefined_facilities: np.ndarray | None = None, **kw: object) -> None:
        super().__init__(coverage, weights, p, predefined_facilities, **kw)
        self.capacities = np.broadcast_to(np.asarray(capacities, dtype=float), (self.coverage.shape[1],)).copy()
        if np.any(self.capacities < 0) or not np.all(np.isfinite(self.capacities)):
            raise ValueError("capacities must be finite and non-negative")

    @classmethod
    def from_cost_matrix(cls, cost_matrix: np.ndarray | sp.spmatrix, weights: np.ndarray | None,  # type: ignore[override]
                         service_radius: float, p_facilities: int, facility_capacities: np.ndarray | None = None,
                         predefined_facilities_arr: np.ndarray | None = None, **kw: object) -> CapacitatedMCLP:
        """Build from a client × facility cost matrix plus one capacity per facility."""
        if facility_capacities is None:
            raise ValueError("facility_capacities is required")
        return cls(_cover_from_cost(cost_matrix, service_radius), weights, p_facilities, facility_capacities,
                   predefined_facilities_arr, **kw)

    def solve(self) -> CapacitatedMCLP:
        """Greedy on residual demand, then a HiGHS MILP with assignment variables on coverage arcs only."""
        res = solvers.solve_cmclp(self.coverage, self.weights, self.capacities, self.p,
                                  np.flatnonzero(self.predefined), time_limit=self.time_limit, gap=self.mip_gap,
                                  exact=self.exact)
        self._finish(res)
        self.flow_ = res.flow
        self.served_ = np.asarray(res.flow.sum(axis=1)).ravel()
        tot = float(self.weights.sum())
        self.covered_ = self.served_ > 1e-9
        self.n_cli_uncov = int((~self.covered_).sum())
        self.perc_cov = 100.0 * self.covered_.mean() if len(self.covered_) else 100.0
        self.perc_cov_weighted = 100.0 * float(self.served_.sum()) / tot if tot > 0 else 100.0
        self.unmet_ = tot - float(self.served_.sum())
        return self

    def coverage_before(self) -> tuple[float, float]:
        """(percent of points, percent of weight) served by the predefined facilities alone."""
        served, flow = solvers.max_flow_served(self.coverage, self.weights, self.capacities,
                                               np.flatnonzero(self.predefined))
        got = np.asarray(flow.sum(axis=1)).ravel()
        tot = float(self.weights.sum())
        return (100.0 * float((got > 1e-9).mean()) if len(got) else 100.0,
                100.0 * served / tot if tot > 0 else 100.0)


class PMedian:
    """p-median: open ``p`` new facilities (plus predefined) minimising total weighted distance.

    Exact via an iterated nearest-k relaxation solved with HiGHS (see ``solvers.solve_pmedian``).
    """

    name = "p-median"

    def __init__(self, cost_matrix: np.ndarray, weights: np.ndarray | None, p: int,
                 predefined_facilities: np.ndarray | None = None, *, time_limit: float = 300.0,
                 mip_gap: float = 0.0) -> None:
        self.cost = np.asarray(cost_matrix, dtype=float)
        n, m = self.cost.shape
        self.weights = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
        self.p = int(p)
        self.predefined = _mask(m, predefined_facilities)
        self.time_limit, self.mip_gap = float(time_limit), float(mip_gap)

    @classmethod
    def from_cost_matrix(cls, cost_matrix: np.ndarray, weights: np.ndarray | None, p_facilities: int,
                         predefined_facilities_arr: np.ndarray | None = None, **kw: object) -> PMedian:
        """Build from a dense client × facility cost matrix (like spopt's ``PMedian.from_cost_matrix``)."""
        return cls(cost_matrix, weights, p_facilities, predefined_facilities_arr, **kw)  # type: ignore[arg-type]

    def solve(self) -> PMedian:
        """Solve; sets ``selected_``, ``objective_``, ``bound_``, ``gap_``, ``fac2cli``, ``cli2fac``."""
        res = solvers.solve_pmedian(self.cost, self.weights, self.p, np.flatnonzero(self.predefined),
                                    time_limit=self.time_limit, gap=self.mip_gap)
        self.result_ = res
        self.selected_ = res.selected
        self.objective_, self.bound_, self.gap_ = res.objective, res.bound, res.gap
        self.status_, self.solve_time_ = res.status, res.seconds
        self.open_ = self.predefined.copy()
        self.open_[self.selected_] = True
        cols = np.flatnonzero(self.open_)
        near = cols[np.argmin(self.cost[:, cols], axis=1)]
        self.assignment_ = near
        self.cli2fac = [np.array([j]) for j in near]
        self.fac2cli = [np.flatnonzero(near == j) for j in range(self.cost.shape[1])]
        self.mean_cost_ = float(self.objective_ / max(self.weights.sum(), 1e-300))
        return self
