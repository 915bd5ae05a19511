"""Siting plans: put new facilities where the demand is, from model results or from a planner's own files.

``plan_sites`` is the core (points in, ``SitingPlan`` out) and reads the formulation from the registry;
``plan_for_results`` derives demand and candidates from a model run ON THAT RUN'S GEOGRAPHY, with the
existing provision, candidates and travel times taken from files when given (assumed otherwise);
``plan_from_csv`` reads a planner's own GIS exports. ``write_plan`` writes the CSV, GeoJSON and map.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from migration_abm.errors import InputError
from migration_abm.geography import Geography, haversine_km, read_boundaries
from migration_abm.siting import demand as dm
from migration_abm.siting import io, registry
from migration_abm.siting.base import SitingProblem
from migration_abm.siting.coverage import coverage_matrix
from migration_abm.siting.outputs import SitingPlan
from migration_abm.siting.settings import FacilityType, SitingSettings

log = logging.getLogger(__name__)


def _circuity(demand: pd.DataFrame, settings: SitingSettings) -> np.ndarray:
    codes = demand["district"].astype(str) if "district" in demand else pd.Series([""] * len(demand))
    return codes.map(settings.district_circuity).astype(float).fillna(settings.circuity).to_numpy(float)


def _radius(demand: pd.DataFrame, ft: FacilityType, settings: SitingSettings) -> np.ndarray:
    """Straight-line reach (km) per demand point, using its district's circuity when one is set."""
    return settings.walk_speed_kmh * ft.minutes / 60.0 / _circuity(demand, settings)


def walk_minutes(d_ll: np.ndarray, s_ll: np.ndarray, circuity: np.ndarray, settings: SitingSettings
                 ) -> np.ndarray:
    """Assumed walking minutes (great circle × circuity at walking speed) for every demand × site pair."""
    km = haversine_km(d_ll[:, 1][:, None], d_ll[:, 0][:, None], s_ll[:, 1][None, :], s_ll[:, 0][None, :])
    return km * circuity[:, None] / settings.walk_speed_kmh * 60.0


def build_problem(dem: pd.DataFrame, sites: pd.DataFrame, n_fixed: int, ft: FacilityType,
                  settings: SitingSettings, travel_times: pd.DataFrame | None
                  ) -> tuple[SitingProblem, str, float | None]:
    """The solver's instance: coverage within the facility's minutes, from a travel-time table when given,
    else from the straight-line radius (walking speed and circuity). Also returns a one-line description
    and the median radius in km (None with a table)."""
    d_ll = dem[["lon", "lat"]].to_numpy(float)
    s_ll = sites[["lon", "lat"]].to_numpy(float)
    w = dem["weight"].to_numpy(float)
    cap = sites["capacity"].to_numpy(float)
    fixed = np.arange(n_fixed)
    if travel_times is not None:
        minutes = io.travel_matrix(travel_times, dem["id"].to_numpy(), sites["id"].to_numpy()).tocoo()
        keep = minutes.data <= ft.minutes
        r, c, v = minutes.row[keep], minutes.col[keep], minutes.data[keep]
        a = sp.csr_matrix((np.ones(len(r)), (r, c)), shape=minutes.shape)
        cost = sp.csr_matrix((v + 1.0, (r, c)), shape=minutes.shape)  # + 1 keeps zero-minute arcs explicit
        cost.data -= 1.0
        return (SitingProblem(a, cost, w, cap, fixed, None),
                f"travel-time table {travel_times.attrs.get('source', '')}: {len(travel_times)} pairs, "
                f"{a.nnz} within {ft.minutes:g} min", None)
    circ = _circuity(dem, settings)
    radius = settings.walk_speed_kmh * ft.minutes / 60.0 / circ
    a = coverage_matrix(d_ll, s_ll, radius)
    coo = a.tocoo()
    km = haversine_km(d_ll[coo.row, 1], d_ll[coo.row, 0], s_ll[coo.col, 1], s_ll[coo.col, 0])
    cost = sp.csr_matrix((km * circ[coo.row] / settings.walk_speed_kmh * 60.0, (coo.row, coo.col)), shape=a.shape)
    return (SitingProblem(a, cost, w, cap, fixed, lambda: walk_minutes(d_ll, s_ll, circ, settings)),
            f"ASSUMED reach: straight line x circuity at {settings.walk_speed_kmh:g} km/h, radius "
            f"{radius.min(initial=0):.2f}-{radius.max(initial=0):.2f} km",
            float(np.median(radius)) if len(radius) else None)


