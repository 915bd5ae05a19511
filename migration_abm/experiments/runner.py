"""Run an experiment: create (or resume) the store, farm runs out to an executor, stream results in."""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from migration_abm.errors import InputError
from migration_abm.experiments.executors import ExecutorSpec, open_executor
from migration_abm.experiments.spec import Experiment
from migration_abm.experiments.store import (
    StoreWriter,
    create_store,
    fold_journal,
    read_coords,
    read_status,
    status_counts,
    writer_lock,
)
from migration_abm.experiments.worker import (
    DONE,
    FAILED,
    PENDING,
    RunOutcome,
    RunTask,
    execute_run,
    resolve_function,
)
from migration_abm.geography import load_districts


@dataclass
class SweepSummary:
    """What a call to :func:`run_sweep` did."""

    path: Path
    total: int
    done: int
    failed: int
    pending: int
    ran: int
    lost: int
    elapsed: float
    interrupted: bool = False

    @property
    def complete(self) -> bool:
        return self.pending == 0

    def line(self) -> str:
        rate = self.ran / self.elapsed if self.elapsed > 0 else 0.0
        s = (f"{self.path}: {self.done} done, {self.failed} failed, {self.pending} pending of {self.total} runs "
             f"({self.ran} run now in {self.elapsed:.1f} s, {rate:.2f} runs/s)")
        if self.pending:
            s += "; continue with --resume"
        return s


def _diff_keys(a: dict, b: dict) -> list[str]:
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def _districts(exp: Experiment) -> tuple[np.ndarray, np.ndarray]:
    regions = exp.scenarios[0].config.data.regions
    t = load_districts(None if regions == "chongqing" else regions)
    return t["code"].to_numpy(str), t["functional_region"].to_numpy(str)


def check_run_function(exp: Experiment) -> None:
    """Import the experiment's ``run_function`` in the driver, so a typo fails before any store exists."""
    spec = exp.run_function
    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise InputError(exp.source, "run_function", spec, "expected 'package.module:function'")
    try:
        fn = resolve_function(spec)
    except ImportError as exc:
        raise InputError(exp.source, "run_function", spec, f"cannot import module {module!r} ({exc})") from None
    except AttributeError:
        raise InputError(exp.source, "run_function", spec, f"module {module!r} has no {name!r}") from None
    if not callable(fn):
        raise InputError(exp.source, "run_function", spec, "is not callable")


