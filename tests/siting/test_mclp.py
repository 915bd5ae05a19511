"""MCLP agrees with brute force; time limits, kernel search and the reported bound are honest."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
from instances import clustered, small_instance

from migration_abm.siting.mclp import (
    MCLP,
    column_adjacency,
    coverage_value,
    kernel_milp_mclp,
    perturb_mclp,
    swap_mclp,
)


@pytest.mark.parametrize("seed", range(6))
def test_mclp_matches_brute_force(seed: int) -> None:
    _, cost, w, r = small_instance(seed)
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
        assert model.perc_cov_weighted_ == pytest.approx(100 * best / w.sum())


def test_time_limit_returns_incumbent() -> None:
    rng = np.random.default_rng(1)
    n, m = 3000, 300
    pts, sites = rng.random((n, 2)), rng.random((m, 2))
    cost = np.linalg.norm(pts[:, None] - sites[None], axis=2)
    model = MCLP.from_cost_matrix(cost, rng.random(n), 0.06, 15, time_limit=0.2, mip_gap=0.0).solve()
    assert len(model.selected_) == 15 and model.objective_ > 0
    assert model.bound_ >= model.objective_ and np.isfinite(model.gap_)


@pytest.mark.parametrize("seed", range(3))
def test_mclp_kernel_search_is_honest_and_reproducible(seed: int) -> None:
    """With the heuristic budget (kernel MILP + ILS) on or off: same optimum, reproducible selection, a
    true bound, a consistent gap and an increasing incumbent trace."""
    cost, w = clustered(1500, 150, seed)
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
    _, cost, w, r = small_instance(3, n=40, m=9)
    a = sp.csr_matrix((cost <= r).astype(float))
    cols = np.array([0, 2, 3, 5, 7, 8])
    best = max(coverage_value(a, w, np.array(c)) for c in itertools.combinations(cols, 3))
    chosen, value, proved = kernel_milp_mclp(a, w, 3, cols, [0, 2, 3], time_limit=10.0)
    assert proved and value == pytest.approx(best) and set(chosen) <= set(cols.tolist()) and len(chosen) <= 3


def test_mclp_rejects_negative_heuristic_time() -> None:
    cost, w = clustered(50, 5, 0)
    with pytest.raises(ValueError):
        MCLP.from_cost_matrix(cost, w, 0.03, 2, heuristic_time=-1.0)


def _best_swap_gain(a: sp.csr_matrix, w: np.ndarray, sel: list[int]) -> float:
    """Largest gain of any single swap (close one open column, open one closed), by enumeration."""
    base = coverage_value(a, w, np.array(sel))
    return max(coverage_value(a, w, np.array([c for c in sel if c != j] + [k])) - base
               for j in sel for k in range(a.shape[1]) if k not in sel)


@pytest.mark.parametrize("seed", range(4))
def test_swap_search_ends_at_a_swap_local_optimum(seed: int) -> None:
    """The compiled swap search returns p distinct columns, no single swap improves them, and it never
    makes the start worse."""
    cost, w = clustered(400, 40, seed)
    a = sp.csr_matrix((cost <= 0.05).astype(float))
    start = [0, 1, 2, 3, 4, 5]
    sel = swap_mclp(a.tocsc(), w, start)
    assert len(set(sel)) == 6
    assert coverage_value(a, w, np.array(sel)) >= coverage_value(a, w, np.array(start))
    assert _best_swap_gain(a, w, sel) <= 1e-9 * w.sum()


@pytest.mark.parametrize("local", [True, False])
def test_iterated_local_search_reaches_brute_force_optimum(local: bool) -> None:
    """From a poor start, the iterated local search (kicks near each other or anywhere) reaches the
    brute-force optimum and stops there (target), with each reported improvement increasing."""
    _, cost, w, r = small_instance(5, n=60, m=12)
    a = sp.csr_matrix((cost <= r).astype(float))
    best = max(coverage_value(a, w, np.array(c)) for c in itertools.combinations(range(12), 3))
    seen: list[float] = []
    sel = perturb_mclp(a.tocsc(), w, [0, 1, 2], np.ones(12), best - 1e-9, time_limit=20.0, seed=3,
                       adjacency=column_adjacency(a.tocsc()) if local else None,
                       on_improve=lambda s: seen.append(coverage_value(a, w, np.array(s))))
    assert coverage_value(a, w, np.array(sel)) == pytest.approx(best) and len(set(sel)) == 3
    assert seen == sorted(seen)


def test_iterated_local_search_keeps_to_allowed_columns() -> None:
    """Columns outside ``allowed`` are never opened (the start's columns stay allowed)."""
    cost, w = clustered(300, 30, 2)
    a = sp.csc_matrix((cost <= 0.05).astype(float))
    allowed = np.zeros(30, bool)
    allowed[::2] = True
    sel = perturb_mclp(a, w, [1, 2, 4], np.ones(30), np.inf, time_limit=0.5, seed=0, stall=200,
                       allowed=allowed, adjacency=column_adjacency(a))
    assert all(allowed[j] or j == 1 for j in sel)


def test_column_adjacency_is_columns_sharing_a_row() -> None:
    _, cost, _, r = small_instance(2, n=30, m=8)
    a = (cost <= r).astype(float)
    b = column_adjacency(sp.csc_matrix(a)).toarray() > 0
    expect = (a.T @ a) > 0
    np.fill_diagonal(expect, False)
    assert (b == expect).all()
    assert column_adjacency(sp.csc_matrix(a), max_work=0.0) is None
