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
    m = _model(year, **{"behaviour.consider_base": 0.2})
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
