"""p-median: open p new facilities (plus predefined) minimising the total weighted cost of the nearest one.

Exact by an iterated nearest-k relaxation solved with HiGHS: each client may use its k cheapest sites or
pay the (k+1)-th cost; where the relaxation's solution costs what it claims it is optimal, else k grows.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

from migration_abm.errors import InputError
from migration_abm.siting._highs import relative_gap, solve_milp
from migration_abm.siting.base import SitingProblem, SolveResult, site_mask

#: Largest demand × site pair count a plan may hand to p-median (its cost matrix is dense).
MAX_PAIRS = 30_000_000


def knn_arcs(cost: np.ndarray, order: np.ndarray, k: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Arcs to each client's ``k[i]`` cheapest sites (row, site, cost) and the next cost as overflow."""
    n, m = cost.shape
    k = np.minimum(k, m)
    mask = np.arange(m)[None, :] < k[:, None]
    rows = np.nonzero(mask)[0]
    sites = order[mask]
    over = np.full(n, np.inf)
    has = k < m
    over[has] = cost[np.flatnonzero(has), order[np.flatnonzero(has), k[has]]]
    return rows, sites, cost[rows, sites], over


def greedy_pmedian(rows: np.ndarray, sites: np.ndarray, d: np.ndarray, over: np.ndarray, w: np.ndarray,
                   m: int, p: int, fixed_mask: np.ndarray) -> list[int]:
    """Greedy add for p-median on nearest-k arcs: each step opens the site with the largest saving."""
    big = np.where(np.isfinite(over), over, (d.max(initial=0) + 1) * 2)
    cur = big.copy()

    def open_site(j: int) -> None:
        hit = sites == j
        np.minimum.at(cur, rows[hit], d[hit])

    for j in np.flatnonzero(fixed_mask):
        open_site(int(j))
    chosen: list[int] = []
    blocked = fixed_mask.copy()
    for _ in range(p):
        save = np.bincount(sites, weights=w[rows] * np.maximum(0.0, cur[rows] - d), minlength=m)
        save[blocked] = -1
        j = int(np.argmax(save))
        if save[j] < 0:
            break
        chosen.append(j)
        blocked[j] = True
        open_site(j)
    return chosen


