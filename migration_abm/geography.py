"""Districts, functional regions, distances and adjacency: the spatial frame every other module uses."""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from migration_abm.errors import InputError
from migration_abm.schema import did_you_mean

#: The five functional regions of the 2013 strategy, in reporting order.
REGIONS: tuple[str, ...] = ("core", "expansion", "new_development", "northeast_eco", "southeast_eco")
#: Regions whose population exceeds ecological carrying capacity (migration origins in the strategy).
ECO_REGIONS: tuple[str, ...] = ("northeast_eco", "southeast_eco")
#: Regions the strategy designates as destinations for new urban residents.
DESTINATION_REGIONS: tuple[str, ...] = ("expansion", "new_development")
#: The 2020 "一区两群" zones at the finest level the statistics report them (FACTS §2, §4), as unions of
#: the 2013 regions: 中心城区 = the nine main-city districts = core + expansion; 主城新区 = the 12
#: new-development districts; 渝东北三峡库区城镇群 and 渝东南武陵山区城镇群 = the two ecological regions.
#: 主城都市区 (the "一区") is main_city + new_development. The 2013 1 % survey also reports these four.
ZONES: dict[str, tuple[str, ...]] = {
    "main_city": ("core", "expansion"),
    "new_development": ("new_development",),
    "northeast_eco": ("northeast_eco",),
    "southeast_eco": ("southeast_eco",),
}

EARTH_RADIUS_KM = 6371.0088
REQUIRED_COLUMNS = ("code", "name_zh", "name_en", "kind", "functional_region", "area_km2", "lat", "lon")
#: largest district population accepted (generous: above any country's, yet keeps agent counts finite)
MAX_DISTRICT_POPULATION = 2e9
_POP_COL = re.compile(r"^pop_(\d{4})$")


def data_path(name: str) -> Path:
    """Path of a file packaged in ``migration_abm/data``."""
    return Path(str(resources.files("migration_abm") / "data" / name))


def census_years(table: pd.DataFrame) -> list[int]:
    """Census years present in a district table, read from its ``pop_YYYY`` columns."""
    return sorted(int(m.group(1)) for c in table.columns if (m := _POP_COL.match(str(c))))


def file_stamp(path: Path) -> tuple[str, bytes]:
    """The resolved path and a digest of the bytes of ``path`` — the key under which a parsed input file
    is memoised per process (a sweep sets up thousands of models from the same tables; a file rewritten
    within one clock tick keeps its modification time, so the content is hashed); ``("", b"")`` when it
    cannot be read, so the read itself reports why."""
    try:
        return str(path.resolve()), hashlib.blake2b(path.read_bytes(), digest_size=16).digest()
    except (OSError, ValueError):
        return "", b""


def load_districts(path: str | Path | None = None) -> pd.DataFrame:
    """Read and validate a district table (the packaged Chongqing one by default).

    Any ``pop_YYYY`` column is a census year; ``pop_YYYY_imputed`` flags imputed values. Rows with a
    missing census value keep NaN (the 2000 census lacks 7 districts). Parsed once per file version
    (:func:`file_stamp`); each call gets its own copy.
    """
    path = Path(path) if path is not None else data_path("chongqing_districts.csv")
    return _read_districts(str(path), file_stamp(path)).copy()


