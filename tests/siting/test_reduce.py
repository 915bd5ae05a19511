"""Exact reductions: identical rows merge, dominated rows drop."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from migration_abm.siting.reduce import drop_dominated_rows, merge_identical_rows


def test_row_reduction() -> None:
    a = sp.csr_matrix(np.array([[1, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 0]], dtype=float))
    red, w, inv = merge_identical_rows(a, np.array([1.0, 2.0, 3.0, 4.0]))
    assert red.shape[0] == 3 and list(w) == [3.0, 3.0, 4.0] and list(inv) == [0, 0, 1, 2]
    keep = drop_dominated_rows(red)
    assert list(keep) == [True, False, True]  # {0,1,2} contains {0,2}
