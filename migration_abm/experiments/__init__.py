"""Experiments: parameter sweeps with seeded replicates streamed to one HDF5 store, resumable, on
serial / process / dask executors; tidy analysis, Sobol sensitivity and scenario comparison reports.

Names are imported on first use so the command line starts without loading scipy.stats or dask."""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "Sweep": "analysis", "load_sweep": "analysis",
    "ExecutorSpec": "executors", "SerialExecutor": "executors",
    "SweepSummary": "runner", "run_sweep": "runner",
    "ishigami": "sensitivity", "saltelli_sample": "sensitivity", "sobol_indices": "sensitivity",
    "Experiment": "spec", "Parameter": "spec", "load_experiment": "spec",
    "PROVENANCE_ATTRS": "store", "store_digest": "store",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f"migration_abm.experiments.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'migration_abm.experiments' has no attribute {name!r}")
