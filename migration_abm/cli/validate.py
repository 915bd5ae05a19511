"""``migration-abm validate``: the model and every baseline on the held-out observations."""

from __future__ import annotations

import argparse
from pathlib import Path

from migration_abm.cli.common import add_config_args, check_output_path
from migration_abm.errors import InputError


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``validate``."""
    p = sub.add_parser("validate", help="score the model and the baselines on held-out observations")
    p.add_argument("--config", default="configs/hindcast_2010.toml", help="hindcast scenario TOML")
    p.add_argument("--replicates", type=int, default=5, help="stochastic replicates per test (default 5)")
    p.add_argument("--fit-until", type=int, default=2013, help="last year of data the temporal test's fit sees")
    p.add_argument("--tests", default="temporal,allocation,backcast,forward",
                   help="comma-separated subset of the default temporal,allocation,backcast,forward")
    p.add_argument("--forward-config", default="configs/baseline.toml",
                   help="2020-base scenario TOML for the forward test (default configs/baseline.toml)")
    p.add_argument("--posterior", help="posterior CSV from `calibrate` (fitted up to --fit-until): one parameter "
                                       "set per replicate; the configs' run.posterior is not used")
    p.add_argument("--out", default="results/validation", help="output directory")
    add_config_args(p)
    p.set_defaults(func=cmd_validate)


def cmd_validate(args: argparse.Namespace) -> int:
    """Handler of ``validate``."""
    from migration_abm.checks import check_inputs
    from migration_abm.config import load_config
    from migration_abm.validation import summary_table, validate

    if args.replicates < 0:
        raise InputError("--replicates", "replicates", args.replicates, "must be >= 0")
    tests = tuple(t.strip() for t in args.tests.split(",") if t.strip())
    if args.posterior and not Path(args.posterior).is_file():
        raise InputError("--posterior", "posterior", args.posterior, "file not found")
    cfg = load_config(args.config, args.overrides)
    forward = load_config(args.forward_config, args.overrides) if "forward" in tests else None
    check_output_path(args.out, folder=True, exist_ok=True)
    for c in (cfg, forward):
        if c is not None:
            check_inputs(c)
    table = validate(cfg, args.out, args.replicates, fit_until=args.fit_until, tests=tests, posterior=args.posterior,
                     forward_config=forward)
    summ = summary_table(table)
    # out-of-sample rows first; in-sample ones (e.g. a forward posterior fitted to 2023) follow, labelled
    for role in ("predicted", "fitted"):
        part = summ[summ.role == role]
        if len(part):
            print(part.round(4).to_string(index=False))
    print(f"wrote {Path(args.out) / 'validation.md'}")
    return 0
