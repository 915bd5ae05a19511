"""Solver ladder on sparse coverage matrices: reduce → lazy greedy → swap → Lagrangian bound → HiGHS MILP.

Every function takes a CSR/CSC demand × candidate 0/1 matrix (never dense) and returns plain arrays.
The MILP stage is warm-started from the heuristic and time-limited; callers always get the best
incumbent, the best bound and the gap, whatever HiGHS reports.
"""

from __future__ import annotations

import heapq
import logging
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from migration_abm.siting._highs import relative_gap, solve_milp

log = logging.getLogger(__name__)


@dataclass
class SolveResult:
    """Best solution found by the ladder: open new sites, objective, bound, gap and how it got there."""

    selected: np.ndarray
    objective: float
    bound: float
    gap: float
    status: str
    seconds: float
    stages: dict[str, float] = field(default_factory=dict)
    flow: sp.csr_matrix | None = None  # capacitated models: served amount per (demand, facility) arc
    #: MCLP: (seconds since the start, objective) each time the incumbent improved
    trace: list[tuple[float, float]] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------- reduction
def merge_identical_rows(a: sp.csr_matrix, w: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """Merge demand rows with identical coverage sets, summing their weights.

    Returns the reduced matrix, the merged weights and ``inverse`` (original row -> reduced row).
    """
    a = sp.csr_matrix(a, dtype=np.float64, copy=True)
    a.sum_duplicates()
    a.sort_indices()
    keys: dict[bytes, int] = {}
    inverse = np.empty(a.shape[0], dtype=np.int64)
    ind, ptr = a.indices, a.indptr
    for i in range(a.shape[0]):
        inverse[i] = keys.setdefault(ind[ptr[i]:ptr[i + 1]].tobytes(), len(keys))
    first = np.full(len(keys), -1, dtype=np.int64)
    first[inverse[::-1]] = np.arange(a.shape[0])[::-1]
    w_new = np.bincount(inverse, weights=w, minlength=len(keys))
    return a[first], w_new, inverse


def drop_dominated_rows(a: sp.csr_matrix, max_rows: int = 20000, chunk: int = 2000) -> np.ndarray:
    """Rows whose coverage set strictly contains another row's set (redundant in set covering).

    Returns a boolean keep-mask. Skipped (all kept) above ``max_rows`` rows, where the pairwise
    intersection count would cost more than it saves.
    """
    n = a.shape[0]
    keep = np.ones(n, dtype=bool)
    if n > max_rows or n < 2:
        return keep
    a = sp.csr_matrix(a, dtype=np.float64)
    size = np.diff(a.indptr)
    at = a.T.tocsc()
    for s in range(0, n, chunk):
        inter = (a[s:s + chunk] @ at).tocoo()  # rows r in chunk × all rows s: |set r ∩ set s|
        r, c, v = inter.row + s, inter.col, inter.data
        hit = (v == size[c]) & (size[c] < size[r])  # set c ⊂ set r
        keep[np.unique(r[hit])] = False
    return keep


def dominated_columns(a: sp.csr_matrix, max_work: float = 5e7) -> np.ndarray:
    """Columns whose coverage set is inside another column's (ties: keep the lowest index) or empty.

    Valid to drop in uncapacitated covering models (MCLP, LSCP): swapping to the dominating column never
    loses coverage. Skipped when the pairwise intersection would cost more than ``max_work`` products.
    """
    a = sp.csr_matrix(a, dtype=np.float64)
    m = a.shape[1]
    size = np.asarray(a.sum(axis=0)).ravel()
    drop = size == 0
    deg = np.diff(a.indptr).astype(float)
    if float(deg @ deg) > max_work:
        return drop
    inter = (a.T @ a).tocoo()
    j, k, v = inter.row, inter.col, inter.data
    hit = (j != k) & (v >= size[j] - 1e-9) & ((size[k] > size[j]) | ((size[k] == size[j]) & (k < j)))
    drop[np.unique(j[hit])] = True
    del m
    return drop


# ------------------------------------------------------------------------------------------------ MCLP
def lazy_greedy_mclp(a_csc: sp.csc_matrix, w: np.ndarray, p: int, covered: np.ndarray | None = None,
                     allowed: np.ndarray | None = None) -> list[int]:
    """Lazy greedy for weighted max coverage (monotone submodular: within 1 − 1/e of optimal)."""
    n, m = a_csc.shape
    covered = np.zeros(n, dtype=bool) if covered is None else covered.copy()
    ind, ptr = a_csc.indices, a_csc.indptr
    gains = np.asarray(a_csc.T @ (w * ~covered)).ravel()
    if allowed is not None:
        gains[~allowed] = -1.0
    heap = [(-g, j) for j, g in enumerate(gains) if g > 0]
    heapq.heapify(heap)
    chosen: list[int] = []
    while heap and len(chosen) < p:
        _, j = heapq.heappop(heap)
        rows = ind[ptr[j]:ptr[j + 1]]
        g = float(w[rows][~covered[rows]].sum())
        if g <= 0:
            continue
        if not heap or g >= -heap[0][0] - 1e-12:
            chosen.append(j)
            covered[rows] = True
        else:
            heapq.heappush(heap, (-g, j))
    return chosen


def coverage_value(a_csr: sp.csr_matrix, w: np.ndarray, open_cols: np.ndarray) -> float:
    """Weighted demand covered by the open columns."""
    x = np.zeros(a_csr.shape[1])
    x[np.asarray(open_cols, dtype=np.int64)] = 1.0
    return float(w[(a_csr @ x) > 0].sum())


def swap_mclp(a_csr: sp.csr_matrix, a_csc: sp.csc_matrix, w: np.ndarray, chosen: list[int],
              fixed: np.ndarray, allowed: np.ndarray | None = None, time_limit: float = 10.0,
              max_iter: int = 10000) -> list[int]:
    """Best-improvement 1-swap local search (Teitz–Bart style) for MCLP, vectorised with sparse products.

    For every (closed k, open j) pair the change in covered weight is
    gain_k − loss_j + (weight covered only by j that k also covers), computed in one sparse product.
    """
    n, m = a_csr.shape
    t0 = time.perf_counter()
    chosen = list(chosen)
    if not chosen:
        return chosen
    x = np.zeros(m)
    x[chosen] = 1.0
    x[fixed] = 1.0
    cnt = np.asarray(a_csr @ x).ravel()
    at = a_csc.T.tocsr()
    closed_ok = np.ones(m, dtype=bool) if allowed is None else allowed.copy()
    tol = 1e-9 * max(float(w.sum()), 1.0)
    for _ in range(max_iter):
        if time.perf_counter() - t0 > time_limit:
            break
        closed_ok_now = closed_ok.copy()
        closed_ok_now[chosen] = False
        closed_ok_now[fixed] = False
        gain = np.asarray(at @ (w * (cnt == 0))).ravel()
        only = w * (cnt == 1)
        sub = a_csc[:, chosen]
        loss = np.asarray(sub.T @ only).ravel()
        both = (at @ sp.diags(only) @ sub).toarray()  # m × p: weight k recovers of j's sole cover
        delta = gain[:, None] - loss[None, :] + both
        delta[~closed_ok_now, :] = -np.inf
        k, jpos = np.unravel_index(int(np.argmax(delta)), delta.shape)
        if delta[k, jpos] <= tol:
            break
        j = chosen[jpos]
        cnt -= np.asarray(a_csc[:, j].todense()).ravel()
        cnt += np.asarray(a_csc[:, k].todense()).ravel()
        chosen[jpos] = int(k)
    return chosen


def perturb_mclp(a_csr: sp.csr_matrix, a_csc: sp.csc_matrix, w: np.ndarray, sel: list[int], guide: np.ndarray,
                 target: float, time_limit: float, seed: int = 0, max_rounds: int = 2000) -> list[int]:
    """Iterated local search: drop a few open sites, add sites drawn in proportion to ``guide`` (e.g. the
    LP solution), re-run the swap search; keep improvements. Stops at ``target`` value or the time limit.
    Seeded, so results are reproducible."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    best = list(sel)
    best_v = coverage_value(a_csr, w, np.asarray(best, dtype=np.int64))
    prob = np.maximum(np.asarray(guide, dtype=float), 0.0) + 1e-3 * max(float(np.max(guide, initial=0.0)), 1e-9)
    p = len(best)
    if p == 0:
        return best
    for r in range(max_rounds):
        if best_v >= target or time.perf_counter() - t0 > time_limit:
            break
        k = min(p, 1 + r % 4)
        out = set(rng.choice(p, size=k, replace=False).tolist())
        keep = [j for i, j in enumerate(best) if i not in out]
        pr = prob.copy()
        pr[keep] = 0.0
        pr /= pr.sum()
        add = rng.choice(len(pr), size=k, replace=False, p=pr).tolist()
        cand = swap_mclp(a_csr, a_csc, w, keep + add, np.zeros(0, dtype=np.int64),
                         time_limit=max(0.0, time_limit - (time.perf_counter() - t0)))
        v = coverage_value(a_csr, w, np.asarray(cand, dtype=np.int64))
        if v > best_v + 1e-9:
            best, best_v = list(cand), v
    return best


def kernel_milp_mclp(a_csr: sp.csr_matrix, w: np.ndarray, p: int, cols: np.ndarray, start: list[int],
                     time_limit: float) -> tuple[list[int], float, bool]:
    """MCLP restricted to the columns ``cols`` (a "kernel"), solved by HiGHS warm-started from ``start``.

    Returns (chosen columns in the full index, their covered weight, whether the kernel optimum was proved).
    Its value is a feasible solution of the full problem, never a bound on it.
    """
    cols = np.asarray(cols, dtype=np.int64)
    am = a_csr[:, cols]
    live = np.diff(am.indptr) > 0
    am, wm = am[live], w[live]
    nr, mf = am.shape
    if mf == 0 or nr == 0 or time_limit <= 0.01:
        return list(start), coverage_value(a_csr, w, np.asarray(start, dtype=np.int64)), False
    top = sp.hstack([-am, sp.identity(nr, format="csr")], format="csr")
    budget = sp.csr_matrix((np.ones(mf), (np.zeros(mf, dtype=np.int64), np.arange(mf))), shape=(1, mf + nr))
    pos = np.full(a_csr.shape[1], -1)
    pos[cols] = np.arange(mf)
    x0 = np.zeros(mf)
    sp_pos = pos[np.asarray(start, dtype=np.int64)]
    x0[sp_pos[sp_pos >= 0]] = 1.0
    y0 = np.minimum(1.0, np.asarray(am @ x0).ravel())
    res = solve_milp(np.concatenate([np.zeros(mf), wm]), sp.vstack([top, budget], format="csc"),
                     np.full(nr + 1, -np.inf), np.concatenate([np.zeros(nr), [p]]), np.zeros(mf + nr),
                     np.ones(mf + nr), np.concatenate([np.ones(mf, bool), np.zeros(nr, bool)]), maximize=True,
                     time_limit=time_limit, mip_rel_gap=1e-7, start=np.concatenate([x0, y0]))
    if res.x is None:
        return list(start), coverage_value(a_csr, w, np.asarray(start, dtype=np.int64)), False
    chosen = [int(j) for j in cols[np.flatnonzero(res.x[:mf] > 0.5)]]
    return chosen, coverage_value(a_csr, w, np.asarray(chosen, dtype=np.int64)), res.status == "Optimal"


def lagrangian_bound_mclp(a_csr: sp.csr_matrix, w: np.ndarray, p: int, incumbent: float,
                          time_limit: float = 5.0, max_iter: int = 600
                          ) -> tuple[float, np.ndarray | None, np.ndarray]:
    """Upper bound on weighted max coverage by subgradient optimisation of the Lagrangian dual.

    Relaxing y_i <= (A x)_i with multipliers 0 <= λ_i <= w_i gives
    L(λ) = Σ_i (w_i − λ_i) + (sum of the p largest (Aᵀλ)_j), a valid bound for any λ whose minimum
    equals the LP bound. Cheap: one sparse product per iteration. Returns (bound, best x from the
    Lagrangian subproblems, multipliers at the best bound): the x serves as a heuristic, the
    multipliers for reduced-cost fixing.
    """
    t0 = time.perf_counter()
    at = a_csr.T.tocsr()
    m = a_csr.shape[1]
    p = min(p, m)
    lam = w * 0.5
    best_bound, best_sol, best_val, best_lam = np.inf, None, incumbent, lam
    mu, stall = 2.0, 0
    for it in range(max_iter):
        c = np.asarray(at @ lam).ravel()
        top = np.argpartition(-c, p - 1)[:p] if p < m else np.arange(m)
        lval = float(np.sum(w - lam) + c[top].sum())
        if lval < best_bound - 1e-9 * abs(best_bound if np.isfinite(best_bound) else 1):
            best_bound, stall, best_lam = lval, 0, lam
        else:
            stall += 1
            if stall >= 15:
                mu, stall = mu / 2, 0
        xcov = np.zeros(m)
        xcov[top] = 1.0
        cov = np.asarray(a_csr @ xcov).ravel()
        if it % 5 == 0:
            val = float(w[cov > 0].sum())
            if val > best_val:
                best_val, best_sol = val, top.copy()
        if relative_gap(best_val, best_bound) < 1e-6 or mu < 1e-4 or time.perf_counter() - t0 > time_limit:
            break
        s = cov - (w > lam)  # subgradient of L wrt λ
        norm = float(s @ s)
        if norm == 0:
            break
        step = mu * (lval - best_val) / norm
        lam = np.clip(lam - step * s, 0.0, w)
    return best_bound, best_sol, best_lam


def lagrangian_fixing(a_csr: sp.csr_matrix, w: np.ndarray, p: int, lam: np.ndarray, incumbent: float
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Reduced-cost fixing from Lagrangian multipliers: (columns that can be closed, columns that must open).

    Forcing column j into (out of) the Lagrangian top-p changes L by c_j − c_(p) (c_(p+1) − c_j). Where
    the forced bound cannot beat the incumbent, no strictly better solution has that value of x_j.
    """
    m = a_csr.shape[1]
    c = np.asarray(a_csr.T @ lam).ravel()
    base = float(np.sum(w - lam))
    if p >= m or p == 0:
        return np.zeros(m, bool), np.zeros(m, bool)
    order = np.argsort(-c, kind="stable")
    top = np.zeros(m, dtype=bool)
    top[order[:p]] = True
    lval = base + c[order[:p]].sum()
    cp, cp1 = c[order[p - 1]], c[order[p]]
    tol = 1e-9 * max(abs(incumbent), 1.0)
    close = ~top & (lval - cp + c <= incumbent + tol)
    must = top & (lval - c + cp1 <= incumbent + tol)
    return close, must


def solve_mclp(a: sp.spmatrix, w: np.ndarray, p: int, fixed: np.ndarray | None = None, *,
               time_limit: float = 60.0, gap: float = 1e-4, exact: bool = True,
               progress: bool = False, heuristic_time: float = 1.0, seed: int = 0) -> SolveResult:
    """Maximal covering: at most ``p`` new columns (``fixed`` always open) maximising covered weight.

    Ladder: drop rows already covered by fixed sites or uncoverable, merge identical rows, drop
    dominated columns; lazy greedy; swap search; Lagrangian bound. While the certified gap is above
    ``gap``: the LP relaxation (HiGHS IPM) for its bound, an LP rounding + guided local search and
    reduced-cost fixing; then a HiGHS MILP on what is left, warm-started from the incumbent, for the
    remaining time. Returns the best incumbent, best bound and gap; never raises on the time limit.

    After the LP, up to ``heuristic_time`` seconds go to improving the incumbent: a kernel search (the
    MILP restricted to the LP support plus the incumbent, grown by reduced cost) and, if the gap is still
    open, a seeded iterated local search. ``SolveResult.trace`` records when the incumbent improved.
    """
    t0 = time.perf_counter()
    a = sp.csr_matrix(a, dtype=np.float64)
    n, m = a.shape
    w = np.asarray(w, dtype=float)
    fixed_mask = np.zeros(m, dtype=bool)
    if fixed is not None and len(fixed):
        fixed_mask[np.asarray(fixed)] = True
    stages: dict[str, float] = {}
    trace: list[tuple[float, float]] = []
    best = -np.inf

    def _trace() -> None:
        if not trace or const + best > trace[-1][1]:
            trace.append((time.perf_counter() - t0, const + best))

    covered0 = np.asarray(a @ fixed_mask.astype(float)).ravel() > 0
    const = float(w[covered0].sum())
    free = np.flatnonzero(~fixed_mask)
    rows = np.flatnonzero(~covered0 & (w > 0))
    ar = a[rows][:, free]
    rows_keep = np.diff(ar.indptr) > 0
    ar, wr = ar[rows_keep], w[rows][rows_keep]
    ar, wr, _ = merge_identical_rows(ar, wr)
    ar.data[:] = 1.0
    keep_cols = ~dominated_columns(ar)
    if keep_cols.sum() < max(p, 1):  # keep enough columns to spend the budget
        keep_cols[:] = True
    free, ar = free[keep_cols], ar[:, np.flatnonzero(keep_cols)]
    stages["reduce"] = time.perf_counter() - t0
    if progress:
        log.info("MCLP: %d x %d reduced to %d rows x %d free sites", n, m, ar.shape[0], len(free))
    ac = ar.tocsc()
    p = int(min(p, len(free)))
    sel = lazy_greedy_mclp(ac, wr, p)
    stages["greedy"] = time.perf_counter() - t0
    best = coverage_value(ar, wr, np.asarray(sel, dtype=np.int64))
    _trace()
    sel = swap_mclp(ar, ac, wr, sel, np.zeros(0, dtype=np.int64), time_limit=max(1.0, 0.2 * time_limit))
    val = coverage_value(ar, wr, np.asarray(sel, dtype=np.int64))
    best = max(best, val)
    _trace()
    stages["swap"] = time.perf_counter() - t0
    if p == 0 or ar.shape[0] == 0:
        return SolveResult(free[np.asarray(sel, dtype=np.int64)], const + best, const + best, 0.0, "optimal",
                           time.perf_counter() - t0, stages, trace=trace)
    bound, lsol, lam = lagrangian_bound_mclp(ar, wr, p, best, time_limit=min(2.0, 0.05 * time_limit))
    if lsol is not None:
        lval = coverage_value(ar, wr, lsol)
        if lval > best:
            best, sel = lval, list(lsol)
            _trace()
    bound = min(bound, float(wr.sum()))
    stages["lagrangian"] = time.perf_counter() - t0
    status = "heuristic"
    if progress:
        log.info("MCLP heuristic %.6g, bound %.6g, gap %.3g%%", const + best, const + bound,
                 100 * relative_gap(const + best, const + bound))
    nr, mf = ar.shape
    # model: columns x (mf binaries) then y (nr continuous); rows y_i − Σ a_ij x_j <= 0 and Σ x <= p
    top = sp.hstack([-ar, sp.identity(nr, format="csr")], format="csr")
    budget = sp.csr_matrix((np.ones(mf), (np.zeros(mf, dtype=np.int64), np.arange(mf))), shape=(1, mf + nr))
    amat_full = sp.vstack([top, budget], format="csc")
    row_hi = np.concatenate([np.zeros(nr), [p]])
    lp_close = np.zeros(mf, dtype=bool)
    lp_open = np.zeros(mf, dtype=bool)
    remaining = time_limit - (time.perf_counter() - t0)
    if exact and relative_gap(const + best, const + bound) > gap and remaining > 0.05:
        # LP relaxation: exact LP bound, an LP-rounding start and reduced-cost fixing
        lp = solve_milp(np.concatenate([np.zeros(mf), wr]), amat_full, np.full(nr + 1, -np.inf), row_hi,
                        np.zeros(mf + nr), np.ones(mf + nr), np.zeros(mf + nr, bool), maximize=True,
                        time_limit=0.4 * remaining, options={"solver": "ipm"})  # IPM+crossover: far faster here
        stages["lp"] = time.perf_counter() - t0
        if lp.status == "Optimal" and lp.x is not None:
            bound = min(bound, lp.objective)
            xr = lp.x[:mf]
            cand = list(np.argsort(-xr, kind="stable")[:p])
            cand = swap_mclp(ar, ac, wr, cand, np.zeros(0, dtype=np.int64), time_limit=max(1.0, 0.1 * time_limit))
            v = coverage_value(ar, wr, np.asarray(cand, dtype=np.int64))
            if v > best:
                best, sel = v, list(cand)
                _trace()
            rc = np.abs(lp.col_dual[:mf]) if lp.col_dual is not None else np.zeros(mf)
            h_end = time.perf_counter() + max(0.0, min(heuristic_time, time_limit - (time.perf_counter() - t0)))
            # kernel search: the MILP restricted to the LP support, the incumbent and the Lagrangian solution
            # (the optimum usually lies in there), grown by the columns of smallest reduced cost
            kernel = np.zeros(mf, dtype=bool)
            kernel[xr > 1e-6] = True
            kernel[np.asarray(sel, dtype=np.int64)] = True
            if lsol is not None:
                kernel[np.asarray(lsol, dtype=np.int64)] = True
            rest = np.flatnonzero(~kernel)
            rest = rest[np.argsort(rc[rest], kind="stable")]
            bucket = max(p, 20)
            rounds = 0
            while time.perf_counter() < h_end - 0.02:
                kcols = np.flatnonzero(kernel)
                ksel, kval, kopt = kernel_milp_mclp(ar, wr, p, kcols, sel, time_limit=h_end - time.perf_counter())
                rounds += 1
                if kval > best + 1e-9:
                    ksel = swap_mclp(ar, ac, wr, ksel, np.zeros(0, dtype=np.int64),
                                     time_limit=max(0.0, h_end - time.perf_counter()))
                    best, sel = coverage_value(ar, wr, np.asarray(ksel, dtype=np.int64)), list(ksel)
                    _trace()
                if not kopt or len(rest) == 0 or relative_gap(const + best, const + bound) <= gap:
                    break
                kernel[rest[:bucket]] = True
                kernel[np.asarray(sel, dtype=np.int64)] = True
                rest = rest[bucket:]
            stages["kernel_rounds"] = float(rounds)
            stages["kernel"] = time.perf_counter() - t0
            # iterated local search guided by the LP in what is left of the heuristic budget
            target = (const + bound) * (1 - gap) - const
            left = h_end - time.perf_counter()
            if relative_gap(const + best, const + bound) > gap and left > 0.02:
                sel = perturb_mclp(ar, ac, wr, sel, xr, target, time_limit=left, seed=seed)
                v = coverage_value(ar, wr, np.asarray(sel, dtype=np.int64))
                if v > best + 1e-9:
                    best = v
                    _trace()
            if lp.col_dual is not None:
                red = np.abs(lp.col_dual[:mf])
                tol = 1e-9 * max(best, 1.0)
                lp_close = (xr < 1e-9) & (lp.objective - red <= best + tol)
                lp_open = (xr > 1 - 1e-9) & (lp.objective - red <= best + tol)
        stages["lp_round"] = time.perf_counter() - t0
    remaining = time_limit - (time.perf_counter() - t0)
    if exact and relative_gap(const + best, const + bound) > gap and remaining > 0.05:
        # reduced-cost fixing: any solution violating a fixing is worth at most the incumbent
        close, must = lagrangian_fixing(ar, wr, p, lam, best)
        close |= lp_close
        must = (must | lp_open) & ~close
        if must.sum() > p:
            must[:] = False
        cols = np.flatnonzero(~close | np.isin(np.arange(len(close)), sel))
        stages["fixed_open"] = float(must.sum())
        am = ar[:, cols]
        live = np.diff(am.indptr) > 0
        am, wm = am[live], wr[live]
        nr, mf = am.shape
        stages["fixed_columns"] = float(close.sum())
        top = sp.hstack([-am, sp.identity(nr, format="csr")], format="csr")
        budget = sp.csr_matrix((np.ones(mf), (np.zeros(mf, dtype=np.int64), np.arange(mf))), shape=(1, mf + nr))
        amat = sp.vstack([top, budget], format="csc")
        c = np.concatenate([np.zeros(mf), wm])
        pos = np.full(ar.shape[1], -1)
        pos[cols] = np.arange(mf)
        x0 = np.zeros(mf)
        x0[pos[sel]] = 1.0
        y0 = np.minimum(1.0, np.asarray(am @ x0).ravel())
        lo_x = must[cols].astype(float)
        start = np.concatenate([x0, y0]) if np.all(x0 >= lo_x) else None
        res = solve_milp(c, amat, np.full(nr + 1, -np.inf), np.concatenate([np.zeros(nr), [p]]),
                         np.concatenate([lo_x, np.zeros(nr)]), np.ones(mf + nr),
                         np.concatenate([np.ones(mf, bool), np.zeros(nr, bool)]),
                         maximize=True, time_limit=remaining, start=start,
                         mip_rel_gap=gap * (const + best) / max(best, 1e-12))  # HiGHS sees no constant
        stages["milp"] = time.perf_counter() - t0
        if res.x is not None:
            xs = cols[np.flatnonzero(res.x[:mf] > 0.5)]
            v = coverage_value(ar, wr, xs)
            if v > best + 1e-9:
                best, sel = v, list(xs)
                _trace()
        if np.isfinite(res.bound):
            # solutions excluded by fixing are worth at most the incumbent, so the bound is max(., best)
            bound = min(bound, max(res.bound, best))
        status = "optimal" if res.status == "Optimal" else f"milp: {res.status}"
    bound = max(bound, best)
    g = relative_gap(const + best, const + bound)
    if g <= gap and status != "optimal":
        status = "optimal within gap"
    return SolveResult(free[np.asarray(sorted(sel), dtype=np.int64)], const + best, const + bound, g, status,
                       time.perf_counter() - t0, stages, trace=trace)


# ------------------------------------------------------------------------------------------------ LSCP
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
                           time.perf_counter() - t0, stages), uncoverable
    ac = ar.tocsc()
    sel = greedy_set_cover(ac, np.ones(ar.shape[0], dtype=bool))
    stages["greedy"] = time.perf_counter() - t0
    best, bound, status = float(len(sel)), 1.0, "heuristic"
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
            bound = max(bound, float(np.ceil(res.bound - 1e-6)))
        status = "optimal" if res.status == "Optimal" or bound >= best else f"milp: {res.status}"
    return SolveResult(free[np.asarray(sorted(sel), dtype=np.int64)], best, min(bound, best),
                       relative_gap(best, min(bound, best)), status, time.perf_counter() - t0, stages), uncoverable


# --------------------------------------------------------------------------------- capacitated MCLP
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
    bound, status = float(min(wr.sum(), cap[fixed_mask].sum() + np.sort(cap[~fixed_mask])[::-1][:p].sum())), "heuristic"
    remaining = time_limit - (time.perf_counter() - t0)
    if exact and relative_gap(best, bound) > gap and remaining > 0.05:
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
                         time_limit=remaining, mip_rel_gap=gap, start=np.concatenate([x0, z0]))
        stages["milp"] = time.perf_counter() - t0
        if res.x is not None and res.objective > best + 1e-9:
            sel = list(np.flatnonzero((res.x[:m] > 0.5) & ~fixed_mask))
            best = float(res.objective)
        if np.isfinite(res.bound):
            bound = min(bound, res.bound)
        status = "optimal" if res.status == "Optimal" else f"milp: {res.status}"
    bound = max(bound, best)
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
                       time.perf_counter() - t0, stages, flow=sp.csr_matrix(expand @ flow))


# ------------------------------------------------------------------------------------------- p-median
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
    n = len(over)
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
    del n
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
                       relative_gap(best_val, bound), status, time.perf_counter() - t0, stages)
