"""Command-line interface: ``migration-abm`` (or ``python -m migration_abm``).

One module per subcommand; each registers its parser and calls library functions.
Exit codes: 0 success, 2 bad input (config, CSV, flag), 1 internal error.
"""

from __future__ import annotations

import argparse
import logging
import sys

from migration_abm import app
from migration_abm.cli import calibrate, config, info, run, site, sweep, validate
from migration_abm.cli.common import add_logging_flags
from migration_abm.errors import InputError

SUBCOMMANDS = (info, config, run, site, sweep, validate, calibrate, app)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="migration-abm", description=__doc__.splitlines()[0].replace("``", ""))
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.add_parser(sub)
    add_logging_flags(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.ERROR if args.quiet else (logging.DEBUG if args.verbose > 1 else
                                              logging.INFO if args.verbose else logging.WARNING)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"migration-abm: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("migration-abm: interrupted (a sweep continues with --resume)", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - last-resort handler maps to exit 1
        if args.verbose:
            raise
        print(f"migration-abm: internal error: {type(exc).__name__}: {exc} (run with -v for the traceback)",
              file=sys.stderr)
        return 1