def check_out_path(path: Path) -> None:
    """A store path must be a file in a folder we can create and write (checked before any work)."""
    if path.is_dir():
        raise InputError(str(path), "--out", str(path), "is a directory; give a .h5 file path")
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(str(path), "--out", str(path), f"{parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(str(path), "--out", str(path), f"folder {parent} is not writable")


def _plan(exp: Experiment, path: Path, resume: bool, overwrite: bool) -> Experiment:
    """Check the store against the experiment (resume) or validate every point (new store)."""
    if path.exists() and resume:
        _, attrs = read_status(path)
        if exp.seed is None:
            exp = exp.with_seed(int(attrs["entropy"]))
        stored = json.loads(str(attrs["experiment_json"]))
        if stored != exp.spec_dict():
            raise InputError(str(path), "experiment", exp.source,
                             f"store was made by a different experiment (differs in {', '.join(_diff_keys(stored, exp.spec_dict()))})")
        return exp
    if path.exists() and not overwrite:
        raise InputError(str(path), "--out", str(path), "store exists; use --resume to continue it or --force to replace it")
    if exp.seed is None:
        entropy = int(np.random.SeedSequence().entropy)
        print(f"note: experiment sets no seed; using entropy {entropy} (stored; add `seed = {entropy}` to "
              "the experiment to reproduce it)", file=sys.stderr)
        exp = exp.with_seed(entropy)
    for p in exp.design_points():  # validate every point before creating anything
        exp.point_config(p)
    return exp


def _create(exp: Experiment, path: Path) -> None:
    pts = exp.design_points()
    codes, regions = _districts(exp)
    values = np.array([[float(v) for v in p.values] for p in pts], dtype=np.float64).reshape(len(pts), -1)
    create_store(path, exp, codes, regions, values, np.array([p.scenario for p in pts]),
                 np.array([p.block for p in pts]), np.array([p.sample for p in pts]))


def run_sweep(experiment: Experiment, out: str | Path, executor: ExecutorSpec | str = "process",
              workers: int | None = None, scheduler: str | None = None, *, resume: bool = False,
              retry_failed: bool = False, overwrite: bool = False, swmr: bool = False,
              batch_size: int | None = None, flush_seconds: float = 5.0, fold_seconds: float = 60.0,
              progress: bool = True, scheduler_file: str | Path | None = None) -> SweepSummary:
    """Run every missing run of ``experiment`` into the store ``out``; see docs/EXPERIMENTS.md.

    Results are written by this (driver) process only, in batches of ``batch_size`` outcomes (default:
    the executor's slot count) or every ``flush_seconds``; see :class:`StoreWriter` for the journal and
    ``fold_seconds``. Failed runs are recorded with their traceback. The run function, the output path
    and the executor (scheduler reachable) are checked before a store is created.
    """
    spec = (executor if isinstance(executor, ExecutorSpec)
            else ExecutorSpec(executor, workers, scheduler, None if scheduler_file is None else str(scheduler_file)))
    path = Path(out)
    t0 = time.perf_counter()
    check_out_path(path)
    check_run_function(experiment)
    new = not (resume and path.exists())
    ran = lost = 0
    interrupted = False
    with writer_lock(path) as journal:
        if not new:
            fold_journal(path, journal)
        exp = _plan(experiment, path, resume, overwrite)
        todo: list[tuple[int, int]] = []
        if not new:
            code, _ = read_status(path)
            wanted = (code == PENDING) | ((code == FAILED) if retry_failed else False)
            todo = [(int(p), int(r)) for p, r in zip(*np.nonzero(wanted), strict=True)]
            years, _ = read_coords(path)
            if not np.array_equal(years, exp.years):
                raise InputError(str(path), "coords/year", f"{years[0]}..{years[-1]}",
                                 "store years differ from the experiment's")
        if new or todo:
            try:
                with open_executor(spec) as (ex, slots):
                    if new:
                        _create(exp, path)
                        code, _ = read_status(path)
                        todo = [(int(p), int(r)) for p, r in zip(*np.nonzero(code == PENDING), strict=True)]
                    years, codes = read_coords(path)
                    writer = StoreWriter(path, exp.outputs, swmr=swmr, journal=journal, fold_seconds=fold_seconds)
                    try:
                        ran, lost, interrupted = _drive(ex, slots, exp, exp.design_points(), {}, todo, years,
                                                        codes, writer, batch_size or slots, flush_seconds,
                                                        progress, spec.describe())
                    finally:
                        writer.close()
            except KeyboardInterrupt:
                interrupted = True
    code, _ = read_status(path)
    c = status_counts(code)
    return SweepSummary(path, int(code.size), c["done"], c["failed"], c["pending"], ran, lost,
                        time.perf_counter() - t0, interrupted)


def _drive(ex: cf.Executor, slots: int, exp: Experiment, pts: list, configs: dict, todo: list[tuple[int, int]],
           years: np.ndarray, codes: np.ndarray, writer: StoreWriter, batch: int, flush_seconds: float,
           progress: bool, desc: str) -> tuple[int, int, bool]:
    window = max(2, 2 * slots)
    queue = list(reversed(todo))
    inflight: dict[cf.Future, tuple[int, int]] = {}
    ran = lost = failed = 0
    broken = False
    last_flush = time.monotonic()
    bar = tqdm(total=len(todo), unit="run", disable=not progress, desc=exp.name, dynamic_ncols=True,
               file=sys.stderr, smoothing=0.1)
    bar.write(f"{exp.name}: {len(todo)} runs to do on {desc}; store {writer.path}")
    try:
        while queue or inflight:
            while queue and len(inflight) < window and not broken:
                p, r = queue.pop()
                if p not in configs:
                    configs[p] = exp.point_config(pts[p])
                task = RunTask(p, r, configs[p], exp.run_seed(p, r), exp.outputs, exp.run_function, years, codes)
                try:
                    inflight[ex.submit(execute_run, task)] = (p, r)
                except (RuntimeError, cf.BrokenExecutor) as exc:
                    bar.write(f"executor refused run ({p}, {r}): {exc!r}; stopping (resume later)")
                    broken = True
            if broken and not inflight:
                break
            done, _ = cf.wait(list(inflight), timeout=flush_seconds, return_when=cf.FIRST_COMPLETED)
            for fut in done:
                p, r = inflight.pop(fut)
                try:
                    outcome: RunOutcome = fut.result()
                except Exception as exc:  # noqa: BLE001 - infrastructure failure: leave pending
                    lost += 1
                    bar.write(f"run ({p}, {r}) lost ({type(exc).__name__}: {exc}); left pending for --resume")
                    if isinstance(exc, cf.BrokenExecutor):
                        broken = True
                    continue
                writer.add(outcome)
                ran += 1
                failed += outcome.status != DONE
                if outcome.status != DONE:
                    last = outcome.traceback.strip().splitlines()[-1] if outcome.traceback else "?"
                    bar.write(f"run ({p}, {r}) failed: {last}")
                bar.update(1)
                bar.set_postfix(done=ran - failed, failed=failed, refresh=False)
            if len(writer.buffer) >= batch or (writer.buffer and time.monotonic() - last_flush >= flush_seconds):
                writer.flush()
                last_flush = time.monotonic()
    except KeyboardInterrupt:
        bar.write("interrupted: writing finished runs; continue with --resume")
        for fut in inflight:
            fut.cancel()
        return ran, lost, True
    finally:
        bar.close()
    return ran, lost, False
