"""``migration-abm config show``: the fully resolved scenario config."""

from __future__ import annotations

import argparse
import sys

from migration_abm.cli.common import add_config_args


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``config show``."""
    p = sub.add_parser("config", help="inspect scenario configs")
    csub = p.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    ps = csub.add_parser("show", help="print the fully resolved config")
    ps.add_argument("config", help="scenario TOML file")
    ps.add_argument("--doc", action="store_true", help="annotate each field with its range and documentation")
    add_config_args(ps)
    ps.set_defaults(func=cmd_config_show)


def cmd_config_show(args: argparse.Namespace) -> int:
    """Print the fully resolved config as TOML."""
    from migration_abm.config import Config, load_config
    from migration_abm.schema import annotate_toml, dumps_toml, field_docs

    cfg = load_config(args.config, args.overrides)
    d = cfg.to_dict()
    if not d["siting"]:
        d.pop("siting")  # empty: the siting defaults apply
    text = dumps_toml(d)
    if args.doc:
        text = annotate_toml(text, field_docs(Config))
    sys.stdout.write(f"# resolved from {cfg.source}\n" + text)
    return 0
