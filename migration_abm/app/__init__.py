"""``migration-abm app``: the planners' web page (Solara, served on 127.0.0.1, works offline).

Only argument handling lives here so ``migration-abm --help`` stays fast; Solara loads in :func:`run`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from migration_abm.errors import InputError

DEFAULT_PORT = 8765
#: Environment variable that hands ``--results`` to the Solara server process.
RESULTS_ENV = "MIGRATION_ABM_RESULTS"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``app`` subcommand."""
    p = subparsers.add_parser("app", help="start the planners' web page (scenarios, comparison, maps, siting)",
                              description="Serve the planners' page on http://127.0.0.1:PORT/ (offline: no CDN). "
                                          "It reads and writes run files, sweep stores and siting plans under "
                                          "--results, like the other commands.")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port on 127.0.0.1 (default {DEFAULT_PORT})")
    p.add_argument("--results", default="results", help="results folder to browse and write (default results/)")
    p.set_defaults(func=run)
    return p


def server_command(port: int, results: str | Path) -> tuple[list[str], dict[str, str]]:
    """The ``solara run`` command line and environment that serve the app (checked inputs)."""
    if not 0 <= port <= 65535:
        raise InputError("--port", "port", port, "must be within [0, 65535]")
    res = Path(results)
    if res.exists() and not res.is_dir():
        raise InputError("--results", "results", str(res), "is not a directory")
    env = {**os.environ, RESULTS_ENV: str(res.resolve())}
    cmd = [sys.executable, "-m", "solara", "run", "migration_abm.app.main", "--host", "127.0.0.1",
           "--port", str(port), "--production", "--no-open", "--log-level", "warning", "--no-check-version"]
    return cmd, env


def run(args: argparse.Namespace) -> int:
    """Serve the app until interrupted (this process becomes the Solara server)."""
    cmd, env = server_command(args.port, args.results)
    Path(args.results).mkdir(parents=True, exist_ok=True)
    print(f"serving the planners' page on http://127.0.0.1:{args.port}/ (results: {args.results}/); Ctrl-C stops it",
          flush=True)
    os.execve(cmd[0], cmd, env)
