"""LSCP agrees with brute force, with and without predefined sites."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from instances import small_instance

from migration_abm.siting.lscp import LSCP


@pytest.mark.parametrize("seed", range(6))
def test_lscp_matches_brute_force(seed: int) -> None:
    _, cost, _, r = small_instance(seed, n=30, m=10, radius=0.35)
    a = cost <= r
    fixed = [2] if seed % 2 else []
    coverable = a.any(axis=1)
    free = [j for j in range(a.shape[1]) if j not in fixed]
    best = None
    for k in range(len(free) + 1):
        if any(a[coverable][:, fixed + list(c)].any(axis=1).all() for c in itertools.combinations(free, k)):
            best = k
            break
    model = LSCP.from_cost_matrix(cost, r, predefined_facilities_arr=np.array(fixed, int), mip_gap=0.0).solve()
    assert model.objective_ == best == len(model.selected_)
    assert model.covered_[coverable].all()
    assert model.n_cli_uncov_ == int((~coverable).sum())
