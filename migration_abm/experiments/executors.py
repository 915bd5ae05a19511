"""Executors behind one ``concurrent.futures`` interface: serial, local processes, dask.distributed."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import json
import logging
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migration_abm.errors import InputError

EXECUTORS = ("serial", "process", "dask")


class SerialExecutor(cf.Executor):
    """Runs each call in-process when submitted (returns an already finished future)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        fut: cf.Future = cf.Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except Exception as exc:  # noqa: BLE001 - delivered through the future like a pool would
            fut.set_exception(exc)
        return fut


def _ignore_sigint() -> None:
    """Pool workers leave Ctrl-C to the driver, which records finished runs and shuts the pool down."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@dataclass
class ExecutorSpec:
    """Which executor to use: ``serial``, ``process`` (``workers``), or ``dask``: an existing cluster given
    by its ``scheduler`` address or a ``scheduler_file`` (dask's HPC convention: the JSON file that
    ``dask scheduler --scheduler-file`` writes), else a new ``LocalCluster`` of ``workers`` processes."""

    kind: str = "process"
    workers: int | None = None
    scheduler: str | None = None
    scheduler_file: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in EXECUTORS:
            raise InputError("--executor", "executor", self.kind, f"use one of {', '.join(EXECUTORS)}")
        if self.workers is not None and self.workers < 1:
            raise InputError("--workers", "workers", self.workers, "must be >= 1")
        if self.scheduler and self.scheduler_file:
            raise InputError("--scheduler-file", "scheduler_file", self.scheduler_file,
                             "give either --scheduler or --scheduler-file, not both")
        if self.scheduler_file is not None:
            self.scheduler = None
            _check_scheduler_file(self.scheduler_file)

    def describe(self) -> str:
        if self.kind == "dask":
            if self.scheduler_file:
                return f"dask scheduler from {self.scheduler_file}"
            return f"dask scheduler {self.scheduler}" if self.scheduler else f"dask LocalCluster ({self.workers} workers)"
        return "serial (in-process)" if self.kind == "serial" else f"{self.workers} local processes"


def _check_scheduler_file(path: str) -> str:
    """The scheduler address a dask scheduler file holds (InputError if it is missing or malformed)."""
    p = Path(path)
    try:
        info = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(path, "--scheduler-file", path, "file not found (written by `dask scheduler "
                         "--scheduler-file FILE` once the scheduler is up)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, "--scheduler-file", path, f"not a dask scheduler file ({exc})") from None
    address = info.get("address") if isinstance(info, dict) else None
    if not isinstance(address, str) or "://" not in address:
        raise InputError(path, "address", address, "a dask scheduler file needs an address like tcp://host:8786")
    return address


def _quiet_dask() -> int:
    """dask logs INFO lines by default; follow the root logger instead (the CLI sets INFO only with -v)."""
    level = logging.getLogger().getEffectiveLevel()
    for name in ("distributed", "dask"):
        logging.getLogger(name).setLevel(level)
    return level


@contextlib.contextmanager
def open_executor(spec: ExecutorSpec) -> Iterator[tuple[cf.Executor, int]]:
    """Yield ``(executor, slots)``; slots = how many runs can execute at once. Shuts down on exit.

    A dask scheduler that cannot be reached, or that has no worker within 60 s, raises InputError
    before anything is yielded.
    """
    if spec.kind == "serial":
        yield SerialExecutor(), 1
        return
    if spec.kind == "process":
        n = spec.workers or max(1, (os.cpu_count() or 2))
        spec.workers = n
        ex = cf.ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("spawn"),
                                    initializer=_ignore_sigint)
        try:
            yield ex, n
        finally:
            ex.shutdown(wait=True, cancel_futures=True)
        return
    import dask
    from distributed import Client, LocalCluster

    level = _quiet_dask()
    cluster = None
    external = spec.scheduler_file or spec.scheduler
    flag = "--scheduler-file" if spec.scheduler_file else "--scheduler"
    if external:
        address = _check_scheduler_file(spec.scheduler_file) if spec.scheduler_file else spec.scheduler
        try:
            client = Client(address, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise InputError(external, flag, address, f"cannot connect to the dask scheduler ({exc})") from None
    else:
        n = spec.workers or 2
        spec.workers = n
        with dask.config.set({"logging.distributed": logging.getLevelName(level).lower()}):
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                                   silence_logs=level)
        client = Client(cluster)
    try:
        if external:
            try:
                client.wait_for_workers(1, timeout=60)
            except TimeoutError:
                raise InputError(external, flag, address, "no worker joined within 60 s") from None
        slots = max(1, sum(client.nthreads().values()))
        ex = client.get_executor(pure=False)
        try:
            yield ex, slots
        finally:
            ex.shutdown(wait=False)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
