"""The sweep store: ONE HDF5 file, pre-created at the start, plus a journal of finished runs.

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

Crash safety: the writer never modifies the store in place in the default mode. Finished runs are
appended to ``<store>.journal`` (checksummed records); a *fold* copies the store to a temporary file,
applies the journal, and renames it over the store. With ``swmr=True`` the store is written in place (so
SWMR readers follow along) while ``<store>.base`` keeps the last clean copy; a killed session is rebuilt
from that copy plus the journal. A kill at any instant therefore loses at most runs still in flight.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import socket
import struct
import time
import zlib
from collections.abc import Iterable, Iterator
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
_REC = struct.Struct("<4sII")  # magic, payload length, crc32 of payload
_MAGIC = b"MABR"


def journal_path(path: str | Path) -> Path:
    """The journal of finished runs not yet folded into the store ``path``."""
    path = Path(path)
    return path.with_name(f"{path.name}.journal")


def base_path(path: str | Path) -> Path:
    """The clean copy a ``--swmr`` session keeps while it writes the store in place."""
    path = Path(path)
    return path.with_name(f"{path.name}.base")


def _tmp_path(path: Path, what: str) -> Path:
    return path.with_name(f".{path.name}.{what}.tmp")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace(tmp: Path, target: Path) -> None:
    """fsync ``tmp`` and rename it over ``target`` (durable once this returns)."""
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, target)
    _fsync_dir(target)


def _truncate_traceback(text: str) -> bytes:
    b = text.encode("utf-8")
    return b if len(b) <= TRACEBACK_BYTES else b"...\n" + b[-(TRACEBACK_BYTES - 4):]


# ---- journal ------------------------------------------------------------------------------------

def encode_outcome(o: RunOutcome, outputs: tuple[str, ...]) -> bytes:
    """One journal record: header, zlib-compressed JSON head + float64 arrays, CRC32."""
    arrays = [np.ascontiguousarray(o.arrays[n], dtype="<f8") for n in outputs] if o.status == DONE else []
    head = json.dumps({"p": o.point, "r": o.replicate, "s": o.status, "e": o.elapsed, "tb": o.traceback,
                       "o": list(outputs) if arrays else [], "shape": list(arrays[0].shape) if arrays else []})
    hb = head.encode()
    payload = zlib.compress(struct.pack("<I", len(hb)) + hb + b"".join(a.tobytes() for a in arrays), 1)
    return _REC.pack(_MAGIC, len(payload), zlib.crc32(payload)) + payload


def read_journal(path: str | Path) -> list[RunOutcome]:
    """Records of the journal of store ``path`` in write order, up to the first torn or damaged one."""
    jp = journal_path(path)
    try:
        data = jp.read_bytes()
    except FileNotFoundError:
        return []
    out, pos = [], 0
    while pos + _REC.size <= len(data):
        magic, n, crc = _REC.unpack_from(data, pos)
        payload = data[pos + _REC.size:pos + _REC.size + n]
        if magic != _MAGIC or len(payload) < n or zlib.crc32(payload) != crc:
            break  # a record cut short by a kill mid-append; the runs it held are still pending
        raw = zlib.decompress(payload)
        (hl,) = struct.unpack_from("<I", raw)
        h = json.loads(raw[4:4 + hl])
        arrays, off, shape = {}, 4 + hl, tuple(h["shape"])
        size = int(np.prod(shape)) * 8 if shape else 0
        for name in h["o"]:
            arrays[name] = np.frombuffer(raw, "<f8", count=size // 8, offset=off).reshape(shape)
            off += size
        out.append(RunOutcome(h["p"], h["r"], h["s"], arrays, h["tb"], h["e"]))
        pos += _REC.size + n
    return out


class Journal:
    """The writer's exclusive handle on ``<store>.journal``: an flock held for the whole session."""

    def __init__(self, store: str | Path) -> None:
        self.path = journal_path(store)
        self._made = self.path.parent
        while not self._made.parent.exists():
            self._made = self._made.parent
        self._made = None if self._made.exists() else self._made
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise InputError(str(store), "store", str(store), "another sweep is writing this store "
                                 f"(it holds {self.path.name}); wait for it or stop it first") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:  # not unlinked by a writer that finished while we waited for the lock
                self._fd: int | None = fd
                return
            os.close(fd)

    def append(self, outcomes: Iterable[RunOutcome], outputs: tuple[str, ...]) -> None:
        """Append records in one write and fsync them."""
        assert self._fd is not None
        os.write(self._fd, b"".join(encode_outcome(o, outputs) for o in outcomes))
        os.fsync(self._fd)

    def clear(self) -> None:
        """Drop every record (after they were folded into the store)."""
        assert self._fd is not None
        os.ftruncate(self._fd, 0)
        os.fsync(self._fd)

    def close(self, remove: bool) -> None:
        """Release the lock, deleting the (empty) journal first if ``remove``."""
        if self._fd is None:
            return
        if remove:
            self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None
        if remove and self._made is not None:  # folders made for a store that was never created
            folder = self.path.parent
            while not any(folder.iterdir()):
                folder.rmdir()
                if folder == self._made:
                    break
                folder = folder.parent


