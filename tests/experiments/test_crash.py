"""Crash safety of the sweep store: a kill at any instant (inside a flush or a fold, or at random) leaves a
store that ``--resume`` completes to the store of an uninterrupted sweep, in default and SWMR mode.

Kills happen in forked children (the parent already imported everything, so each try costs milliseconds);
the CLI path is covered by the subprocess test in test_sweep.py.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import h5py
import pytest

from migration_abm.experiments import load_experiment, run_sweep, store_digest
from migration_abm.experiments.store import base_path, journal_path, read_status

N_RUNS = 24
TOY = "migration_abm.experiments.toy:toy_simulate"
pytestmark = pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")


@pytest.fixture
def crash_toml(tmp_path: Path) -> Path:
    """4 × 2 grid × 3 replicates of the toy; beta_stay = -20 fails deliberately (tracebacks are stored)."""
    path = tmp_path / "crash.toml"
    path.write_text(f'''
name = "crash"
design = "grid"
replicates = 3
seed = 11
run_function = "{TOY}"
outputs = ["population", "in_migrants"]
[set]
"run.end_year" = 2014
[parameters."behaviour.beta_stay"]
values = [-20.0, 0.0, 1.0, 2.0]
[parameters."policy.hukou.expansion.min_years"]
values = [1, 4]
''', encoding="utf-8")
    return path


def _sweep(toml: Path, out: Path, swmr: bool) -> None:
    run_sweep(load_experiment(toml), out, "serial", resume=out.exists(), swmr=swmr, batch_size=1,
              fold_seconds=0.0, progress=False)


def _fork(fn: Callable[[], None]) -> int:
    """Run ``fn`` in a forked child; returns its pid (the child exits 0, or 3 after printing an error)."""
    pid = os.fork()
    if pid == 0:
        # tqdm's write lock is a multiprocessing RLock, a semaphore the fork shares with pytest: a child
        # SIGKILLed while holding it would leave every later tqdm of this process waiting forever (seen
        # once in CI). The child takes a lock of its own.
        from tqdm import tqdm

        tqdm.set_lock(threading.RLock())
        try:
            fn()
            code = 0
        except BaseException:  # noqa: BLE001 - report and exit the child, never return into pytest
            traceback.print_exc()
            code = 3
        os._exit(code)
    return pid


def _wait(pid: int, timeout: float = 60.0) -> int:
    """Wait for a child; returns the raw wait status (kills it and fails if it hangs)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.005)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail("sweep child hung")


