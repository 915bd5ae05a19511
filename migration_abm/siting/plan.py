"""Siting plans: put new facilities where the demand is, from model results or from user CSVs.

``plan_sites`` is the core (points in, ``SitingPlan`` out); ``plan_for_results`` derives demand,
candidates and an assumed base-year provision from a model run; ``plan_from_csv`` reads a planner's
own GIS exports. Plans export CSV, GeoJSON and a map PNG.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from migration_abm.errors import InputError
from migration_abm.geography import haversine_km, read_boundaries
from migration_abm.siting import demand as dm
from migration_abm.siting import io
from migration_abm.siting.coverage import coverage_matrix
from migration_abm.siting.models import LSCP, MCLP, CapacitatedMCLP
from migration_abm.siting.settings import FacilityType, SitingSettings

log = logging.getLogger(__name__)


@dataclass
class SitingPlan:
    """Chosen sites, assignment and coverage before/after (overall and per district) with solver stats.

    ``coverage_before``/``coverage_after`` are FRACTIONS in [0, 1]: ``points`` = share of demand points
    served, ``weighted`` = share of demand weight (persons) served. Per-district ``pct_*`` columns and the
    CSV ``*_pct`` fields are percentages. ``unmet_demand`` is the weight left unserved after the plan.
    """

    facility: str
    model: str
    year: int | None
    sites: pd.DataFrame
    demand: pd.DataFrame
    districts: pd.DataFrame
    assignment: pd.DataFrame
    coverage_before: dict[str, float]
    coverage_after: dict[str, float]
    unmet_demand: float
    objective: float
    bound: float
    gap: float
    status: str
    solve_time: float
    budget: int | None
    notes: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    boundaries: dict[str, list[list[np.ndarray]]] | None = field(default=None, repr=False)

    @property
    def new_sites(self) -> pd.DataFrame:
        """Rows of ``sites`` that the plan opens."""
        return self.sites[self.sites["status"] == "new"]

    def summary(self) -> str:
        """A few human-readable lines: what was sited, coverage before → after, solver quality."""
        yr = f" {self.year}" if self.year is not None else ""
        return (f"{self.facility}{yr}: {len(self.new_sites)} new site(s) [{self.model}], demand served "
                f"{100 * self.coverage_before['weighted']:.1f}% -> {100 * self.coverage_after['weighted']:.1f}% "
                f"(points {100 * self.coverage_before['points']:.1f}% -> {100 * self.coverage_after['points']:.1f}%), "
                f"unmet {self.unmet_demand:,.0f}; objective {self.objective:,.6g}, bound {self.bound:,.6g}, "
                f"gap {100 * self.gap:.3f}% ({self.status}, {self.solve_time:.1f} s)")

    def to_csv(self, out_dir: str | Path) -> list[Path]:
        """Write sites.csv, demand.csv, districts.csv, assignment.csv and summary.csv into ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, df in (("sites", self.sites), ("demand", self.demand), ("districts", self.districts),
                         ("assignment", self.assignment)):
            p = out / f"{name}.csv"
            df.to_csv(p, index=False)
            paths.append(p)
        summ = {"facility": self.facility, "model": self.model, "year": self.year, "budget": self.budget,
                "new_sites": len(self.new_sites), "points_before_pct": 100 * self.coverage_before["points"],
                "points_after_pct": 100 * self.coverage_after["points"],
                "weighted_before_pct": 100 * self.coverage_before["weighted"],
                "weighted_after_pct": 100 * self.coverage_after["weighted"], "unmet_demand": self.unmet_demand,
                "objective": self.objective, "bound": self.bound, "gap": self.gap, "status": self.status,
                "solve_time_s": self.solve_time, "notes": " | ".join(self.notes)}
        p = out / "summary.csv"
        pd.DataFrame([summ]).to_csv(p, index=False)
        paths.append(p)
        return paths

    def to_geojson(self, path: str | Path, include_demand: bool = False) -> Path:
        """Sites (existing + new) as a GeoJSON FeatureCollection; demand points too if asked."""
        df = self.sites.assign(layer="site")
        if include_demand:
            df = pd.concat([df, self.demand.assign(layer="demand")], ignore_index=True)
        io.points_geojson(df, path)
        return Path(path)

    def plot(self, path: str | Path) -> Path:
        """Map PNG: district boundaries, demand (served/unserved), existing and new facilities."""
        from migration_abm.siting.plot import plot_plan

        return plot_plan(self, path)

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """All outputs into ``out_dir``: the CSVs, sites.geojson and map.png."""
        out = Path(out_dir)
        paths = {p.stem: p for p in self.to_csv(out)}
        paths["geojson"] = self.to_geojson(out / "sites.geojson")
        paths["map"] = self.plot(out / "map.png")
        return paths


