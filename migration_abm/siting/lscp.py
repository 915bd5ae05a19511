"""Location set covering (LSCP): fewest new facilities so every reachable demand point is covered.

Ladder: reduce (identical and dominated rows) → greedy set cover with a redundancy pass → HiGHS MILP.
"""

from __future__ import annotations

import heapq
import time

import numpy as np
import scipy.sparse as sp

from migration_abm.siting._highs import relative_gap, solve_milp
from migration_abm.siting.base import CoverageModel, SitingProblem, SolveResult, cover_from_cost
from migration_abm.siting.reduce import drop_dominated_rows, merge_identical_rows


def greedy_set_cover(a_csc: sp.csc_matrix, need: np.ndarray) -> list[int]:
    """Greedy set cover of the rows in ``need`` (lazy evaluation), then drop redundant columns."""
    need = need.copy()
    w = need.astype(float)
    ind, ptr = a_csc.indices, a_csc.indptr
    gains = np.asarray(a_csc.T @ w).ravel()
    heap = [(-g, j) for j, g in enumerate(gains) if g > 0]
    heapq.heapify(heap)
    chosen: list[int] = []
    while heap and need.any():
        _, j = heapq.heappop(heap)
        rows = ind[ptr[j]:ptr[j + 1]]
        g = int(need[rows].sum())
        if g <= 0:
            continue
        if not heap or g >= -heap[0][0]:
            chosen.append(j)
            need[rows] = False
        else:
            heapq.heappush(heap, (-g, j))
    # reverse pass: remove columns whose rows are all covered by others
    cnt = np.zeros(a_csc.shape[0])
    for j in chosen:
        cnt[ind[ptr[j]:ptr[j + 1]]] += 1
    for j in list(reversed(chosen)):
        rows = ind[ptr[j]:ptr[j + 1]]
        if np.all(cnt[rows] >= 2):
            cnt[rows] -= 1
            chosen.remove(j)
    return chosen


def solve_lscp(a: sp.spmatrix, fixed: np.ndarray | None = None, *, time_limit: float = 60.0,
               gap: float = 1e-4, exact: bool = True) -> tuple[SolveResult, np.ndarray]:
    """Location set covering: fewest new columns so every coverable row is covered (``fixed`` open).

    Rows no candidate can reach are returned separately (second value, boolean mask) instead of making
    the model infeasible.
    """
    t0 = time.perf_counter()
    a = sp.csr_matrix(a, dtype=np.float64)
    n, m = a.shape
    fixed_mask = np.zeros(m, dtype=bool)
    if fixed is not None and len(fixed):
        fixed_mask[np.asarray(fixed)] = True
    covered0 = np.asarray(a @ fixed_mask.astype(float)).ravel() > 0
    free = np.flatnonzero(~fixed_mask)
    ar = a[:, free]
    uncoverable = ~covered0 & (np.diff(ar.indptr) == 0)
    rows = np.flatnonzero(~covered0 & ~uncoverable)
    ar = ar[rows]
    ar, _, _ = merge_identical_rows(ar, np.ones(len(rows)))
    ar.data[:] = 1.0
    keep = drop_dominated_rows(ar)
    ar = ar[keep]
    stages = {"reduce": time.perf_counter() - t0}
    if ar.shape[0] == 0:
        return SolveResult(np.zeros(0, dtype=np.int64), 0.0, 0.0, 0.0, "optimal",
                           time.perf_counter() - t0, stages, bound_kind="optimal"), uncoverable
    ac = ar.tocsc()
    sel = greedy_set_cover(ac, np.ones(ar.shape[0], dtype=bool))
    stages["greedy"] = time.perf_counter() - t0
    best, bound, status, kind = float(len(sel)), 1.0, "heuristic", "trivial"
    remaining = time_limit - (time.perf_counter() - t0)
    if exact and remaining > 0.05:
        nr, mf = ar.shape
        x0 = np.zeros(mf)
        x0[sel] = 1.0
        res = solve_milp(np.ones(mf), ar, np.ones(nr), np.full(nr, np.inf), np.zeros(mf), np.ones(mf),
                         np.ones(mf, bool), time_limit=remaining, mip_rel_gap=gap, mip_abs_gap=0.99, start=x0)
        stages["milp"] = time.perf_counter() - t0
        if res.x is not None and res.x.sum() < best - 0.5:
            sel = list(np.flatnonzero(res.x > 0.5))
            best = float(len(sel))
        if np.isfinite(res.bound):
            bound, kind = max(bound, float(np.ceil(res.bound - 1e-6))), "milp"
        status = "optimal" if res.status == "Optimal" or bound >= best else f"milp: {res.status}"
    return SolveResult(free[np.asarray(sorted(sel), dtype=np.int64)], best, min(bound, best),
                       relative_gap(best, min(bound, best)), status, time.perf_counter() - t0, stages,
                       bound_kind=kind), uncoverable


class LSCP(CoverageModel):
    """Location set covering: fewest new facilities so every reachable demand point is covered.

    Points no candidate reaches are reported in ``uncoverable_`` instead of making the model infeasible.
    """

    name = "lscp"

    @classmethod
    def from_cost_matrix(cls, cost_matrix: np.ndarray | sp.spmatrix, service_radius: float,
                         predefined_facilities_arr: np.ndarray | None = None, **kw: object) -> LSCP:
        """Build from a client × facility cost matrix (dense, or sparse with explicit finite costs)."""
        return cls(cover_from_cost(cost_matrix, service_radius), None, predefined_facilities_arr, **kw)

    @classmethod
    def from_problem(cls, problem: SitingProblem, budget: int, **kw: object) -> LSCP:
        """From a plan's problem (the budget does not apply: LSCP decides how many sites)."""
        model = cls(problem.coverage, problem.weights, problem.fixed, **kw)  # type: ignore[arg-type]
        model.arc_cost = problem.arc_cost
        return model

    def solve(self) -> LSCP:
        """Reduce, greedy set cover, then HiGHS; sets ``selected_``, ``objective_`` (= new sites), …"""
        res, unc = solve_lscp(self.coverage, np.flatnonzero(self.predefined), time_limit=self.time_limit,
                              gap=self.mip_gap, exact=self.exact)
        self.uncoverable_ = unc
        self._finish(res)
        return self