def _armed(k: int) -> list[int]:
    """Make the k-th store I/O event of this process a SIGKILL (k = 0: only count); returns the count.

    Events: every HDF5 dataset write and file flush, every os.write (the journal; the k-th one writes
    half its bytes first, a torn record), truncate, copy and rename. Killing before the HDF5 flush
    call leaves its metadata half written to disk, as a kill inside the flush does.
    """
    import shutil as sh

    n = [0]

    def tick(torn: Callable[[], None] | None = None) -> None:
        n[0] += 1
        if n[0] == k:
            if torn:
                torn()
            os.kill(os.getpid(), signal.SIGKILL)

    def wrap(owner: object, name: str, torn_write: bool = False) -> None:
        orig = getattr(owner, name)

        def inner(*a: object, **kw: object) -> object:
            if torn_write:
                fd, data = a[0], a[1]
                tick(lambda: orig(fd, bytes(data)[: max(1, len(data) // 2)]))
            else:
                tick()
            return orig(*a, **kw)

        setattr(owner, name, inner)

    wrap(h5py.Dataset, "__setitem__")
    wrap(h5py.File, "flush")
    wrap(os, "write", torn_write=True)
    wrap(os, "ftruncate")
    wrap(os, "replace")
    wrap(sh, "copyfile")
    return n


def _count_events(toml: Path, out: Path, swmr: bool, counter: Path) -> int:
    def child() -> None:
        n = _armed(0)
        _sweep(toml, out, swmr)
        counter.write_text(str(n[0]))

    assert os.WEXITSTATUS(_wait(_fork(child))) == 0
    return int(counter.read_text())


def _leftovers(folder: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


@pytest.fixture
def reference(crash_toml: Path, tmp_path: Path) -> str:
    ref = tmp_path / "ref" / "ref.h5"
    run_sweep(load_experiment(crash_toml), ref, "serial", progress=False)
    assert _leftovers(ref.parent, {"ref.h5"}) == []
    return store_digest(ref)


@pytest.mark.parametrize("swmr", [False, True], ids=["default", "swmr"])
def test_kill_inside_flush_then_resume_is_identical(crash_toml: Path, tmp_path: Path, reference: str,
                                                    swmr: bool) -> None:
    """SIGKILL at evenly spread store I/O events (HDF5 writes and flushes, journal appends, folds)."""
    probe = tmp_path / "probe" / "s.h5"
    probe.parent.mkdir()
    counter = tmp_path / "events"
    total = _count_events(crash_toml, probe, swmr, counter)
    assert total > 50, total
    ks = sorted({1 + round(i * (total - 2) / 11) for i in range(12)})
    for k in ks:
        folder = tmp_path / f"k{k}"
        folder.mkdir()
        out = folder / "s.h5"

        def child(k: int = k, out: Path = out) -> None:
            _armed(k)
            _sweep(crash_toml, out, swmr)

        status = _wait(_fork(child))
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (k, status)
        if out.exists():
            code, _ = read_status(out)
            assert (code != 0).sum() < N_RUNS or journal_path(out).exists() or base_path(out).exists()
            _sweep(crash_toml, out, swmr)
        else:  # killed while creating the store: a fresh start
            _sweep(crash_toml, out, swmr)
        assert store_digest(out) == reference, f"kill at event {k} of {total}"
        assert _leftovers(folder, {"s.h5"}) == [], k


def _random_kills(toml: Path, folder: Path, reference: str, kills: int, modes: tuple[bool, ...],
                  seed: int) -> None:
    rnd = random.Random(seed)
    out = folder / "s.h5"
    t0 = time.perf_counter()
    probe = folder / "probe.h5"
    assert os.WEXITSTATUS(_wait(_fork(lambda: _sweep(toml, probe, False)))) == 0
    span = time.perf_counter() - t0
    probe.unlink()
    done = 0
    tries = 0
    while done < kills:
        tries += 1
        assert tries < 20 * kills, "kills never landed while the sweep ran"
        swmr = rnd.choice(modes)
        pid = _fork(lambda swmr=swmr: _sweep(toml, out, swmr))
        time.sleep(rnd.uniform(0.0, span * 0.6))
        os.kill(pid, signal.SIGKILL)
        status = _wait(pid)
        if os.WIFSIGNALED(status):
            done += 1
        elif out.exists() and not journal_path(out).exists():
            code, _ = read_status(out)
            if (code != 0).all():  # finished before the kill: start again so later kills land mid-sweep
                out.unlink()
    _sweep(toml, out, rnd.choice(modes))
    assert store_digest(out) == reference
    assert _leftovers(folder, {"s.h5"}) == []


@pytest.mark.parametrize("swmr", [False, True], ids=["default", "swmr"])
def test_kill_at_random_instants_then_resume_is_identical(crash_toml: Path, tmp_path: Path, reference: str,
                                                          swmr: bool) -> None:
    """Ten SIGKILLs at random instants of one sweep (and of its resumes), then a final resume."""
    folder = tmp_path / "rand"
    folder.mkdir()
    _random_kills(crash_toml, folder, reference, kills=10, modes=(swmr,), seed=1 + swmr)


@pytest.mark.slow
def test_many_random_kills_mixed_modes(crash_toml: Path, tmp_path: Path, reference: str) -> None:
    """60 kills, each resume picking default or SWMR mode at random."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    _random_kills(crash_toml, folder, reference, kills=60, modes=(False, True), seed=5)


@pytest.mark.slow
@pytest.mark.parametrize("swmr", [False, True], ids=["default", "swmr"])
def test_kill_at_every_store_event(crash_toml: Path, tmp_path: Path, reference: str, swmr: bool) -> None:
    """SIGKILL at every single store I/O event of a sweep, each followed by a resume."""
    probe = tmp_path / "probe" / "s.h5"
    probe.parent.mkdir()
    counter = tmp_path / "events"
    total = _count_events(crash_toml, probe, swmr, counter)
    for k in range(1, total):
        folder = tmp_path / f"k{k}"
        folder.mkdir()
        out = folder / "s.h5"
        _wait(_fork(lambda k=k, out=out: (_armed(k), _sweep(crash_toml, out, swmr))))
        _sweep(crash_toml, out, swmr)
        assert store_digest(out) == reference, f"kill at event {k} of {total}"
        shutil.rmtree(folder)