def _radius(demand: pd.DataFrame, ft: FacilityType, settings: SitingSettings) -> np.ndarray:
    """Straight-line reach (km) per demand point, using its district's circuity when one is set."""
    codes = demand["district"].astype(str) if "district" in demand else pd.Series([""] * len(demand))
    circ = codes.map(settings.district_circuity).astype(float).fillna(settings.circuity).to_numpy(float)
    return settings.walk_speed_kmh * ft.minutes / 60.0 / circ


def _assign_nearest(a: sp.csr_matrix, open_mask: np.ndarray, d_ll: np.ndarray, s_ll: np.ndarray,
                    w: np.ndarray) -> sp.csr_matrix:
    """Uncapacitated assignment: each covered point to its nearest open covering site."""
    cols = np.flatnonzero(open_mask)
    sub = sp.csr_matrix(a[:, cols]).tocoo()
    if sub.nnz == 0:
        return sp.csr_matrix(a.shape)
    col = cols[sub.col]
    dist = haversine_km(d_ll[sub.row, 1], d_ll[sub.row, 0], s_ll[col, 1], s_ll[col, 0])
    order = np.lexsort((dist, sub.row))
    r, c = sub.row[order], col[order]
    first = np.r_[True, r[1:] != r[:-1]]
    return sp.csr_matrix((w[r[first]], (r[first], c[first])), shape=a.shape)