def plan_sites(demand: pd.DataFrame, candidates: pd.DataFrame, existing: pd.DataFrame | None,
               facility: str | FacilityType, *, budget: int | None = None,
               settings: SitingSettings | None = None, model: str | None = None,
               travel_times: pd.DataFrame | None = None) -> SitingPlan:
    """Choose new sites among ``candidates`` given ``existing`` facilities and weighted ``demand``.

    Inputs are DataFrames with lon/lat (+ weight for demand, capacity for existing; optional id,
    district). Reach: the travel-time table (demand_id, site_id, minutes) when given, else walk speed ×
    circle minutes / circuity of the point's district. ``model`` is a name in ``registry.MODELS``.
    """
    settings = settings or SitingSettings()
    ft = settings.facility(facility) if isinstance(facility, str) else facility
    model = model or settings.model
    if model not in registry.MODELS:
        raise InputError("siting", "model", model, f"must be one of {', '.join(registry.names())}")
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
    ca["capacity"] = ca["capacity"].fillna(ft.capacity.value)
    ex["assumed"] = ex["assumed"].fillna(False).astype(bool) if "assumed" in ex else False
    ca["assumed"] = False
    sites = pd.concat([ex, ca], ignore_index=True)
    if "district" not in sites:
        sites["district"] = ""
    sites["district"] = sites["district"].fillna("").astype(str)
    dup = sites["id"].astype(str).duplicated()
    if dup.any():
        raise InputError("candidates/existing", "id", sites["id"].iloc[int(np.flatnonzero(dup)[0])],
                         "the same id is used by an existing facility and a candidate")
    prob, reach, radius_km = build_problem(dem, sites, len(ex), ft, settings, travel_times)
    w = prob.weights
    log.info("siting %s: %d demand points x %d sites (%d existing), %d coverage arcs; solving %s with budget %d "
             "(time limit %.0f s)", ft.name, len(dem), len(sites), len(ex), prob.coverage.nnz, model, budget,
             settings.time_limit_s)
    m = registry.get(model).from_problem(prob, budget, time_limit=settings.time_limit_s,
                                         mip_gap=settings.mip_gap).solve()
    log.info("siting %s: %s, gap %.3f%% (bound: %s) after %.1f s", ft.name, m.status_, 100 * m.gap_,
             m.bound_kind_, m.solve_time_)
    flow_before, flow_after = m.serve(prob.mask()), m.serve(m.open_)
    served_b = np.asarray(flow_before.sum(axis=1)).ravel()
    served_a = np.asarray(flow_after.sum(axis=1)).ravel()
    dem["served_before"], dem["served_after"] = served_b, served_a
    dem["covered_before"], dem["covered_after"] = served_b > 1e-9, served_a > 1e-9
    sites["status"] = np.where(np.arange(len(sites)) < len(ex), "existing", np.where(m.open_, "new", "candidate"))
    sites["load"] = np.asarray(flow_after.sum(axis=0)).ravel()
    out_sites = sites[sites["status"] != "candidate"].reset_index(drop=True)
    coo = sp.coo_matrix(flow_after)
    assignment = pd.DataFrame({"demand_id": dem["id"].to_numpy()[coo.row], "site_id": sites["id"].to_numpy()[coo.col],
                               "amount": coo.data,
                               "minutes": np.asarray(prob.arc_cost[coo.row, coo.col]).ravel() if coo.nnz else []})
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

    notes = [f"{ft.name}: {ft.circle}, {ft.minutes:g} min; {reach}",
             f"capacity {ft.capacity.value:g} per new site ({'verified' if ft.capacity.verified else 'UNVERIFIED'}: "
             f"{ft.capacity.citation})"]
    if model == "capacitated_mclp":
        notes.append("served = splittable assignment within reach and capacity")
    assumed = {"travel": travel_times is None, "provision": bool(ex["assumed"].any())}
    return SitingPlan(ft.name, model, None, out_sites, dem, dist, assignment, frac(served_b), frac(served_a),
                      wt - float(served_a.sum()), float(m.objective_), float(m.bound_), float(m.gap_), m.status_,
                      time.perf_counter() - t0, budget if model != "lscp" else None, notes,
                      {**settings.to_dict(), **({"radius_km": radius_km} if radius_km else {})},
                      bound_kind=m.bound_kind_, assumed=assumed)


def write_plan(plan: SitingPlan, out_dir: str | Path) -> dict[str, Path]:
    """All outputs into ``out_dir``: the CSV tables, sites.geojson (sites + catchments) and map.png."""
    from migration_abm.siting.plot import plot_plan

    out = Path(out_dir)
    paths = {p.stem: p for p in plan.to_csv(out)}
    paths["geojson"] = plan.to_geojson(out / "sites.geojson")
    paths["map"] = plot_plan(plan, out / "map.png")
    return paths


def _settings(config: SitingSettings | dict[str, Any] | None) -> SitingSettings:
    if isinstance(config, SitingSettings):
        return config
    return SitingSettings.from_dict(config or {})


