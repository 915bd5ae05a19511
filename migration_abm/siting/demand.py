"""Demand points from model results, candidate sites and the default existing provision.

Method (documented in docs/SITING.md): each district's persons are split into an urban share,
concentrated around the district seat by a Gaussian or exponential kernel whose scale follows from an
urban density (area = urban persons / density), and a rural remainder spread uniformly over the
district polygon by rejection sampling. Each point carries an equal share of its group's persons, so
any age band's demand is the district total times the point's share. Seeds are per district
(``default_rng([seed, code])``), so a district's points do not depend on which others are selected.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.path import Path as MplPath

from migration_abm.errors import InputError
from migration_abm.geography import REGIONS, load_districts, read_boundaries
from migration_abm.siting.settings import FacilityType, SitingSettings

KM_PER_DEG = 111.195


class DistrictShape:
    """Point-in-polygon tests for one district's (multi)polygon with holes."""

    def __init__(self, polygons: list[list[np.ndarray]]) -> None:
        self.parts = [(MplPath(poly[0]), [MplPath(h) for h in poly[1:]]) for poly in polygons]
        allpts = np.vstack([poly[0] for poly in polygons])
        self.bbox = (allpts[:, 0].min(), allpts[:, 1].min(), allpts[:, 0].max(), allpts[:, 1].max())

    def contains(self, lonlat: np.ndarray) -> np.ndarray:
        inside = np.zeros(len(lonlat), dtype=bool)
        for outer, holes in self.parts:
            hit = outer.contains_points(lonlat)
            for h in holes:
                hit &= ~h.contains_points(lonlat)
            inside |= hit
        return inside


def disc_shape(lon: float, lat: float, area_km2: float, vertices: int = 64) -> DistrictShape:
    """A district without a boundary: a disc of its area around its seat (an assumption, noted in plans)."""
    r = math.sqrt(max(area_km2, 1e-6) / math.pi)
    th = np.linspace(0, 2 * math.pi, vertices, endpoint=False)
    ring = np.column_stack([lon + r * np.cos(th) / (KM_PER_DEG * math.cos(math.radians(lat))),
                            lat + r * np.sin(th) / KM_PER_DEG])
    return DistrictShape([[np.vstack([ring, ring[:1]])]])


def shapes(boundaries: dict[str, list[list[np.ndarray]]] | None = None) -> dict[str, DistrictShape]:
    """District code -> DistrictShape (packaged boundaries by default)."""
    return {c: DistrictShape(p) for c, p in (boundaries or read_boundaries()).items()}


def locate_districts(lonlat: np.ndarray, district_shapes: dict[str, DistrictShape]) -> np.ndarray:
    """District code of each point ("" when outside every district)."""
    out = np.full(len(lonlat), "", dtype=object)
    for code, shp in district_shapes.items():
        todo = out == ""
        if not todo.any():
            break
        hit = shp.contains(lonlat[todo])
        idx = np.flatnonzero(todo)[hit]
        out[idx] = code
    return out.astype(str)


def _uniform_in(shp: DistrictShape, k: int, rng: np.random.Generator) -> np.ndarray:
    x0, y0, x1, y1 = shp.bbox
    got: list[np.ndarray] = []
    need, tries = k, 0
    while need > 0 and tries < 200:
        cand = np.column_stack([rng.uniform(x0, x1, 4 * need + 16), rng.uniform(y0, y1, 4 * need + 16)])
        cand = cand[shp.contains(cand)][:need]
        got.append(cand)
        need -= len(cand)
        tries += 1
    pts = np.vstack(got) if got else np.zeros((0, 2))
    if len(pts) < k:  # degenerate polygon: fall back to its vertices' centre
        pts = np.vstack([pts, np.tile([(x0 + x1) / 2, (y0 + y1) / 2], (k - len(pts), 1))])
    return pts


