"""The sweep store: ONE HDF5 file, written only by the driver, pre-created at the start.

Layout (see docs/EXPERIMENTS.md)::

    /                      attrs: layout, layout_version, name, design, entropy, experiment_json, ...
    /coords/{year,district,region,replicate,scenario,parameter,output}
    /scenarios/config_toml [scenario]               resolved base config of each scenario
    /design/{values [point, parameter], scenario, block, sample [point]}
    /seeds/{spawn_key [point, replicate, 2], state [point, replicate, 4]}
    /status/{code [point, replicate] int8, traceback [point, replicate] bytes}
    /outputs/<series> [point, replicate, year, district] float64, NaN until the run is done
    /provenance/elapsed_seconds [point, replicate]  timing: excluded from identity checks

Root attributes listed in :data:`PROVENANCE_ATTRS` and the ``/provenance`` group are the only parts that
differ between two executions of the same experiment; :func:`store_digest` skips exactly those.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from migration_abm.errors import InputError
from migration_abm.experiments.spec import Experiment
from migration_abm.experiments.worker import DONE, FAILED, PENDING, RunOutcome
from migration_abm.storage import provenance_attrs

LAYOUT = "migration_abm.sweep"
LAYOUT_VERSION = 1
#: Root attributes that record when/where/by what a store was made (not compared by identity checks).
PROVENANCE_ATTRS = ("created_utc", "package_version", "git_commit", "hostname", "experiment_source")
TRACEBACK_BYTES = 8192
_STR = h5py.string_dtype("utf-8")


def _open(path: Path, mode: str, swmr: bool = False, timeout: float = 60.0) -> h5py.File:
    """Open for writing, retrying while another process holds the HDF5 file lock."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            f = h5py.File(path, mode, libver="latest")
            if swmr:
                f.swmr_mode = True
            return f
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
        except OSError as exc:
            if "lock" in str(exc).lower() and time.monotonic() < deadline:
                time.sleep(0.2)
                continue
            raise


def create_store(path: str | Path, exp: Experiment, codes: np.ndarray, regions: np.ndarray,
                 point_values: np.ndarray, scenario: np.ndarray, block: np.ndarray, sample: np.ndarray) -> None:
    """Create every dataset of a fresh store (atomically: a temp file renamed into place)."""
    from migration_abm.storage import atomic_path

    years = exp.years
    n_p, n_r, n_y, n_d = exp.n_points, exp.replicates, len(years), len(codes)
    with atomic_path(path) as tmp, h5py.File(tmp, "w", libver="latest") as f:
        f.attrs.update({"layout": LAYOUT, "layout_version": LAYOUT_VERSION, "name": exp.name,
                        "description": exp.description, "design": exp.design, "samples": exp.samples,
                        "n_points": n_p, "n_replicates": n_r, "entropy": str(exp.entropy()),
                        "common_random_numbers": exp.common_random_numbers, "run_function": exp.run_function,
                        "outputs": ",".join(exp.outputs), "experiment_json": exp.spec_json()})
        f.attrs.update({**provenance_attrs(), "hostname": socket.gethostname(), "experiment_source": exp.source})
        c = f.create_group("coords")
        c["year"] = years.astype(np.int64)
        c["district"] = np.asarray(codes).astype("S")
        c["region"] = np.asarray(regions).astype("S")
        c["replicate"] = np.arange(n_r, dtype=np.int64)
        c["scenario"] = np.array([s.name for s in exp.scenarios], dtype=object).astype("S")
        c.create_dataset("parameter", data=np.array([p.name for p in exp.parameters], dtype="S"), dtype="S64")
        c["output"] = np.array(exp.outputs, dtype="S")
        f.create_dataset("scenarios/config_toml", data=[s.config.to_toml() for s in exp.scenarios], dtype=_STR)
        d = f.create_group("design")
        d.create_dataset("values", data=point_values.astype(np.float64).reshape(n_p, len(exp.parameters)))
        d["scenario"] = scenario.astype(np.int32)
        d["block"] = block.astype(np.int32)
        d["sample"] = sample.astype(np.int32)
        d.attrs["keys_json"] = json.dumps({p.name: list(p.keys) for p in exp.parameters})
        s = f.create_group("seeds")
        keys = np.full((n_p, n_r, 2), -1, dtype=np.int64)
        state = np.zeros((n_p, n_r, 4), dtype=np.uint32)
        for p in range(n_p):
            for r in range(n_r):
                ss = exp.run_seed(p, r)
                keys[p, r, 2 - len(ss.spawn_key):] = ss.spawn_key
                state[p, r] = ss.generate_state(4)
        s["spawn_key"] = keys
        s["state"] = state
        s.attrs["entropy"] = str(exp.entropy())
        st = f.create_group("status")
        st.create_dataset("code", shape=(n_p, n_r), dtype=np.int8, fillvalue=PENDING)
        st.create_dataset("traceback", shape=(n_p, n_r), dtype=f"S{TRACEBACK_BYTES}", chunks=(1, 1),
                          compression="gzip", compression_opts=4)
        o = f.create_group("outputs")
        for name in exp.outputs:
            ds = o.create_dataset(name, shape=(n_p, n_r, n_y, n_d), dtype=np.float64, chunks=(1, 1, n_y, n_d),
                                  fillvalue=np.nan, compression="gzip", compression_opts=4, shuffle=True)
            ds.attrs["dims"] = "point,replicate,year,district"
        pv = f.create_group("provenance")
        pv.create_dataset("elapsed_seconds", shape=(n_p, n_r), dtype=np.float64, fillvalue=np.nan)