@lru_cache(maxsize=8)
def _read_districts(src: str, stamp: tuple[str, bytes]) -> pd.DataFrame:
    path = Path(src)
    if "\x00" in src:
        raise InputError(src, "file", src, "not a valid path (NUL byte)")
    if path.is_dir():
        raise InputError(src, "file", src, "is a folder, not a district CSV")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)  # rows longer than the header
            table = pd.read_csv(path, dtype={"code": str}, index_col=False)
    except pd.errors.ParserWarning:
        raise InputError(src, "rows", src, "a row has more fields than the header") from None
    except FileNotFoundError:
        raise InputError(src, "file", src, "file not found") from None
    except pd.errors.EmptyDataError:
        raise InputError(src, "file", src, "empty file (no header, no rows)") from None
    except UnicodeDecodeError as exc:
        raise InputError(src, "file", src, f"not UTF-8 text (byte {exc.start})") from None
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        raise InputError(src, "file", src, f"not a readable CSV ({' '.join(str(exc).split())})") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(src, "columns", missing, "required column(s) missing")
    years = census_years(table)
    if not years:
        raise InputError(src, "columns", list(table.columns), "no census column named pop_YYYY")
    if table.empty:
        raise InputError(src, "rows", 0, "no district rows (header only)")

    def bad(row: int, col: str, reason: str) -> InputError:
        return InputError(src, f"row {row + 2}, column {col}", table.at[row, col], reason)

    blank = table["code"].isna() | (table["code"].astype(str).str.strip() == "")
    if blank.any():
        raise bad(int(np.flatnonzero(blank)[0]), "code", "missing district code")
    table["code"] = table["code"].astype(str).str.strip()
    dup = table["code"].duplicated()
    if dup.any():
        raise bad(int(np.flatnonzero(dup)[0]), "code", "duplicate district code")
    for i, reg in enumerate(table["functional_region"]):
        if reg not in REGIONS:
            raise bad(i, "functional_region", f"must be one of {', '.join(REGIONS)}" + did_you_mean(str(reg), REGIONS))
    urban_rural = [c for c in table.columns if re.fullmatch(r"(urban|rural)_\d{4}", str(c))]
    numeric = ["area_km2", "lat", "lon"] + [f"pop_{y}" for y in years] + urban_rural
    for col in numeric:
        values = pd.to_numeric(table[col], errors="coerce")
        nonnum = values.isna() & table[col].notna()
        if nonnum.any():
            raise bad(int(np.flatnonzero(nonnum)[0]), col, "not a number")
        table[col] = values
    for col, lo, hi in (("lat", -90, 90), ("lon", -180, 180)):
        out = table[col].isna() | (table[col] < lo) | (table[col] > hi)
        if out.any():
            raise bad(int(np.flatnonzero(out)[0]), col, f"must be within [{lo}, {hi}]")
    for col in urban_rural:
        out = (table[col] < 0) | np.isinf(table[col])
        if out.any():
            raise bad(int(np.flatnonzero(out)[0]), col, "must be a finite number >= 0")
    nonpos = table["area_km2"].isna() | (table["area_km2"] <= 0) | np.isinf(table["area_km2"])
    if nonpos.any():
        raise bad(int(np.flatnonzero(nonpos)[0]), "area_km2", "must be a positive number")
    for y in years:
        col = table[f"pop_{y}"]
        out = (col < 0) | (col > MAX_DISTRICT_POPULATION) | np.isinf(col)
        if out.any():
            raise bad(int(np.flatnonzero(out)[0]), f"pop_{y}",
                      f"population must be within [0, {MAX_DISTRICT_POPULATION:.0e}]")
        if col.notna().any() and not (col > 0).any():
            raise InputError(src, f"pop_{y}", float(col.fillna(0).sum()), "no district has a positive population")
        flag = f"pop_{y}_imputed"
        table[flag] = table[flag].fillna(0).astype(bool) if flag in table.columns else False
    return table


def read_boundaries(path: str | Path | None = None) -> dict[str, list[list[np.ndarray]]]:
    """District polygons from GeoJSON: code -> list of polygons, each a list of rings (n x 2 lon/lat),
    read-only arrays parsed once per file version (:func:`file_stamp`)."""
    path = Path(path) if path is not None else data_path("chongqing_districts.geojson")
    return dict(_read_boundaries(str(path), file_stamp(path)))


