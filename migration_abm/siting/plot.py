"""Map of a siting plan (matplotlib, Agg backend): boundaries, demand, existing and new facilities."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np


def plot_plan(plan: Any, path: str | Path, max_demand_points: int = 30000) -> Path:
    """Write a PNG map: grey district outlines, demand points (served blue / unserved red, size ~ weight),
    existing facilities (black squares), new facilities (orange stars with their service radius)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection
    from matplotlib.patches import Ellipse

    fig, ax = plt.subplots(figsize=(9, 9), dpi=120)
    if plan.boundaries:
        segs = [ring for polys in plan.boundaries.values() for poly in polys for ring in poly]
        ax.add_collection(LineCollection(segs, colors="0.55", linewidths=0.6, zorder=1))
    d = plan.demand
    if len(d) > max_demand_points:
        d = d.sample(max_demand_points, random_state=0)
    w = d["weight"].to_numpy(float)
    size = 1.0 + 12.0 * np.sqrt(w / w.max()) if len(w) and w.max() > 0 else np.full(len(w), 2.0)
    served = d["covered_after"].to_numpy(bool)
    ax.scatter(d["lon"][served], d["lat"][served], s=size[served], c="tab:blue", alpha=0.35, lw=0,
               label="demand, served", zorder=2)
    ax.scatter(d["lon"][~served], d["lat"][~served], s=size[~served], c="tab:red", alpha=0.35, lw=0,
               label="demand, unserved", zorder=2)
    ex = plan.sites[plan.sites["status"] == "existing"]
    new = plan.sites[plan.sites["status"] == "new"]
    ax.scatter(ex["lon"], ex["lat"], marker="s", s=10, c="black", label=f"existing ({len(ex)})", zorder=3)
    ax.scatter(new["lon"], new["lat"], marker="*", s=90, c="tab:orange", edgecolors="black", linewidths=0.4,
               label=f"new ({len(new)})", zorder=4)
    if len(new) <= 500 and "radius_km_median" in new:
        for lon, lat, r in zip(new["lon"], new["lat"], new["radius_km_median"], strict=False):
            if np.isfinite(r):
                ky, kx = 111.195, 111.195 * math.cos(math.radians(lat))
                ax.add_patch(Ellipse((lon, lat), 2 * r / kx, 2 * r / ky, fill=False, ec="tab:orange", lw=0.6,
                                     zorder=3))
    ax.set_aspect(1.0 / max(math.cos(math.radians(float(plan.demand["lat"].mean() if len(plan.demand) else 0))),
                            1e-3))
    ax.autoscale_view()
    yr = f" {plan.year}" if plan.year is not None else ""
    ax.set_title(f"{plan.facility}{yr}: served {100 * plan.coverage_before['weighted']:.1f}% → "
                 f"{100 * plan.coverage_after['weighted']:.1f}% of demand, {len(new)} new site(s)", fontsize=10)
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.legend(loc="best", fontsize=8, markerscale=1.5)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
