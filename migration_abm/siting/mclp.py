"""Maximal covering (MCLP): at most p new facilities maximising the covered weighted demand.

``solve_mclp`` runs named stages on a ``_Search`` state: reduce → construct (lazy greedy + swap) →
lagrangian → lp (bound from the LP duals, valid even unconverged) → improve (LP-guided iterated local
search, kernel MILP, local search again) → milp (reduced-cost fixing, warm-started HiGHS). Each stage after
``construct`` runs only while the certified gap is above the target.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from migration_abm.siting import _ils
from migration_abm.siting._highs import relative_gap, solve_milp
from migration_abm.siting.base import CoverageModel, SitingProblem, SolveResult, cover_from_cost
from migration_abm.siting.coverage import coverage_matrix
from migration_abm.siting.reduce import dominated_columns, merge_identical_rows

log = logging.getLogger(__name__)

#: Share of the time left after the LP that the improvement stage (kernel MILP + local search) may use
#: while the gap is open; the warm-started MILP gets the rest (and what the local search leaves when it
#: stalls or reaches the target).
IMPROVE_SHARE = 1.0
#: The MILP starts only with at least this many seconds (or this share of the limit) left: HiGHS cannot be
#: stopped during presolve, and a MILP that cannot progress only overruns the limit.
MILP_MIN_SECONDS, MILP_MIN_SHARE = 1.0, 0.1
#: The LP may take all the time left but min(heuristic_time, this share of it): its bound is what
#: certifies large instances, and its values guide the search that follows
LP_RESERVE_SHARE = 0.1
#: Subgradient time before the LP: its bound is the fallback when the LP cannot finish in time
LAGRANGIAN_MAX_SECONDS, LAGRANGIAN_SHARE = 10.0, 0.1
#: Coverage arcs (after reduction) from which the LP is "large": the subgradient time scales up to here
LP_LARGE_NNZ = 1_000_000
#: Shares of the improvement budget: iterated local search first, then the kernel MILP (warm-started from
#: it), then the local search again from the kernel's solution in what is left
ILS_FIRST_SHARE, KERNEL_SHARE = 0.7, 0.15
#: Local-search rounds without improvement after which it stops (leaving the time to the MILP)
ILS_STALL_ROUNDS = 3000
#: Coverage arcs scanned per compiled call of the local search (sets its rounds per call, so the time
#: limit is checked about every 50 ms on this machine)
ILS_CHUNK_ARCS = 3_000_000
#: Products beyond which the column adjacency (AᵀA) is not formed and the local search kicks anywhere
ADJACENCY_MAX_WORK = 5e7


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


def _csc64(a_csc: sp.csc_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Column pointers and row indices as int64 (what the compiled search is compiled for)."""
    return a_csc.indptr.astype(np.int64), a_csc.indices.astype(np.int64)


def swap_mclp(a_csc: sp.csc_matrix, w: np.ndarray, chosen: list[int], allowed: np.ndarray | None = None,
              time_limit: float = 10.0, chunk: int = 20) -> list[int]:
    """Best-improvement 1-swap local search (Teitz–Bart style) for MCLP, compiled (``_ils.swap_search``).

    Each iteration scans the coverage arcs once: for every closed k and open j the change in covered
    weight is gain_k − loss_j + (weight covered only by j that k also covers). Runs to a local optimum or
    the time limit (checked every ``chunk`` swaps).
    """
    n, m = a_csc.shape
    sel = np.asarray([int(j) for j in chosen], dtype=np.int64)
    if len(sel) == 0:
        return []
    cp, ci = _csc64(a_csc)
    pos, cnt, own = np.empty(m, np.int64), np.empty(n, np.int64), np.empty(n, np.int64)
    _ils.cover_state(cp, ci, n, sel, pos, cnt, own)
    ok = np.ones(m, dtype=bool) if allowed is None else np.asarray(allowed, dtype=bool)
    tol = 1e-9 * max(float(w.sum()), 1.0)
    t0 = time.perf_counter()
    while _ils.swap_search(cp, ci, w, sel, pos, cnt, own, ok, tol, chunk) == chunk:
        if time.perf_counter() - t0 > time_limit:
            break
    return [int(j) for j in sel]


def column_adjacency(a_csc: sp.csc_matrix, max_work: float = ADJACENCY_MAX_WORK) -> sp.csr_matrix | None:
    """Columns sharing a coverage row (no diagonal), or None when forming AᵀA would cost more than
    ``max_work`` products."""
    deg = np.diff(a_csc.tocsr().indptr).astype(float)
    if float(deg @ deg) > max_work:
        return None
    b = (a_csc.T @ a_csc).tocsr()
    b.setdiag(0)
    b.eliminate_zeros()
    return b


