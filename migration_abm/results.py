"""Results of one simulation run: labelled per-year arrays, pandas views, HDF5 round-trip.

Year axis: the first row is the initial (base-year) state; row t holds the state at the end of year t
and the flows that happened during year t. Every count is in persons (``households`` in households,
``jobs`` in jobs); :data:`UNITS` labels each series and is written beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from migration_abm.errors import InputError
from migration_abm.geography import REGIONS
from migration_abm.population import AGE_MAX
from migration_abm.storage import read_run_file, write_run_file

#: Age bands used for the district × hukou status × age band table.
AGE_BANDS: tuple[tuple[str, int, int], ...] = (
    ("0-5", 0, 5), ("6-11", 6, 11), ("12-14", 12, 14), ("15-17", 15, 17), ("18-34", 18, 34),
    ("35-59", 35, 59), ("60-64", 60, 64), ("65+", 65, AGE_MAX))
#: Hukou status of a resident relative to the district of residence.
HUKOU_STATUS: tuple[str, ...] = ("local_nonagricultural", "local_agricultural", "migrant_from_chongqing",
                                 "migrant_from_outside")
#: Per-year × district series every run records.
DISTRICT_SERIES: tuple[str, ...] = (
    "population", "households", "urban_population", "births", "deaths", "in_migrants", "out_migrants",
    "external_in", "external_out", "hukou_conversions", "employed", "jobs", "unemployed",
    "children_primary", "children_lower_secondary", "elderly", "housing_capacity", "service_capacity")

#: Unit of every recorded array (written as the ``units`` attribute of each variable).
UNITS: dict[str, str] = {**{k: "persons" for k in DISTRICT_SERIES}, "households": "households", "jobs": "jobs",
                         "flows": "persons", "population_age": "persons", "population_status_band": "persons"}
#: Axes of the arrays besides the (year, district) series.
OTHER_DIMS: dict[str, tuple[str, ...]] = {
    "flows": ("year", "origin", "destination"), "population_age": ("year", "district", "age"),
    "population_status_band": ("year", "district", "hukou_status", "age_band")}


@dataclass
class Results:
    """Everything a run recorded, with the resolved config and seed that produced it."""

    years: np.ndarray
    codes: np.ndarray
    regions: np.ndarray
    arrays: dict[str, np.ndarray]
    dims: dict[str, tuple[str, ...]]
    config_toml: str = ""
    seed: str = ""
    attrs: dict[str, Any] = field(default_factory=dict)
    names: np.ndarray | None = None

    # ---- pandas views -------------------------------------------------------------------------
    def series(self, name: str) -> pd.DataFrame:
        """A [year, district] array as a DataFrame (index year, columns district codes)."""
        if self.dims.get(name) != ("year", "district"):
            raise KeyError(f"{name!r} is not a year × district series; have {sorted(self.arrays)}")
        return pd.DataFrame(self.arrays[name], index=pd.Index(self.years, name="year"),
                            columns=pd.Index(self.codes, name="district"))

    def by_region(self, name: str) -> pd.DataFrame:
        """A [year, district] series summed to functional regions (columns in REGIONS order)."""
        df = self.series(name)
        out = df.T.groupby(self.regions).sum().T
        return out.reindex(columns=list(REGIONS), fill_value=0.0).rename_axis(columns="region")

    def population_by_region(self) -> pd.DataFrame:
        """Persons by functional region and year."""
        return self.by_region("population")

    def population_by_district(self) -> pd.DataFrame:
        """Persons by district (6-digit code strings as columns) and year."""
        return self.series("population")

    def _year_index(self, year: int) -> int:
        hits = np.flatnonzero(self.years == year)
        if not len(hits):
            raise KeyError(f"year {year} not in results ({self.years[0]}–{self.years[-1]})")
        return int(hits[0])

    def flows(self, year: int) -> pd.DataFrame:
        """Origin (rows) → destination (columns) persons moving between districts during ``year``."""
        t = self._year_index(year)
        return pd.DataFrame(self.arrays["flows"][t], index=pd.Index(self.codes, name="origin"),
                            columns=pd.Index(self.codes, name="destination"))

    def age_structure(self, year: int) -> pd.DataFrame:
        """Persons by district (index) and single year of age 0..100 (columns) at the end of ``year``."""
        t = self._year_index(year)
        return pd.DataFrame(self.arrays["population_age"][t], index=pd.Index(self.codes, name="district"),
                            columns=pd.Index(np.arange(AGE_MAX + 1), name="age"))

    def hukou_table(self, year: int) -> pd.DataFrame:
        """Persons by district × hukou status × age band at the end of ``year`` (long format)."""
        t = self._year_index(year)
        arr = self.arrays["population_status_band"][t]
        idx = pd.MultiIndex.from_product([self.codes, HUKOU_STATUS, [b[0] for b in AGE_BANDS]],
                                         names=["district", "hukou_status", "age_band"])
        return pd.Series(arr.reshape(-1), index=idx, name="persons").to_frame()

    def urban_share(self, year: int) -> pd.Series:
        """Share of each district's residents living in its urban area."""
        t = self._year_index(year)
        pop = self.arrays["population"][t]
        with np.errstate(invalid="ignore", divide="ignore"):
            return pd.Series(self.arrays["urban_population"][t] / pop, index=pd.Index(self.codes, name="district"))

    def summary(self) -> pd.DataFrame:
        """Key city-wide figures per year (population, urbanisation, flows, conversions)."""
        s = {k: self.series(k).sum(axis=1) for k in ("population", "urban_population", "births", "deaths",
                                                     "external_in", "external_out", "hukou_conversions")}
        df = pd.DataFrame(s)
        df["urbanisation"] = df["urban_population"] / df["population"]
        df["internal_moves"] = self.arrays["flows"].sum(axis=(1, 2))
        return df

    def district_names(self) -> np.ndarray:
        """English district names beside :attr:`codes` (from the file, else from the config's table)."""
        if self.names is None:
            import tomllib

            from migration_abm.geography import load_districts

            regions = tomllib.loads(self.config_toml).get("data", {}).get("regions", "chongqing") \
                if self.config_toml else "chongqing"
            table = load_districts(None if regions == "chongqing" else regions).set_index("code")
            self.names = table["name_en"].reindex(self.codes).fillna("").to_numpy(str)
        return self.names

    # ---- storage and interoperability ------------------------------------------------------------
    def _coords(self) -> dict[str, np.ndarray]:
        return {"year": self.years, "district": self.codes, "origin": self.codes, "destination": self.codes,
                "age": np.arange(AGE_MAX + 1), "hukou_status": np.array(HUKOU_STATUS),
                "age_band": np.array([b[0] for b in AGE_BANDS])}

    def to_hdf5(self, path: str | Path) -> Path:
        """Write atomically to ``path``: netCDF4-compatible HDF5 (see docs/STORAGE.md for the layout)."""
        coords = {k: v for k, v in self._coords().items() if any(k in d for d in self.dims.values())}
        coords["year"], coords["district"] = self.years, self.codes
        aux = {"district_name": ("district", self.district_names()), "region": ("district", self.regions)}
        attrs = {**self.attrs, "config_toml": self.config_toml, "seed": self.seed}
        write_run_file(path, attrs=attrs, arrays=self.arrays, coords=coords, dims=self.dims, aux_coords=aux,
                       units={k: UNITS.get(k, "persons") for k in self.arrays})
        return Path(path)

    def to_xarray(self) -> Any:
        """An ``xarray.Dataset`` of every array with named dimensions, coordinates and units."""
        import xarray as xr

        coords: dict[str, Any] = dict(self._coords())
        coords["district_name"] = ("district", self.district_names())
        coords["region"] = ("district", self.regions)
        data = {k: (self.dims[k], v, {"units": UNITS.get(k, "persons")}) for k, v in self.arrays.items()}
        used = {d for dims in self.dims.values() for d in dims} | {"year", "district"}
        coords = {k: v for k, v in coords.items() if k in used or k in ("district_name", "region")}
        return xr.Dataset(data, coords=coords, attrs={"seed": self.seed, "config_toml": self.config_toml})

    @classmethod
    def from_hdf5(cls, path: str | Path) -> Results:
        """Read a run file written by :meth:`to_hdf5` (layout 1 or 2); InputError if it is incomplete."""
        attrs, arrays, coords, dims = read_run_file(path)
        for name in ("year", "district", "region"):
            if name not in coords:
                raise InputError(str(path), name, None, "coordinate missing: not a complete run file")
        shape = (len(coords["year"]), len(coords["district"]))
        for name in DISTRICT_SERIES:
            if name not in arrays:
                raise InputError(str(path), name, None, "series missing: the file is incomplete or damaged")
            if arrays[name].shape != shape or dims[name] != ("year", "district"):
                raise InputError(str(path), name, arrays[name].shape, f"expected a year × district array {shape}")
        for name, axes in OTHER_DIMS.items():
            if name in arrays and (dims[name] != axes or arrays[name].shape[:2] != shape[:1] + shape[1:2]):
                raise InputError(str(path), name, arrays[name].shape, f"expected axes {', '.join(axes)}")
        config_toml = str(attrs.pop("config_toml", ""))
        seed = str(attrs.pop("seed", ""))
        names = coords.get("district_name")
        return cls(years=coords["year"], codes=coords["district"], regions=coords["region"], arrays=arrays,
                   dims=dims, config_toml=config_toml, seed=seed, attrs=attrs, names=names)
