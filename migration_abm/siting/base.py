"""What every location model shares: the solve result, the problem a plan hands over, coverage bookkeeping.

Models follow spopt's ``locate`` conventions: the constructor holds parameters, ``from_cost_matrix``
builds from a client × facility cost matrix, ``solve()`` does the work and returns ``self``, and fitted
attributes end in ``_``. Unlike spopt, ``p`` counts NEW facilities (predefined ones are open on top).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp


@dataclass
class SolveResult:
    """Best solution a solver found: open new sites, objective, bound, gap and how it got there.

    ``bound_kind`` names the bound that was binding (e.g. "lp", "lagrangian", "milp", "optimal").
    """

    selected: np.ndarray
    objective: float
    bound: float
    gap: float
    status: str
    seconds: float
    stages: dict[str, float] = field(default_factory=dict)
    flow: sp.csr_matrix | None = None  # capacitated models: served amount per (demand, facility) arc
    #: (seconds since the start, objective) each time the incumbent improved
    trace: list[tuple[float, float]] = field(default_factory=list)
    bound_kind: str = ""


@dataclass
class SitingProblem:
    """A plan's instance: demand × site coverage (0/1), the travel cost on those arcs (km or minutes),
    demand weights, site capacities, the always-open (existing) sites, and a dense cost builder for
    models that need every pair (p-median)."""

    coverage: sp.csr_matrix
    arc_cost: sp.csr_matrix
    weights: np.ndarray
    capacities: np.ndarray
    fixed: np.ndarray
    dense_cost: Any = None  # () -> n × m array, or None when only the arcs are known

    def mask(self, open_cols: np.ndarray | None = None) -> np.ndarray:
        """Boolean open-site mask: the fixed sites plus ``open_cols``."""
        out = np.zeros(self.coverage.shape[1], dtype=bool)
        out[self.fixed] = True
        if open_cols is not None:
            out[np.asarray(open_cols, dtype=np.int64)] = True
        return out


def cover_from_cost(cost_matrix: np.ndarray | sp.spmatrix, service_radius: float) -> sp.csr_matrix:
    """0/1 coverage: cost <= radius (a sparse cost matrix lists its finite pairs explicitly)."""
    if sp.issparse(cost_matrix):
        c = sp.csr_matrix(cost_matrix)
        keep = c.data <= service_radius
        out = sp.csr_matrix((keep.astype(float), c.indices, c.indptr), shape=c.shape)
        out.eliminate_zeros()
        return out
    return sp.csr_matrix(np.asarray(cost_matrix) <= service_radius, dtype=float)


def site_mask(m: int, predefined: np.ndarray | None) -> np.ndarray:
    """Boolean mask of ``m`` sites from an index array or a boolean array of predefined sites."""
    mask = np.zeros(m, dtype=bool)
    if predefined is not None and len(predefined):
        arr = np.asarray(predefined)
        mask[arr if arr.dtype != bool else np.flatnonzero(arr)] = True
    return mask


def nearest_open(a: sp.csr_matrix, arc_cost: sp.csr_matrix | None, open_mask: np.ndarray,
                 w: np.ndarray) -> sp.csr_matrix:
    """Uncapacitated assignment: each covered point's whole weight to its cheapest open covering site."""
    cols = np.flatnonzero(open_mask)
    sub = sp.csr_matrix(a[:, cols]).tocoo()
    if sub.nnz == 0:
        return sp.csr_matrix(a.shape)
    col = cols[sub.col]
    cost = np.asarray(arc_cost[sub.row, col]).ravel() if arc_cost is not None else np.zeros(sub.nnz)
    order = np.lexsort((col, cost, sub.row))
    r, c = sub.row[order], col[order]
    first = np.r_[True, r[1:] != r[:-1]]
    return sp.csr_matrix((w[r[first]], (r[first], c[first])), shape=a.shape)


class CoverageModel:
    """Shared coverage bookkeeping: after ``solve`` fills ``open_``, derive the spopt-style attributes."""

    name: ClassVar[str] = "coverage"

    def __init__(self, coverage: sp.spmatrix, weights: np.ndarray | None = None,
                 predefined_facilities: np.ndarray | None = None, *, time_limit: float = 60.0,
                 mip_gap: float = 1e-4, exact: bool = True) -> None:
        self.coverage = sp.csr_matrix(coverage, dtype=float)
        n, m = self.coverage.shape
        self.weights = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
        if self.weights.shape != (n,) or np.any(self.weights < 0) or not np.all(np.isfinite(self.weights)):
            raise ValueError("weights must be finite, non-negative and one per demand row")
        self.predefined = site_mask(m, predefined_facilities)
        self.time_limit, self.mip_gap, self.exact = float(time_limit), float(mip_gap), bool(exact)
        self.arc_cost: sp.csr_matrix | None = None

    def _finish(self, res: SolveResult) -> None:
        m = self.coverage.shape[1]
        self.result_ = res
        self.selected_ = np.asarray(res.selected, dtype=np.int64)
        self.open_ = np.zeros(m, dtype=bool)
        self.open_[self.predefined] = True
        self.open_[self.selected_] = True
        self.objective_, self.bound_, self.gap_ = res.objective, res.bound, res.gap
        self.status_, self.solve_time_, self.bound_kind_ = res.status, res.seconds, res.bound_kind
        sub = self.coverage[:, self.open_]
        cols = np.flatnonzero(self.open_)
        self.covered_ = np.diff(sub.indptr) > 0
        csr = sp.csr_matrix(sub)
        self.cli2fac_ = [cols[csr.indices[csr.indptr[i]:csr.indptr[i + 1]]] for i in range(csr.shape[0])]
        csc = self.coverage.tocsc()
        self.fac2cli_ = [csc.indices[csc.indptr[j]:csc.indptr[j + 1]] if self.open_[j] else np.zeros(0, np.int64)
                         for j in range(m)]
        self._coverage_stats(self.covered_, self.weights[self.covered_].sum())

    def _coverage_stats(self, covered: np.ndarray, served_weight: float) -> None:
        n = len(covered)
        self.covered_ = covered
        self.n_cli_uncov_ = int(n - covered.sum())
        self.perc_cov_ = 100.0 * covered.sum() / max(n, 1)
        tot = float(self.weights.sum())
        self.perc_cov_weighted_ = 100.0 * float(served_weight) / tot if tot > 0 else 100.0

    def coverage_before(self) -> tuple[float, float]:
        """(percent of points, percent of weight) covered by the predefined facilities alone."""
        cov = np.asarray(self.coverage @ self.predefined.astype(float)).ravel() > 0
        tot = float(self.weights.sum())
        return (100.0 * cov.mean() if len(cov) else 100.0,
                100.0 * float(self.weights[cov].sum()) / tot if tot > 0 else 100.0)

    def serve(self, open_mask: np.ndarray) -> sp.csr_matrix:
        """Demand × site served amounts when the sites in ``open_mask`` are open (nearest covering site)."""
        return nearest_open(self.coverage, self.arc_cost, open_mask, self.weights)
