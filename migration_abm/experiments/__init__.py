"""Experiments: parameter sweeps with seeded replicates streamed to one HDF5 store, resumable, on
serial / process / dask executors; tidy analysis, Sobol sensitivity and scenario comparison reports."""

from __future__ import annotations

from migration_abm.experiments.analysis import Sweep, load_sweep
from migration_abm.experiments.executors import ExecutorSpec, SerialExecutor
from migration_abm.experiments.runner import SweepSummary, run_sweep
from migration_abm.experiments.sensitivity import ishigami, saltelli_sample, sobol_indices
from migration_abm.experiments.spec import Experiment, Parameter, load_experiment
from migration_abm.experiments.store import PROVENANCE_ATTRS, store_digest

__all__ = ["Experiment", "ExecutorSpec", "PROVENANCE_ATTRS", "Parameter", "SerialExecutor", "Sweep",
           "SweepSummary", "ishigami", "load_experiment", "load_sweep", "run_sweep", "saltelli_sample",
           "sobol_indices", "store_digest"]
