"""Atomic file writing and the single-run HDF5 layout (see docs/STORAGE.md).

Every file is written to a temporary sibling and renamed into place, so a crash or an exception
mid-write never leaves a partial file at the target path.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import glob
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

LAYOUT_VERSION = 2


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _remove_stale_temps(target: Path) -> None:
    """Delete ``.<name>.<pid>.*.tmp`` siblings left by writers that were killed (their pid is gone)."""
    for old in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        parts = old.name[len(target.name) + 2:].split(".")
        if not parts[0].isdigit() or int(parts[0]) == os.getpid():
            continue
        try:
            os.kill(int(parts[0]), 0)
        except ProcessLookupError:
            old.unlink(missing_ok=True)
        except PermissionError:  # alive, owned by someone else
            continue


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temp path next to ``target``; on success fsync and rename it over ``target``.

    The temp file honours the umask like a plain ``open`` would; temp files of killed writers of the
    same target are removed first.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent)
    os.fchmod(fd, 0o666 & ~_umask())
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
                   coords: dict[str, np.ndarray], dims: dict[str, tuple[str, ...]],
                   aux_coords: dict[str, tuple[str, np.ndarray]] | None = None,
                   units: dict[str, str] | None = None) -> None:
    """Write one run as a netCDF4-compatible HDF5 file (layout version 2, see docs/STORAGE.md).

    ``coords`` become dimension coordinates (netCDF dimension scales), ``aux_coords`` maps a name to
    (dimension, values) for labels beside a dimension (district names, regions); every array is a root
    variable over the dimensions ``dims[name]`` (also stored as the attribute ``dims``), with its
    ``units`` attribute. Axes without a coordinate become bare netCDF dimensions.
    """
    import h5netcdf

    aux_coords = aux_coords or {}
    units = units or {}

    def values_of(v: np.ndarray) -> tuple[np.ndarray, Any]:
        v = np.asarray(v)
        if v.dtype.kind in "USO":
            return v.astype(str).astype(object), h5py.string_dtype("utf-8")
        return v, v.dtype

    with atomic_path(target) as tmp:
        with h5netcdf.File(tmp, "w") as f:
            f.attrs["layout"] = "migration_abm.run"
            f.attrs["layout_version"] = LAYOUT_VERSION
            for k, v in {**provenance_attrs(), **attrs}.items():
                f.attrs[k] = v
            for name, v in coords.items():
                data, dtype = values_of(v)
                f.dimensions[name] = len(data)
                f.create_variable(name, (name,), dtype=dtype, data=data)
            for name, (dim, v) in aux_coords.items():
                data, dtype = values_of(v)
                f.create_variable(name, (dim,), dtype=dtype, data=data)
            for name, arr in arrays.items():
                axes = tuple(dims[name])
                for axis, n in zip(axes, np.shape(arr), strict=True):
                    if axis not in f.dimensions:
                        f.dimensions[axis] = n
                var = f.create_variable(name, axes, data=arr, compression="gzip", compression_opts=4,
                                        shuffle=True)
                var.attrs["dims"] = ",".join(axes)
                if name in units:
                    var.attrs["units"] = units[name]
                labels = [a for a, (d, _) in aux_coords.items() if d in axes]
                if labels:
                    var.attrs["coordinates"] = " ".join(labels)


def read_run_file(path: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, np.ndarray],
                                               dict[str, tuple[str, ...]]]:
    """Read a run file (layout 2, or layout 1 with /coords and /data groups): (attrs, arrays, coords, dims).

    ``coords`` holds the dimension coordinates and the labels beside them (e.g. ``district_name``).
    A damaged file or series raises InputError naming the file and the series.
    """
    from migration_abm.errors import InputError

    if Path(path).is_dir():
        raise InputError(str(path), "file", str(path), "is a directory, not a run file")
    try:
        f = h5py.File(path, "r")
    except (OSError, FileNotFoundError) as exc:
        raise InputError(str(path), "file", str(path), f"not a readable HDF5 file ({exc})") from None

    def read(name: str, ds: h5py.Dataset) -> np.ndarray:
        try:
            v = ds[()]
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(str(path), name, None, f"series cannot be read; the file is damaged ({exc})") from None
        return v.astype(str) if v.dtype.kind in "SO" else v

    with f:
        if f.attrs.get("layout") != "migration_abm.run":
            raise InputError(str(path), "layout", f.attrs.get("layout"), "not a migration-abm run file")
        attrs = {k: _attr(v) for k, v in f.attrs.items() if not k.startswith("_NC")}
        arrays, coords, dims = {}, {}, {}
        if "data" in f and isinstance(f["data"], h5py.Group):  # layout 1
            for name, ds in f["coords"].items():
                coords[name] = read(f"coords/{name}", ds)
            for name, ds in f["data"].items():
                arrays[name] = read(f"data/{name}", ds)
                dims[name] = tuple(str(ds.attrs.get("dims", "")).split(","))
            return attrs, arrays, coords, dims
        for name, ds in f.items():
            if not isinstance(ds, h5py.Dataset):
                continue
            if "dims" in ds.attrs:
                arrays[name] = read(name, ds)
                dims[name] = tuple(str(ds.attrs["dims"]).split(","))
            elif not _bare_dimension(ds):
                coords[name] = read(name, ds)
    return attrs, arrays, coords, dims


def _attr(v: Any) -> Any:
    """Attribute value as written: netCDF stores scalars as 1-element arrays."""
    if isinstance(v, np.ndarray) and v.shape == (1,):
        v = v[0]
    if isinstance(v, np.generic):
        v = v.item()
    return v.decode() if isinstance(v, bytes) else v


def _bare_dimension(ds: h5py.Dataset) -> bool:
    """A netCDF dimension without a coordinate variable (h5netcdf writes a placeholder dataset)."""
    name = ds.attrs.get("NAME", b"")
    return (name.decode() if isinstance(name, bytes) else str(name)).startswith("This is a netCDF dimension")