def solve_pmedian(cost: np.ndarray, w: np.ndarray, p: int, fixed: np.ndarray | None = None, *,
                  time_limit: float = 60.0, gap: float = 0.0, k0: int | None = None) -> SolveResult:
    """Exact p-median by iterated nearest-k relaxation solved with HiGHS.

    Each client may be assigned to one of its k nearest sites or pay the (k+1)-th cost (an overflow
    variable): a relaxation, so its optimum is a lower bound. If evaluating that solution's true cost
    matches, it is optimal; otherwise k doubles. ``p`` counts new sites; ``fixed`` sites are open extra.
    """
    t0 = time.perf_counter()
    cost = np.asarray(cost, dtype=float)
    w = np.asarray(w, dtype=float)
    n, m = cost.shape
    fixed_mask = np.zeros(m, dtype=bool)
    if fixed is not None and len(fixed):
        fixed_mask[np.asarray(fixed)] = True
    p = int(min(p, m - fixed_mask.sum()))
    n_open = p + int(fixed_mask.sum())
    k = min(m, k0 or max(8, int(np.ceil(2 * n / max(n_open, 1)))))
    best_sel: list[int] | None = None
    best_val, bound, status, stages = np.inf, -np.inf, "heuristic", {}

    def true_cost(sel: list[int]) -> float:
        cols = np.concatenate([np.flatnonzero(fixed_mask), np.asarray(sel, dtype=np.int64)]).astype(np.int64)
        return float(w @ cost[:, cols].min(axis=1))

    order = np.argsort(cost, axis=1, kind="stable")
    kvec = np.full(n, k, dtype=np.int64)
    while True:
        rows, sites, d, over = knn_arcs(cost, order, kvec)
        sel = greedy_pmedian(rows, sites, d, over, w, m, p, fixed_mask) if best_sel is None else best_sel
        v = true_cost(sel)
        if v < best_val:
            best_val, best_sel = v, list(sel)
        remaining = time_limit - (time.perf_counter() - t0)
        if remaining <= 0.05:
            status = "time limit"
            break
        nk = len(rows)
        orow = np.flatnonzero(np.isfinite(over))
        no = len(orow)
        # columns: y (m), x arcs (nk), u overflow (no)
        arc = np.arange(nk)
        assign = sp.csr_matrix((np.ones(nk + no), (np.concatenate([rows, orow]),
                                                   np.concatenate([m + arc, m + nk + np.arange(no)]))),
                               shape=(n, m + nk + no))
        link = sp.csr_matrix((np.concatenate([np.ones(nk), -np.ones(nk)]),
                              (np.concatenate([arc, arc]), np.concatenate([m + arc, sites]))),
                             shape=(nk, m + nk + no))
        card = sp.csr_matrix((np.ones(m), (np.zeros(m, dtype=np.int64), np.arange(m))), shape=(1, m + nk + no))
        amat = sp.vstack([assign, link, card], format="csc")
        c = np.concatenate([np.zeros(m), w[rows] * d, w[orow] * over[orow]])
        lo = np.concatenate([np.ones(n), np.full(nk, -np.inf), [n_open]])
        hi = np.concatenate([np.ones(n), np.zeros(nk), [n_open]])
        y0 = fixed_mask.astype(float)
        y0[best_sel] = 1.0
        # complete warm start: each client to its nearest open listed site, else the overflow
        cand = np.where(y0[sites] > 0.5, d, np.inf)
        best_d = np.full(n, np.inf)
        np.minimum.at(best_d, rows, cand)
        pick = (y0[sites] > 0.5) & (cand == best_d[rows])
        first = np.zeros(nk, dtype=bool)
        idx_first = np.flatnonzero(pick)
        _, keep = np.unique(rows[idx_first], return_index=True)
        first[idx_first[keep]] = True
        u0 = (~np.isfinite(best_d[orow])).astype(float)
        start = np.concatenate([y0, first.astype(float), u0])
        res = solve_milp(c, amat, lo, hi, np.concatenate([fixed_mask.astype(float), np.zeros(nk + no)]),
                         np.ones(m + nk + no), np.concatenate([np.ones(m, bool), np.zeros(nk + no, bool)]),
                         time_limit=remaining, mip_rel_gap=gap, mip_abs_gap=1e-6, start=None)
        del start  # warm start deliberately off here: see the highspy 1.16 note in _highs.solve_milp
        stages[f"milp_{len(stages)}_arcs{nk}"] = time.perf_counter() - t0
        if res.x is None:
            status = f"milp: {res.status}"
            break
        sel = list(np.flatnonzero((res.x[:m] > 0.5) & ~fixed_mask))
        v = true_cost(sel)
        if v < best_val:
            best_val, best_sel = v, sel
        if np.isfinite(res.bound):
            bound = max(bound, res.bound)
        tol = 1e-9 * max(abs(best_val), 1.0)
        if res.status != "Optimal":
            status = f"milp: {res.status}"
            break
        if best_val <= res.objective + tol:
            status = "optimal"
            bound = max(bound, best_val) if gap == 0 else bound
            break
        used = res.x[m + nk:] > 1e-9  # clients paying the overflow: widen their neighbourhoods
        grow = orow[used]
        if len(grow) == 0 or np.all(kvec >= m):
            status = "optimal"
            break
        cols = np.concatenate([np.flatnonzero(fixed_mask), np.asarray(sel, dtype=np.int64)]).astype(np.int64)
        tc = cost[np.ix_(grow, cols)].min(axis=1)
        rank = (cost[grow] <= tc[:, None]).sum(axis=1)  # include the true nearest open site
        kvec[grow] = np.minimum(m, np.maximum(2 * kvec[grow], rank + 1))
    bound = min(bound, best_val) if np.isfinite(bound) else bound
    return SolveResult(np.asarray(sorted(best_sel or []), dtype=np.int64), best_val, bound,
                       relative_gap(best_val, bound), status, time.perf_counter() - t0, stages,
                       bound_kind="optimal" if status == "optimal" else "nearest-k relaxation")


