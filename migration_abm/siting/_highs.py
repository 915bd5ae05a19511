"""Thin wrapper that passes a sparse MILP to HiGHS (highspy) in one call and never raises on a time limit."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass
class MilpResult:
    """Outcome of one HiGHS run: best incumbent (or None), objective, best bound, relative gap, status."""

    x: np.ndarray | None
    objective: float
    bound: float
    gap: float
    status: str
    seconds: float
    col_dual: np.ndarray | None = None  # LPs only: reduced costs
    row_dual: np.ndarray | None = None  # LPs only: row duals (also when not proved optimal, if HiGHS has them)


def solve_milp(c: np.ndarray, a: sp.spmatrix, row_lo: np.ndarray, row_hi: np.ndarray,
               col_lo: np.ndarray, col_hi: np.ndarray, integer: np.ndarray, *, maximize: bool = False,
               time_limit: float = 60.0, mip_rel_gap: float = 1e-4, mip_abs_gap: float = 1e-6,
               start: np.ndarray | None = None,
               threads: int | None = None, verbose: bool = False,
               options: dict[str, object] | None = None) -> MilpResult:
    """Solve ``opt c·x s.t. row_lo <= A x <= row_hi, col_lo <= x <= col_hi`` with HiGHS.

    The constraint matrix goes in as CSC arrays through ``passModel`` (no per-row Python calls).
    ``start`` (a complete, feasible column vector) is handed to ``setSolution`` as a warm start. (A
    partial start was found to corrupt the returned solution in highspy 1.16, so callers complete it.)
    On a time limit the best incumbent and bound are returned.
    """
    import highspy

    t0 = time.perf_counter()
    a = sp.csc_matrix(a)
    a.sort_indices()
    n_col, n_row = a.shape[1], a.shape[0]
    inf = highspy.kHighsInf
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n_col, n_row
    lp.col_cost_ = np.asarray(c, dtype=np.float64)
    lp.col_lower_ = np.asarray(col_lo, dtype=np.float64)
    lp.col_upper_ = np.where(np.isinf(col_hi), inf, np.asarray(col_hi, dtype=np.float64))
    lp.row_lower_ = np.where(np.isinf(row_lo), -inf, np.asarray(row_lo, dtype=np.float64))
    lp.row_upper_ = np.where(np.isinf(row_hi), inf, np.asarray(row_hi, dtype=np.float64))
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = n_col, n_row
    lp.a_matrix_.start_ = a.indptr.astype(np.int32)
    lp.a_matrix_.index_ = a.indices.astype(np.int32)
    lp.a_matrix_.value_ = a.data.astype(np.float64)
    integer = np.asarray(integer, dtype=bool)
    if integer.any():
        lp.integrality_ = [highspy.HighsVarType.kInteger if v else highspy.HighsVarType.kContinuous
                           for v in integer]
    lp.sense_ = highspy.ObjSense.kMaximize if maximize else highspy.ObjSense.kMinimize
    h = new_highs(verbose)
    h.setOptionValue("output_flag", bool(verbose))
    h.setOptionValue("time_limit", float(max(time_limit, 0.01)))
    h.setOptionValue("mip_rel_gap", float(mip_rel_gap))
    h.setOptionValue("mip_abs_gap", float(mip_abs_gap))
    if threads is not None:
        h.setOptionValue("threads", int(threads))
    for key, value in (options or {}).items():
        h.setOptionValue(key, value)
    h.passModel(lp)
    if start is not None:
        sol = highspy.HighsSolution()
        sol.col_value = np.asarray(start, dtype=np.float64)
        sol.value_valid = True
        h.setSolution(sol)
    h.run()
    status = h.modelStatusToString(h.getModelStatus())
    info = h.getInfo()
    x = None
    if info.primal_solution_status == 2:  # feasible
        x = np.asarray(h.getSolution().col_value, dtype=float)
    obj = float(np.dot(lp.col_cost_, x)) if x is not None else float("nan")
    col_dual = row_dual = None
    if not integer.any() and info.dual_solution_status == 2:  # dual feasible
        sol = h.getSolution()
        col_dual, row_dual = np.asarray(sol.col_dual, dtype=float), np.asarray(sol.row_dual, dtype=float)
    if integer.any():
        bound = float(info.mip_dual_bound)
    else:
        bound = obj if status == "Optimal" else float("nan")
    gap = relative_gap(obj, bound) if x is not None else float("inf")
    left = time_limit - (time.perf_counter() - t0)
    if start is not None and status == "Optimal" and gap > mip_rel_gap + 1e-6 and abs(obj - bound) > mip_abs_gap:
        # highspy 1.16 sometimes returns the warm start as "optimal" with an inconsistent objective
        # (seen on p-median models); distrust it and re-solve cold in the remaining time.
        cold = solve_milp(c, a, row_lo, row_hi, col_lo, col_hi, integer, maximize=maximize, time_limit=left,
                          mip_rel_gap=mip_rel_gap, mip_abs_gap=mip_abs_gap, threads=threads, verbose=verbose)
        better = cold.x is not None and (cold.objective > obj if maximize else cold.objective < obj)
        x, obj = (cold.x, cold.objective) if better else (x, obj)
        bound, status = cold.bound, cold.status
        gap = relative_gap(obj, bound)
    return MilpResult(x, obj, bound, gap, status, time.perf_counter() - t0, col_dual, row_dual)


def new_highs(verbose: bool = False) -> object:
    """A ``highspy.Highs()`` built with fd 1 pointed at os.devnull (unless ``verbose``), because its
    constructor prints a licence banner straight to the process's stdout once per process."""
    import highspy

    if verbose:
        return highspy.Highs()
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
    try:
        saved = os.dup(1)
    except OSError:  # no fd 1 to redirect
        return highspy.Highs()
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 1)
        finally:
            os.close(devnull)
        return highspy.Highs()
    finally:
        try:  # flush C stdio too, so a buffered banner is dropped rather than printed after restoring
            import ctypes

            ctypes.CDLL(None).fflush(None)
        except (OSError, AttributeError):
            pass
        os.dup2(saved, 1)
        os.close(saved)


def relative_gap(objective: float, bound: float) -> float:
    """|bound − objective| / max(|bound|, tiny): the share of the bound not yet achieved (or exceeded)."""
    if not np.isfinite(objective) or not np.isfinite(bound):
        return float("inf")
    return abs(bound - objective) / max(abs(bound), abs(objective), 1e-12) if bound != objective else 0.0
