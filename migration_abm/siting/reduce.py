"""Exact problem reductions on sparse coverage matrices: merge identical rows, drop dominated rows/columns."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


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
    size = np.asarray(a.sum(axis=0)).ravel()
    drop = size == 0
    deg = np.diff(a.indptr).astype(float)
    if float(deg @ deg) > max_work:
        return drop
    inter = (a.T @ a).tocoo()
    j, k, v = inter.row, inter.col, inter.data
    hit = (j != k) & (v >= size[j] - 1e-9) & ((size[k] > size[j]) | ((size[k] == size[j]) & (k < j)))
    drop[np.unique(j[hit])] = True
    return drop
