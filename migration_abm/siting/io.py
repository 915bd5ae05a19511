"""Validated planning inputs (demand, candidates, existing facilities, travel-time tables) and GeoJSON output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from migration_abm.errors import InputError
from migration_abm.storage import write_text_atomic


def _read(path: str | Path) -> pd.DataFrame:
    src = str(path)
    try:
        return pd.read_csv(path, dtype={"id": str, "district": str}, skipinitialspace=True)
    except FileNotFoundError:
        raise InputError(src, "file", src, "file not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(src, "file", src, f"not a readable CSV ({exc})") from None


def read_points_csv(path: str | Path, kind: str, *, required: tuple[str, ...] = ("lon", "lat"),
                    nonneg: tuple[str, ...] = (), prefix: str = "p") -> pd.DataFrame:
    """Read and validate a point CSV: lon/lat in range, listed columns numeric and >= 0, unique ids.

    Errors name the file, the spreadsheet row (header = row 1) and the column:
    ``InputError(file, "row N, column COL", value, reason)``.
    """
    src = str(path)
    df = _read(path)
    df.columns = [str(c).strip().lower() for c in df.columns]
    missing = [c for c in required + nonneg if c not in df.columns]
    if missing:
        raise InputError(src, "columns", missing, f"{kind} CSV needs column(s) {', '.join(required + nonneg)}")
    if len(df) == 0:
        raise InputError(src, "rows", 0, f"{kind} CSV has no rows")

    def bad(i: int, col: str, reason: str) -> InputError:
        value = df[col].iloc[i]
        return InputError(src, f"row {i + 2}, column {col}", value.item() if isinstance(value, np.generic) else value,
                          reason)

    for col in required + nonneg:
        values = pd.to_numeric(df[col], errors="coerce")
        nan = values.isna() | ~np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))
        if nan.any():
            raise bad(int(np.flatnonzero(nan)[0]), col, "missing or not a finite number")
        df[col] = values.astype(float)
    for col, lo, hi in (("lon", -180.0, 180.0), ("lat", -90.0, 90.0)):
        out = (df[col] < lo) | (df[col] > hi)
        if out.any():
            raise bad(int(np.flatnonzero(out)[0]), col, f"must be within [{lo:g}, {hi:g}]")
    for col in nonneg:
        neg = df[col] < 0
        if neg.any():
            raise bad(int(np.flatnonzero(neg)[0]), col, "must be >= 0")
    if "id" in df.columns:
        ids = df["id"].astype(str).str.strip()
        empty = df["id"].isna() | (ids == "")
        if empty.any():
            raise bad(int(np.flatnonzero(empty)[0]), "id", "empty id")
        dup = ids.duplicated()
        if dup.any():
            raise bad(int(np.flatnonzero(dup)[0]), "id", "duplicate id")
        df["id"] = ids
    else:
        df.insert(0, "id", [f"{prefix}{i}" for i in range(len(df))])
    if "district" in df.columns:
        df["district"] = df["district"].fillna("").astype(str).str.strip()
    return df


def read_demand_csv(path: str | Path) -> pd.DataFrame:
    """Demand points: columns lon, lat, weight (>= 0); optional id, district."""
    return read_points_csv(path, "demand", nonneg=("weight",), prefix="d")


def read_candidates_csv(path: str | Path) -> pd.DataFrame:
    """Candidate sites: columns lon, lat; optional id, district, capacity (>= 0)."""
    df = read_points_csv(path, "candidates", prefix="c")
    if "capacity" in df.columns:
        df = read_points_csv(path, "candidates", nonneg=("capacity",), prefix="c")
    return df


def read_existing_csv(path: str | Path, facility: str | None = None) -> pd.DataFrame:
    """Existing facilities: columns lon, lat, capacity (>= 0); optional id, district, kind.

    With a ``kind`` column and a ``facility`` name, only the rows of that kind are kept (one file may
    list schools and hospitals); a file with no row of that kind is an error.
    """
    df = read_points_csv(path, "existing facilities", nonneg=("capacity",), prefix="e")
    if "kind" in df.columns and facility is not None:
        kind = df["kind"].fillna("").astype(str).str.strip()
        if not (kind == facility).any():
            raise InputError(str(path), "column kind", sorted(set(kind))[:5], f"no row of kind {facility!r}")
        df = df[kind == facility].reset_index(drop=True)
    df["assumed"] = False
    return df


def read_travel_times(path: str | Path) -> pd.DataFrame:
    """Travel-time table (CSV, or Parquet by suffix): rows of demand_id, site_id (or candidate_id), minutes.

    Pairs not listed are unreachable. Errors name the file, the row and the column.
    """
    src = str(path)
    p = Path(path)
    if not p.exists():
        raise InputError(src, "file", src, "file not found")
    if p.suffix.lower() in (".parquet", ".pq"):
        try:
            df = pd.read_parquet(p)
        except (OSError, ValueError) as exc:
            raise InputError(src, "file", src, f"not a readable Parquet file ({exc})") from None
    else:
        try:
            df = pd.read_csv(p, dtype={"demand_id": str, "site_id": str, "candidate_id": str}, skipinitialspace=True)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise InputError(src, "file", src, f"not a readable CSV ({exc})") from None
    df.columns = [str(c).strip().lower() for c in df.columns]
    if "site_id" not in df.columns and "candidate_id" in df.columns:
        df = df.rename(columns={"candidate_id": "site_id"})
    missing = [c for c in ("demand_id", "site_id", "minutes") if c not in df.columns]
    if missing:
        raise InputError(src, "columns", missing, "travel-time table needs demand_id, site_id (or candidate_id), minutes")
    minutes = pd.to_numeric(df["minutes"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(minutes) | (minutes < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(src, f"row {i + 2}, column minutes", df["minutes"].iloc[i], "must be a finite number >= 0")
    out = pd.DataFrame({"demand_id": df["demand_id"].astype(str).str.strip(),
                        "site_id": df["site_id"].astype(str).str.strip(), "minutes": minutes})
    dup = out.duplicated(["demand_id", "site_id"])
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise InputError(src, f"row {i + 2}, columns demand_id/site_id", f"{out.demand_id[i]}/{out.site_id[i]}",
                         "pair listed twice")
    out.attrs["source"] = src
    return out


def travel_matrix(table: pd.DataFrame, demand_ids: np.ndarray, site_ids: np.ndarray) -> sp.csr_matrix:
    """Demand × site CSR matrix of minutes from a travel-time table (explicit entries, zeros kept)."""
    src = str(table.attrs.get("source", "travel times"))
    dpos = pd.Index([str(i) for i in demand_ids])
    spos = pd.Index([str(i) for i in site_ids])
    r = dpos.get_indexer(table["demand_id"])
    c = spos.get_indexer(table["site_id"])
    for name, idx, col in (("demand_id", r, "demand_id"), ("site_id", c, "site_id")):
        if (idx < 0).any():
            i = int(np.flatnonzero(idx < 0)[0])
            raise InputError(src, f"row {i + 2}, column {col}", table[col].iloc[i], f"unknown {name}")
    # store minutes + 1 so zero-minute pairs stay explicit entries, then shift back
    m = sp.csr_matrix((table["minutes"].to_numpy(float) + 1.0, (r, c)), shape=(len(dpos), len(spos)))
    m.sort_indices()
    m.data -= 1.0
    return m


def point_features(df: pd.DataFrame) -> list[dict]:
    """GeoJSON point features with every column but lon/lat as properties (plain values, NaN -> null)."""
    feats = []
    props_cols = [c for c in df.columns if c not in ("lon", "lat")]
    for rec in df.to_dict("records"):
        props = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in rec.items() if k in props_cols}
        props = {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in props.items()}
        feats.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [float(rec["lon"]),
                                                                                      float(rec["lat"])]},
                      "properties": props})
    return feats


def write_geojson(features: list[dict], path: str | Path) -> dict:
    """Write a FeatureCollection atomically; returns it."""
    gj = {"type": "FeatureCollection", "features": features}
    write_text_atomic(path, json.dumps(gj, ensure_ascii=False))
    return gj
