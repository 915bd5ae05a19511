"""Map of a siting plan for a planner: district outlines and names, served/unserved demand, existing and
new sites sized by load, a scale bar, and an inset on the busiest new site where the service circles show."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from migration_abm.reporting import save_figure
from migration_abm.siting.outputs import SitingPlan

KM_PER_DEG = 111.195


def _scale_bar(ax: object, lon0: float, lat0: float, span_deg: float, lat: float) -> None:
    """A round-number km bar of about a fifth of the map width at the lower left."""
    kx = KM_PER_DEG * math.cos(math.radians(lat))
    km = span_deg * kx / 5
    nice = max(v for v in (0.5, 1, 2, 5, 10, 20, 50, 100) if v <= max(km, 0.5))
    ax.plot([lon0, lon0 + nice / kx], [lat0, lat0], color="black", lw=3, solid_capstyle="butt", zorder=6)
    ax.text(lon0 + nice / kx / 2, lat0, f"{nice:g} km", ha="center", va="bottom", fontsize=8, zorder=6)


def _draw(ax: object, plan: SitingPlan, d: object, size: np.ndarray, served: np.ndarray, circles: bool) -> None:
    from matplotlib.collections import LineCollection
    from matplotlib.patches import Ellipse

    if plan.boundaries:
        segs = [ring for polys in plan.boundaries.values() for poly in polys for ring in poly]
        ax.add_collection(LineCollection(segs, colors="0.45", linewidths=0.7, zorder=1))
    ax.scatter(d["lon"][~served], d["lat"][~served], s=size[~served], c="#d6604d", alpha=0.5, lw=0,
               label="demand not served", zorder=2)
    ax.scatter(d["lon"][served], d["lat"][served], s=size[served], c="#2166ac", alpha=0.8, lw=0,
               label=f"demand served ({100 * plan.coverage_after['weighted']:.1f} % of persons)", zorder=2.5)
    sites = plan.sites
    load = sites["load"].to_numpy(float) if "load" in sites else np.zeros(len(sites))
    cap = max(float(np.nanmax(sites["capacity"])) if len(sites) else 1.0, 1e-9)
    s_size = 8 + 70 * np.sqrt(np.clip(load / cap, 0, None))
    ex, new = (sites["status"] == "existing").to_numpy(), (sites["status"] == "new").to_numpy()
    lab_ex = "existing (assumed)" if plan.assumed.get("provision") else "existing"
    ax.scatter(sites["lon"][ex], sites["lat"][ex], marker="s", s=s_size[ex], facecolors="none", edgecolors="0.1",
               linewidths=0.9, label=f"{lab_ex} ({int(ex.sum())}), size ~ load", zorder=4)
    ax.scatter(sites["lon"][new], sites["lat"][new], marker="*", s=1.6 * s_size[new], c="#fdb863",
               edgecolors="black", linewidths=0.6, label=f"new ({int(new.sum())}), size ~ load", zorder=5)
    if circles and "radius_km" in plan.settings:
        r = plan.settings["radius_km"]
        for lon, lat in zip(sites["lon"][new], sites["lat"][new], strict=True):
            ky, kx = KM_PER_DEG, KM_PER_DEG * math.cos(math.radians(lat))
            ax.add_patch(Ellipse((lon, lat), 2 * r / kx, 2 * r / ky, fill=False, ec="#b35806", lw=0.8, zorder=3))


def map_title(plan: SitingPlan) -> str:
    """Coverage before → after and the new sites; a second line names what was assumed."""
    yr = f" {plan.year}" if plan.year is not None else ""
    lab = plan.assumption_label()
    return (f"{plan.facility}{yr}: {100 * plan.coverage_before['weighted']:.1f} % → "
            f"{100 * plan.coverage_after['weighted']:.1f} % of demand served, {len(plan.new_sites)} new site(s)"
            + (f"\n({lab.upper()}; see summary.csv notes)" if lab else ""))


def plot_plan(plan: SitingPlan, path: str | Path, max_demand_points: int = 30000) -> Path:
    """Write the PNG map (Agg canvas, atomically). The title says "assumed" when an input was synthetic."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 9), dpi=120)  # no pyplot state: safe in a server thread, no backend switch
    ax = fig.subplots()
    d = plan.demand
    if len(d) > max_demand_points:
        d = d.sample(max_demand_points, random_state=0)
    w = d["weight"].to_numpy(float)
    size = 2.0 + 18.0 * np.sqrt(w / w.max()) if len(w) and w.max() > 0 else np.full(len(w), 3.0)
    served = d["covered_after"].to_numpy(bool)
    _draw(ax, plan, d, size, served, circles=False)
    lat_mid = float(plan.demand["lat"].mean()) if len(plan.demand) else 0.0
    ax.set_aspect(1.0 / max(math.cos(math.radians(lat_mid)), 1e-3))
    ax.autoscale_view()
    if plan.district_names and len(plan.demand):
        g = plan.demand.groupby("district")[["lon", "lat"]].median()
        for code, (lon, lat) in g.iterrows():
            name = plan.district_names.get(str(code))
            if name:
                ax.text(lon, lat, name, fontsize=9, ha="center", va="center", weight="bold", color="0.1",
                        zorder=7, bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.7})
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    _scale_bar(ax, x0 + 0.04 * (x1 - x0), y0 + 0.04 * (y1 - y0), x1 - x0, lat_mid)
    new = plan.new_sites
    if len(new) and "radius_km" in plan.settings:
        busiest = new.sort_values("load", ascending=False).iloc[0]
        r = plan.settings["radius_km"]
        half = 4 * r / KM_PER_DEG
        ins = ax.inset_axes([1.03, 0.4, 0.45, 0.6])
        hx = half / math.cos(math.radians(busiest["lat"]))
        near = ((d["lon"] - busiest["lon"]).abs() <= hx).to_numpy() & ((d["lat"] - busiest["lat"]).abs() <= half).to_numpy()
        _draw(ins, plan, d[near], size[near] * 2, served[near], circles=True)
        ins.set_xlim(busiest["lon"] - hx, busiest["lon"] + hx)
        ins.set_ylim(busiest["lat"] - half, busiest["lat"] + half)
        ins.set_aspect(1.0 / max(math.cos(math.radians(lat_mid)), 1e-3))
        ins.set_xticks([])
        ins.set_yticks([])
        ins.set_title(f"busiest new site, {r:.2f} km service circles", fontsize=7)
        ax.indicate_inset_zoom(ins, edgecolor="0.3")
    ax.set_title(map_title(plan), fontsize=10)
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.legend(loc="lower right", fontsize=8, markerscale=1.0, framealpha=0.9)
    fig.subplots_adjust(left=0.06, right=0.68, top=0.92, bottom=0.07)
    return save_figure(fig, path)
