"""``migration-abm sweep`` and ``migration-abm compare``: experiments into one resumable HDF5 store."""

from __future__ import annotations

import argparse
from pathlib import Path

from migration_abm.cli.common import WORKERS_HELP, check_output_path, check_overrides
from migration_abm.errors import InputError
from migration_abm.experiments.executors import ExecutorSpec

SWEEP_EPILOG = """examples:
  migration-abm sweep experiments/hukou_job_matching.toml --workers 2
  migration-abm sweep experiments/behaviour_lhs.toml --local-cluster 4 --out results/sweeps/lhs.h5
  migration-abm sweep experiments/sensitivity_sobol.toml --scheduler tcp://10.0.0.5:8786
  migration-abm sweep experiments/sensitivity_sobol.toml --scheduler-file ~/scheduler.json   # SLURM etc.
  migration-abm sweep experiments/hukou_job_matching.toml --resume      # after Ctrl-C / a crash
exit codes: 0 all runs done, 1 some runs failed or are still pending, 2 bad input, 130 interrupted"""

COMPARE_EPILOG = """example:
  migration-abm compare configs/baseline.toml configs/no_policy.toml --replicates 20 --out results/compare
bands are 5-95 % quantiles across stochastic replicates only (not parameter uncertainty)"""


def _executor_args(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--workers", type=int, metavar="N", help=WORKERS_HELP)
    g.add_argument("--local-cluster", type=int, metavar="N", help="start a dask LocalCluster with N workers")
    g.add_argument("--scheduler", metavar="ADDR", help="use an existing dask cluster, e.g. tcp://host:8786")
    g.add_argument("--scheduler-file", metavar="FILE",
                   help="use the dask cluster whose scheduler wrote FILE (see docs/CLUSTER.md)")
    g.add_argument("--serial", action="store_true", help="run in this process, one run at a time")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def executor_from_args(args: argparse.Namespace) -> ExecutorSpec:
    """Executor chosen by --serial / --workers / --local-cluster / --scheduler[-file] (default: processes)."""
    if args.serial:
        return ExecutorSpec("serial")
    if args.scheduler_file:
        return ExecutorSpec("dask", scheduler_file=args.scheduler_file)
    if args.scheduler:
        if "://" not in args.scheduler and ":" not in args.scheduler:
            raise InputError("--scheduler", "scheduler", args.scheduler, "expected an address like tcp://host:8786")
        return ExecutorSpec("dask", scheduler=args.scheduler)
    if args.local_cluster is not None:
        if args.local_cluster < 1:
            raise InputError("--local-cluster", "local_cluster", args.local_cluster, "must be >= 1")
        return ExecutorSpec("dask", workers=args.local_cluster)
    if args.workers is not None and args.workers < 1:
        raise InputError("--workers", "workers", args.workers, "must be >= 1")
    return ExecutorSpec("process", workers=args.workers)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``sweep`` and ``compare`` on the main CLI's subparsers."""
    fmt = argparse.RawDescriptionHelpFormatter
    p = subparsers.add_parser("sweep", help="run an experiment (parameter sweep) into one HDF5 store",
                              description="Run every run of an experiment TOML (see docs/EXPERIMENTS.md), "
                              "streaming results into one resumable HDF5 store.", epilog=SWEEP_EPILOG,
                              formatter_class=fmt)
    p.add_argument("experiment", help="experiment TOML, e.g. experiments/hukou_job_matching.toml")
    p.add_argument("--out", help="store path (default results/sweeps/<experiment name>.h5)")
    p.add_argument("--resume", action="store_true", help="continue an existing store: run only pending runs")
    p.add_argument("--retry-failed", action="store_true", help="with --resume, also re-run failed runs")
    p.add_argument("--force", action="store_true", help="replace an existing store")
    p.add_argument("--swmr", action="store_true", help="keep the store open in SWMR mode so readers can follow")
    p.add_argument("--replicates", type=int, metavar="N", help="override the experiment's replicates")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="fixed config override added to the experiment's [set] (repeatable)")
    p.add_argument("--batch-size", type=int, metavar="N", help="runs per store flush (default: worker count)")
    _executor_args(p)
    p.set_defaults(func=cmd_sweep)

    p = subparsers.add_parser("compare", help="compare scenario configs with common random numbers",
                              description="Run each config with the same replicate seeds and write a "
                              "Markdown report with figures and paired differences.", epilog=COMPARE_EPILOG,
                              formatter_class=fmt)
    p.add_argument("configs", nargs="+", help="scenario TOML files; the first is the reference")
    p.add_argument("--replicates", type=int, default=10, metavar="N", help="replicates per config (default 10)")
    p.add_argument("--out", default="results/compare", help="report folder (default results/compare)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override applied to every config (repeatable)")
    p.add_argument("--seed", type=int, help="root seed of the comparison (default fixed, reproducible)")
    _executor_args(p)
    p.set_defaults(func=cmd_compare)