@lru_cache(maxsize=8)
def _read_boundaries(src: str, stamp: tuple[str, bytes]) -> dict[str, list[list[np.ndarray]]]:
    path = Path(src)
    if "\x00" in src:
        raise InputError(src, "file", src, "not a valid path (NUL byte)")
    if Path(path).is_dir():
        raise InputError(src, "file", src, "is a folder, not a GeoJSON file")
    try:
        gj = json.loads(Path(path).read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InputError(src, "file", src, f"not a readable GeoJSON ({' '.join(str(exc).split())})") from None
    features = gj.get("features") if isinstance(gj, dict) else None
    if not isinstance(features, list):
        raise InputError(src, "features", None, "not a GeoJSON FeatureCollection")
    out: dict[str, list[list[np.ndarray]]] = {}
    for i, feat in enumerate(features):
        props = feat.get("properties") if isinstance(feat, dict) else None
        code = str(props.get("code", "")) if isinstance(props, dict) else ""
        geom = (feat.get("geometry") if isinstance(feat, dict) else None) or {}
        if not code or not isinstance(geom, dict) or geom.get("type") not in ("Polygon", "MultiPolygon"):
            raise InputError(src, f"features[{i}]", code or None, "needs properties.code and a (Multi)Polygon")
        polys = [geom.get("coordinates")] if geom["type"] == "Polygon" else geom.get("coordinates")
        try:
            rings = [[np.asarray(ring, dtype=float)[:, :2] for ring in poly] for poly in polys]
        except (TypeError, ValueError, IndexError):
            rings = []
        if not rings or any(not poly or any(r.ndim != 2 or r.shape[1] != 2 or len(r) < 3 or not np.isfinite(r).all() for r in poly)
                            for poly in rings):
            raise InputError(src, f"features[{i}].geometry.coordinates", code,
                             "rings must be lists of at least 3 finite [lon, lat] points")
        for ring in (r for poly in rings for r in poly):
            ring.flags.writeable = False  # (shared by every caller)
        out[code] = rings
    return out


def haversine_km(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    """Great-circle distance in km between points given in degrees (broadcasting)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dlat, dlon = p2 - p1, np.radians(lon2) - np.radians(lon1)
    a = np.sin(dlat / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


@dataclass
class Geography:
    """Typed view of a district table: codes, regions, census populations, distances, adjacency."""

    districts: pd.DataFrame
    boundaries: dict[str, list[list[np.ndarray]]] | None = None
    circuity: float = 1.0
    source: str = "chongqing"
    _adjacency_tol_km: float = field(default=1.0, repr=False)

    @classmethod
    def load(cls, regions: str | Path | None = None, boundaries: str | Path | None = None,
             circuity: float = 1.0) -> Geography:
        """Load the packaged Chongqing tables (default) or a user's district table and GeoJSON."""
        table = load_districts(regions)
        if boundaries is None and regions is None:
            bounds = read_boundaries()
        else:
            bounds = read_boundaries(boundaries) if boundaries is not None else None
        if bounds is not None:
            extra = sorted(set(bounds) - set(table["code"]))
            if extra:
                raise InputError(str(boundaries or "boundaries"), "properties.code", extra[0],
                                 "district code not in the district table")
        return cls(table, bounds, circuity, str(regions or "chongqing"))

    @classmethod
    def from_config(cls, data: object) -> Geography:
        """The geography a config's ``[data]`` block names: ``regions`` ('chongqing' = packaged table, or
        a CSV path), ``boundaries`` ('chongqing', 'none' or a GeoJSON path) and ``circuity``."""
        regions = None if data.regions == "chongqing" else data.regions
        boundaries = None if data.boundaries in ("chongqing", "none") else data.boundaries
        geo = cls.load(regions, boundaries, data.circuity)
        if data.boundaries == "none":
            geo.boundaries = None
        return geo

    @property
    def codes(self) -> np.ndarray:
        return self.districts["code"].to_numpy(dtype=str)

    @property
    def n(self) -> int:
        return len(self.districts)

    @property
    def census_years(self) -> list[int]:
        return census_years(self.districts)

    @cached_property
    def region_index(self) -> np.ndarray:
        """Index into REGIONS of each district's functional region."""
        lookup = {r: i for i, r in enumerate(REGIONS)}
        return np.array([lookup[r] for r in self.districts["functional_region"]], dtype=np.int64)

    def in_regions(self, regions: tuple[str, ...] | list[str]) -> np.ndarray:
        """Boolean mask of districts in any of the given functional regions (read-only, computed once)."""
        masks = self.__dict__.setdefault("_region_masks", {})
        key = tuple(regions)
        if key not in masks:
            masks[key] = self.districts["functional_region"].isin(list(regions)).to_numpy()
            masks[key].flags.writeable = False
        return masks[key]

    def population(self, year: int) -> np.ndarray:
        """Census population of ``year`` per district (NaN where the census lacks a district)."""
        col = f"pop_{year}"
        if col not in self.districts.columns:
            raise InputError(self.source, "census year", year, f"no column {col}; have {self.census_years}")
        return self.districts[col].to_numpy(dtype=float)

    @cached_property
    def distance_km(self) -> np.ndarray:
        """Symmetric district-centroid distance matrix (km): great-circle distance × circuity."""
        lat, lon = self.districts["lat"].to_numpy(float), self.districts["lon"].to_numpy(float)
        d = haversine_km(lat[:, None], lon[:, None], lat[None, :], lon[None, :]) * self.circuity
        np.fill_diagonal(d, 0.0)
        return (d + d.T) / 2

    @cached_property
    def adjacency(self) -> np.ndarray:
        """Boolean district adjacency: boundaries within ``_adjacency_tol_km`` of each other.

        The packaged outlines were simplified per district (gaps and overlaps of ~100 m), so shared
        edges are detected by vertex proximity rather than exact topology.
        """
        from scipy.spatial import cKDTree

        if self.boundaries is None:
            raise InputError(self.source, "boundaries", None, "adjacency needs district boundaries")
        codes = list(self.codes)
        lat0 = np.radians(self.districts["lat"].mean())
        trees = []
        for code in codes:
            pts = np.vstack([ring for poly in self.boundaries.get(code, []) for ring in poly])
            xy = np.column_stack([pts[:, 0] * np.cos(lat0), pts[:, 1]]) * np.radians(1) * EARTH_RADIUS_KM
            trees.append(cKDTree(xy))
        adj = np.zeros((len(codes), len(codes)), dtype=bool)
        for i in range(len(codes)):
            for j in range(i + 1, len(codes)):
                if trees[i].count_neighbors(trees[j], self._adjacency_tol_km) > 0:
                    adj[i, j] = adj[j, i] = True
        return adj

    def census_trend(self, year: int) -> tuple[np.ndarray, np.ndarray]:
        """(trend, imputed): annualised log change (%/yr) of each district's share of the population over
        the latest intercensal period ending at or before ``year``, and where it was imputed.

        Shares are taken among the districts counted in both censuses; a district missing from the
        earlier census gets its functional region's population-weighted mean trend (flagged). Only
        census columns up to ``year`` are read, so a run never sees data from after its start.
        """
        years = [y for y in self.census_years if y <= year]
        if len(years) < 2:
            return np.zeros(self.n), np.ones(self.n, dtype=bool)
        y0, y1 = years[-2], years[-1]
        p0, p1 = self.population(y0), self.population(y1)
        both = np.isfinite(p0) & np.isfinite(p1)
        trend = np.full(self.n, np.nan)
        trend[both] = 100 * np.log((p1[both] / p1[both].sum()) / (p0[both] / p0[both].sum())) / (y1 - y0)
        for r in np.unique(self.region_index):
            m = self.region_index == r
            known = m & both
            fill = np.average(trend[known], weights=p1[known]) if known.any() else 0.0
            trend[m & ~both] = fill
        return trend, ~both

    @cached_property
    def zone_index(self) -> np.ndarray:
        """Index into ZONES of each district's 一区两群 zone."""
        lookup = {r: z for z, regions in enumerate(ZONES.values()) for r in regions}
        return np.array([lookup[r] for r in self.districts["functional_region"]], dtype=np.int64)

    def to_zones(self, values: np.ndarray) -> np.ndarray:
        """Sum a per-district array (last axis) over the districts of each zone in ZONES."""
        values = np.asarray(values, dtype=float)
        return np.stack([values[..., self.zone_index == z].sum(axis=-1) for z in range(len(ZONES))], axis=-1)

    def to_regions(self, values: np.ndarray, axis: int = -1) -> np.ndarray:
        """Sum a per-district array over districts of each functional region along ``axis``."""
        values = np.asarray(values)
        values = np.moveaxis(values, axis, -1)
        out = np.zeros(values.shape[:-1] + (len(REGIONS),), dtype=np.result_type(values, float))
        for r in range(len(REGIONS)):
            out[..., r] = values[..., self.region_index == r].sum(axis=-1)
        return np.moveaxis(out, -1, axis)

    def table(self, year: int | None = None) -> pd.DataFrame:
        """Districts with region and (optionally) one census year, for display."""
        cols = ["code", "name_zh", "name_en", "kind", "functional_region", "area_km2"]
        cols += [f"pop_{y}" for y in self.census_years] if year is None else [f"pop_{year}"]
        return self.districts[cols].copy()

    def region_table(self) -> pd.DataFrame:
        """Per-region district count, area and census populations."""
        rows = []
        for r, name in enumerate(REGIONS):
            mask = self.region_index == r
            row: dict[str, object] = {"region": name, "districts": int(mask.sum()),
                                      "area_km2": float(self.districts.loc[mask, "area_km2"].sum())}
            for y in self.census_years:
                col = self.districts.loc[mask, f"pop_{y}"]
                row[f"pop_{y}"] = int(col.sum()) if col.notna().all() else None
            rows.append(row)
        return pd.DataFrame(rows)
