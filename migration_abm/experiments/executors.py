"""Executors behind one ``concurrent.futures`` interface: serial, local processes, dask.distributed."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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
    """Which executor to use: ``serial``, ``process`` (``workers``), or ``dask`` (``scheduler`` address
    of an existing cluster, or a new ``LocalCluster`` with ``workers`` single-threaded processes)."""

    kind: str = "process"
    workers: int | None = None
    scheduler: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in EXECUTORS:
            raise InputError("--executor", "executor", self.kind, f"use one of {', '.join(EXECUTORS)}")
        if self.workers is not None and self.workers < 1:
            raise InputError("--workers", "workers", self.workers, "must be >= 1")

    def describe(self) -> str:
        if self.kind == "dask":
            return f"dask scheduler {self.scheduler}" if self.scheduler else f"dask LocalCluster ({self.workers} workers)"
        return "serial (in-process)" if self.kind == "serial" else f"{self.workers} local processes"


@contextlib.contextmanager
def open_executor(spec: ExecutorSpec) -> Iterator[tuple[cf.Executor, int]]:
    """Yield ``(executor, slots)``; slots = how many runs can execute at once. Shuts down on exit."""
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
    from distributed import Client, LocalCluster

    cluster = None
    if spec.scheduler:
        try:
            client = Client(spec.scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise InputError("--scheduler", "scheduler", spec.scheduler, f"cannot connect ({exc})") from None
    else:
        n = spec.workers or 2
        spec.workers = n
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    try:
        if spec.scheduler:
            try:
                client.wait_for_workers(1, timeout=60)
            except TimeoutError:
                raise InputError("--scheduler", "scheduler", spec.scheduler, "no worker joined within 60 s") from None
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
