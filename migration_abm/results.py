"""Results of one simulation run: labelled per-year arrays, pandas views, HDF5 round-trip.

Year axis: the first row is the initial (base-year) state; row t holds the state at the end of year t
and the flows that happened during year t. Every count is in persons.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

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

    # ---- storage ------------------------------------------------------------------------------
    def to_hdf5(self, path: str | Path) -> Path:
        """Write atomically to ``path`` (see docs/STORAGE.md for the layout)."""
        coords = {"year": self.years, "district": self.codes, "region": self.regions,
                  "age": np.arange(AGE_MAX + 1), "hukou_status": np.array(HUKOU_STATUS),
                  "age_band": np.array([b[0] for b in AGE_BANDS])}
        attrs = {**self.attrs, "config_toml": self.config_toml, "seed": self.seed}
        write_run_file(path, attrs=attrs, arrays=self.arrays, coords=coords, dims=self.dims)
        return Path(path)

    @classmethod
    def from_hdf5(cls, path: str | Path) -> Results:
        """Read a run file written by :meth:`to_hdf5`."""
        attrs, arrays, coords, dims = read_run_file(path)
        config_toml = str(attrs.pop("config_toml", ""))
        seed = str(attrs.pop("seed", ""))
        return cls(years=coords["year"], codes=coords["district"], regions=coords["region"], arrays=arrays,
                   dims=dims, config_toml=config_toml, seed=seed, attrs=attrs)
