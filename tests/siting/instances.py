"""Small instances shared by the solver tests (brute force is feasible on them)."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linprog


def small_instance(seed: int, n: int = 40, m: int = 9, radius: float = 0.25):
    rng = np.random.default_rng(seed)
    pts, sites = rng.random((n, 2)), rng.random((m, 2))
    cost = np.linalg.norm(pts[:, None] - sites[None], axis=2)
    w = rng.integers(1, 20, n).astype(float)
    return rng, cost, w, radius


def lp_flow(a: np.ndarray, w: np.ndarray, cap: np.ndarray, open_cols: tuple[int, ...]) -> float:
    """Maximum splittable flow of demand ``w`` to the open columns within capacity (brute-force LP check)."""
    arcs = [(i, j) for i in range(a.shape[0]) for j in open_cols if a[i, j]]
    if not arcs:
        return 0.0
    k = len(arcs)
    a_ub = np.zeros((a.shape[0] + len(open_cols), k))
    for t, (i, j) in enumerate(arcs):
        a_ub[i, t] = 1
        a_ub[a.shape[0] + open_cols.index(j), t] = 1
    res = linprog(-np.ones(k), A_ub=a_ub, b_ub=np.concatenate([w, cap[list(open_cols)]]), bounds=(0, None))
    return -res.fun


def clustered(n: int, m: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.random((8, 2))

    def draw(k: int) -> np.ndarray:
        return np.clip(centres[rng.integers(0, 8, k)] + rng.normal(0, 0.05, (k, 2)), 0, 1)

    pts, sites = draw(n), draw(m)
    return np.linalg.norm(pts[:, None] - sites[None], axis=2), rng.integers(1, 101, n).astype(float)
