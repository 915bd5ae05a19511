"""Dated observations for fitting and validation, with the ``fit_until`` rule.

Every observation carries the year it describes: district census populations (``pop_YYYY`` columns of
the district table), regional (一区两群 zone) and city totals, urbanisation, age shares, … from
``observed_chongqing.csv``. Fitting code (baselines, calibration) reads data only through an
:class:`Observations` object; :meth:`Observations.until` drops every observation after a year, and the
geography it hands out carries no population column, so nothing after the cut-off can leak into a fit.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from migration_abm.errors import InputError
from migration_abm.geography import ZONES, Geography, census_years, data_path, file_stamp

DISTRICT = "district_population"
COLUMNS = ("kind", "year", "area", "value", "imputed", "source")
#: Columns of the district table that hold dated observations (stripped from the structural geography).
_DATED_PREFIXES = ("pop_", "urban_", "rural_")


def observed_path(path: str | Path | None = None) -> Path:
    """The observed-totals table: ``path``, else the packaged ``observed_chongqing.csv``."""
    return Path(path) if path is not None else data_path("observed_chongqing.csv")


def load_observed(path: str | Path | None = None) -> pd.DataFrame:
    """The long table of non-district observations (kind, year, area, value, unit, use, source), parsed
    once per file version (:func:`~migration_abm.geography.file_stamp`); each call gets its own copy."""
    path = observed_path(path)
    return _read_observed(str(path), file_stamp(path)).copy()


@functools.lru_cache(maxsize=8)
def _read_observed(src: str, stamp: tuple[str, bytes]) -> pd.DataFrame:
    path = Path(src)
    try:
        table = pd.read_csv(path)
    except FileNotFoundError:
        raise InputError(str(path), "file", str(path), "file not found") from None
    missing = [c for c in ("kind", "year", "area", "value") if c not in table.columns]
    if missing:
        raise InputError(str(path), "columns", missing, "required column(s) missing")
    bad = pd.to_numeric(table["year"], errors="coerce").isna()
    if bad.any():
        raise InputError(str(path), f"row {int(np.flatnonzero(bad)[0]) + 2}, column year",
                         table["year"][bad].iloc[0], "not a year")
    table["year"] = table["year"].astype(int)
    return table


def structure_only(geo: Geography) -> Geography:
    """A copy of ``geo`` without any dated column (census populations, urban/rural counts)."""
    cols = [c for c in geo.districts.columns if not str(c).startswith(_DATED_PREFIXES)]
    return Geography(geo.districts[cols].copy(), geo.boundaries, geo.circuity, geo.source)


@dataclass(frozen=True)
class Observations:
    """Dated observations of one study area; ``cutoff`` is the last year a fit may read (None = all)."""

    geography: Geography
    table: pd.DataFrame
    cutoff: int | None = None

    @classmethod
    def load(cls, geo: Geography | None = None, observed: str | Path | pd.DataFrame | None = None) -> Observations:
        """District censuses of ``geo`` (packaged Chongqing by default) plus the observed-totals table."""
        geo = geo if geo is not None else Geography.load()
        rows = []
        for y in census_years(geo.districts):
            flag = geo.districts.get(f"pop_{y}_imputed", pd.Series(False, index=geo.districts.index))
            rows.append(pd.DataFrame({"kind": DISTRICT, "year": y, "area": geo.codes,
                                      "value": geo.districts[f"pop_{y}"].to_numpy(float),
                                      "imputed": flag.astype(bool).to_numpy(),
                                      "source": f"{geo.source} district table, pop_{y}"}))
        other = observed if isinstance(observed, pd.DataFrame) else load_observed(observed)
        other = other.assign(imputed=False, area=other["area"].astype(str))
        rows.append(other[[c for c in COLUMNS if c in other.columns]])
        table = pd.concat(rows, ignore_index=True)
        table = table[table["value"].notna()].reset_index(drop=True)
        return cls(structure_only(geo), table)

    # ---- cutting ---------------------------------------------------------------------------------
    def until(self, year: int) -> Observations:
        """Only the observations of ``year`` or earlier: the one gate every fit goes through."""
        cut = int(year) if self.cutoff is None else min(int(year), self.cutoff)
        return replace(self, table=self.table[self.table["year"] <= cut].reset_index(drop=True), cutoff=cut)

    def select(self, kind: str, years: list[int] | tuple[int, ...] | None = None) -> Observations:
        """Only observations of one kind (optionally of some years)."""
        keep = self.table["kind"] == kind
        if years is not None:
            keep &= self.table["year"].isin(list(years))
        return replace(self, table=self.table[keep].reset_index(drop=True))

    def exclude(self, kind: str, years: list[int] | tuple[int, ...]) -> Observations:
        """Drop observations of one kind in some years (e.g. the census a backcast predicts)."""
        drop = (self.table["kind"] == kind) & self.table["year"].isin(list(years))
        return replace(self, table=self.table[~drop].reset_index(drop=True))

    def __or__(self, other: Observations) -> Observations:
        """Union of two sets of observations of the same area (e.g. data ≤ 2013 plus given 2022 totals)."""
        table = pd.concat([self.table, other.table], ignore_index=True).drop_duplicates(
            subset=["kind", "year", "area"], keep="first").reset_index(drop=True)
        cuts = [c for c in (self.cutoff, other.cutoff) if c is not None]
        cutoff = max(cuts) if len(cuts) == 2 else None
        return replace(self, table=table, cutoff=cutoff)

    # ---- reading ---------------------------------------------------------------------------------
    @property
    def last_year(self) -> int:
        """The latest year of any observation held."""
        return int(self.table["year"].max())

    def years(self, kind: str) -> list[int]:
        """Years with at least one observation of ``kind``."""
        return sorted(int(y) for y in self.table.loc[self.table["kind"] == kind, "year"].unique())

    def census_years(self) -> list[int]:
        """Years with a district census."""
        return self.years(DISTRICT)

    def _rows(self, kind: str, year: int) -> pd.DataFrame:
        rows = self.table[(self.table["kind"] == kind) & (self.table["year"] == year)]
        if rows.empty:
            upto = "" if self.cutoff is None else f" up to {self.cutoff}"
            raise InputError("observations", kind, year, f"no observation of that year{upto}; have {self.years(kind)}")
        return rows

    def value(self, kind: str, year: int, area: str = "city") -> float:
        """One observed value."""
        rows = self._rows(kind, year)
        rows = rows[rows["area"] == area]
        if rows.empty:
            raise InputError("observations", f"{kind} {year}", area, "no observation for that area")
        return float(rows["value"].iloc[0])

    def city_urbanisation(self, year: int) -> float:
        """City-wide urban share at ``year``: the observation of that year, else the straight line through
        the two latest earlier ones (later observations are never read)."""
        years = [y for y in self.years("urbanisation") if y <= year
                 and not self._rows("urbanisation", y).query("area == 'city'").empty]
        if year in years:
            return self.value("urbanisation", year)
        if len(years) < 2:
            raise InputError("observations", "urbanisation", year, f"need two city observations before it; have {years}")
        (y0, y1) = years[-2:]
        v0, v1 = self.value("urbanisation", y0), self.value("urbanisation", y1)
        return v1 + (v1 - v0) * (year - y1) / (y1 - y0)

    def vital_rates(self, year: int) -> tuple[float, float, int]:
        """City crude birth and death rates (per 1 000) of ``year``, else of the latest earlier year with
        both, and that year; the earliest year with both when none is that early (only a backcast from a
        year before the vital statistics starts so early, and a backcast is fitted on later data anyway)."""
        both = sorted(set(self.years("birth_rate")) & set(self.years("death_rate")))
        if not both:
            raise InputError("observations", "birth_rate/death_rate", year, "no year has both")
        earlier = [y for y in both if y <= year]
        y = earlier[-1] if earlier else both[0]
        return self.value("birth_rate", y), self.value("death_rate", y), y

    def district_population(self, year: int) -> np.ndarray:
        """Census population per district in geography order (NaN where the census lacks a district)."""
        rows = self._rows(DISTRICT, year).set_index("area")
        return rows["value"].reindex(self.geography.codes).to_numpy(float)

    def district_imputed(self, year: int) -> np.ndarray:
        """True where the census value of ``year`` is imputed (or missing)."""
        rows = self._rows(DISTRICT, year).set_index("area")
        return rows["imputed"].reindex(self.geography.codes).fillna(True).to_numpy(bool)

    def completed_geography(self, geo: Geography, year: int) -> Geography:
        """``geo`` with its census of ``year`` completed by :meth:`complete_district_population` where
        the table lacks districts (flagged in ``pop_<year>_imputed``): a run can start from that year."""
        col = f"pop_{year}"
        if col not in geo.districts or not geo.districts[col].isna().any():
            return geo
        table = geo.districts.copy()
        table[f"{col}_imputed"] = table[f"{col}_imputed"] | table[col].isna()
        table[col] = self.complete_district_population(year)
        return Geography(table, geo.boundaries, geo.circuity, geo.source)

    def complete_district_population(self, year: int) -> np.ndarray:
        """Census of ``year`` with missing districts imputed by the stated rule.

        Rule: the city total of that year minus the known districts, split among the missing ones in
        proportion to their populations in the nearest other census (held here) where all are known,
        each times its functional region's change between the two censuses over the districts known in
        both (the change of all such districts where its region has none): a missing district follows its
        own region, not the city.
        """
        pop = self.district_population(year)
        miss = np.isnan(pop)
        if not miss.any():
            return pop
        residual = self.value("city_total", year) - np.nansum(pop)
        others = sorted((y for y in self.census_years() if y != year), key=lambda y: (abs(y - year), y))
        region = self.geography.region_index
        for y in others:
            ref = self.district_population(y)
            if np.isfinite(ref[miss]).all() and ref[miss].sum() > 0:
                both = ~miss & np.isfinite(ref)
                change = np.full(len(pop), pop[both].sum() / ref[both].sum() if both.any() else 1.0)
                for r in np.unique(region[miss]):
                    k = both & (region == r)
                    if k.any() and ref[k].sum() > 0:
                        change[region == r] = pop[k].sum() / ref[k].sum()
                w = ref[miss] * change[miss]
                out = pop.copy()
                out[miss] = residual * w / w.sum()
                return out
        raise InputError("observations", f"{DISTRICT} {year}", int(miss.sum()),
                         "missing districts and no other complete census to split the residual by")

    def zone_totals(self, year: int) -> np.ndarray:
        """Totals of the ZONES of ``year``: observed regional totals if given, else the summed census."""
        rows = self.table[(self.table["kind"] == "region_total") & (self.table["year"] == year)]
        if not rows.empty:
            return rows.set_index("area")["value"].reindex(list(ZONES)).to_numpy(float)
        return self.geography.to_zones(self.complete_district_population(year))

    def zone_years(self) -> list[int]:
        """Years with zone totals (observed regional totals or a district census)."""
        return sorted(set(self.years("region_total")) | set(self.census_years()))

    def city_total(self, year: int) -> float:
        """Observed city total of ``year``; without one, the sum of the zone totals (given or census)."""
        rows = self.table[(self.table["kind"] == "city_total") & (self.table["year"] == year)]
        if not rows.empty:
            return float(rows["value"].iloc[0])
        return float(np.sum(self.zone_totals(year)))

    def city_years(self) -> list[int]:
        """Years with a city total (stated, or from zone totals or a census)."""
        return sorted(set(self.years("city_total")) | set(self.zone_years()))


def log_interpolate(points: dict[int, np.ndarray | float], year: int) -> np.ndarray:
    """Geometric interpolation between the two observed years around ``year``; outside them the
    growth rate of the two nearest observations continues (one point: held constant)."""
    ys = sorted(points)
    if year in points:
        return np.asarray(points[year], float)
    if len(ys) == 1:
        return np.asarray(points[ys[0]], float)
    if year < ys[0]:
        lo, hi = ys[0], ys[1]
    elif year > ys[-1]:
        lo, hi = ys[-2], ys[-1]
    else:
        lo = max(y for y in ys if y < year)
        hi = min(y for y in ys if y > year)
    a, b = np.asarray(points[lo], float), np.asarray(points[hi], float)
    return a * (b / a) ** ((year - lo) / (hi - lo))