def run_geography(results: Any) -> Geography:
    """The geography a results object was run on: rebuilt from its stored config (packaged if none)."""
    text = str(getattr(results, "config_toml", "") or "")
    if not text:
        return Geography.load()
    from migration_abm.config import from_toml_text

    return Geography.from_config(from_toml_text(text, "results config").data)


def district_shapes(geo: Geography, codes: list[str]) -> tuple[dict[str, dm.DistrictShape], list[str]]:
    """Shapes for ``codes``: the geography's polygons, else (no boundaries) a disc of the district's area
    around its seat. Also returns the codes drawn as discs."""
    polys = geo.boundaries or {}
    table = geo.districts.set_index(geo.districts["code"].astype(str))
    out, discs = {}, []
    for c in codes:
        if c in polys:
            out[c] = dm.DistrictShape(polys[c])
        else:
            row = table.loc[c]
            out[c] = dm.disc_shape(float(row["lon"]), float(row["lat"]), float(row["area_km2"]))
            discs.append(c)
    return out, discs


def demand_for_results(results: Any, year: int, facility: FacilityType, codes: list[str],
                       settings: SitingSettings, seed: int, geo: Geography,
                       shapes: dict[str, dm.DistrictShape]) -> pd.DataFrame:
    """Weighted demand points for ``year``: disaggregated persons × the facility's age-band demand."""
    years = [int(y) for y in np.asarray(results.years)]
    if int(year) not in years:
        raise InputError("results", "year", year, f"not a simulated year ({years[0]}–{years[-1]})")
    pop = results.population_by_district().loc[int(year)]
    pop.index = pop.index.astype(str)
    urban = results.urban_share(int(year))
    urban.index = urban.index.astype(str)
    pts = dm.sample_points(pop.reindex(codes).fillna(0.0), urban, settings, seed, geo.districts, shapes)
    need = dm.district_demand(results, int(year), facility).reindex(codes).fillna(0.0)
    pts["weight"] = pts["share"].to_numpy() * need.reindex(pts["district"]).to_numpy()
    return pts


def _inputs(settings: SitingSettings, existing: str | Path | None, candidates: str | Path | None,
            travel_times: str | Path | None) -> tuple[Path | None, Path | None, Path | None]:
    """Arguments win over the settings keys ``existing_csv``, ``candidates_csv``, ``travel_times``."""
    def pick(arg: str | Path | None, key: str) -> Path | None:
        v = arg if arg is not None else getattr(settings, key)
        if v is None:
            return None
        if not Path(v).exists():
            raise InputError(str(v), key, str(v), "file not found")
        return Path(v)

    return (pick(existing, "existing_csv"), pick(candidates, "candidates_csv"), pick(travel_times, "travel_times"))