class PMedian:
    """p-median: open ``p`` new facilities (plus predefined) minimising total weighted cost."""

    name = "p_median"

    def __init__(self, cost_matrix: np.ndarray, weights: np.ndarray | None, p: int,
                 predefined_facilities: np.ndarray | None = None, *, time_limit: float = 300.0,
                 mip_gap: float = 0.0, coverage: sp.spmatrix | None = None) -> None:
        self.cost = np.asarray(cost_matrix, dtype=float)
        n, m = self.cost.shape
        self.weights = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
        self.p = int(p)
        self.predefined = site_mask(m, predefined_facilities)
        self.time_limit, self.mip_gap = float(time_limit), float(mip_gap)
        self.coverage = None if coverage is None else sp.csr_matrix(coverage)

    @classmethod
    def from_cost_matrix(cls, cost_matrix: np.ndarray, weights: np.ndarray | None, p_facilities: int,
                         predefined_facilities_arr: np.ndarray | None = None, **kw: object) -> PMedian:
        """Build from a dense client × facility cost matrix (like spopt's ``PMedian.from_cost_matrix``)."""
        return cls(cost_matrix, weights, p_facilities, predefined_facilities_arr, **kw)  # type: ignore[arg-type]

    @classmethod
    def from_problem(cls, problem: SitingProblem, budget: int, **kw: object) -> PMedian:
        """From a plan's problem; "served" in the plan means assigned to an open site within reach."""
        n, m = problem.coverage.shape
        if problem.dense_cost is None or n * m > MAX_PAIRS:
            raise InputError("siting", "model", cls.name, f"p_median needs every demand × site cost "
                             f"({n} × {m} pairs; at most {MAX_PAIRS:,} and not from a sparse travel-time table)")
        kw.pop("exact", None)
        return cls(problem.dense_cost(), problem.weights, budget, problem.fixed, coverage=problem.coverage,
                   **kw)  # type: ignore[arg-type]

    def solve(self) -> PMedian:
        """Solve; sets ``selected_``, ``objective_``, ``bound_``, ``gap_``, ``fac2cli_``, ``cli2fac_``."""
        res = solve_pmedian(self.cost, self.weights, self.p, np.flatnonzero(self.predefined),
                            time_limit=self.time_limit, gap=self.mip_gap)
        self.result_ = res
        self.selected_ = res.selected
        self.objective_, self.bound_, self.gap_ = res.objective, res.bound, res.gap
        self.status_, self.solve_time_, self.bound_kind_ = res.status, res.seconds, res.bound_kind
        self.open_ = self.predefined.copy()
        self.open_[self.selected_] = True
        cols = np.flatnonzero(self.open_)
        near = cols[np.argmin(self.cost[:, cols], axis=1)]
        self.assignment_ = near
        self.cli2fac_ = [np.array([j]) for j in near]
        self.fac2cli_ = [np.flatnonzero(near == j) for j in range(self.cost.shape[1])]
        self.mean_cost_ = float(self.objective_ / max(self.weights.sum(), 1e-300))
        return self

    def serve(self, open_mask: np.ndarray) -> sp.csr_matrix:
        """Each point's weight to its nearest open site, counted as served only within reach (coverage)."""
        n, m = self.cost.shape
        cols = np.flatnonzero(open_mask)
        if len(cols) == 0:
            return sp.csr_matrix((n, m))
        near = cols[np.argmin(self.cost[:, cols], axis=1)]
        ok = np.ones(n, bool) if self.coverage is None else np.asarray(self.coverage[np.arange(n), near]).ravel() > 0
        rows = np.flatnonzero(ok)
        return sp.csr_matrix((self.weights[rows], (rows, near[rows])), shape=(n, m))
