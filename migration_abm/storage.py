"""Atomic file writing and the single-run HDF5 layout (see docs/STORAGE.md).

Every file is written to a temporary sibling and renamed into place, so a crash or an exception
mid-write never leaves a partial file at the target path.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

LAYOUT_VERSION = 1


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temp path next to ``target``; on success fsync and rename it over ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_text_atomic(target: str | Path, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def git_commit() -> str:
    """Commit of the source tree this package runs from, or '' if not a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5, check=False)
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def provenance_attrs() -> dict[str, str]:
    """Package version, git commit and UTC creation time, stored on every results file."""
    from migration_abm import __version__

    return {"package_version": __version__, "git_commit": git_commit(),
            "created_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")}


def write_run_file(target: str | Path, *, attrs: dict[str, Any], arrays: dict[str, np.ndarray],
                   coords: dict[str, np.ndarray], dims: dict[str, tuple[str, ...]]) -> None:
    """Write one run: root attributes, coordinate datasets under /coords, data arrays under /data.

    ``dims`` names each data array's axes (e.g. ("year", "district")); the names are stored as the
    dataset attribute ``dims`` so readers can label axes without guessing.
    """
    with atomic_path(target) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["layout"] = "migration_abm.run"
            f.attrs["layout_version"] = LAYOUT_VERSION
            for k, v in {**provenance_attrs(), **attrs}.items():
                f.attrs[k] = v
            g = f.create_group("coords")
            for name, values in coords.items():
                values = np.asarray(values)
                if values.dtype.kind in "UO":
                    g.create_dataset(name, data=values.astype("S"))
                else:
                    g.create_dataset(name, data=values)
            d = f.create_group("data")
            for name, arr in arrays.items():
                ds = d.create_dataset(name, data=arr, compression="gzip", compression_opts=4, shuffle=True)
                ds.attrs["dims"] = ",".join(dims[name])


def read_run_file(path: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, np.ndarray],
                                               dict[str, tuple[str, ...]]]:
    """Read a run file written by :func:`write_run_file`: (attrs, arrays, coords, dims)."""
    from migration_abm.errors import InputError

    try:
        f = h5py.File(path, "r")
    except (OSError, FileNotFoundError) as exc:
        raise InputError(str(path), "file", str(path), f"not a readable HDF5 file ({exc})") from None
    with f:
        if f.attrs.get("layout") != "migration_abm.run":
            raise InputError(str(path), "layout", f.attrs.get("layout"), "not a migration-abm run file")
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
        coords = {}
        for name, ds in f["coords"].items():
            v = ds[()]
            coords[name] = v.astype(str) if v.dtype.kind == "S" else v
        arrays, dims = {}, {}
        for name, ds in f["data"].items():
            arrays[name] = ds[()]
            dims[name] = tuple(str(ds.attrs["dims"]).split(","))
    return attrs, arrays, coords, dims
