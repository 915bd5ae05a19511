"""p-median agrees with brute force, with and without predefined sites."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from instances import small_instance

from migration_abm.siting.p_median import PMedian


@pytest.mark.parametrize("seed", range(4))
def test_pmedian_matches_brute_force(seed: int) -> None:
    _, cost, w, _ = small_instance(seed, n=30, m=8)
    fixed = [3] if seed % 2 else []
    free = [j for j in range(8) if j not in fixed]
    for p in (1, 2, 3):
        best = min(w @ cost[:, fixed + list(c)].min(axis=1) for c in itertools.combinations(free, p))
        model = PMedian.from_cost_matrix(cost, w, p, predefined_facilities_arr=np.array(fixed, int)).solve()
        assert model.objective_ == pytest.approx(best)
        assert model.status_ == "optimal"