def cmd_sweep(args: argparse.Namespace) -> int:
    """Handler of ``sweep``."""
    from migration_abm.checks import check_inputs
    from migration_abm.experiments.compare import parse_sets
    from migration_abm.experiments.runner import run_sweep
    from migration_abm.experiments.spec import FORBIDDEN_KEYS, Experiment
    from migration_abm.schema import read_toml_file

    path = Path(args.experiment)
    extra: dict[str, object] = {}
    if args.replicates is not None:
        extra["replicates"] = args.replicates
    if args.retry_failed and not args.resume:
        raise InputError("--retry-failed", "retry_failed", True, "only with --resume")
    if args.batch_size is not None and args.batch_size < 1:
        raise InputError("--batch-size", "batch_size", args.batch_size, "must be >= 1")
    if args.set:
        check_overrides(args.set, FORBIDDEN_KEYS)
        base_set = read_toml_file(path, "experiment").get("set", {})
        extra["set"] = {**(base_set if isinstance(base_set, dict) else {}), **parse_sets(args.set)}
    exp = Experiment.from_toml(path, extra)
    out = Path(args.out) if args.out else Path("results") / "sweeps" / f"{exp.name}.h5"
    if args.resume and not out.exists():
        raise InputError(str(out), "--resume", str(out), "no store to resume")
    check_output_path(out, exist_ok=True)  # an existing store: the runner resumes, replaces or refuses it
    if out.suffix not in (".h5", ".hdf5"):
        raise InputError("--out", "out", str(out), "must end in .h5 or .hdf5")
    for scenario in exp.scenarios:
        check_inputs(scenario.config)
    summary = run_sweep(exp, out, executor_from_args(args), resume=args.resume, retry_failed=args.retry_failed,
                        overwrite=args.force, swmr=args.swmr, batch_size=args.batch_size,
                        progress=not args.no_progress)
    print(summary.line())
    if summary.done:
        from migration_abm.experiments.analysis import load_sweep
        from migration_abm.geography import REGIONS
        from migration_abm.plotting import plot_sweep

        sweep = load_sweep(summary.path)
        print(sweep.final_table())
        if "population" in sweep.outputs:
            labels = [", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
                                if k not in ("block", "sample")) or f"point {i}"
                      for i, row in enumerate(sweep.points.to_dict("records"))]
            png = plot_sweep(sweep.years, sweep.region_array("population"), list(REGIONS), labels,
                             summary.path.with_suffix(".png"), f"{exp.name}: population by functional region")
            print(f"figure: {png}")
    if summary.interrupted:
        return 130
    return 0 if summary.complete and summary.failed == 0 else 1


def cmd_compare(args: argparse.Namespace) -> int:
    """Handler of ``compare``."""
    from migration_abm.experiments.compare import DEFAULT_SEED, compare, parse_sets

    for c in args.configs:
        if not Path(c).is_file():
            raise InputError(c, "config", c, "config folder, not a file" if Path(c).is_dir() else "config file not found")
    check_overrides(args.set, ("run.seed",))
    check_output_path(args.out, folder=True, exist_ok=True)
    report, summary = compare(args.configs, args.out, args.replicates, parse_sets(args.set),
                              executor_from_args(args), DEFAULT_SEED if args.seed is None else args.seed,
                              progress=not args.no_progress)
    print(summary.line())
    print(f"report: {report}")
    return 0 if summary.failed == 0 else 1
