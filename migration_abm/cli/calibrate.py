"""``migration-abm calibrate``: fit behavioural parameters to observed totals."""

from __future__ import annotations

import argparse

from migration_abm.errors import InputError


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``calibrate``."""
    p = sub.add_parser("calibrate", help="fit behavioural / external-migration parameters to observed totals")
    p.add_argument("spec", help="calibration TOML, e.g. experiments/calibration.toml")
    p.add_argument("--out", default="results/calibration", help="output directory (stores, tables, report)")
    p.add_argument("--workers", type=int, default=2, help="local worker processes (default 2)")
    p.add_argument("--resume", action="store_true", help="resume interrupted stages")
    p.add_argument("--apply", action="store_true", help="write the fitted values into the spec's apply_to config")
    p.set_defaults(func=cmd_calibrate)


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Handler of ``calibrate``."""
    from migration_abm.calibration import CalibrationSpec, apply_fitted, calibrate, fitted_block

    if args.workers < 1:
        raise InputError("--workers", "workers", args.workers, "must be >= 1")
    spec = CalibrationSpec.from_toml(args.spec)
    summary = calibrate(spec, args.out, workers=args.workers, resume=args.resume, progress=not args.quiet)
    print(f"best loss {summary['loss']:.3g} after {summary['runs']} runs ({summary['seconds']:.0f} s)")
    for k, v in summary["fitted"].items():
        print(f"  {k} = {v}")
    if args.apply:
        if spec.apply_to is None:
            raise InputError(spec.source, "apply_to", None, "--apply needs apply_to in the calibration file")
        apply_fitted(spec.apply_to, fitted_block(summary))
        print(f"updated {spec.apply_to}")
    return 0
