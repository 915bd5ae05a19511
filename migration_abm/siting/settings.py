"""Siting settings and the facility catalogue: travel assumptions, demand disaggregation, capacities.

Every number that is an assumption rather than a sourced standard carries ``verified=False`` and a
citation string saying where it comes from, so plans can label what rests on what.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from migration_abm.errors import InputError
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

    walk_speed_kmh: float = 4.8            # TfL PTAL walking speed (80 m/min)
    circuity: float = 1.2                  # network / straight-line distance, flat cities (Newell 1980; Boeing)
    district_circuity: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_DISTRICT_CIRCUITY))
    points_total: int = 20000              # demand points over all selected districts
    points_min_per_district: int = 30
    urban_kernel: str = "gaussian"         # "gaussian" or "exponential" around the district seat
    urban_density_per_km2: float = 10000.0  # sets the kernel scale: urban area = urban persons / density
    urban_scale_km: float | None = None    # override the kernel scale (km)
    default_urban_share: float = 0.6       # when the model gives NaN
    candidates: str = "kmeans"             # "kmeans" or "grid"
    n_candidates: int = 1500
    grid_km: float = 1.0
    model: str = "capacitated_mclp"        # a name in registry.MODELS
    budget: int = 20                       # new facilities when none is given
    time_limit_s: float = 60.0
    mip_gap: float = 0.005
    elderly_weight: float = 1.0            # hospitals: weight of residents aged 65+
    base_year: int | None = None           # default: first year of the results
    facilities: dict[str, dict[str, Any]] = field(default_factory=dict)  # per-type overrides
    districts: str = "expansion,new_development"  # functional regions and/or codes planned by default
    existing_csv: str | None = None        # existing facilities (id, lon, lat, capacity, kind); else assumed
    candidates_csv: str | None = None      # candidate sites (id, lon, lat[, capacity]); else generated
    travel_times: str | None = None        # demand × site minutes (CSV/Parquet); replaces the radius

    _RANGES = {"walk_speed_kmh": (0.5, 20.0), "circuity": (1.0, 3.0), "points_total": (10, 2_000_000),
               "points_min_per_district": (1, 100_000), "urban_density_per_km2": (10.0, 1e6),
               "urban_scale_km": (0.01, 100.0), "default_urban_share": (0.0, 1.0), "n_candidates": (1, 1_000_000),
               "grid_km": (0.01, 100.0), "budget": (0, 1_000_000), "time_limit_s": (0.1, 86400.0),
               "mip_gap": (0.0, 1.0), "elderly_weight": (0.0, 100.0), "base_year": (1900, 2200)}
    _CHOICES = {"urban_kernel": ("gaussian", "exponential"), "candidates": ("kmeans", "grid"),
                "model": registry.names()}
    _PATHS = ("existing_csv", "candidates_csv", "travel_times")
    _FAC_KEYS = {"minutes": (0.5, 240.0), "capacity": (1e-9, 1e9), "provision": (0.0, 100.0)}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None, source: str = "config [siting]") -> SitingSettings:
        """Build settings from a plain dict, rejecting unknown keys and out-of-range values."""
        out = cls()
        known = {f.name for f in dataclasses.fields(cls) if not f.name.startswith("_")}
        for key, value in (d or {}).items():
            if key not in known:
                raise InputError(source, key, value, f"unknown siting setting; known: {', '.join(sorted(known))}")
            if key == "district_circuity":
                if not isinstance(value, dict):
                    raise InputError(source, key, value, "must be a table of district code -> circuity")
                for code, v in value.items():
                    if not _num(v) or not 1.0 <= float(v) <= 3.0:
                        raise InputError(source, f"district_circuity.{code}", v, "must be a number in [1, 3]")
                out.district_circuity = {**out.district_circuity, **{str(k): float(v) for k, v in value.items()}}
            elif key == "facilities":
                if not isinstance(value, dict):
                    raise InputError(source, key, value, "must be a table of facility type -> settings")
                for name, sub in value.items():
                    if name not in CATALOGUE:
                        raise InputError(source, f"facilities.{name}", name, f"unknown facility; known: {', '.join(CATALOGUE)}")
                    if not isinstance(sub, dict):
                        raise InputError(source, f"facilities.{name}", sub, "must be a table")
                    for k2, v2 in sub.items():
                        if k2 not in cls._FAC_KEYS:
                            raise InputError(source, f"facilities.{name}.{k2}", v2,
                                             f"unknown key; known: {', '.join(cls._FAC_KEYS)}")
                        lo, hi = cls._FAC_KEYS[k2]
                        if not _num(v2) or not lo <= float(v2) <= hi:
                            raise InputError(source, f"facilities.{name}.{k2}", v2, f"must be a number in [{lo}, {hi}]")
                out.facilities = {k: dict(v) for k, v in value.items()}
            elif key in cls._PATHS or key == "districts":
                if not (isinstance(value, str) and value.strip()) and not (key in cls._PATHS and value is None):
                    raise InputError(source, key, value, "must be a non-empty string" + (
                        " (a file path)" if key in cls._PATHS else " (regions and/or district codes)"))
                setattr(out, key, value)
            elif key in cls._CHOICES:
                if value not in cls._CHOICES[key]:
                    raise InputError(source, key, value, f"must be one of {', '.join(cls._CHOICES[key])}")
                setattr(out, key, value)
            else:
                if key in ("urban_scale_km", "base_year") and value is None:
                    setattr(out, key, None)
                    continue
                lo, hi = cls._RANGES[key]
                if not _num(value) or not lo <= float(value) <= hi:
                    raise InputError(source, key, value, f"must be a number in [{lo}, {hi}]")
                default = getattr(cls(), key)
                is_int = isinstance(default, int) or key in ("base_year",)
                if is_int and float(value) != int(value):
                    raise InputError(source, key, value, "must be an integer")
                setattr(out, key, int(value) if is_int else float(value))
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


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v))
