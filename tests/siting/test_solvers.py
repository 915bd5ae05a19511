"""MCLP, capacitated MCLP, LSCP and p-median agree with brute-force enumeration on small instances."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog

from migration_abm.siting.models import LSCP, MCLP, CapacitatedMCLP, PMedian
from migration_abm.siting.solvers import (
    coverage_value,
    drop_dominated_rows,
    kernel_milp_mclp,
    merge_identical_rows,
)


def _instance(seed: int, n: int = 40, m: int = 9, radius: float = 0.25):
    rng = np.random.default_rng(seed)
    pts, sites = rng.random((n, 2)), rng.random((m, 2))
    cost = np.linalg.norm(pts[:, None] - sites[None], axis=2)
    w = rng.integers(1, 20, n).astype(float)
    return rng, cost, w, radius


def _flow(a: np.ndarray, w: np.ndarray, cap: np.ndarray, open_cols: tuple[int, ...]) -> float:
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


@pytest.mark.parametrize("seed", range(6))
def test_mclp_matches_brute_force(seed: int) -> None:
    _, cost, w, r = _instance(seed)
    a = cost <= r
    fixed = [0] if seed % 2 else []
    free = [j for j in range(a.shape[1]) if j not in fixed]
    for p in (1, 2, 3):
        best = max(w[a[:, list(fixed) + list(c)].any(axis=1)].sum() for c in itertools.combinations(free, p))
        model = MCLP.from_cost_matrix(cost, w, r, p, predefined_facilities_arr=np.array(fixed, dtype=int),
                                      mip_gap=0.0).solve()
        assert model.objective_ == pytest.approx(best)
        assert model.bound_ >= best - 1e-9 and model.gap_ <= 1e-9
        assert len(model.selected_) <= p
        assert model.perc_cov_weighted == pytest.approx(100 * best / w.sum())


@pytest.mark.parametrize("seed", range(5))
def test_capacitated_mclp_matches_brute_force(seed: int) -> None:
    rng, cost, w, r = _instance(seed, n=25, m=7, radius=0.35)
    a = cost <= r
    cap = rng.integers(10, 60, a.shape[1]).astype(float)
    fixed = [1] if seed % 2 else []
    free = [j for j in range(a.shape[1]) if j not in fixed]
    for p in (1, 2):
        best = max(_flow(a, w, cap, tuple(fixed) + c) for c in itertools.combinations(free, p))
        model = CapacitatedMCLP.from_cost_matrix(cost, w, r, p, cap, predefined_facilities_arr=np.array(fixed, int),
                                                 mip_gap=0.0).solve()
        assert model.objective_ == pytest.approx(best, rel=1e-6)
        assert model.served_.sum() == pytest.approx(best, rel=1e-6)
        load = np.asarray(model.flow_.sum(axis=0)).ravel()
        assert np.all(load <= cap + 1e-6) and np.all(model.served_ <= w + 1e-6)
        assert np.all(load[~model.open_] <= 1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_lscp_matches_brute_force(seed: int) -> None:
    _, cost, _, r = _instance(seed, n=30, m=10, radius=0.35)
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
    assert model.n_cli_uncov == int((~coverable).sum())


@pytest.mark.parametrize("seed", range(4))
def test_pmedian_matches_brute_force(seed: int) -> None:
    _, cost, w, _ = _instance(seed, n=30, m=8)
    fixed = [3] if seed % 2 else []
    free = [j for j in range(8) if j not in fixed]
    for p in (1, 2, 3):
        best = min(w @ cost[:, fixed + list(c)].min(axis=1) for c in itertools.combinations(free, p))
        model = PMedian.from_cost_matrix(cost, w, p, predefined_facilities_arr=np.array(fixed, int)).solve()
        assert model.objective_ == pytest.approx(best)
        assert model.status_ == "optimal"


def test_row_reduction() -> None:
    a = sp.csr_matrix(np.array([[1, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 0]], dtype=float))
    red, w, inv = merge_identical_rows(a, np.array([1.0, 2.0, 3.0, 4.0]))
    assert red.shape[0] == 3 and list(w) == [3.0, 3.0, 4.0] and list(inv) == [0, 0, 1, 2]
    keep = drop_dominated_rows(red)
    assert list(keep) == [True, False, True]  # {0,1,2} contains {0,2}


def test_time_limit_returns_incumbent() -> None:
    rng = np.random.default_rng(1)
    n, m = 3000, 300
    pts, sites = rng.random((n, 2)), rng.random((m, 2))
    cost = np.linalg.norm(pts[:, None] - sites[None], axis=2)
    model = MCLP.from_cost_matrix(cost, rng.random(n), 0.06, 15, time_limit=0.2, mip_gap=0.0).solve()
    assert len(model.selected_) == 15 and model.objective_ > 0
    assert model.bound_ >= model.objective_ and np.isfinite(model.gap_)


def _clustered(n: int, m: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.random((8, 2))

    def draw(k: int) -> np.ndarray:
        return np.clip(centres[rng.integers(0, 8, k)] + rng.normal(0, 0.05, (k, 2)), 0, 1)

    pts, sites = draw(n), draw(m)
    return np.linalg.norm(pts[:, None] - sites[None], axis=2), rng.integers(1, 101, n).astype(float)


@pytest.mark.parametrize("seed", range(3))
def test_mclp_kernel_search_is_honest_and_reproducible(seed: int) -> None:
    """With the heuristic budget (kernel MILP + ILS) on or off: same optimum, reproducible selection, a
    true bound, a consistent gap and an increasing incumbent trace."""
    cost, w = _clustered(1500, 150, seed)
    plain = MCLP.from_cost_matrix(cost, w, 0.03, 12, heuristic_time=0.0, mip_gap=0.0).solve()
    fast = MCLP.from_cost_matrix(cost, w, 0.03, 12, mip_gap=0.0).solve()
    again = MCLP.from_cost_matrix(cost, w, 0.03, 12, mip_gap=0.0).solve()
    assert fast.objective_ == pytest.approx(plain.objective_) and list(fast.selected_) == list(again.selected_)
    for model in (plain, fast):
        assert model.gap_ <= 1e-9 and model.bound_ >= model.objective_
        objs = [v for _, v in model.result_.trace]
        assert objs == sorted(objs) and objs[-1] == pytest.approx(model.objective_)
        assert len(model.selected_) <= 12


def test_kernel_milp_matches_brute_force_on_its_columns() -> None:
    _, cost, w, r = _instance(3, n=40, m=9)
    a = sp.csr_matrix((cost <= r).astype(float))
    cols = np.array([0, 2, 3, 5, 7, 8])
    best = max(coverage_value(a, w, np.array(c)) for c in itertools.combinations(cols, 3))
    chosen, value, proved = kernel_milp_mclp(a, w, 3, cols, [0, 2, 3], time_limit=10.0)
    assert proved and value == pytest.approx(best) and set(chosen) <= set(cols.tolist()) and len(chosen) <= 3


def test_mclp_rejects_negative_heuristic_time() -> None:
    cost, w = _clustered(50, 5, 0)
    with pytest.raises(ValueError):
        MCLP.from_cost_matrix(cost, w, 0.03, 2, heuristic_time=-1.0)


def test_highs_banner_suppressed(capfd: pytest.CaptureFixture[str]) -> None:
    from migration_abm.siting._highs import new_highs

    new_highs()
    new_highs()
    assert capfd.readouterr().out == ""