# ---- writing ------------------------------------------------------------------------------------

def create_store(path: str | Path, exp: Experiment, codes: np.ndarray, regions: np.ndarray,
                 point_values: np.ndarray, scenario: np.ndarray, block: np.ndarray, sample: np.ndarray) -> None:
    """Create every dataset of a fresh store (atomically: a temp file renamed into place).

    The caller holds the store's :class:`Journal` lock; a previous store's journal and base are dropped.
    """
    path = Path(path)
    years = exp.years
    n_p, n_r, n_y, n_d = exp.n_points, exp.replicates, len(years), len(codes)
    tmp = _tmp_path(path, "create")
    tmp.unlink(missing_ok=True)
    with h5py.File(tmp, "w", libver="latest") as f:
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
    base_path(path).unlink(missing_ok=True)
    _replace(tmp, path)
    with contextlib.suppress(FileNotFoundError):
        os.truncate(journal_path(path), 0)


def _apply(f: h5py.File, outcomes: Iterable[RunOutcome], outputs: tuple[str, ...]) -> None:
    """Write outcomes into an open store: data first, status last."""
    outcomes = list(outcomes)
    code, tb, el = f["status/code"], f["status/traceback"], f["provenance/elapsed_seconds"]
    for o in outcomes:
        for name in outputs:  # a re-run that failed must not keep stale data
            f["outputs"][name][o.point, o.replicate] = o.arrays[name] if o.status == DONE else np.nan
        tb[o.point, o.replicate] = _truncate_traceback(o.traceback)
        el[o.point, o.replicate] = o.elapsed
    f.flush()
    for o in outcomes:
        code[o.point, o.replicate] = o.status
    f.flush()


def _copy_readable(src_path: Path, dst: Path) -> None:
    """Rebuild a store that HDF5 refuses to open for writing (flags left set) through a SWMR reader."""
    with h5py.File(src_path, "r", swmr=True, locking=False) as src, h5py.File(dst, "w", libver="latest") as out:
        for k, v in src.attrs.items():
            out.attrs[k] = v
        for name in src:
            src.copy(src[name], out, name=name)


def _outputs_of(f: h5py.File) -> tuple[str, ...]:
    return tuple(str(v) for v in f["coords/output"][()].astype(str))


def fold_journal(path: str | Path, journal: Journal | None = None) -> int:
    """Fold the journal (and a killed ``--swmr`` session's base) into a clean store; returns runs folded.

    Works on a copy renamed over the store, so a kill at any instant leaves the old or the new store,
    and the journal, which is applied again (idempotently) next time. Needs the :class:`Journal` lock.
    """
    path = Path(path)
    own = journal is None
    journal = journal or Journal(path)
    try:
        records = read_journal(path)
        base = base_path(path)
        source = base if base.exists() else path
        if not records and source == path:
            journal.clear()
            return 0
        tmp = _tmp_path(path, "fold")
        tmp.unlink(missing_ok=True)
        shutil.copyfile(source, tmp)
        try:
            f = h5py.File(tmp, "r+", locking=False)
        except OSError:  # flags of a writer killed with the file open (older stores): copy through SWMR
            tmp.unlink()
            try:
                _copy_readable(source, tmp)
            except (OSError, KeyError) as exc:
                tmp.unlink(missing_ok=True)
                raise InputError(str(source), "store", str(source), f"HDF5 cannot read it ({exc}); the runs it "
                                 "recorded are lost: rerun with --force") from None
            f = h5py.File(tmp, "r+", locking=False)
        with f:
            _apply(f, records, _outputs_of(f))
        _replace(tmp, path)
        base.unlink(missing_ok=True)
        journal.clear()
        return len(records)
    finally:
        if own:
            journal.close(remove=True)


