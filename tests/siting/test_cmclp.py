"""Capacitated MCLP agrees with brute force (an LP max-flow per subset)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
from instances import lp_flow, small_instance

from migration_abm.siting.cmclp import CapacitatedMCLP, lagrangian_bound_cmclp


@pytest.mark.parametrize("seed", range(5))
def test_capacitated_mclp_matches_brute_force(seed: int) -> None:
    rng, cost, w, r = small_instance(seed, n=25, m=7, radius=0.35)
    a = cost <= r
    cap = rng.integers(10, 60, a.shape[1]).astype(float)
    fixed = [1] if seed % 2 else []
    free = [j for j in range(a.shape[1]) if j not in fixed]
    for p in (1, 2):
        best = max(lp_flow(a, w, cap, tuple(fixed) + c) for c in itertools.combinations(free, p))
        model = CapacitatedMCLP.from_cost_matrix(cost, w, r, p, cap, predefined_facilities_arr=np.array(fixed, int),
                                                 mip_gap=0.0).solve()
        assert model.objective_ == pytest.approx(best, rel=1e-6)
        assert model.served_.sum() == pytest.approx(best, rel=1e-6)
        load = np.asarray(model.flow_.sum(axis=0)).ravel()
        assert np.all(load <= cap + 1e-6) and np.all(model.served_ <= w + 1e-6)
        assert np.all(load[~model.open_] <= 1e-9)
        assert model.bound_ >= best - 1e-6
        fixed_mask = np.isin(np.arange(a.shape[1]), fixed)
        lag = lagrangian_bound_cmclp(sp.csc_matrix(a.astype(float)), w, cap, p, fixed_mask, 0.0, max_iter=50)
        assert lag >= best - 1e-6  # a valid bound whatever the multipliers reached