def _kernel_in(shp: DistrictShape, centre: tuple[float, float], scale_km: float, kernel: str, k: int,
               rng: np.random.Generator) -> np.ndarray:
    lon0, lat0 = centre
    kx = KM_PER_DEG * math.cos(math.radians(lat0))
    got: list[np.ndarray] = []
    need, tries = k, 0
    while need > 0 and tries < 50:
        m = 2 * need + 16
        if kernel == "gaussian":
            dx, dy = rng.normal(0, scale_km, m), rng.normal(0, scale_km, m)
        else:
            r, th = rng.exponential(scale_km, m), rng.uniform(0, 2 * math.pi, m)
            dx, dy = r * np.cos(th), r * np.sin(th)
        cand = np.column_stack([lon0 + dx / kx, lat0 + dy / KM_PER_DEG])
        cand = cand[shp.contains(cand)][:need]
        got.append(cand)
        need -= len(cand)
        tries += 1
    pts = np.vstack(got) if got else np.zeros((0, 2))
    if len(pts) < k:  # seat outside the (simplified) outline: spread the rest uniformly
        pts = np.vstack([pts, _uniform_in(shp, k - len(pts), rng)])
    return pts


def sample_points(persons: pd.Series, urban_share: pd.Series, settings: SitingSettings, seed: int,
                  districts: pd.DataFrame | None = None,
                  district_shapes: dict[str, DistrictShape] | None = None) -> pd.DataFrame:
    """Residential points for districts (index of ``persons``): lon, lat, district, urban, share.

    ``share`` is the fraction of the district's persons a point stands for (shares sum to 1 per district).
    """

    table = (districts if districts is not None else load_districts()).set_index("code")
    shp_all = district_shapes or shapes()
    total = float(persons.clip(lower=0).sum())
    rows = []
    for code, pers in persons.items():
        code = str(code)
        if code not in shp_all or code not in table.index:
            raise InputError("results", "district", code, "no boundary or district row for this code")
        pers = max(float(pers), 0.0)
        n = max(settings.points_min_per_district,
                int(round(settings.points_total * pers / total)) if total > 0 else 0)
        u = urban_share.get(code, np.nan)
        u = settings.default_urban_share if u is None or not np.isfinite(u) else float(np.clip(u, 0, 1))
        n_u = int(round(n * u))
        if u > 0 and n_u == 0:
            n_u = 1
        if u < 1 and n_u == n:
            n_u = n - 1
        n_r = n - n_u
        rng = np.random.default_rng([int(seed), int(code) if code.isdigit() else abs(hash(code)) % 2**31])
        shp = shp_all[code]
        seat = (float(table.at[code, "lon"]), float(table.at[code, "lat"]))
        scale = settings.urban_scale_km
        if scale is None:
            r_km = math.sqrt(max(u * pers, 1.0) / settings.urban_density_per_km2 / math.pi)
            scale = max(0.3, r_km / 2.0)
        pu = _kernel_in(shp, seat, scale, settings.urban_kernel, n_u, rng)
        pr = _uniform_in(shp, n_r, rng)
        share = np.concatenate([np.full(n_u, u / n_u if n_u else 0.0), np.full(n_r, (1 - u) / n_r if n_r else 0.0)])
        pts = np.vstack([pu, pr])
        rows.append(pd.DataFrame({"lon": pts[:, 0], "lat": pts[:, 1], "district": code,
                                  "urban": np.r_[np.ones(n_u, bool), np.zeros(n_r, bool)], "share": share}))
    out = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["lon", "lat", "district", "urban", "share"])
    out.insert(0, "id", [f"d{i}" for i in range(len(out))])
    return out


def district_demand(results: Any, year: int, facility: FacilityType) -> pd.Series:
    """Persons of demand per district for a facility type, from the model's age structure."""
    ages = results.age_structure(year)
    cols = np.asarray([int(c) for c in ages.columns])
    values = ages.to_numpy(dtype=float)
    if facility.ages is None:
        d = values.sum(axis=1)
        if facility.elderly_weight != 1.0:
            d = d + (facility.elderly_weight - 1.0) * values[:, cols >= facility.elderly_age].sum(axis=1)
    else:
        lo, hi = facility.ages
        d = values[:, (cols >= lo) & (cols <= hi)].sum(axis=1)
    return pd.Series(d, index=ages.index.astype(str), name=facility.name)


def select_districts(codes: np.ndarray, selector: str | list[str] | None,
                     districts: pd.DataFrame | None = None) -> list[str]:
    """District codes matching a list of functional-region names and/or codes (all when None)."""
    codes = [str(c) for c in codes]
    if selector is None or selector == "" or selector == []:
        return codes
    items = [s.strip() for s in (selector.split(",") if isinstance(selector, str) else selector) if s.strip()]
    table = districts if districts is not None else load_districts()
    region = dict(zip(table["code"].astype(str), table["functional_region"], strict=False))
    out: list[str] = []
    for item in items:
        if item in REGIONS:
            out += [c for c in codes if region.get(c) == item]
        elif item in codes:
            out.append(item)
        else:
            raise InputError("--districts", "districts", item,
                             f"not a functional region ({', '.join(REGIONS)}) or a district code in the results")
    return sorted(set(out), key=codes.index)


