"""``migration-abm calibrate``: ABC-SMC posterior of behavioural parameters, data up to fit_until."""

from __future__ import annotations

import argparse
from pathlib import Path

from migration_abm.errors import InputError


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``calibrate``."""
    p = sub.add_parser("calibrate", help="ABC-SMC posterior of behavioural parameters fitted to data up to fit_until")
    p.add_argument("spec", help="calibration TOML, e.g. experiments/calibration.toml")
    p.add_argument("--out", default="results/calibration", help="output directory (stores, posterior, report)")
    p.add_argument("--workers", type=int, default=2, help="local worker processes (default 2; 1 = serial)")
    p.add_argument("--resume", action="store_true", help="resume an interrupted calibration")
    p.add_argument("--apply", action="store_true", help="write the best particle and run.posterior (a copy of the posterior) into the spec's apply_to config")
    p.set_defaults(func=cmd_calibrate)


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Handler of ``calibrate``."""
    from migration_abm.calibration import POSTERIOR, CalibrationSpec, apply_calibration, calibrate

    if args.workers < 1:
        raise InputError("--workers", "workers", args.workers, "must be >= 1")
    spec = CalibrationSpec.from_toml(args.spec)
    if args.apply and spec.apply_to is None:
        raise InputError(spec.source, "apply_to", None, "--apply needs apply_to in the calibration file")
    out = Path(args.out)
    if (out / POSTERIOR).exists() and not args.resume:
        raise InputError("--out", "out", str(out), f"already holds {POSTERIOR}; use --resume or another --out")
    summary = calibrate(spec, out, workers=args.workers, resume=args.resume, progress=not args.quiet)
    print(f"best distance {summary['distance']:.4g} after {summary['runs']} runs ({summary['seconds']:.0f} s); "
          f"posterior {summary['posterior']}")
    for k, v in summary["fitted"].items():
        print(f"  {k} = {v}")
    if args.apply:
        copy = apply_calibration(spec.apply_to, summary)
        print(f"updated {spec.apply_to} (run.posterior = {copy.name})")
    return 0
