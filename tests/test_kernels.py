"""Compiled household kernels: the per-object reference makes the same decisions, the column store's
in-place compaction and append match plain numpy, and results do not depend on how (or whether) the
kernels were compiled."""

from __future__ import annotations

import copy
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from migration_abm import kernels, migration
from migration_abm.config import load_config
from migration_abm.model import MigrationModel, simulate
from migration_abm.population import Households

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from per_object import ObjectModel  # noqa: E402

BASELINE = ROOT / "configs" / "baseline.toml"


def _model(year: int, **over: object) -> MigrationModel:
    m = MigrationModel(load_config(BASELINE, {"run.households_per_agent": 2000.0, **over}), rng=7)
    m.run(until=year)
    assert m.year == year
    return m


@pytest.mark.parametrize("year", [2021, 2026])
def test_per_object_reference_picks_the_same_households_and_destinations(year: int) -> None:
    """Same state, tables and uniforms → same choices (network term live after a few years, overload
    forced on by lowering the carrying capacity, job platform active)."""
    # more considering and a weaker stay bonus than calibrated, so dozens actually move whatever the fit
    m = _model(year, **{"behaviour.consider_base": 0.2, "behaviour.beta_stay": 1.0})
    m.carrying_capacity = 0.97 * m.geo.to_regions(m.district_persons())
    rng = copy.deepcopy(m.rng)
    u_consider, u_choose = rng.random(m.households.n), rng.random(m.households.n)
    obj = ObjectModel(m, u_consider, u_choose)
    obj.step()
    rows_o, dest_o = obj.decisions()
    rows_k, dest_k = migration.decide(m)
    assert len(rows_k) > 200 and (dest_k != m.households.district[rows_k]).sum() > 20
    assert np.array_equal(rows_o, rows_k)
    assert np.array_equal(dest_o, dest_k)


def _households(rng: np.random.Generator, n: int) -> Households:
    ages = np.full((n, 6), -1, dtype=np.int8)
    size = rng.integers(1, 7, n)
    for i in range(n):
        ages[i, :size[i]] = -np.sort(-rng.integers(0, 90, size[i]))
    return Households(ages=ages, district=rng.integers(0, 5, n).astype(np.int16), urban=rng.random(n) < 0.5,
                      origin=rng.integers(-1, 5, n).astype(np.int16), hukou_district=rng.integers(-1, 5, n).astype(np.int16),
                      hukou_ag=rng.random(n) < 0.5, skill=rng.integers(0, 3, n).astype(np.int8),
                      employed=rng.random(n) < 0.5, sector=rng.integers(0, 3, n).astype(np.int8),
                      years_here=rng.integers(0, 9, n).astype(np.int16), platform_u=rng.random(n, dtype=np.float32),
                      weight=rng.random(n) * 10)


def test_pairwise_sum_is_numpys_sum() -> None:
    """The kernels' sums of district tables reproduce numpy's pairwise summation bit for bit."""
    rng = np.random.default_rng(3)
    for n in [*range(0, 40), 127, 128, 129, 300, 1000]:
        x = rng.random(n) * 10.0 ** rng.uniform(0, 8, n)
        assert kernels.pairwise_sum(x) == x.sum(), n


def test_in_place_compaction_and_append_match_numpy() -> None:
    rng = np.random.default_rng(1)
    hh, extra = _households(rng, 500), _households(rng, 40)
    ref = {k: v.copy() for k, v in hh.columns().items()}
    hh.persons()  # counts valid: they are carried through compaction and append
    hh.reserve()  # spare capacity now: the appends below do not move the columns
    buffers = {k: v.base for k, v in hh.columns().items()}
    for step in range(3):
        keep = rng.random(hh.n) < 0.8
        ref = {k: np.concatenate([v[keep], extra.columns()[k]]) for k, v in ref.items()}
        hh.compact(keep)
        hh.extend(extra)
        for k, v in hh.columns().items():
            assert np.array_equal(v, ref[k]), (step, k)
        members = (ref["ages"] >= 0).sum(axis=1)
        assert np.array_equal(hh.size(), members)
        assert np.array_equal(hh.workers(), ((ref["ages"] >= 16) & (ref["ages"] <= 64)).sum(axis=1))
        assert np.array_equal(hh.persons(), members * ref["weight"])
        assert np.array_equal(hh.head_age(), ref["ages"][:, 0])
        assert all(hh.columns()[k].base is b for k, b in buffers.items())