def _project(lonlat: np.ndarray) -> tuple[np.ndarray, float]:
    lat0 = float(np.mean(lonlat[:, 1])) if len(lonlat) else 0.0
    kx = KM_PER_DEG * math.cos(math.radians(lat0))
    return np.column_stack([lonlat[:, 0] * kx, lonlat[:, 1] * KM_PER_DEG]), kx


def weighted_kmeans(xy: np.ndarray, w: np.ndarray | None, k: int, seed: int = 0, iterations: int = 8
                    ) -> np.ndarray:
    """k weighted centres: a seeded weight-proportional draw of k distinct points, then ``iterations``
    Lloyd steps (nearest centre by KD-tree, weighted means). Fast and reproducible; empty clusters keep
    their centre."""
    from scipy.spatial import cKDTree

    n = len(xy)
    w = np.ones(n) if w is None else np.maximum(np.asarray(w, dtype=float), 1e-12)
    k = min(k, n)
    rng = np.random.default_rng(seed)
    centres = xy[rng.choice(n, size=k, replace=False, p=w / w.sum())].copy()
    for _ in range(iterations):
        lab = cKDTree(centres).query(xy)[1]
        mass = np.bincount(lab, weights=w, minlength=k)
        has = mass > 0
        for d in range(xy.shape[1]):
            centres[has, d] = np.bincount(lab, weights=w * xy[:, d], minlength=k)[has] / mass[has]
    return centres


def generate_candidates(demand: pd.DataFrame, settings: SitingSettings, seed: int = 0) -> pd.DataFrame:
    """Candidate sites: weighted k-means centres of the demand points, or a grid over cells with demand."""
    from scipy.spatial import cKDTree

    ll = demand[["lon", "lat"]].to_numpy(float)
    xy, kx = _project(ll)
    if settings.candidates == "grid":
        g = settings.grid_km
        cells = np.unique(np.floor(xy / g).astype(np.int64), axis=0)
        cxy = (cells + 0.5) * g
    else:
        k = int(min(settings.n_candidates, len(np.unique(ll, axis=0))))
        cxy = weighted_kmeans(xy, demand["weight"].to_numpy(float) if "weight" in demand else None, k, seed)
    cll = np.column_stack([cxy[:, 0] / kx, cxy[:, 1] / KM_PER_DEG])
    near = cKDTree(xy).query(cxy)[1]
    return pd.DataFrame({"id": [f"c{i}" for i in range(len(cll))], "lon": cll[:, 0], "lat": cll[:, 1],
                         "district": demand["district"].to_numpy()[near] if "district" in demand else ""})


def default_existing(base_demand: pd.DataFrame, facility: FacilityType, seed: int = 0) -> pd.DataFrame:
    """ASSUMED base-year provision: per district, ceil(provision × base demand / capacity) facilities of
    standard capacity at weighted k-means centres of the district's base-year demand points.

    With the default provision ratio 1.0 capacity matches base-year demand (for hospitals this is 6 beds
    per 1 000 residents in 350-bed hospitals); coverage gaps then come from where people live and move.
    """
    cap = facility.capacity.value
    rows = []
    for code, grp in base_demand.groupby("district", sort=False):
        tot = float(grp["weight"].sum())
        k = int(math.ceil(facility.provision.value * tot / cap - 1e-9)) if tot > 0 else 0
        if k <= 0:
            continue
        ll = grp[["lon", "lat"]].to_numpy(float)
        if k >= len(np.unique(ll, axis=0)):
            centres = ll[:k]
        else:
            xy, kx = _project(ll)
            c = weighted_kmeans(xy, grp["weight"].to_numpy(float), k, seed)
            centres = np.column_stack([c[:, 0] / kx, c[:, 1] / KM_PER_DEG])
        for lon, lat in centres:
            rows.append((str(code), float(lon), float(lat)))
    out = pd.DataFrame(rows, columns=["district", "lon", "lat"])
    out.insert(0, "id", [f"e{i}" for i in range(len(out))])
    out["capacity"] = cap
    out["assumed"] = True
    return out
