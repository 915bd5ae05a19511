"""Arguments shared by several subcommands."""

from __future__ import annotations

import argparse


def add_config_args(p: argparse.ArgumentParser) -> None:
    """``--set KEY=VALUE`` (repeatable): dotted-key config overrides."""
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value by dotted key, e.g. policy.hukou.expansion.min_years=3")


def add_logging_flags(sub: argparse._SubParsersAction) -> None:
    """Accept -v/-q after the subcommand too (``migration-abm run X -q``), recursively."""
    for p in set(sub.choices.values()):
        if "-v" not in p._option_string_actions:
            p.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, help="more log output")
        if "-q" not in p._option_string_actions:
            p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="only errors")
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                add_logging_flags(action)
