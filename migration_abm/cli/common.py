"""Arguments and checks shared by several subcommands: config overrides, worker counts, output paths,
an argument parser that suggests the closest choice."""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

from migration_abm.errors import InputError
from migration_abm.schema import did_you_mean, parse_value

WORKERS_HELP = "local worker processes (default: all cores)"


class Parser(argparse.ArgumentParser):
    """ArgumentParser whose 'invalid choice' errors add "did you mean" (subcommands and --choices)."""

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        if action.choices is not None and value not in action.choices:
            choices = ", ".join(map(str, action.choices))
            raise argparse.ArgumentError(action, f"invalid choice: {value!r} (choose from {choices})"
                                         + did_you_mean(str(value), map(str, action.choices)))


def add_config_args(p: argparse.ArgumentParser) -> None:
    """``--set KEY=VALUE`` (repeatable): dotted-key config overrides."""
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value by dotted key, e.g. policy.hukou.expansion.min_years=3 (repeatable)")


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


def default_workers(workers: int | None) -> int:
    """``--workers`` or, by default, every core; below 1 is a bad flag."""
    if workers is None:
        return os.cpu_count() or 1
    if workers < 1:
        raise InputError("--workers", "workers", workers, "must be >= 1")
    return workers


def overrides_tag(overrides: list[str]) -> str:
    """Short stable hash of ``--set`` overrides (order-insensitive, values parsed): '' if there are none.
    Default output names carry it so runs with different overrides never share a file."""
    if not overrides:
        return ""
    items = []
    for item in overrides:
        key, _, value = item.partition("=")
        items.append(f"{key.strip()}={parse_value(value.strip())!r}")
    return hashlib.sha256("\n".join(sorted(items)).encode()).hexdigest()[:8]


def check_overrides(items: list[str], forbidden: tuple[str, ...] = ()) -> None:
    """Check ``--set`` items against the scenario schema (keys, types, ranges) before any experiment
    merges them, so a bad one is reported as ``--set`` rather than as the file it is merged into."""
    from migration_abm.config import Config
    from migration_abm.schema import apply_overrides, build

    raw: dict[str, Any] = {}
    prov: dict[str, str] = {}
    apply_overrides(raw, items, "--set", prov)
    for item in items:
        key = item.partition("=")[0].strip()
        if key in forbidden:
            raise InputError("--set", key, parse_value(item.partition("=")[2].strip()),
                             "not allowed here (fixed by the experiment)")
    build(Config, raw, prov, "--set")


def check_input_file(path: str | Path, label: str) -> Path:
    """An input that must be an existing regular file (not a folder)."""
    path = Path(path)
    if path.is_dir():
        raise InputError(str(path), label, str(path), "is a folder; a file is needed")
    if not path.is_file():
        raise InputError(str(path), label, str(path), "file not found")
    return path


def _first_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists."""
    for p in (path, *path.parents):
        if p.exists() or p.is_symlink():
            return p
    return Path.cwd()


def check_output_path(path: str | Path, label: str = "--out", *, folder: bool = False,
                      force: bool = False, exist_ok: bool = False) -> Path:
    """Check, before any work, that ``path`` (a file, or a folder with ``folder=True``) can be written:
    no regular file where a folder is needed, a writable nearest existing folder, and no existing
    output unless ``force`` (replace) or ``exist_ok`` (the caller resumes or handles it). Creates nothing."""
    path = Path(path)
    if path.exists():
        if folder and not path.is_dir():
            raise InputError(label, label.lstrip("-"), str(path), "is a file; a directory is needed here")
        if not folder and path.is_dir():
            raise InputError(label, label.lstrip("-"), str(path), "is a directory; a file path is needed here")
        if not (force or exist_ok) and (not folder or any(path.iterdir())):
            raise InputError(label, label.lstrip("-"), str(path), "already exists; use --force to replace it "
                             "or choose another --out")
    anchor = _first_existing(path.parent if not path.exists() or not folder else path)
    if not anchor.is_dir():
        raise InputError(label, label.lstrip("-"), str(path), f"{anchor} is a file, not a folder")
    if not os.access(anchor, os.W_OK | os.X_OK):
        raise InputError(label, label.lstrip("-"), str(path), f"folder {anchor} is not writable")
    try:
        with tempfile.TemporaryFile(dir=anchor):
            pass
    except OSError as exc:
        raise InputError(label, label.lstrip("-"), str(path),
                         f"cannot write in {anchor} ({exc.strerror or exc})") from None
    return path
