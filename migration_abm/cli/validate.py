"""``migration-abm validate``: the hindcast and the baselines against observed populations."""

from __future__ import annotations

import argparse
from pathlib import Path

from migration_abm.cli.common import add_config_args
from migration_abm.errors import InputError


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``validate``."""
    p = sub.add_parser("validate", help="compare the hindcast and baselines with observed populations")
    p.add_argument("--config", default="configs/hindcast_2010.toml", help="hindcast scenario TOML")
    p.add_argument("--replicates", type=int, default=5, help="stochastic replicates (default 5)")
    p.add_argument("--out", default="results/validation", help="output directory")
    add_config_args(p)
    p.set_defaults(func=cmd_validate)


def cmd_validate(args: argparse.Namespace) -> int:
    from migration_abm.config import load_config
    from migration_abm.validation import validate

    if args.replicates < 1:
        raise InputError("--replicates", "replicates", args.replicates, "must be >= 1")
    cfg = load_config(args.config, args.overrides)
    table = validate(cfg, args.out, args.replicates)
    pred = table[(table.role == "predicted") & (table.area == "ARD (mean |rel|)")]
    print(pred[["model", "rel_error"]].rename(columns={"rel_error": "ARD 2022"}).to_string(index=False))
    print(f"wrote {Path(args.out) / 'validation.md'}")
    return 0