def _open(path: Path, swmr: bool, timeout: float = 60.0) -> h5py.File:
    """Open the store read-write, retrying while a plain reader holds the HDF5 file lock."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            f = h5py.File(path, "r+", libver="latest")
            if swmr:
                f.swmr_mode = True
            return f
        except (BlockingIOError, OSError) as exc:
            if ("lock" not in str(exc).lower() and not isinstance(exc, BlockingIOError)) \
                    or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


class StoreWriter:
    """Single writer: buffers outcomes and flushes them in batches to the journal; default mode folds the
    journal into the store every ``fold_seconds`` and at close, ``swmr`` mode also writes the store in
    place (kept open, so SWMR readers follow along) with a clean base copy for recovery."""

    def __init__(self, path: str | Path, outputs: tuple[str, ...], swmr: bool = False,
                 journal: Journal | None = None, fold_seconds: float = 60.0) -> None:
        self.path = Path(path)
        self.outputs = outputs
        self.swmr = swmr
        self.fold_seconds = fold_seconds
        self.buffer: list[RunOutcome] = []
        self.journal = journal or Journal(self.path)
        self._file: h5py.File | None = None
        self._unfolded = 0
        self._last_fold = time.monotonic()
        fold_journal(self.path, self.journal)
        if swmr:
            self._make_base()
            try:
                self._file = _open(self.path, swmr=True)
            except OSError:  # a store left flagged open by an older writer: rebuild it from the base
                fold_journal(self.path, self.journal)
                self._make_base()
                self._file = _open(self.path, swmr=True)

    def _make_base(self) -> None:
        tmp = _tmp_path(self.path, "base")
        shutil.copyfile(self.path, tmp)
        _replace(tmp, base_path(self.path))

    def add(self, outcome: RunOutcome) -> None:
        self.buffer.append(outcome)

    def flush(self) -> int:
        """Journal the buffered outcomes (then write them in place, or fold when due). Returns how many."""
        n = len(self.buffer)
        if n:
            self.journal.append(self.buffer, self.outputs)
            if self._file is not None:
                _apply(self._file, self.buffer, self.outputs)
            else:
                self._unfolded += n
            self.buffer.clear()
        if self._unfolded and time.monotonic() - self._last_fold >= self.fold_seconds:
            self.fold()
        return n

    def fold(self) -> None:
        """Fold the journal into the store now (default mode)."""
        fold_journal(self.path, self.journal)
        self._unfolded = 0
        self._last_fold = time.monotonic()

    def close(self) -> None:
        """Write everything, leave a clean store and no journal or base behind."""
        if self.journal._fd is None:
            return
        if self.buffer:
            self.journal.append(self.buffer, self.outputs)
            if self._file is not None:
                _apply(self._file, self.buffer, self.outputs)
            self.buffer.clear()
        if self._file is not None:
            self._file.close()
            self._file = None
            base_path(self.path).unlink(missing_ok=True)  # the store is clean; the journal may go too
            _fsync_dir(self.path)
            self.journal.clear()
        else:
            fold_journal(self.path, self.journal)
        self.journal.close(remove=True)


# ---- reading ------------------------------------------------------------------------------------

def read_coords(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Years and district codes a store was created with."""
    with open_read(path) as f:
        return f["coords/year"][()], f["coords/district"][()].astype(str)


def overlay_status(path: str | Path, code: np.ndarray) -> np.ndarray:
    """Status codes with the journal's not-yet-folded runs applied."""
    code = code.copy()
    for o in read_journal(path):
        code[o.point, o.replicate] = o.status
    return code


def read_status(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Status codes [point, replicate] (journal included) and root attributes of a store."""
    with open_read(path) as f:
        try:
            code, attrs = f["status/code"][()], dict(f.attrs)
        except (KeyError, OSError) as exc:  # an SWMR reader can meet a dataset mid-resize: say so, once
            raise InputError(str(path), "status/code", str(path),
                             f"not readable right now ({exc}); a sweep may be writing it, retry") from None
    return overlay_status(path, code), attrs


def open_read(path: str | Path) -> h5py.File:
    """Open a store read-only without taking the HDF5 lock (as an SWMR reader while a ``--swmr`` sweep
    writes it, so it never blocks the writer).

    The file alone may lag behind the sweep: runs still in the journal are applied by the readers of
    :mod:`migration_abm.experiments.analysis` and :func:`read_status`.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(str(path), "file", str(path), "sweep store not found")
    if path.is_dir():
        raise InputError(str(path), "file", str(path), "is a directory, not a sweep store")
    try:
        f = h5py.File(path, "r", locking=False)
    except OSError as exc:
        if "already open for" not in str(exc):  # damaged; a SWMR read would retry for minutes first
            raise InputError(str(path), "file", str(path), f"not a readable HDF5 file ({exc})") from None
        try:  # a --swmr sweep writes it (or was killed while writing it)
            f = h5py.File(path, "r", swmr=True, locking=False)
        except OSError as exc2:
            raise InputError(str(path), "file", str(path), f"not a readable HDF5 file ({exc2})") from None
    if f.attrs.get("layout") != LAYOUT:
        f.close()
        raise InputError(str(path), "layout", None, "not a migration-abm sweep store")
    return f


def store_digest(path: str | Path) -> str:
    """SHA-256 over every dataset (name, dtype, shape, bytes) and attribute, except provenance.

    Two stores of the same experiment have the same digest whatever the executor, worker count,
    completion order or interruptions/resumes. A store with runs still in its journal (a sweep running
    or killed) is refused: fold it first (``sweep --resume``).
    """
    if read_journal(path) or base_path(path).exists():
        raise InputError(str(path), "journal", str(journal_path(path)), "store has runs not folded in yet; "
                         "finish the sweep (or `sweep --resume`) first")
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


@contextlib.contextmanager
def writer_lock(path: str | Path) -> Iterator[Journal]:
    """Hold the store's journal lock for a block (released, journal removed if empty, on exit)."""
    j = Journal(path)
    try:
        yield j
    finally:
        j.close(remove=not read_journal(path))