def plan_for_results(results: Any, year: int, facility: str, *, geography: Geography | None = None,
                     districts: str | list[str] | None = None, budget: int | None = None,
                     config: SitingSettings | dict[str, Any] | None = None, seed: int = 0,
                     out_dir: str | Path | None = None, existing: str | Path | None = None,
                     candidates: str | Path | None = None, travel_times: str | Path | None = None,
                     progress: bool = False) -> SitingPlan:
    """Plan ``facility`` sites for a model run's ``year`` on the run's own geography.

    ``geography`` defaults to the one rebuilt from the config stored in ``results``; ``districts``
    (regions and/or codes) to all of them (the CLI passes ``settings.districts``). Demand: persons per district disaggregated to
    points (see ``demand``), weighted by the age band. Existing provision, candidates and travel times
    come from files when given (arguments or settings keys), else they are ASSUMED: base-year
    provision at KMeans centres, candidates from the demand, straight-line reach.
    """
    t0 = time.perf_counter()
    settings = _settings(config)
    ft = settings.facility(facility)
    ex_path, ca_path, tt_path = _inputs(settings, existing, candidates, travel_times)
    geo = geography if geography is not None else run_geography(results)
    selector = districts
    codes = dm.select_districts(np.asarray(results.codes).astype(str), selector, geo.districts)
    if not codes:
        raise InputError("--districts", "districts", selector, "selects no district")
    missing = sorted(set(codes) - set(geo.districts["code"].astype(str)))
    if missing:
        raise InputError("results", "district", missing[0], f"not in the run's district table ({geo.source})")
    years = [int(y) for y in np.asarray(results.years)]
    base = settings.base_year if settings.base_year is not None else years[0]
    if base not in years:
        raise InputError("siting", "base_year", base, f"not a simulated year ({years[0]}–{years[-1]})")
    from tqdm.auto import tqdm

    bar = tqdm(total=5, desc=f"siting {ft.name} {year}", unit="stage", disable=not progress, leave=False)

    def stage(name: str) -> None:
        bar.set_postfix_str(name)
        bar.update()

    shp, discs = district_shapes(geo, codes)
    log.info("siting %s %d: demand for %d district(s) of %s", ft.name, year, len(codes), geo.source)
    dem_t = demand_for_results(results, year, ft, codes, settings, seed, geo, shp)
    stage("existing provision")
    if ex_path is not None:
        existing_df = io.read_existing_csv(ex_path, ft.name)
    else:
        dem_b = demand_for_results(results, base, ft, codes, settings, seed, geo, shp)
        existing_df = dm.default_existing(dem_b, ft, seed)
    stage("candidates")
    cands = io.read_candidates_csv(ca_path) if ca_path is not None else dm.generate_candidates(dem_t, settings, seed)
    tt = io.read_travel_times(tt_path) if tt_path is not None else None
    log.info("siting %s %d: %d demand points, %d candidates, %d existing sites prepared in %.1f s", ft.name, year,
             len(dem_t), len(cands), len(existing_df), time.perf_counter() - t0)
    stage(f"solving (up to {settings.time_limit_s:g} s)")
    plan = plan_sites(dem_t.drop(columns=["share"]), cands, existing_df, ft, budget=budget, settings=settings,
                      travel_times=tt)
    stage("writing")
    plan.year = int(year)
    plan.assumed["demand"] = True
    plan.assumed["candidates"] = ca_path is None
    plan.boundaries = {c: geo.boundaries[c] for c in codes if geo.boundaries and c in geo.boundaries} or None
    plan.district_names = _names(geo, codes)
    if ex_path is None:
        plan.notes.append(f"existing provision is ASSUMED: base year {base}, capacity = {ft.provision.value:g} × "
                          f"base-year demand per district, sites at KMeans centres ({ft.provision.citation})")
    else:
        plan.notes.append(f"existing provision from {ex_path} ({len(existing_df)} {ft.name} site(s))")
    if ft.beds_per_1000 is not None:
        plan.notes.append(f"hospital capacity rests on {ft.beds_per_1000.value:g} beds per 1 000 residents "
                          f"(verified: {ft.beds_per_1000.citation})")
    plan.notes.append(f"demand points ASSUMED: {len(dem_t)} ({settings.urban_kernel} urban kernel around district "
                      f"seats, rural uniform in district polygons), seed {seed}, districts of {geo.source}")
    if discs:
        plan.notes.append(f"no boundary for {len(discs)} district(s) ({', '.join(discs[:5])}"
                          f"{', …' if len(discs) > 5 else ''}): drawn as a disc of the district's area (assumed)")
    if out_dir is not None:
        write_plan(plan, out_dir)
    stage("done")
    bar.close()
    return plan


def _names(geo: Geography, codes: list[str]) -> dict[str, str]:
    t = geo.districts.set_index(geo.districts["code"].astype(str))
    col = "name_en" if "name_en" in t else ("name_zh" if "name_zh" in t else None)
    return {c: str(t.at[c, col]) for c in codes if col and c in t.index}


def plan_from_csv(demand_csv: str | Path, facility: str, *, candidates_csv: str | Path | None = None,
                  existing_csv: str | Path | None = None, budget: int | None = None,
                  config: SitingSettings | dict[str, Any] | None = None, seed: int = 0,
                  out_dir: str | Path | None = None, boundaries: str | Path | None = None,
                  travel_times: str | Path | None = None) -> SitingPlan:
    """Plan from a planner's own files (demand required; candidates generated and no existing if absent).

    Points without a ``district`` column are located in the packaged (or given) district boundaries,
    which also sets their per-district circuity.
    """
    settings = _settings(config)
    ft = settings.facility(facility)
    ex_path, ca_path, tt_path = _inputs(settings, existing_csv, candidates_csv, travel_times)
    dem = io.read_demand_csv(demand_csv)
    bounds = read_boundaries(boundaries) if boundaries is not None else read_boundaries()
    if "district" not in dem or (dem["district"] == "").all():
        dem["district"] = dm.locate_districts(dem[["lon", "lat"]].to_numpy(float), dm.shapes(bounds))
    cands = io.read_candidates_csv(ca_path) if ca_path is not None else dm.generate_candidates(dem, settings, seed)
    existing = io.read_existing_csv(ex_path, ft.name) if ex_path is not None else None
    tt = io.read_travel_times(tt_path) if tt_path is not None else None
    plan = plan_sites(dem, cands, existing, ft, budget=budget, settings=settings, travel_times=tt)
    plan.assumed["candidates"] = ca_path is None
    used = set(dem["district"]) | set(plan.sites.get("district", pd.Series(dtype=str)))
    plan.boundaries = {c: b for c, b in bounds.items() if c in used}
    if existing is None:
        plan.notes.append("no existing facilities given: coverage before is 0")
    if out_dir is not None:
        write_plan(plan, out_dir)
    return plan
