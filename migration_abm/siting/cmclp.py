"""Capacitated MCLP: at most p new sites; each open site serves at most its capacity of covered demand.

Demand is splittable and assignment variables exist only on the sparse coverage arcs. Ladder: reduce
(identical rows) → greedy on residual demand → HiGHS MILP (strong links where affordable) → max-flow.
"""

from __future__ import annotations

import heapq
import time

import numpy as np
import scipy.sparse as sp

from migration_abm.siting._highs import relative_gap, solve_milp
from migration_abm.siting.base import SitingProblem, SolveResult, cover_from_cost
from migration_abm.siting.mclp import MCLP, MILP_MIN_SECONDS, MILP_MIN_SHARE
from migration_abm.siting.reduce import merge_identical_rows


def max_flow_served(a: sp.csr_matrix, w: np.ndarray, cap: np.ndarray, open_cols: np.ndarray
                    ) -> tuple[float, sp.csr_matrix]:
    """Most demand the open facilities can serve (splittable, within coverage and capacity): an LP."""
    a = sp.csr_matrix(a)
    n, m = a.shape
    is_open = np.zeros(m, dtype=bool)
    is_open[np.asarray(open_cols, dtype=np.int64)] = True
    coo = a.tocoo()
    arc = is_open[coo.col] & (w[coo.row] > 0)
    r, c = coo.row[arc], coo.col[arc]
    k = len(r)
    if k == 0:
        return 0.0, sp.csr_matrix((n, m))
    cols = np.unique(c)
    cpos = np.searchsorted(cols, c)
    amat = sp.vstack([sp.csr_matrix((np.ones(k), (r, np.arange(k))), shape=(n, k)),
                      sp.csr_matrix((np.ones(k), (cpos, np.arange(k))), shape=(len(cols), k))], format="csc")
    hi = np.concatenate([w, cap[cols]])
    res = solve_milp(np.ones(k), amat, np.full(n + len(cols), -np.inf), hi, np.zeros(k), np.full(k, np.inf),
                     np.zeros(k, bool), maximize=True, time_limit=600)
    z = np.clip(res.x, 0, None) if res.x is not None else np.zeros(k)
    return float(z.sum()), sp.csr_matrix((z, (r, c)), shape=(n, m))


def greedy_cmclp(a_csc: sp.csc_matrix, w: np.ndarray, cap: np.ndarray, p: int, fixed_mask: np.ndarray
                 ) -> list[int]:
    """Greedy for capacitated MCLP: add the site serving the most residual demand, min(capacity, reach)."""
    ind, ptr = a_csc.indices, a_csc.indptr
    resid = w.astype(float).copy()
    deg = np.diff(sp.csr_matrix(a_csc).indptr)

    def allocate(j: int) -> None:
        rows = ind[ptr[j]:ptr[j + 1]]
        rows = rows[np.argsort(deg[rows], kind="stable")]  # serve rows with fewest alternatives first
        left = cap[j]
        take = np.minimum(resid[rows], np.maximum(0.0, left - np.concatenate([[0], np.cumsum(resid[rows])[:-1]])))
        resid[rows] -= take

    for j in np.flatnonzero(fixed_mask):
        allocate(int(j))
    chosen: list[int] = []
    gains = np.minimum(cap, np.asarray(a_csc.T @ resid).ravel())
    gains[fixed_mask] = -1
    heap = [(-g, j) for j, g in enumerate(gains) if g > 0]
    heapq.heapify(heap)
    while heap and len(chosen) < p:
        _, j = heapq.heappop(heap)
        g = min(cap[j], float(resid[ind[ptr[j]:ptr[j + 1]]].sum()))
        if g <= 1e-12:
            continue
        if not heap or g >= -heap[0][0] - 1e-12:
            chosen.append(j)
            allocate(j)
        else:
            heapq.heappush(heap, (-g, j))
    return chosen