def plan_sites(demand: pd.DataFrame, candidates: pd.DataFrame, existing: pd.DataFrame | None,
               facility: str | FacilityType, *, budget: int | None = None,
               settings: SitingSettings | None = None, model: str | None = None) -> SitingPlan:
    """Choose new sites among ``candidates`` given ``existing`` facilities and weighted ``demand``.

    Inputs are DataFrames with lon/lat (+ weight for demand, capacity for existing; optional id,
    district). Coverage radius per demand point = walk speed × circle minutes / circuity of its district.
    """
    settings = settings or SitingSettings()
    ft = settings.facility(facility) if isinstance(facility, str) else facility
    model = model or settings.model
    budget = settings.budget if budget is None else int(budget)
    if budget < 0:
        raise InputError("siting", "budget", budget, "must be >= 0")
    t0 = time.perf_counter()
    existing = existing if existing is not None else pd.DataFrame(columns=["id", "lon", "lat", "capacity"])
    dem = demand.reset_index(drop=True).copy()
    if "district" not in dem:
        dem["district"] = ""
    ex = existing.reset_index(drop=True).copy().assign(status="existing")
    ca = candidates.reset_index(drop=True).copy().assign(status="candidate")
    if "capacity" not in ex:
        ex["capacity"] = ft.capacity.value
    if "capacity" not in ca:
        ca["capacity"] = ft.capacity.value
    sites = pd.concat([ex, ca], ignore_index=True)
    if "district" not in sites:
        sites["district"] = ""
    sites["district"] = sites["district"].fillna("").astype(str)
    dup = sites["id"].astype(str).duplicated()
    if dup.any():
        raise InputError("candidates/existing", "id", sites["id"].iloc[int(np.flatnonzero(dup)[0])],
                         "the same id is used by an existing facility and a candidate")
    d_ll = dem[["lon", "lat"]].to_numpy(float)
    s_ll = sites[["lon", "lat"]].to_numpy(float)
    w = dem["weight"].to_numpy(float)
    cap = sites["capacity"].to_numpy(float)
    radius = _radius(dem, ft, settings)
    a = coverage_matrix(d_ll, s_ll, radius)
    fixed = np.arange(len(ex))
    log.info("siting %s: %d demand points x %d sites (%d existing), %d coverage arcs, radius %.2f-%.2f km; "
             "solving %s with budget %d (time limit %.0f s)", ft.name, len(dem), len(sites), len(ex), a.nnz,
             radius.min(initial=0), radius.max(initial=0), model, budget, settings.time_limit_s)
    kw: dict[str, Any] = {"time_limit": settings.time_limit_s, "mip_gap": settings.mip_gap}
    if model == "mclp":
        m = MCLP(a, w, budget, fixed, **kw)
    elif model == "capacitated_mclp":
        m = CapacitatedMCLP(a, w, budget, cap, fixed, **kw)
    elif model == "lscp":
        m = LSCP(a, w, fixed, **kw)
    else:
        raise InputError("siting", "model", model, "must be mclp, capacitated_mclp or lscp")
    m.solve()
    log.info("siting %s: %s, gap %.3f%% after %.1f s", ft.name, m.status_, 100 * m.gap_, m.solve_time_)
    open_mask = m.open_
    if isinstance(m, CapacitatedMCLP):
        from migration_abm.siting.solvers import max_flow_served

        _, flow_before = max_flow_served(a, w, cap, fixed)
        flow_after = m.flow_
    else:
        before_mask = np.zeros(len(sites), dtype=bool)
        before_mask[fixed] = True
        flow_before = _assign_nearest(a, before_mask, d_ll, s_ll, w)
        flow_after = _assign_nearest(a, open_mask, d_ll, s_ll, w)
    served_b = np.asarray(flow_before.sum(axis=1)).ravel()
    served_a = np.asarray(flow_after.sum(axis=1)).ravel()
    dem["served_before"], dem["served_after"] = served_b, served_a
    dem["covered_before"], dem["covered_after"] = served_b > 1e-9, served_a > 1e-9
    sites["status"] = np.where(np.arange(len(sites)) < len(ex), "existing",
                               np.where(open_mask, "new", "candidate"))
    sites["load"] = np.asarray(flow_after.sum(axis=0)).ravel()
    sites["radius_km_median"] = float(np.median(radius)) if len(radius) else np.nan
    out_sites = sites[sites["status"] != "candidate"].reset_index(drop=True)
    coo = sp.coo_matrix(flow_after)
    assignment = pd.DataFrame({"demand_id": dem["id"].to_numpy()[coo.row], "site_id": sites["id"].to_numpy()[coo.col],
                               "amount": coo.data})
    g = dem.groupby("district", sort=False)
    dist = pd.DataFrame({"demand": g["weight"].sum(), "points": g.size(), "served_before": g["served_before"].sum(),
                         "served_after": g["served_after"].sum(),
                         "points_covered_before": g["covered_before"].sum(),
                         "points_covered_after": g["covered_after"].sum()})
    dist["existing_sites"] = sites[sites["status"] == "existing"].groupby("district").size().reindex(dist.index).fillna(0)
    dist["new_sites"] = sites[sites["status"] == "new"].groupby("district").size().reindex(dist.index).fillna(0)
    tot = dist["demand"].where(dist["demand"] > 0)
    dist["pct_before"] = 100 * dist["served_before"] / tot
    dist["pct_after"] = 100 * dist["served_after"] / tot
    dist["unmet_after"] = dist["demand"] - dist["served_after"]
    dist = dist.reset_index().rename(columns={"index": "district"})
    wt = float(w.sum())

    def frac(served: np.ndarray) -> dict[str, float]:
        return {"points": float((served > 1e-9).mean()) if len(served) else 1.0,
                "weighted": float(served.sum()) / wt if wt > 0 else 1.0}

    notes = [f"{ft.name}: {ft.circle}, {ft.minutes:g} min walk at {settings.walk_speed_kmh:g} km/h, "
             f"circuity {settings.circuity:g} (per-district overrides: {settings.district_circuity})",
             f"capacity {ft.capacity.value:g} per site ({'verified' if ft.capacity.verified else 'UNVERIFIED'}: "
             f"{ft.capacity.citation})"]
    if model == "capacitated_mclp":
        notes.append("served = splittable assignment within coverage and capacity")
    return SitingPlan(ft.name, model, None, out_sites, dem, dist, assignment, frac(served_b), frac(served_a),
                      wt - float(served_a.sum()), float(m.objective_), float(m.bound_), float(m.gap_), m.status_,
                      time.perf_counter() - t0, budget if model != "lscp" else None, notes, settings.to_dict())


def _settings(config: SitingSettings | dict[str, Any] | None) -> SitingSettings:
    if isinstance(config, SitingSettings):
        return config
    return SitingSettings.from_dict(config or {})


def demand_for_results(results: Any, year: int, facility: FacilityType, codes: list[str],
                       settings: SitingSettings, seed: int, district_table: pd.DataFrame | None = None,
                       district_shapes: dict[str, dm.DistrictShape] | None = None) -> pd.DataFrame:
    """Weighted demand points for ``year``: disaggregated persons × the facility's age-band demand."""
    years = [int(y) for y in np.asarray(results.years)]
    if int(year) not in years:
        raise InputError("results", "year", year, f"not a simulated year ({years[0]}–{years[-1]})")
    pop = results.population_by_district().loc[int(year)]
    pop.index = pop.index.astype(str)
    urban = results.urban_share(int(year))
    urban.index = urban.index.astype(str)
    pts = dm.sample_points(pop.reindex(codes).fillna(0.0), urban, settings, seed, district_table, district_shapes)
    need = dm.district_demand(results, int(year), facility).reindex(codes).fillna(0.0)
    pts["weight"] = pts["share"].to_numpy() * need.reindex(pts["district"]).to_numpy()
    return pts


