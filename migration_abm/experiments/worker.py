"""The worker side of a sweep: one picklable task in, one picklable outcome out.

:func:`execute_run` never raises for a failing model run: the traceback is returned in the outcome so
the driver can record it and go on. It is importable from the package, so process pools and dask
workers (which must have ``migration_abm`` installed) can run it.
"""

from __future__ import annotations

import importlib
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from migration_abm.config import Config

PENDING, DONE, FAILED = 0, 1, 2
STATUS_NAMES = {PENDING: "pending", DONE: "done", FAILED: "failed"}

_FUNCS: dict[str, Callable[..., Any]] = {}


@dataclass
class RunTask:
    """One run: design point, replicate, resolved config, seed and what to extract."""

    point: int
    replicate: int
    config: Config
    seed: np.random.SeedSequence
    outputs: tuple[str, ...]
    run_function: str
    years: np.ndarray
    codes: np.ndarray


@dataclass
class RunOutcome:
    """What a run returns to the driver (``arrays`` is empty when it failed)."""

    point: int
    replicate: int
    status: int
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    traceback: str = ""
    elapsed: float = 0.0


def resolve_function(spec: str) -> Callable[..., Any]:
    """Import ``package.module:function`` (cached per process)."""
    fn = _FUNCS.get(spec)
    if fn is None:
        module, _, name = spec.partition(":")
        fn = getattr(importlib.import_module(module), name)
        _FUNCS[spec] = fn
    return fn


def execute_run(task: RunTask) -> RunOutcome:
    """Run one simulation and extract the requested [year, district] series as float64 arrays."""
    t0 = time.perf_counter()
    try:
        fn = resolve_function(task.run_function)
        res = fn(task.config, seed=task.seed)
        if not np.array_equal(np.asarray(res.years), task.years):
            raise ValueError(f"run returned years {res.years[0]}..{res.years[-1]}, store expects "
                             f"{task.years[0]}..{task.years[-1]}")
        if not np.array_equal(np.asarray(res.codes).astype(str), task.codes):
            raise ValueError("run returned a different district list than the store expects")
        arrays = {}
        for name in task.outputs:
            arr = np.asarray(res.arrays[name], dtype=np.float64)
            if arr.shape != (len(task.years), len(task.codes)):
                raise ValueError(f"output {name!r} has shape {arr.shape}, expected year × district")
            arrays[name] = arr
        return RunOutcome(task.point, task.replicate, DONE, arrays, "", time.perf_counter() - t0)
    except Exception:  # noqa: BLE001 - recorded, the sweep goes on
        return RunOutcome(task.point, task.replicate, FAILED, {}, traceback.format_exc(), time.perf_counter() - t0)