def _site_values(ac: sp.csc_matrix, w: np.ndarray, cap: np.ndarray, prof: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per site, the best use of its capacity at unit profits ``prof``: a fractional knapsack over its
    covered rows (value per site, and the arcs' rows, sites and amounts taken)."""
    m = ac.shape[1]
    col = np.repeat(np.arange(m), np.diff(ac.indptr))
    order = np.lexsort((-prof[ac.indices], col))
    r, c = ac.indices[order], col[order]
    amt = w[r]
    cum = np.cumsum(amt)
    before = cum - amt - np.concatenate([[0.0], cum])[ac.indptr[:-1]][c]
    take = np.clip(cap[c] - before, 0.0, amt)
    return np.bincount(c, weights=prof[r] * take, minlength=m), r, c, take


def lagrangian_bound_cmclp(ac: sp.csc_matrix, w: np.ndarray, cap: np.ndarray, p: int, fixed_mask: np.ndarray,
                           incumbent: float, time_limit: float = 2.0, max_iter: int = 200) -> float:
    """Upper bound on capacitated MCLP by relaxing each row's demand constraint Σ_j z_ij <= w_i with
    0 <= λ_i <= 1: L(λ) = Σ λ_i w_i + Σ_fixed v_j + (p largest v_j of the free sites), where v_j is site
    j's fractional knapsack at profits 1 − λ. Valid for every λ; subgradient steps lower it."""
    t0 = time.perf_counter()
    free = np.flatnonzero(~fixed_mask)
    p = min(p, len(free))
    lam = np.full(len(w), 0.5)
    best, mu, stall = np.inf, 1.0, 0
    for _ in range(max_iter):
        v, r, c, take = _site_values(ac, w, cap, 1.0 - lam)
        top = free[np.argpartition(-v[free], p - 1)[:p]] if 0 < p < len(free) else free[:p]
        is_open = fixed_mask.copy()
        is_open[top] = True
        val = float(lam @ w + v[is_open].sum())
        if val < best - 1e-9 * max(abs(best) if np.isfinite(best) else 1.0, 1.0):
            best, stall = val, 0
        else:
            stall += 1
            if stall >= 10:
                mu, stall = mu / 2, 0
        if time.perf_counter() - t0 > time_limit or mu < 1e-3 or best <= incumbent * (1 + 1e-9):
            break
        served = np.bincount(r[is_open[c]], weights=take[is_open[c]], minlength=len(w))
        g = w - served  # subgradient of L wrt λ
        norm = float(g @ g)
        if norm == 0:
            break
        lam = np.clip(lam - mu * (val - incumbent) / norm * g, 0.0, 1.0)
    return best


def solve_cmclp(a: sp.spmatrix, w: np.ndarray, cap: np.ndarray, p: int, fixed: np.ndarray | None = None, *,
                time_limit: float = 60.0, gap: float = 1e-4, exact: bool = True,
                strong_links_max: int = 400000) -> SolveResult:
    """Capacitated MCLP: at most ``p`` new sites; each open site serves ≤ its capacity of covered demand.

    Assignment variables exist only on the sparse coverage arcs; demand is splittable. The MILP adds the
    strong links z_ij <= w_i x_j when there are at most ``strong_links_max`` arcs to new sites.
    """
    t0 = time.perf_counter()
    a = sp.csr_matrix(a, dtype=np.float64)
    n, m = a.shape
    w = np.asarray(w, dtype=float)
    cap = np.asarray(cap, dtype=float)
    fixed_mask = np.zeros(m, dtype=bool)
    if fixed is not None and len(fixed):
        fixed_mask[np.asarray(fixed)] = True
    rows = np.flatnonzero((w > 0) & (np.diff(a.indptr) > 0))
    ar, wr, inverse = merge_identical_rows(a[rows], w[rows])
    ar.data[:] = 1.0
    ac = ar.tocsc()
    stages = {"reduce": time.perf_counter() - t0}
    p = int(min(p, int((~fixed_mask).sum())))
    sel = greedy_cmclp(ac, wr, cap, p, fixed_mask)
    best, _ = max_flow_served(ar, wr, cap, np.concatenate([np.flatnonzero(fixed_mask), sel]).astype(np.int64))
    stages["greedy"] = time.perf_counter() - t0
    bound = float(min(wr.sum(), cap[fixed_mask].sum() + np.sort(cap[~fixed_mask])[::-1][:p].sum()))
    status, kind = "heuristic", "capacity"
    if relative_gap(best, bound) > gap:
        lag = lagrangian_bound_cmclp(ac, wr, cap, p, fixed_mask, best, time_limit=min(2.0, 0.1 * time_limit))
        if lag < bound:
            bound, kind = lag, "lagrangian"
        stages["lagrangian"] = time.perf_counter() - t0
    remaining = time_limit - (time.perf_counter() - t0)
    # HiGHS cannot be stopped during presolve: start the MILP only with a useful amount of time left
    if exact and relative_gap(best, bound) > gap and remaining >= max(MILP_MIN_SECONDS, MILP_MIN_SHARE * time_limit):
        nr = ar.shape[0]
        coo = ar.tocoo()
        r, c = coo.row, coo.col
        k = len(r)
        # columns: x_j (m; fixed ones bounded to 1) then z arcs (k)
        arc_ids = np.arange(k)
        dem = sp.csr_matrix((np.ones(k), (r, m + arc_ids)), shape=(nr, m + k))
        capr = sp.csr_matrix((np.concatenate([np.ones(k), -cap]),
                              (np.concatenate([c, np.arange(m)]), np.concatenate([m + arc_ids, np.arange(m)]))),
                             shape=(m, m + k))
        budget = sp.csr_matrix((np.ones(m - fixed_mask.sum()), (np.zeros(m - fixed_mask.sum(), dtype=np.int64),
                                np.flatnonzero(~fixed_mask))), shape=(1, m + k))
        blocks = [dem, capr, budget]
        lo = [np.full(nr, -np.inf), np.full(m, -np.inf), [-np.inf]]
        hi = [wr, np.zeros(m), [p]]
        free_arc = ~fixed_mask[c]
        kf = int(free_arc.sum())
        if 0 < kf <= strong_links_max:
            fa = np.flatnonzero(free_arc)
            blocks.append(sp.csr_matrix((np.concatenate([np.ones(kf), -wr[r[fa]]]),
                                         (np.concatenate([np.arange(kf), np.arange(kf)]),
                                          np.concatenate([m + fa, c[fa]]))), shape=(kf, m + k)))
            lo.append(np.full(kf, -np.inf))
            hi.append(np.zeros(kf))
        amat = sp.vstack(blocks, format="csc")
        col_lo = np.concatenate([fixed_mask.astype(float), np.zeros(k)])
        col_hi = np.concatenate([np.ones(m), np.full(k, np.inf)])
        x0 = fixed_mask.astype(float)
        x0[sel] = 1.0
        _, flow0 = max_flow_served(ar, wr, cap, np.flatnonzero(x0 > 0.5))
        z0 = np.asarray(flow0[r, c]).ravel()
        res = solve_milp(np.concatenate([np.zeros(m), np.ones(k)]), amat, np.concatenate(lo), np.concatenate(hi),
                         col_lo, col_hi, np.concatenate([np.ones(m, bool), np.zeros(k, bool)]), maximize=True,
                         time_limit=remaining, mip_rel_gap=gap, start=np.concatenate([x0, z0]), threads=1)
        stages["milp"] = time.perf_counter() - t0
        if res.x is not None and res.objective > best + 1e-9:
            sel = list(np.flatnonzero((res.x[:m] > 0.5) & ~fixed_mask))
            best = float(res.objective)
        if np.isfinite(res.bound):
            bound, kind = min(bound, res.bound), "milp"
        status = "optimal" if res.status == "Optimal" else f"milp: {res.status}"
    if best >= bound:
        bound, kind = best, "optimal"
    open_cols = np.concatenate([np.flatnonzero(fixed_mask), sel]).astype(np.int64)
    best, flow_r = max_flow_served(ar, wr, cap, open_cols)
    # expand merged-row flow back to the original rows in proportion to their weight
    share = w[rows] / np.maximum(wr[inverse], 1e-300)
    flow = sp.csr_matrix(sp.diags(share) @ flow_r[inverse])
    expand = sp.csr_matrix((np.ones(len(rows)), (rows, np.arange(len(rows)))), shape=(n, len(rows)))
    g = relative_gap(best, bound)
    if g <= gap and status != "optimal":
        status = "optimal within gap"
    return SolveResult(np.asarray(sorted(sel), dtype=np.int64), best, bound, g, status,
                       time.perf_counter() - t0, stages, flow=sp.csr_matrix(expand @ flow), bound_kind=kind)


class CapacitatedMCLP(MCLP):
    """MCLP where each open facility serves at most its capacity (splittable demand on coverage arcs).

    Coverage attributes (``perc_cov_`` …) count a point as covered only if it is actually served;
    ``served_`` holds the served amount per demand point and ``flow_`` the demand × facility assignment.
    """

    name = "capacitated_mclp"

    def __init__(self, coverage: sp.spmatrix, weights: np.ndarray | None, p: int, capacities: np.ndarray,
                 predefined_facilities: np.ndarray | None = None, **kw: object) -> None:
        super().__init__(coverage, weights, p, predefined_facilities, **kw)  # type: ignore[arg-type]
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
        return cls(cover_from_cost(cost_matrix, service_radius), weights, p_facilities, facility_capacities,
                   predefined_facilities_arr, **kw)

    @classmethod
    def from_problem(cls, problem: SitingProblem, budget: int, **kw: object) -> CapacitatedMCLP:
        """From a plan's problem: its coverage, weights, capacities and fixed sites."""
        model = cls(problem.coverage, problem.weights, budget, problem.capacities, problem.fixed, **kw)
        model.arc_cost = problem.arc_cost
        return model

    def solve(self) -> CapacitatedMCLP:
        """Greedy on residual demand, then a HiGHS MILP with assignment variables on coverage arcs only."""
        res = solve_cmclp(self.coverage, self.weights, self.capacities, self.p, np.flatnonzero(self.predefined),
                          time_limit=self.time_limit, gap=self.mip_gap, exact=self.exact)
        self._finish(res)
        self.flow_ = res.flow
        self.served_ = np.asarray(res.flow.sum(axis=1)).ravel()
        self._coverage_stats(self.served_ > 1e-9, float(self.served_.sum()))
        self.unmet_ = float(self.weights.sum()) - float(self.served_.sum())
        return self

    def coverage_before(self) -> tuple[float, float]:
        """(percent of points, percent of weight) served by the predefined facilities alone."""
        served, flow = max_flow_served(self.coverage, self.weights, self.capacities,
                                       np.flatnonzero(self.predefined))
        got = np.asarray(flow.sum(axis=1)).ravel()
        tot = float(self.weights.sum())
        return (100.0 * float((got > 1e-9).mean()) if len(got) else 100.0,
                100.0 * served / tot if tot > 0 else 100.0)

    def serve(self, open_mask: np.ndarray) -> sp.csr_matrix:
        """Most demand the open sites can serve within coverage and capacity (an LP max-flow)."""
        if hasattr(self, "flow_") and np.array_equal(open_mask, self.open_):
            return self.flow_
        return max_flow_served(self.coverage, self.weights, self.capacities, np.flatnonzero(open_mask))[1]
