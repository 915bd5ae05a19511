"""Sobol estimators against the analytic Ishigami indices."""

from __future__ import annotations

import numpy as np

from migration_abm.experiments import ishigami, saltelli_sample, sobol_indices
from migration_abm.experiments.sensitivity import ishigami_indices


def test_ishigami_within_tolerance() -> None:
    x = saltelli_sample(4096, [(-np.pi, np.pi)] * 3, seed=12345)
    assert x.shape == (4096 * 5, 3)
    est = sobol_indices(ishigami(x), 3, n_bootstrap=300, seed=1)
    exact = ishigami_indices()
    assert np.allclose(est["S1"], exact["S1"], atol=0.04)
    assert np.allclose(est["ST"], exact["ST"], atol=0.04)
    # bootstrap intervals are sane and cover the truth for the well-estimated indices
    assert (est["S1_lo"] <= est["S1"]).all() and (est["S1"] <= est["S1_hi"]).all()
    assert ((est["ST_lo"] - 0.01 <= exact["ST"]) & (exact["ST"] <= est["ST_hi"] + 0.01)).all()


def test_rejects_bad_shapes() -> None:
    import pytest

    with pytest.raises(ValueError):
        sobol_indices(np.zeros(7), 3)
    with pytest.raises(ValueError):
        sobol_indices(np.full(10, np.nan), 3)


def test_ishigami_second_order_through_salib() -> None:
    from migration_abm.experiments.sensitivity import ishigami_second_order, sobol_second_order

    x = saltelli_sample(4096, [(-np.pi, np.pi)] * 3, seed=7, second_order=True)
    assert x.shape == (4096 * 8, 3)
    y = ishigami(x)
    first = sobol_indices(y, 3, n_bootstrap=200, seed=2, second_order=True)
    exact = ishigami_indices()
    assert np.allclose(first["S1"], exact["S1"], atol=0.04)
    assert np.allclose(first["ST"], exact["ST"], atol=0.04)
    s2 = sobol_second_order(y, 3, n_bootstrap=200, seed=2)
    assert list(s2.index) == [("x1", "x2"), ("x1", "x3"), ("x2", "x3")]
    assert np.allclose(s2["S2"], ishigami_second_order()["S2"], atol=0.06)
    assert (s2["S2_lo"] <= s2["S2"]).all() and (s2["S2"] <= s2["S2_hi"]).all()

