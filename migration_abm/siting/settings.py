"""Siting settings and the facility catalogue: travel assumptions, demand disaggregation, capacities.

Every number that is an assumption rather than a sourced standard carries ``verified=False`` and a
citation string saying where it comes from, so plans can label what rests on what.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from migration_abm.errors import InputError
from migration_abm.schema import param
from migration_abm.siting import registry


@dataclass(frozen=True)
class Sourced:
    """A number with its citation and whether a primary source confirmed it."""

    value: float
    citation: str
    verified: bool


@dataclass(frozen=True)
class FacilityType:
    """One facility type: its service circle (minutes of walking), who it serves and its capacity.

    ``capacity`` is in persons of demand served per facility (seats, or residents for hospitals).
    ``ages`` is the inclusive age band whose persons form the demand (None = all residents);
    ``elderly_weight`` multiplies persons aged ``elderly_age`` and over (hospitals may weight them up).
    """

    name: str
    minutes: float
    circle: str
    capacity: Sourced
    ages: tuple[int, int] | None
    radius_standard: Sourced | None = None
    provision: Sourced = field(default_factory=lambda: Sourced(
        1.0, "assumption: base-year capacity equals base-year demand in each district", False))
    elderly_age: int = 65
    elderly_weight: float = 1.0
    beds_per_1000: Sourced | None = None


_GB93 = "GB 50180-93 (2002 rev.) public-service table, copy at https://jz.jzsc.net/jingguanshejishuoming/96531.html"
_BEDS = Sourced(6.0, "全国医疗卫生服务体系规划纲要（2015—2020年）: 6 beds per 1 000 residents by 2020", True)
_HOSP_BEDS = Sourced(350.0, "assumption: mid-point of GB 50180-93's '300–400-bed hospital per ~100 000 people' "
                     "(read from a secondary copy, unverified)", False)

#: Default catalogue. Only the hospital bed ratio (6 per 1 000) is a verified national figure.
CATALOGUE: dict[str, FacilityType] = {
    "primary_school": FacilityType(
        "primary_school", 10.0, "10-minute community life service circle (10分钟社区生活服务圈)",
        Sourced(1080.0, "assumption: 24 classes × 45 pupils (GB 50180-93 lists 12/18/24-class primary schools; "
                "class size unverified)", False),
        (6, 11), Sourced(500.0, _GB93 + ": primary school service radius <= 500 m", True)),
    "middle_school": FacilityType(
        "middle_school", 20.0, "20-minute street public service circle (20分钟街道公共服务圈)",
        Sourced(1500.0, "assumption: 30 classes × 50 pupils (GB 50180-93 lists 18/24/30-class secondary schools; "
                "class size unverified)", False),
        (12, 14), Sourced(1000.0, _GB93 + ": secondary school service radius <= 1 000 m", True)),
    "hospital": FacilityType(
        "hospital", 20.0, "20-minute street public service circle (20分钟街道公共服务圈)",
        Sourced(_HOSP_BEDS.value / _BEDS.value * 1000.0,
                "derived: 350 beds (assumption) / 6 beds per 1 000 residents (verified) = residents served", False),
        None, None, beds_per_1000=_BEDS),
    "clinic": FacilityType(
        "clinic", 10.0, "10-minute community life service circle (10分钟社区生活服务圈)",
        Sourced(15000.0, "assumption: one community clinic per 10-minute circle of 15 000–25 000 residents "
                "(GB 50180-2018 circle size; clinic assignment to this circle unconfirmed)", False),
        None),
}

#: Hilly districts with a higher default circuity: Yuzhong (渝中), ~1.37 from isochrone studies (SITING.md).
DEFAULT_DISTRICT_CIRCUITY: dict[str, float] = {"500103": 1.37}


@dataclass
class SitingSettings:
    """All tunable siting parameters with defaults; ``from_dict`` validates a config ``[siting]`` table."""

    walk_speed_kmh: float = param(4.8, 0.5, 20.0, "km/h walking speed (TfL PTAL: 80 m/min)")
    circuity: float = param(1.2, 1.0, 3.0, "network / straight-line distance, flat cities (Newell 1980; Boeing)")
    district_circuity: dict[str, float] = param(dict(DEFAULT_DISTRICT_CIRCUITY), 1.0, 3.0,
                                                "per-district circuity overrides (district code -> value)")
    points_total: int = param(20000, 10, 2_000_000, "demand points over all selected districts")
    points_min_per_district: int = param(30, 1, 100_000, "demand points at least per district")
    urban_kernel: str = param("gaussian", doc="urban demand around the district seat",
                              choices=("gaussian", "exponential"))
    urban_density_per_km2: float = param(10000.0, 10.0, 1e6, "sets the kernel scale: urban area = urban persons / density")
    urban_scale_km: float | None = param(None, 0.01, 100.0, "override the kernel scale (km)")
    default_urban_share: float = param(0.6, 0.0, 1.0, "urban share where the model gives none")
    candidates: str = param("kmeans", doc="generated candidate sites", choices=("kmeans", "grid"))
    n_candidates: int = param(1500, 1, 1_000_000, "generated candidates")
    grid_km: float = param(1.0, 0.01, 100.0, "grid spacing of grid candidates (km)")
    model: str = param("capacitated_mclp", doc="location model (siting registry)", choices=registry.names())
    budget: int = param(20, 0, 1_000_000, "new facilities when none is given")
    time_limit_s: float = param(60.0, 0.1, 86400.0, "solver time limit (s)")
    mip_gap: float = param(0.005, 0.0, 1.0, "relative MIP gap at which the solver stops")
    elderly_weight: float = param(1.0, 0.0, 100.0, "hospitals: weight of residents aged 65+")
    base_year: int | None = param(None, 1900, 2200, "year of the existing provision (default: first year of the results)")
    facilities: dict[str, dict[str, float]] = param({}, doc="per-facility-type overrides: minutes, capacity, provision")
    districts: str = param("expansion,new_development", doc="functional regions and/or codes planned by default")
    existing_csv: str | None = param(None, doc="existing facilities CSV (id, lon, lat, capacity, kind); else assumed")
    candidates_csv: str | None = param(None, doc="candidate sites CSV (id, lon, lat[, capacity]); else generated")
    travel_times: str | None = param(None, doc="demand x site minutes (CSV/Parquet); replaces the radius")

    _PATHS = ("existing_csv", "candidates_csv", "travel_times")
    _FAC_KEYS = {"minutes": (0.5, 240.0), "capacity": (1e-9, 1e9), "provision": (0.0, 100.0)}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None, source: str = "config [siting]") -> SitingSettings:
        """Build settings from a plain dict through the schema engine (types, ranges, choices, unknown
        keys with "did you mean"), then the rules the schema cannot state (facility names and keys)."""
        from migration_abm.schema import build, check_number, did_you_mean

        out = build(cls, dict(d or {}), {}, source)
        for name, sub in out.facilities.items():
            if name not in CATALOGUE:
                raise InputError(source, f"facilities.{name}", name,
                                 f"unknown facility; known: {', '.join(CATALOGUE)}" + did_you_mean(name, CATALOGUE))
            for k2, v2 in sub.items():
                if k2 not in cls._FAC_KEYS:
                    raise InputError(source, f"facilities.{name}.{k2}", v2,
                                     f"unknown key; known: {', '.join(cls._FAC_KEYS)}")
                lo, hi = cls._FAC_KEYS[k2]
                check_number(v2, {"min": lo, "max": hi}, source, f"facilities.{name}.{k2}")
        for key in (*cls._PATHS, "districts"):
            value = getattr(out, key)
            if value is not None and not value.strip():
                raise InputError(source, key, value, "must be a non-empty string" + (
                    " (a file path)" if key in cls._PATHS else " (regions and/or district codes)"))
        return out

    def facility(self, name: str) -> FacilityType:
        """The catalogue entry for ``name`` with any overrides from ``facilities`` applied."""
        if name not in CATALOGUE:
            raise InputError("siting", "facility", name, f"unknown facility; known: {', '.join(CATALOGUE)}")
        ft = CATALOGUE[name]
        over = self.facilities.get(name, {})
        if "minutes" in over:
            ft = dataclasses.replace(ft, minutes=float(over["minutes"]))
        if "capacity" in over:
            ft = dataclasses.replace(ft, capacity=Sourced(float(over["capacity"]), "user setting", False))
        if "provision" in over:
            ft = dataclasses.replace(ft, provision=Sourced(float(over["provision"]), "user setting", False))
        if name == "hospital":
            ft = dataclasses.replace(ft, elderly_weight=self.elderly_weight)
        return ft

    def radius_km(self, minutes: float, district: str | None = None) -> float:
        """Straight-line reach of a walk: speed × time / circuity (per-district circuity if set)."""
        circ = self.district_circuity.get(str(district), self.circuity) if district is not None else self.circuity
        return self.walk_speed_kmh * minutes / 60.0 / circ

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the settings (for provenance in outputs)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if not f.name.startswith("_")}