def _recover(path: Path) -> None:
    """Rewrite a store whose writer died while it was open (HDF5 consistency flags left set)."""
    tmp = path.with_name(f".{path.name}.recover.tmp")
    with h5py.File(path, "r", swmr=True, locking=False) as src, h5py.File(tmp, "w", libver="latest") as dst:
        for k, v in src.attrs.items():
            dst.attrs[k] = v
        for name in src:
            src.copy(src[name], dst, name=name)
    shutil.move(tmp, path)


class StoreWriter:
    """Single writer: buffers outcomes, writes them in batches, opening the file only to flush
    (or keeping it open in SWMR mode so readers can follow along)."""

    def __init__(self, path: str | Path, outputs: tuple[str, ...], swmr: bool = False) -> None:
        self.path = Path(path)
        self.outputs = outputs
        self.swmr = swmr
        self.buffer: list[RunOutcome] = []
        self._file: h5py.File | None = None
        if swmr:
            self._file = open_for_write(self.path, swmr=True)

    def add(self, outcome: RunOutcome) -> None:
        self.buffer.append(outcome)

    @contextlib.contextmanager
    def _handle(self) -> Iterator[h5py.File]:
        if self._file is not None:
            yield self._file
        else:
            f = open_for_write(self.path)
            try:
                yield f
            finally:
                f.close()

    def flush(self) -> int:
        """Write buffered outcomes (data first, status last) and flush the file. Returns how many."""
        if not self.buffer:
            return 0
        n = len(self.buffer)
        with self._handle() as f:
            code, tb, el = f["status/code"], f["status/traceback"], f["provenance/elapsed_seconds"]
            for o in self.buffer:
                if o.status == DONE:
                    for name in self.outputs:
                        f["outputs"][name][o.point, o.replicate] = o.arrays[name]
                else:
                    for name in self.outputs:  # a re-run that failed must not keep stale data
                        f["outputs"][name][o.point, o.replicate] = np.nan
                text = o.traceback.encode("utf-8")
                if len(text) > TRACEBACK_BYTES:
                    text = b"...\n" + text[-(TRACEBACK_BYTES - 4):]
                tb[o.point, o.replicate] = text
                el[o.point, o.replicate] = o.elapsed
            f.flush()
            for o in self.buffer:
                code[o.point, o.replicate] = o.status
            f.flush()
        self.buffer.clear()
        return n

    def close(self) -> None:
        self.flush()
        if self._file is not None:
            self._file.close()
            self._file = None


def open_for_write(path: Path, swmr: bool = False) -> h5py.File:
    """Open an existing store read-write; rewrite it first if a killed writer left it flagged open."""
    try:
        return _open(path, "r+", swmr=swmr)
    except OSError as exc:
        if "consistency flags" not in str(exc) and "already open for write" not in str(exc):
            raise
    try:
        _recover(path)
    except (OSError, KeyError) as exc:
        raise InputError(str(path), "store", str(path), f"left damaged by a killed writer and could not be "
                         f"recovered ({exc}); delete it or rerun with --force") from None
    return _open(path, "r+", swmr=swmr)


def read_coords(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Years and district codes a store was created with."""
    with open_read(path) as f:
        return f["coords/year"][()], f["coords/district"][()].astype(str)


def read_status(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Status codes [point, replicate] and root attributes of a store."""
    with open_read(path) as f:
        return f["status/code"][()], dict(f.attrs)


def open_read(path: str | Path) -> h5py.File:
    """Open a store read-only without taking the HDF5 lock (SWMR-safe while a ``--swmr`` sweep runs)."""
    path = Path(path)
    if not path.exists():
        raise InputError(str(path), "file", str(path), "sweep store not found")
    try:
        f = h5py.File(path, "r", swmr=True, locking=False)
    except OSError as exc:
        raise InputError(str(path), "file", str(path), f"not a readable HDF5 file ({exc})") from None
    if f.attrs.get("layout") != LAYOUT:
        f.close()
        raise InputError(str(path), "layout", None, "not a migration-abm sweep store")
    return f


def store_digest(path: str | Path) -> str:
    """SHA-256 over every dataset (name, dtype, shape, bytes) and attribute, except provenance.

    Two stores of the same experiment have the same digest whatever the executor, worker count,
    completion order or interruptions/resumes.
    """
    h = hashlib.sha256()
    with open_read(path) as f:
        for k in sorted(f.attrs):
            if k not in PROVENANCE_ATTRS:
                h.update(f"@{k}={f.attrs[k]!r}".encode())

        def visit(name: str, obj: Any) -> None:
            if name == "provenance" or name.startswith("provenance/"):
                return
            h.update(f"/{name}".encode())
            for k in sorted(obj.attrs):
                h.update(f"@{k}={obj.attrs[k]!r}".encode())
            if isinstance(obj, h5py.Dataset):
                data = obj[()]
                h.update(f"{obj.dtype}{obj.shape}".encode())
                if data.dtype == object:
                    h.update(repr(data.tolist()).encode())
                else:
                    h.update(np.ascontiguousarray(data).tobytes())

        f.visititems(visit)
    return h.hexdigest()


def status_counts(code: np.ndarray) -> dict[str, int]:
    """Runs pending / done / failed."""
    return {"pending": int((code == PENDING).sum()), "done": int((code == DONE).sum()),
            "failed": int((code == FAILED).sum())}
