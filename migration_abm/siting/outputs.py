"""A siting plan and its files: CSV tables, GeoJSON (sites and served catchments), all written atomically.

``SitingPlan.assumed`` says which inputs were synthetic (provision, demand, candidates, travel); every
output says "assumed" where they were.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from migration_abm.siting import io
from migration_abm.storage import atomic_path

#: files ``to_csv`` writes
TABLES = ("sites", "demand", "districts", "assignment", "summary")


@dataclass
class SitingPlan:
    """Chosen sites, assignment and coverage before/after (overall and per district) with solver stats.

    ``coverage_before``/``coverage_after`` are FRACTIONS in [0, 1]: ``points`` = share of demand points
    served, ``weighted`` = share of demand weight (persons) served. Per-district ``pct_*`` columns and the
    CSV ``*_pct`` fields are percentages. ``unmet_demand`` is the weight left unserved after the plan.
    ``bound_kind`` names the binding bound; ``assumed`` maps input -> True where it was synthetic.
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
    bound_kind: str = ""
    assumed: dict[str, bool] = field(default_factory=dict)
    district_names: dict[str, str] = field(default_factory=dict)

    @property
    def new_sites(self) -> pd.DataFrame:
        """Rows of ``sites`` that the plan opens."""
        return self.sites[self.sites["status"] == "new"]

    def assumption_label(self) -> str:
        """"" when every input was given, else e.g. "assumed provision, demand and travel"."""
        what = [k for k in ("provision", "demand", "travel") if self.assumed.get(k)]
        if not what:
            return ""
        return "assumed " + (what[0] if len(what) == 1 else ", ".join(what[:-1]) + " and " + what[-1])

    def summary(self) -> str:
        """A few human-readable lines: what was sited, coverage before → after, solver quality."""
        yr = f" {self.year}" if self.year is not None else ""
        lab = self.assumption_label()
        return (f"{self.facility}{yr}: {len(self.new_sites)} new site(s) [{self.model}], demand served "
                f"{100 * self.coverage_before['weighted']:.1f}% -> {100 * self.coverage_after['weighted']:.1f}% "
                f"(points {100 * self.coverage_before['points']:.1f}% -> {100 * self.coverage_after['points']:.1f}%)"
                f"{' on ' + lab if lab else ''}, unmet {self.unmet_demand:,.0f}; objective {self.objective:,.6g}, "
                f"bound {self.bound:,.6g} ({self.bound_kind or 'n/a'}), gap {100 * self.gap:.3f}% "
                f"({self.status}, {self.solve_time:.1f} s)")

    def summary_row(self) -> dict[str, Any]:
        """The one-row summary table (rounded for reading; assumptions spelled out)."""
        lab = self.assumption_label()
        return {"facility": self.facility, "model": self.model, "year": self.year, "budget": self.budget,
                "new_sites": len(self.new_sites), "points_before_pct": round(100 * self.coverage_before["points"], 2),
                "points_after_pct": round(100 * self.coverage_after["points"], 2),
                "weighted_before_pct": round(100 * self.coverage_before["weighted"], 2),
                "weighted_after_pct": round(100 * self.coverage_after["weighted"], 2),
                "unmet_demand": round(self.unmet_demand, 1), "objective": round(self.objective, 3),
                "bound": round(self.bound, 3), "bound_kind": self.bound_kind, "gap": round(self.gap, 6),
                "status": self.status, "solve_time_s": round(self.solve_time, 2),
                "provision": "assumed" if self.assumed.get("provision") else "given",
                "demand": "assumed" if self.assumed.get("demand") else "given",
                "travel": "assumed" if self.assumed.get("travel") else "given",
                "notes": " | ".join(([lab.upper()] if lab else []) + self.notes)}

    def to_csv(self, out_dir: str | Path) -> list[Path]:
        """Write sites.csv, demand.csv, districts.csv, assignment.csv and summary.csv into ``out_dir``."""
        out = Path(out_dir)
        frames = {"sites": self.sites, "demand": self.demand, "districts": self.districts,
                  "assignment": self.assignment, "summary": pd.DataFrame([self.summary_row()])}
        paths = []
        for name in TABLES:
            p = out / f"{name}.csv"
            with atomic_path(p) as tmp:
                frames[name].round(6).to_csv(tmp, index=False)
            paths.append(p)
        return paths

    def catchments(self) -> list[dict]:
        """One GeoJSON polygon feature per open site: the convex hull of the demand points it serves."""
        from scipy.spatial import ConvexHull, QhullError

        feats = []
        if self.assignment.empty:
            return feats
        ll = self.demand.set_index("id")[["lon", "lat"]]
        for sid, grp in self.assignment.groupby("site_id", sort=False):
            pts = ll.loc[grp["demand_id"]].to_numpy(float)
            props = {"site_id": str(sid), "layer": "catchment", "status": "catchment", "points": int(len(pts)),
                     "served": round(float(grp["amount"].sum()), 3)}
            if len(np.unique(pts, axis=0)) >= 3:
                try:
                    hull = pts[ConvexHull(pts).vertices]
                except QhullError:  # collinear points
                    hull = None
                if hull is not None:
                    ring = np.vstack([hull, hull[:1]]).round(6).tolist()
                    feats.append({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
                                  "properties": props})
                    continue
            feats.append({"type": "Feature", "geometry": {"type": "MultiPoint", "coordinates": pts.round(6).tolist()},
                          "properties": props})
        return feats

    def to_geojson(self, path: str | Path, include_demand: bool = False) -> Path:
        """Sites (existing + new) and their served catchments as GeoJSON; demand points too if asked."""
        df = self.sites.assign(layer="site")
        if include_demand:
            df = pd.concat([df, self.demand.assign(layer="demand")], ignore_index=True)
        io.write_geojson(io.point_features(df) + self.catchments(), path)
        return Path(path)