def perturb_mclp(a_csc: sp.csc_matrix, w: np.ndarray, sel: list[int], guide: np.ndarray, target: float,
                 time_limit: float, seed: int = 0, stall: int | None = None, accept: float = 5e-4,
                 allowed: np.ndarray | None = None, adjacency: sp.csr_matrix | None = None,
                 on_improve: Callable[[list[int]], object] | None = None) -> list[int]:
    """Iterated local search (compiled rounds, ``_ils.ils_rounds``): close 1–4 open sites near each other,
    open sites next to them drawn in proportion to ``guide`` (e.g. the LP solution), re-run the swap
    search. Without a column ``adjacency`` (``column_adjacency``) the sites are drawn anywhere. Moves up
    to ``accept`` (relative, shrinking to 0 over the time limit) worse are accepted as the current point;
    the best is returned (and each improvement passed to ``on_improve``). Stops at ``target`` value, the
    time limit or after ``stall`` (default ``ILS_STALL_ROUNDS``) rounds without improvement. Seeded: with the same number of rounds the
    result is the same."""
    t0 = time.perf_counter()
    n, m = a_csc.shape
    best = np.asarray([int(j) for j in sel], dtype=np.int64)
    if len(best) == 0 or len(best) >= m:
        return [int(j) for j in best]
    cp, ci = _csc64(a_csc)
    prob = np.maximum(np.asarray(guide, dtype=float), 0.0) + 1e-3 * max(float(np.max(guide, initial=0.0)), 1e-9)
    ok = np.ones(m, dtype=bool) if allowed is None else np.asarray(allowed, dtype=bool)
    ok[best] = True
    tol = 1e-9 * max(float(w.sum()), 1.0)
    cur = best.copy()
    cur_v = best_v = _ils.solution_value(cp, ci, w, best)
    rounds = max(1, min(64, ILS_CHUNK_ARCS // max(a_csc.nnz, 1)))  # a fixed schedule: seeded results
    rng = np.random.default_rng(seed)
    bp, bi = (np.zeros(1, np.int64),) * 2 if adjacency is None else (adjacency.indptr.astype(np.int64),
                                                                    adjacency.indices.astype(np.int64))
    done, last = 0, 0
    stall = ILS_STALL_ROUNDS if stall is None else stall
    while best_v < target and done - last <= stall:
        elapsed = time.perf_counter() - t0
        if elapsed >= time_limit:
            break
        shrink = max(0.0, 1.0 - elapsed / max(time_limit, 1e-9))
        cur_v, v, hit = _ils.ils_rounds(cp, ci, bp, bi, w, prob, cur, best, ok, rng.random((rounds, 8)),
                                        accept * cur_v * shrink, tol, adjacency is not None)
        if v > best_v + tol:
            best_v, last = v, done + hit
            if on_improve is not None:
                on_improve([int(j) for j in best])
        done += rounds
    return [int(j) for j in best]


def kernel_milp_mclp(a_csr: sp.csr_matrix, w: np.ndarray, p: int, cols: np.ndarray, start: list[int],
                     time_limit: float) -> tuple[list[int], float, bool]:
    """MCLP restricted to the columns ``cols`` (a "kernel"), solved by HiGHS warm-started from ``start``.

    Returns (chosen columns in the full index, their covered weight, whether the kernel optimum was proved).
    Its value is a feasible solution of the full problem, never a bound on it.
    """
    cols = np.asarray(cols, dtype=np.int64)
    am = a_csr[:, cols]
    live = (np.diff(am.indptr) > 0) & (w > 0)
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


def lagrangian_value(a_csr: sp.csr_matrix, w: np.ndarray, p: int, lam: np.ndarray) -> float:
    """L(λ) = Σ (w − λ) + sum of the p largest (Aᵀλ)_j: an upper bound on MCLP for any 0 <= λ <= w."""
    lam = np.clip(lam, 0.0, w)
    c = np.asarray(a_csr.T @ lam).ravel()
    p = min(p, len(c))
    return float(np.sum(w - lam) + (np.partition(c, len(c) - p)[len(c) - p:].sum() if p else 0.0))


def lagrangian_bound_mclp(a_csr: sp.csr_matrix, w: np.ndarray, p: int, incumbent: float,
                          time_limit: float = 5.0, max_iter: int = 600, lam0: np.ndarray | None = None,
                          mu0: float = 2.0) -> tuple[float, np.ndarray | None, np.ndarray]:
    """Upper bound on weighted max coverage by subgradient optimisation of the Lagrangian dual.

    Relaxing y_i <= (A x)_i with multipliers 0 <= λ_i <= w_i gives
    L(λ) = Σ_i (w_i − λ_i) + (sum of the p largest (Aᵀλ)_j), a valid bound for any λ whose minimum
    equals the LP bound. Cheap: one sparse product per iteration. Returns (bound, best x from the
    Lagrangian subproblems, multipliers at the best bound): the x serves as a heuristic, the
    multipliers for reduced-cost fixing. ``lam0`` warm-starts the multipliers (e.g. from LP duals).
    """
    t0 = time.perf_counter()
    at = a_csr.T.tocsr()
    m = a_csr.shape[1]
    p = min(p, m)
    lam = w * 0.5 if lam0 is None else np.clip(lam0, 0.0, w)
    best_bound, best_sol, best_val, best_lam = np.inf, None, incumbent, lam
    mu, stall = mu0, 0
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


def mclp_matrix(a: sp.csr_matrix, p: int) -> tuple[sp.csc_matrix, np.ndarray]:
    """MCLP constraint matrix over columns (x_j binaries, then y_i): rows y_i − Σ a_ij x_j <= 0, Σ x <= p."""
    nr, mf = a.shape
    top = sp.hstack([-a, sp.identity(nr, format="csr")], format="csr")
    budget = sp.csr_matrix((np.ones(mf), (np.zeros(mf, dtype=np.int64), np.arange(mf))), shape=(1, mf + nr))
    return sp.vstack([top, budget], format="csc"), np.concatenate([np.zeros(nr), [p]])


class _Search:
    """State of one MCLP solve on the reduced instance: incumbent, bound (and which one), trace, clock."""

    def __init__(self, a: sp.csr_matrix, w: np.ndarray, p: int, fixed_mask: np.ndarray, time_limit: float,
                 gap: float, seed: int) -> None:
        self.t0 = time.perf_counter()
        self.deadline = self.t0 + time_limit
        self.gap, self.seed = gap, seed
        self.stages: dict[str, float] = {}
        self.trace: list[tuple[float, float]] = []
        self.best, self.sel = -np.inf, []
        self.bound, self.bound_kind = np.inf, "trivial"
        self.lam: np.ndarray | None = None
        self.lp_x: np.ndarray | None = None
        self.lp_close = self.lp_open = None
        self.lsol: np.ndarray | None = None
        self.adjacency: sp.csr_matrix | None = None
        self.status = "heuristic"
        self._reduce(a, w, p, fixed_mask)

    # ---- bookkeeping
    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def mark(self, stage: str) -> None:
        self.stages[stage] = time.perf_counter() - self.t0

    def offer(self, sel: list[int] | np.ndarray) -> bool:
        """Take ``sel`` as the incumbent if it covers more; record the improvement."""
        v = coverage_value(self.ar, self.wr, np.asarray(sel, dtype=np.int64))
        if v > self.best + 1e-9:
            self.best, self.sel = v, [int(j) for j in sel]
            self.trace.append((time.perf_counter() - self.t0, self.const + v))
            return True
        return False

    def tighten(self, bound: float, kind: str) -> None:
        """Take ``bound`` (an upper bound on the reduced objective) if it is lower; remember its kind."""
        if bound < self.bound:
            self.bound, self.bound_kind = bound, kind

    def open_gap(self) -> float:
        return relative_gap(self.const + self.best, self.const + max(self.bound, self.best))

    def searching(self) -> bool:
        return self.open_gap() > self.gap and self.left() > 0.05

    # ---- stages
    def _reduce(self, a: sp.csr_matrix, w: np.ndarray, p: int, fixed_mask: np.ndarray) -> None:
        """Drop rows covered by fixed sites, uncoverable or weightless; merge identical rows; drop
        dominated columns (keeping at least p)."""
        covered0 = np.asarray(a @ fixed_mask.astype(float)).ravel() > 0
        self.const = float(w[covered0].sum())
        free = np.flatnonzero(~fixed_mask)
        rows = np.flatnonzero(~covered0 & (w > 0))
        ar = a[rows][:, free]
        keep_rows = np.diff(ar.indptr) > 0
        ar, wr, _ = merge_identical_rows(ar[keep_rows], w[rows][keep_rows])
        ar.data[:] = 1.0
        keep = ~dominated_columns(ar)
        if keep.sum() < max(p, 1):
            keep[:] = True
        self.free, self.ar, self.wr = free[keep], ar[:, np.flatnonzero(keep)], wr
        self.ac = self.ar.tocsc()
        self.p = int(min(p, len(self.free)))
        self.tighten(float(self.wr.sum()), "total demand")
        self.mark("reduce")

    def construct(self, swap_time: float) -> None:
        """Lazy greedy, then best-improvement swaps (``swap_time`` is also the LP rounding's swap budget)."""
        self.swap_time = swap_time
        self.offer(lazy_greedy_mclp(self.ac, self.wr, self.p))
        self.mark("greedy")
        self.offer(swap_mclp(self.ac, self.wr, self.sel, time_limit=min(swap_time, max(self.left(), 0.0))))
        self.mark("swap")
        if self.p == 0 or self.ar.shape[0] == 0:
            self.tighten(self.best, "optimal")

    def lagrangian(self, seconds: float, lam0: np.ndarray | None = None, stage: str = "lagrangian") -> None:
        """Subgradient on the Lagrangian dual of y <= Ax: a bound, multipliers and a heuristic solution."""
        bound, lsol, lam = lagrangian_bound_mclp(self.ar, self.wr, self.p, self.best,
                                                 time_limit=max(0.0, min(seconds, self.left())), lam0=lam0,
                                                 mu0=2.0 if lam0 is None else 0.1, max_iter=20000)
        if lsol is not None:
            self.lsol = lsol
            self.offer(lsol)
        if bound < self.bound:
            self.lam = lam
        self.tighten(bound, "lagrangian")
        self.mark(stage)

    def lp(self, reserve: float) -> None:
        """LP relaxation by HiGHS IPM in all but ``reserve`` seconds. Its row duals give the bound L(λ),
        valid whether or not the IPM converged; an LP rounding (top-p x, then swap) is offered. (Running
        the local search beside it in a thread was tried: it slowed the LP more than it gained.)"""
        amat, row_hi = mclp_matrix(self.ar, self.p)
        nr, mf = self.ar.shape
        res = solve_milp(np.concatenate([np.zeros(mf), self.wr]), amat, np.full(nr + 1, -np.inf), row_hi,
                         np.zeros(mf + nr), np.ones(mf + nr), np.zeros(mf + nr, bool), maximize=True,
                         time_limit=max(0.05, self.left() - reserve),
                         options={"solver": "ipm", "run_crossover": "off"})
        self.mark("lp")
        self.stages["lp_status_optimal"] = float(res.status == "Optimal")
        if res.row_dual is not None:
            lam = np.clip(np.abs(res.row_dual[:nr]), 0.0, self.wr)
            self.tighten(lagrangian_value(self.ar, self.wr, self.p, lam), "lp")
            if self.bound_kind == "lp":
                self.lam = lam
        if res.x is not None:
            self.lp_x = np.clip(res.x[:mf], 0.0, 1.0)
            cand = list(np.argsort(-self.lp_x, kind="stable")[:self.p])
            self.offer(swap_mclp(self.ac, self.wr, cand, time_limit=max(0.0, min(self.swap_time, self.left()))))
        self.mark("lp_round")

    def improve(self, budget: float) -> None:
        """LP-guided iterated local search in ``ILS_FIRST_SHARE`` of ``budget``; a kernel MILP (LP support +
        incumbent + Lagrangian solution, warm-started; grown by LP value while it is proved and improves)
        in ``KERNEL_SHARE`` of it; the local search again from the result in the rest. With the gap
        target already met it still uses ``budget`` (the heuristic time), aiming at the bound."""
        t0 = time.perf_counter()
        end = t0 + max(0.0, min(budget, self.left()))
        guide = self._guide()
        target = self._target() if self.searching() else self.bound
        self._local_search(guide, target, ILS_FIRST_SHARE * (end - t0), "local_search")
        kernel = guide > 1e-6 if self.lp_x is not None else np.zeros(len(guide), bool)
        kernel[np.asarray(self.sel, dtype=np.int64)] = True
        if self.lsol is not None:
            kernel[np.asarray(self.lsol, dtype=np.int64)] = True
        rest = np.flatnonzero(~kernel)
        rest = rest[np.argsort(-guide[rest], kind="stable")]
        k_end = min(end, time.perf_counter() + KERNEL_SHARE * (end - t0))
        rounds = 0
        while self._improvable() and time.perf_counter() < k_end - 0.02:
            ksel, _, kopt = kernel_milp_mclp(self.ar, self.wr, self.p, np.flatnonzero(kernel), self.sel,
                                             time_limit=k_end - time.perf_counter())
            rounds += 1
            better = self.offer(ksel)
            if better:
                self.offer(swap_mclp(self.ac, self.wr, self.sel, time_limit=max(0.0, k_end - time.perf_counter())))
            if not kopt or len(rest) == 0 or (rounds > 1 and not better):
                break
            kernel[rest[:max(self.p, 20)]] = True
            kernel[np.asarray(self.sel, dtype=np.int64)] = True
            rest = rest[max(self.p, 20):]
        self.stages["kernel_rounds"] = float(rounds)
        self.mark("kernel")
        self._local_search(guide, target, end - time.perf_counter(), "local_search_2", seed_offset=1)

    def _improvable(self) -> bool:
        """Time is left and the incumbent is not proved optimal."""
        return self.left() > 0.05 and self.best < self.bound - 1e-9 * max(abs(self.bound), 1.0)

    def _guide(self) -> np.ndarray:
        """Where the local search draws sites: the LP values, else Aᵀλ (multipliers), else Aᵀw."""
        if self.lp_x is not None:
            return self.lp_x
        return np.asarray(self.ar.T @ (self.lam if self.lam is not None else self.wr)).ravel()

    def _target(self) -> float:
        """The reduced objective at which the gap target is met."""
        return (self.const + self.bound) * (1 - self.gap) - self.const

    def _local_search(self, guide: np.ndarray, target: float, seconds: float, stage: str,
                      seed_offset: int = 0) -> None:
        """The iterated local search from the incumbent for ``seconds`` unless it is proved optimal, over the
        columns that reduced-cost fixing (multipliers and incumbent) leaves: no better solution uses others."""
        if self._improvable() and seconds > 0.02:
            if self.adjacency is None:
                self.adjacency = column_adjacency(self.ac)
            allowed = None
            if self.lam is not None:
                allowed = ~lagrangian_fixing(self.ar, self.wr, self.p, self.lam, self.best)[0]
                self.stages[f"{stage}_columns"] = float(allowed.sum())
            self.offer(perturb_mclp(self.ac, self.wr, self.sel, guide, target, time_limit=seconds,
                                    seed=2 * self.seed + seed_offset, adjacency=self.adjacency,
                                    on_improve=self.offer, allowed=allowed))
        self.mark(stage)

    def milp(self) -> None:
        """Reduced-cost fixing from the multipliers, then HiGHS on what is left, warm-started."""
        close = np.zeros(self.ar.shape[1], bool)
        must = np.zeros(self.ar.shape[1], bool)
        if self.lam is not None:
            close, must = lagrangian_fixing(self.ar, self.wr, self.p, self.lam, self.best)
        must &= ~close
        if must.sum() > self.p:
            must[:] = False
        close[np.asarray(self.sel, dtype=np.int64)] = False
        cols = np.flatnonzero(~close)
        self.stages["fixed_columns"], self.stages["fixed_open"] = float(close.sum()), float(must.sum())
        am = self.ar[:, cols]
        live = np.diff(am.indptr) > 0
        am, wm = am[live], self.wr[live]
        nr, mf = am.shape
        amat, row_hi = mclp_matrix(am, self.p)
        pos = np.full(self.ar.shape[1], -1)
        pos[cols] = np.arange(mf)
        x0 = np.zeros(mf)
        x0[pos[self.sel]] = 1.0
        lo_x = must[cols].astype(float)
        start = np.concatenate([x0, np.minimum(1.0, np.asarray(am @ x0).ravel())]) if np.all(x0 >= lo_x) else None
        res = solve_milp(np.concatenate([np.zeros(mf), wm]), amat, np.full(nr + 1, -np.inf), row_hi,
                         np.concatenate([lo_x, np.zeros(nr)]), np.ones(mf + nr),
                         np.concatenate([np.ones(mf, bool), np.zeros(nr, bool)]), maximize=True,
                         time_limit=self.left(), start=start,
                         mip_rel_gap=self.gap * (self.const + self.best) / max(self.best, 1e-12))
        self.mark("milp")
        if res.x is not None:
            self.offer(cols[np.flatnonzero(res.x[:mf] > 0.5)])
        if np.isfinite(res.bound):
            # solutions excluded by fixing are worth at most the incumbent, so the bound is max(., best)
            self.tighten(max(res.bound, self.best), "milp")
        self.status = "optimal" if res.status == "Optimal" else f"milp: {res.status}"

    def result(self) -> SolveResult:
        if self.best >= self.bound - 1e-9 * max(abs(self.bound), 1.0):
            self.bound, self.bound_kind, self.status = self.best, "optimal", "optimal"
        g = self.open_gap()
        if g <= self.gap and self.status != "optimal":
            self.status = "optimal within gap"
        return SolveResult(self.free[np.asarray(sorted(self.sel), dtype=np.int64)], self.const + self.best,
                           self.const + max(self.bound, self.best), g, self.status,
                           time.perf_counter() - self.t0, self.stages, trace=self.trace,
                           bound_kind=self.bound_kind)


def solve_mclp(a: sp.spmatrix, w: np.ndarray, p: int, fixed: np.ndarray | None = None, *,
               time_limit: float = 60.0, gap: float = 1e-4, exact: bool = True,
               heuristic_time: float = 1.0, seed: int = 0) -> SolveResult:
    """Maximal covering: at most ``p`` new columns (``fixed`` always open) maximising covered weight.

    Time allocation: a subgradient Lagrangian bound first, then the LP in all but a small reserve of what
    is left (its dual bound counts even if it stops early; if it fails, the Lagrangian continues from its
    best multipliers in half the rest);
    the improvement stage then gets at least
    ``heuristic_time`` seconds, or ``IMPROVE_SHARE`` of what remains if more, and stops early at the
    target or when the local search stalls; the MILP gets the rest if enough is left. Returns the
    best incumbent, best bound (``bound_kind`` says which) and gap; never raises on the time limit.
    """
    a = sp.csr_matrix(a, dtype=np.float64)
    m = a.shape[1]
    fixed_mask = np.zeros(m, dtype=bool)
    if fixed is not None and len(fixed):
        fixed_mask[np.asarray(fixed)] = True
    s = _Search(a, np.asarray(w, dtype=float), p, fixed_mask, time_limit, gap, seed)
    s.construct(swap_time=max(1.0, 0.1 * time_limit))
    if s.searching():  # the fallback bound matters in proportion to what the LP will cost (its size)
        s.lagrangian(min(LAGRANGIAN_MAX_SECONDS, LAGRANGIAN_SHARE * time_limit * min(1.0, s.ar.nnz / LP_LARGE_NNZ)))
    if exact and s.searching():
        s.lp(reserve=min(heuristic_time, LP_RESERVE_SHARE * s.left()))
        if s.lam is not None and s.searching() and s.bound_kind != "lp":
            s.lagrangian(0.5 * s.left(), lam0=s.lam, stage="lagrangian_polish")  # the LP did not finish
        if s.searching() or heuristic_time > 0:
            s.improve(max(min(heuristic_time, s.left()), IMPROVE_SHARE * s.left()) if s.searching()
                      else heuristic_time)
        if s.searching() and s.left() >= max(MILP_MIN_SECONDS, MILP_MIN_SHARE * time_limit):
            s.milp()
    return s.result()


class MCLP(CoverageModel):
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
        return cls(cover_from_cost(cost_matrix, service_radius), weights, p_facilities,
                   predefined_facilities_arr, **kw)

    @classmethod
    def from_points(cls, demand_lonlat: np.ndarray, site_lonlat: np.ndarray, weights: np.ndarray | None,
                    radius_km: float | np.ndarray, p: int, predefined_facilities: np.ndarray | None = None,
                    **kw: object) -> MCLP:
        """Build from lon/lat points with a great-circle service radius (km, scalar or per point)."""
        return cls(coverage_matrix(demand_lonlat, site_lonlat, radius_km), weights, p, predefined_facilities, **kw)

    @classmethod
    def from_problem(cls, problem: SitingProblem, budget: int, **kw: object) -> MCLP:
        """From a plan's problem: its coverage, weights and fixed sites (capacities do not apply)."""
        model = cls(problem.coverage, problem.weights, budget, problem.fixed, **kw)
        model.arc_cost = problem.arc_cost
        return model

    def solve(self) -> MCLP:
        """Run the stages (see ``solve_mclp``) within the time limit; sets the fitted attributes."""
        self._finish(solve_mclp(self.coverage, self.weights, self.p, np.flatnonzero(self.predefined),
                                time_limit=self.time_limit, gap=self.mip_gap, exact=self.exact,
                                heuristic_time=self.heuristic_time, seed=self.seed))
        return self
