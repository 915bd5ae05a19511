"""Validated CSV input (demand, candidates, existing facilities) and CSV/GeoJSON output helpers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from migration_abm.errors import InputError


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


def read_existing_csv(path: str | Path) -> pd.DataFrame:
    """Existing facilities: columns lon, lat, capacity (>= 0); optional id, district."""
    return read_points_csv(path, "existing facilities", nonneg=("capacity",), prefix="e")


def points_geojson(df: pd.DataFrame, path: str | Path | None = None) -> dict:
    """A FeatureCollection of points with every other column as properties (written if ``path``)."""
    feats = []
    props_cols = [c for c in df.columns if c not in ("lon", "lat")]
    for rec in df.to_dict("records"):
        props = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in rec.items() if k in props_cols}
        props = {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in props.items()}
        feats.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [float(rec["lon"]),
                                                                                      float(rec["lat"])]},
                      "properties": props})
    gj = {"type": "FeatureCollection", "features": feats}
    if path is not None:
        Path(path).write_text(json.dumps(gj, ensure_ascii=False), encoding="utf-8")
    return gj