DIGEST = r"""
import hashlib, sys
from migration_abm.config import load_config
from migration_abm.model import simulate
r = simulate(load_config(sys.argv[1], {"run.households_per_agent": 3000.0, "run.end_year": 2024}), seed=3)
h = hashlib.sha256()
for k in sorted(r.arrays):
    h.update(k.encode()); h.update(r.arrays[k].tobytes())
print(h.hexdigest())
"""


def _digest(env: dict[str, str]) -> str:
    out = subprocess.run([sys.executable, "-c", DIGEST, str(BASELINE)], check=True, capture_output=True,
                         text=True, cwd=ROOT, env={**os.environ, **env})
    return out.stdout.strip()


@pytest.mark.slow
def test_results_do_not_depend_on_kernel_cache_or_compilation(tmp_path: Path) -> None:
    """Cold cache (empty NUMBA_CACHE_DIR), warm cache, and the kernels run as plain Python
    (NUMBA_DISABLE_JIT) give bit-identical results, equal to this process's run."""
    r = simulate(load_config(BASELINE, {"run.households_per_agent": 3000.0, "run.end_year": 2024}), seed=3)
    h = hashlib.sha256()
    for k in sorted(r.arrays):
        h.update(k.encode())
        h.update(r.arrays[k].tobytes())
    cache = {"NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    cold = _digest(cache)
    assert any((tmp_path / "numba").rglob("*.nbi"))  # the cold run wrote the cache
    assert _digest(cache) == cold == h.hexdigest()
    assert _digest({"NUMBA_DISABLE_JIT": "1"}) == cold


def test_births_are_numpys_binomial_draws() -> None:
    """The births kernel draws what ``Generator.binomial(fertile, p[district])`` draws over the rows with
    fertile members (numpy's inversion from numpy's uniforms), leaves the generator where numpy does, and
    adds the newborns as the numpy reference (capped by the free slots, births per district); one rate
    everywhere and a different rate per district alike."""
    from migration_abm.population import give_birth

    for p in (np.full(5, 0.2), np.full(5, 0.0325), np.array([0.0325, 0.2, 0.05, 0.011, 0.12])):
        rng = np.random.default_rng(4)
        hh = _households(rng, 3000)
        ref = copy.deepcopy(hh)
        counts = ref.counts()
        at_risk = np.flatnonzero(counts["fertile"])
        g1, g2 = np.random.default_rng(9), np.random.default_rng(9)
        births = np.minimum(g1.binomial(counts["fertile"][at_risk], p[ref.district[at_risk]]),
                            6 - counts["size"][at_risk])
        for i, b in zip(at_risk, births, strict=True):
            ref.ages[i, counts["size"][i]:counts["size"][i] + b] = 0
        expected = np.bincount(ref.district[at_risk], weights=births * ref.weight[at_risk], minlength=5)
        out = give_birth(hh, p, g2)
        assert births.sum() > 20 and (p.max() < 0.1 or (births == 6 - counts["size"][at_risk]).any())  # some capped
        assert np.array_equal(hh.ages, ref.ages) and np.array_equal(out, expected)
        ref.invalidate()
        assert np.array_equal(hh.persons(), ref.persons()) and np.array_equal(hh.size(), ref.size())
        assert g1.random() == g2.random()


def test_births_draw_again_when_rounding_leaves_the_inversion_past_its_bound() -> None:
    """A uniform above every cumulative probability (rounding) starts the draw over with the next one,
    and the kernel asks for more uniforms when they run out instead of reading past them."""
    p, n = 0.01375, 2  # with u = 1 − 2⁻⁵³ the inversion runs past n (found by search)
    q = 1.0 - p
    qn = np.array([1.0, q, q * q])
    args = (np.array([p]), np.array([q]), qn[None, :], np.array([[0, 1, 2]]))
    fertile = np.array([n], np.int8)

    def run(u: list[float]) -> tuple[int, np.ndarray]:
        ages, size, persons = np.array([[40, 38, -1, -1]], np.int8), np.array([2], np.int8), np.array([2.0])
        out = np.zeros(1)
        nxt = kernels.add_births(fertile, np.array(u), 0, *args, ages, size, persons, np.ones(1),
                                 np.zeros(1, np.int16), out)
        return nxt, ages

    assert run([1 - 2.0 ** -53])[0] == 0  # ran out: row 0 starts over with a fresh uniform
    nxt, ages = run([1 - 2.0 ** -53, 0.9999])  # the second uniform: two births (0.9999 > 1 − p²)
    assert nxt == 1 and list(ages[0]) == [40, 38, 0, 0]


def test_empty_rows_kept_until_the_one_compaction_act_as_if_dropped() -> None:
    """Rows left empty stay in place until the next compaction: the others draw the same uniforms, in
    order, as after an immediate compaction, sums over the rows that stay are the compacted column's to
    the last bit, and the compaction drops them with the rows it is asked to drop."""
    rng = np.random.default_rng(2)
    hh = _households(rng, 4000)
    hh.ages[rng.random(hh.n) < 0.1] = -1  # emptied households
    hh.invalidate()
    now = copy.deepcopy(hh)
    live = now.size() > 0
    now.compact(live)
    hh.keep_empty()
    extra = _households(rng, 30)
    now.extend(extra)
    hh.extend(extra)
    g1, g2 = np.random.default_rng(5), np.random.default_rng(5)
    u_now, u_kept = now.uniforms(g1).copy(), hh.uniforms(g2)
    assert np.array_equal(u_kept[hh.size() > 0], u_now) and (u_kept[hh.size() == 0] == 2.0).all()
    x = rng.random(hh.n) * 10.0 ** rng.uniform(0, 8, hh.n) * (hh.size() > 0)
    assert hh.live_sum(x) == x[hh.size() > 0].sum() and x[hh.size() > 0].sum() != x.sum()
    keep = rng.random(hh.n) < 0.9
    now.compact(keep[hh.size() > 0])
    hh.compact(keep)
    for k, v in hh.columns().items():
        assert np.array_equal(v, now.columns()[k]), k
    assert np.array_equal(hh.persons(), now.persons()) and hh.live_sum(hh.weight) == hh.weight.sum()


def test_sector_draw_matches_numpy() -> None:
    """The hired's sector: shares of their district's vacancies (no farming for urban residents, half
    and half where no vacancy is left), cumulated, counted below the uniform, as the numpy reference."""
    rng = np.random.default_rng(6)
    n, hired = 20_000, np.sort(rng.choice(20_000, 8000, replace=False))
    district, urban = rng.integers(0, 7, n).astype(np.int16), rng.random(n) < 0.5
    vac = rng.random((7, 3)) * 10.0 ** rng.uniform(-3, 6, (7, 3))
    vac[1] = 0.0
    vac[2, 1:] = 0.0  # urban residents there: no vacancy left to them
    u = rng.random(len(hired))
    share = vac[district[hired]].copy()
    share[urban[hired], 0] = 0.0
    tot = share.sum(axis=1, keepdims=True)
    share = np.where(tot > 0, share / np.where(tot > 0, tot, 1), np.array([0.0, 0.5, 0.5]))
    expected = np.minimum((u[:, None] > np.cumsum(share, axis=1)).sum(axis=1), 2)
    sector, employed = np.zeros(n, np.int8), np.zeros(n, bool)
    kernels.take_jobs(hired, district, urban, vac, u, sector, employed)
    assert np.array_equal(sector[hired], expected) and employed.sum() == len(hired) and employed[hired].all()
    assert len(set(expected)) == 3


def test_young_members_found_in_the_flat_member_table() -> None:
    """Members aged 20-29 who are not the head: counted and found (row, slot) as a row-by-row scan."""
    rng = np.random.default_rng(8)
    ages = _households(rng, 3000).ages
    young = [(i, c) for i in range(len(ages)) for c in range(1, ages.shape[1]) if 20 <= ages[i, c] <= 29]
    flat, k = ages.reshape(-1), ages.shape[1]
    assert kernels.young_members(flat, k, 20, 29) == len(young) > 100
    u = rng.random(len(young))
    r, c = kernels.leaving_members(flat, k, 20, 29, u, 0.3)
    assert [(a, b) for (a, b), v in zip(young, u, strict=True) if v < 0.3] == list(zip(r, c, strict=True))