def plan_for_results(results: Any, year: int, facility: str, *, districts: str | list[str] | None = None,
                     budget: int | None = None, config: SitingSettings | dict[str, Any] | None = None,
                     seed: int = 0, out_dir: str | Path | None = None) -> SitingPlan:
    """Plan ``facility`` sites for a model run's ``year`` (optionally only some regions/districts).

    Demand: persons per district disaggregated to points (see ``demand``), weighted by the age band.
    Existing: the ASSUMED base-year provision (``demand.default_existing``). Candidates: KMeans/grid
    over the year's demand. Writes CSV/GeoJSON/PNG into ``out_dir`` when given.
    """
    settings = _settings(config)
    ft = settings.facility(facility)
    codes = dm.select_districts(np.asarray(results.codes).astype(str), districts)
    if not codes:
        raise InputError("--districts", "districts", districts, "selects no district")
    table = dm.load_districts()
    bounds = read_boundaries()
    shp = dm.shapes(bounds)
    years = [int(y) for y in np.asarray(results.years)]
    base = settings.base_year if settings.base_year is not None else years[0]
    if base not in years:
        raise InputError("siting", "base_year", base, f"not a simulated year ({years[0]}–{years[-1]})")
    log.info("siting %s %d: disaggregating demand for %d district(s)", ft.name, year, len(codes))
    dem_t = demand_for_results(results, year, ft, codes, settings, seed, table, shp)
    dem_b = demand_for_results(results, base, ft, codes, settings, seed, table, shp)
    existing = dm.default_existing(dem_b, ft, seed)
    cands = dm.generate_candidates(dem_t, settings, seed)
    plan = plan_sites(dem_t.drop(columns=["share"]), cands, existing, ft, budget=budget, settings=settings)
    plan.year = int(year)
    plan.boundaries = {c: bounds[c] for c in codes if c in bounds}
    plan.notes.append(f"existing provision is an ASSUMPTION: base year {base}, capacity = "
                      f"{ft.provision.value:g} × base-year demand per district, sites at KMeans centres "
                      f"({ft.provision.citation})")
    if ft.beds_per_1000 is not None:
        plan.notes.append(f"hospital capacity rests on {ft.beds_per_1000.value:g} beds per 1 000 residents "
                          f"(verified: {ft.beds_per_1000.citation})")
    plan.notes.append(f"demand points: {len(dem_t)} ({settings.urban_kernel} urban kernel around district seats, "
                      f"rural uniform in district polygons), seed {seed}")
    if out_dir is not None:
        plan.write(out_dir)
    return plan


def plan_from_csv(demand_csv: str | Path, facility: str, *, candidates_csv: str | Path | None = None,
                  existing_csv: str | Path | None = None, budget: int | None = None,
                  config: SitingSettings | dict[str, Any] | None = None, seed: int = 0,
                  out_dir: str | Path | None = None, boundaries: str | Path | None = None) -> SitingPlan:
    """Plan from a planner's own CSVs (demand required; candidates generated and no existing if absent).

    Points without a ``district`` column are located in the packaged (or given) district boundaries,
    which also sets their per-district circuity.
    """
    settings = _settings(config)
    ft = settings.facility(facility)
    dem = io.read_demand_csv(demand_csv)
    bounds = read_boundaries(boundaries) if boundaries is not None else read_boundaries()
    shp = dm.shapes(bounds)
    if "district" not in dem or (dem["district"] == "").all():
        dem["district"] = dm.locate_districts(dem[["lon", "lat"]].to_numpy(float), shp)
    cands = io.read_candidates_csv(candidates_csv) if candidates_csv is not None else \
        dm.generate_candidates(dem, settings, seed)
    existing = io.read_existing_csv(existing_csv) if existing_csv is not None else None
    plan = plan_sites(dem, cands, existing, ft, budget=budget, settings=settings)
    used = set(dem["district"]) | set(plan.sites.get("district", pd.Series(dtype=str)))
    plan.boundaries = {c: b for c, b in bounds.items() if c in used}
    if existing is None:
        plan.notes.append("no existing facilities given: coverage before is 0")
    if out_dir is not None:
        plan.write(out_dir)
    return plan
