"""Households as columns: the synthetic base-year population and its demography (ageing, deaths,
births, young adults leaving home). One row per agent; each row stands for ``weight`` households.

Column store rather than one Python object per household so a full-scale run (≈10.7 M households in
2010) fits in memory; the yearly passes over the rows are compiled kernels (:mod:`migration_abm.kernels`).
Columns are views of buffers with spare capacity, so appending rows and dropping rows (in place) do not
copy the population, and per-row member counts are kept up to date by the events that change them.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING

import numpy as np

from migration_abm import kernels
from migration_abm.config import MAX_OLD_AGE_HAZARD, Config
from migration_abm.errors import ConfigError
from migration_abm.geography import REGIONS, Geography

if TYPE_CHECKING:
    import pandas as pd

AGE_MAX = 100
NO_MEMBER = -1
OUTSIDE = -1  # district index for "rest of China"
SECTORS = ("agriculture", "industry", "services")
WORK_AGES = (16, 64)
#: per-row member counts kept with the columns: (name, dtype)
COUNTS = (("size", np.int8), ("workers", np.int8), ("kids", np.bool_), ("fertile", np.int8),
          ("persons", np.float64), ("head", np.int8))
GROWTH = 1.25  # spare capacity factor when a column buffer must grow
SETUP_BLOCK = 1 << 20  # rows per block of member-age draws in the synthesis


@dataclass
class Households:
    """Household state, one numpy array per attribute (row i = agent i)."""

    ages: np.ndarray          # int8 [n, K], members' ages sorted descending, -1 = empty slot
    district: np.ndarray      # int16 district of residence
    urban: np.ndarray         # bool, lives in the district's urban area (seat, towns)
    origin: np.ndarray        # int16 district the household comes from (-1 = outside Chongqing)
    hukou_district: np.ndarray  # int16 district of household registration (-1 = outside)
    hukou_ag: np.ndarray      # bool, agricultural hukou
    skill: np.ndarray         # int8 0 low, 1 middle, 2 high education
    employed: np.ndarray      # bool, household's workers hold jobs
    sector: np.ndarray        # int8 index into SECTORS (meaningful when employed)
    years_here: np.ndarray    # int16 years at current residence
    platform_u: np.ndarray    # float32 uniform draw: registered on the job platform if < coverage
    weight: np.ndarray        # float64 households represented by the row

    def __post_init__(self) -> None:
        self._store: dict[str, np.ndarray] = {}   # column buffers (rows beyond n are spare capacity)
        self._counts: dict[str, np.ndarray] | None = None  # member counts; None = to recompute
        self._empty = 0  # rows left without members, dropped by the next compact (see keep_empty)

    @property
    def n(self) -> int:
        return len(self.district)

    def columns(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def take(self, index: np.ndarray) -> Households:
        """Rows selected by a boolean mask or index array (a new, independent store)."""
        return Households(**{k: v[index] for k, v in self.columns().items()})

    # ---- storage -----------------------------------------------------------------------------------
    def _buffer(self, name: str, arr: np.ndarray, rows: int) -> np.ndarray:
        """The buffer behind column ``arr`` with room for ``rows`` rows (moved to a bigger one if needed)."""
        buf = self._store.get(name)
        if buf is None or arr.base is not buf or len(buf) < rows:
            buf = np.empty((int(rows * GROWTH) + 1024, *arr.shape[1:]), dtype=arr.dtype)
            buf[:len(arr)] = arr
            self._store[name] = buf
        return buf

    def reserve(self) -> None:
        """Move every column and member count into a buffer with spare capacity (``GROWTH``) now, so the
        first years' arrivals and leavers are appended without moving the population (set-up)."""
        n = self.n
        for name, arr in {**self.columns(), **self.counts()}.items():
            if len(self._store.get(name, ())) < int(n * GROWTH):
                buf = np.empty((int(n * GROWTH) + 1024, *arr.shape[1:]), dtype=arr.dtype)
                buf[:n] = arr
                self._store[name] = buf
            view = self._store[name][:n]
            if name in self._counts:
                self._counts[name] = view
            else:
                setattr(self, name, view)

    def extend(self, other: Households) -> None:
        """Append rows in place (ages padded to the wider member dimension)."""
        if other.ages.shape[1] != self.ages.shape[1]:
            k = max(self.ages.shape[1], other.ages.shape[1])
            self.ages, other.ages = _pad(self.ages, k), _pad(other.ages, k)
        n, m = self.n, other.n
        for name, arr in self.columns().items():
            buf = self._buffer(name, arr, n + m)
            buf[n:n + m] = getattr(other, name)
            setattr(self, name, buf[:n + m])
        if self._counts is not None:
            counts = {name: self._buffer(name, arr, n + m)[:n + m] for name, arr in self._counts.items()}
            self._counts = counts
            kernels.member_counts(self.ages[n:], self.weight[n:], *(counts[c][n:] for c, _ in COUNTS))

    def keep_empty(self) -> None:
        """Leave the rows whose last member died or left in place until the next :meth:`compact` drops
        them with the rows it is asked to drop (one compaction a year instead of two). Until then
        :meth:`uniforms` draws for the other rows only and gives these 2.0 (above any probability), and
        :meth:`live_sum` sums as over the compacted column, so results are as if they had been dropped now."""
        self._empty = self.n - int(np.count_nonzero(self.size()))

    def compact(self, keep: np.ndarray | None = None) -> None:
        """Keep only the rows in the boolean mask ``keep`` (all when ``None``), in order, moving them in
        place; rows left empty since :meth:`keep_empty` go too."""
        if not self._empty and (keep is None or keep.all()):
            return
        counts = self.counts()
        cols = self.columns()
        rows = _row_view(cols["ages"])
        m = kernels.compact(np.ones(0, bool) if keep is None else keep, keep is not None, self._empty > 0,
                            self.scratch(4, dtype=np.bool_), rows, *list(cols.values())[1:],
                            *(counts[c] for c, _ in COUNTS))
        for name, arr in cols.items():
            setattr(self, name, arr[:m])
        self._counts = {name: arr[:m] for name, arr in counts.items()}
        self._empty = 0

    def live_sum(self, x: np.ndarray) -> float:
        """``x.sum()`` over the rows that stay (numpy's pairwise sum of ``x`` with the rows left empty since
        :meth:`keep_empty` left out, to the last bit as if they had been dropped)."""
        if not self._empty:
            return float(x.sum())
        out = self.scratch(5)
        kernels.gather_live(x, self.size(), out)
        return float(out[:self.n - self._empty].sum())

    def scratch(self, slot: int, size: int | None = None, dtype: type = np.float64) -> np.ndarray:
        """A work buffer of ``size`` (default ``n``) elements, kept from year to year so the yearly loop
        does not allocate (and page-fault) large temporaries."""
        name, size = f"scratch{slot}{np.dtype(dtype).char}", self.n if size is None else size
        if len(self._store.get(name, ())) < size:
            self._store[name] = np.empty(int(size * GROWTH) + 1024, dtype)
        return self._store[name][:size]

    def uniforms(self, rng: np.random.Generator) -> np.ndarray:
        """``rng.random(n)`` drawn into scratch slot 0 (valid until the next call); while empty rows are
        kept (:meth:`keep_empty`) only the other rows draw, in order, and the empty ones get 2.0."""
        u = self.scratch(0)
        if not self._empty:
            return rng.random(out=u)
        live = self.n - self._empty
        rng.random(out=u[:live])
        kernels.spread_live(u, self.size(), live, 2.0)
        return u

    # ---- member counts -----------------------------------------------------------------------------
    def counts(self) -> dict[str, np.ndarray]:
        """Per-row member counts (size, workers, kids, fertile, persons, head's age), recomputed in one
        pass when the member table or the weights changed."""
        if self._counts is None:
            n = self.n
            for name, dt in COUNTS:
                if len(self._store.get(name, ())) < n:
                    self._store[name] = np.empty(int(n * GROWTH) + 1024, dt)
            self._counts = {name: self._store[name][:n] for name, _ in COUNTS}
            kernels.member_counts(self.ages, self.weight, *(self._counts[c] for c, _ in COUNTS))
        return self._counts

    def invalidate(self) -> None:
        """Members or weights were changed from outside the kernels: recompute counts when next read."""
        self._counts = None

    def size(self) -> np.ndarray:
        """Members per household."""
        return self.counts()["size"]

    def persons(self) -> np.ndarray:
        """Persons represented by each row (members × weight)."""
        return self.counts()["persons"]

    def workers(self) -> np.ndarray:
        """Working-age (16-64) members per household."""
        return self.counts()["workers"]

    def head_age(self) -> np.ndarray:
        """Age of the oldest member (column 0 after sorting; −1 for an empty household), kept as a
        contiguous column with the member counts."""
        return self.counts()["head"]

    def has_children(self) -> np.ndarray:
        """Whether the household has a school-age (6-14) member."""
        return self.counts()["kids"]


def _row_view(ages: np.ndarray) -> np.ndarray:
    """The member table with each row as one unsigned integer (or a few) of its width: 8 slots → uint64."""
    k = ages.shape[1]
    wide = next(t for t in (np.uint64, np.uint32, np.uint16, np.uint8) if k % np.dtype(t).itemsize == 0)
    rows = ages.view(wide)
    return rows.reshape(-1) if rows.shape[1] == 1 else rows


def _pad(a: np.ndarray, k: int) -> np.ndarray:
    return a if a.shape[1] == k else np.pad(a, ((0, 0), (0, k - a.shape[1])), constant_values=NO_MEMBER)


def age_pmf(cfg: Config, share_0_14: float | None = None, share_old: float | None = None) -> np.ndarray:
    """Single-year age distribution 0..100 matching the base-year band shares (the configured city
    shares unless given).

    Uniform within 0-14 and 15-64 (the census gives only band totals); 65+ follows the survival curve
    implied by the configured mortality so the oldest ages thin out plausibly, tilted towards the younger
    old ages as far as ``population.share_80_plus`` asks (:func:`_old_age_shape`).
    """
    p = cfg.population
    kids = p.share_0_14 if share_0_14 is None else share_0_14
    olds = p.share_65_plus if share_old is None else share_old
    old = p.old_age
    pmf = np.zeros(AGE_MAX + 1)
    pmf[0:15] = kids / 15
    pmf[15:old] = (1 - kids - olds) / (old - 15)
    d = cfg.demography
    over_80 = p.share_80_plus / p.share_65_plus
    shape = _old_age_shape(old, d.mortality_makeham, d.mortality_gompertz_a, d.mortality_gompertz_b, over_80)
    if shape is None:
        raise ConfigError(cfg.source, "population.share_80_plus", p.share_80_plus,
                          f"no old-age shape holds {over_80:.1%} of the {old}+ at 80+ with this mortality")
    pmf[old:] = olds * shape
    return pmf


@functools.lru_cache(maxsize=256)
def _old_age_shape(old: int, makeham: float, gompertz_a: float, gompertz_b: float,
                   over_80: float) -> np.ndarray | None:
    """Single-year shares within the old-age band: survival × exp(−r·(age − old)), the shape of a stable
    population whose cohorts grow by r a year, with r set so a share ``over_80`` of the band is 80+
    (r = 0, the survival curve alone, when ``over_80`` is 0); None if no r in [−2, 5] reaches it."""
    ages = np.arange(old, AGE_MAX + 1)
    surv = np.exp(-np.cumsum(_hazard(makeham, gompertz_a, gompertz_b, ages)))

    def tilted(r: float) -> np.ndarray:
        w = surv * np.exp(-r * (ages - old))
        w /= w.sum()
        w.flags.writeable = False  # (cached: shared by every caller)
        return w

    if not over_80:
        return tilted(0.0)
    from scipy.optimize import brentq

    def gap(r: float) -> float:
        return float(tilted(r)[ages >= 80].sum()) - over_80

    if not gap(-2.0) > 0 > gap(5.0):
        return None
    return tilted(brentq(gap, -2.0, 5.0, xtol=1e-10))


def death_hazard(cfg: Config, ages: np.ndarray) -> np.ndarray:
    """Gompertz-Makeham annual death hazard by age."""
    d = cfg.demography
    return _hazard(d.mortality_makeham, d.mortality_gompertz_a, d.mortality_gompertz_b, ages)


def _hazard(makeham: float, gompertz_a: float, gompertz_b: float, ages: np.ndarray) -> np.ndarray:
    return makeham + gompertz_a * np.exp(gompertz_b * ages)


def death_probability(cfg: Config) -> np.ndarray:
    """Probability of dying in a year by the age reached in it (index 0..AGE_MAX + 1; 1 past AGE_MAX)."""
    q = 1.0 - np.exp(-death_hazard(cfg, np.arange(AGE_MAX + 2)))
    q[AGE_MAX + 1:] = 1.0  # nobody lives past AGE_MAX
    return q


def _observed_city(geo: Geography, reading: str, year: int) -> float | tuple[float, float, int]:
    """A city-wide reading (``city_urbanisation``, ``vital_rates``) of the packaged observed-totals table
    for ``year``, memoised per that file's content and the year (every model set-up asks for it)."""
    from migration_abm.geography import file_stamp
    from migration_abm.observations import observed_path

    stamp = file_stamp(observed_path())
    return _observed_city_reading(_Keyed((stamp, reading, int(year)), (geo,)))


@functools.lru_cache(maxsize=32)
def _observed_city_reading(inputs: _Keyed) -> float | tuple[float, float, int]:
    """The reading on the totals table alone: ``structure_only`` drops the geography's census columns, so
    the value depends on the key only (a district reading would fail here, never come back stale)."""
    from migration_abm.observations import Observations, structure_only

    (geo,), (_, reading, year) = inputs.args, inputs.key
    return getattr(Observations.load(structure_only(geo)), reading)(year)


def base_urban_share(geo: Geography, cfg: Config, year: int) -> np.ndarray:
    """Urban share per district at ``year``, then shifted by one common logit offset when
    ``population.urban_share_city`` (or ``urban_share_city_observed``) fixes the city-wide share; the
    shift leaves 渝中 (wholly urban) and the base year's own census values alone.

    A census urban column of ``year`` itself is used as it stands, the region value where it is missing.
    Without one, the latest earlier census column gives the structure *within* each region: a district's
    logit deviation from its region's population-weighted mean (over the districts that have a value) is
    added to the region value (``population.urban_share``); districts without a value get the region value.
    Only columns up to ``year`` are read.
    """
    region = np.array([cfg.population.urban_share.get(r, 0.5) for r in REGIONS])[geo.region_index]
    earlier = [y for y in geo.census_years if y <= year and f"urban_{y}" in geo.districts.columns]
    share = region.copy()
    fixed = share >= 1.0  # wholly urban districts (渝中) stay so
    if earlier:
        y = earlier[-1]
        own = geo.districts[f"urban_{y}"].to_numpy(float) / geo.population(y)
        known = np.isfinite(own)
        if y == year:  # the base year's own census values stay as they are
            share = np.where(known, own, region)
            fixed |= known
        else:
            x = _logit(np.where(known, own, 0.5))
            for r in np.unique(geo.region_index):
                m = (geo.region_index == r) & known & (region < 1.0)
                if m.any():
                    dev = x[m] - np.average(x[m], weights=geo.population(y)[m])
                    share[m] = 1 / (1 + np.exp(-(_logit(region[m]) + dev)))
    target = cfg.population.urban_share_city
    if cfg.population.urban_share_city_observed:
        target = _observed_city(geo, "city_urbanisation", year)
    if target:
        from scipy.optimize import brentq

        pop = geo.population(year)
        x = _logit(share)

        def shifted(c: float) -> np.ndarray:
            return np.where(fixed, share, 1 / (1 + np.exp(-(x + c))))

        c = brentq(lambda c: np.average(shifted(c), weights=pop) - target, -20, 20)
        share = shifted(c)
    return share


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(q / (1 - q))


def migrant_stock_shares(geo: Geography, year: int) -> np.ndarray:
    """M[d, o]: share of district d's base-year residents registered in district o (o = n: outside
    Chongqing's districts before the outside split), from the 2007 registered table.

    In-migrant excess of d = max(0, resident_year − registered_2007); origins ∝ max(0, registered_2007
    − resident_year) of the districts with unit rows, the two eco wings' aggregate gaps spread over their
    districts ∝ resident population (documented assumption, DATA.md). Districts without data: no stock.
    """
    resident = geo.population(year)
    key = (tuple(geo.codes), resident.tobytes(), geo.region_index.tobytes())
    return _migrant_stock_shares(_Keyed(key, (geo, resident))).copy()


@functools.lru_cache(maxsize=16)
def _migrant_stock_shares(inputs: _Keyed) -> np.ndarray:
    """:func:`migrant_stock_shares` for the district codes, base-year residents and regions of the key
    (a calibration sets up thousands of models from the same census)."""
    geo, resident = inputs.args
    reg = _registered_2007()
    units = reg[reg.row_type.isin(["unit", "combined_2020_boundary"])].drop_duplicates("code", keep="last")
    registered = (units.set_index("code")["pop_registered_wan"] * 1e4).reindex(geo.codes).to_numpy(float).copy()
    wings = {"northeast_eco": "渝东北翼", "southeast_eco": "渝东南翼"}
    for region, label in wings.items():
        row = reg[reg.name_zh.str.startswith(label)]
        m = geo.in_regions((region,)) & ~np.isfinite(registered)
        if len(row) and m.any():
            known = geo.in_regions((region,)) & np.isfinite(registered)
            left = float(row["pop_registered_wan"].iloc[0]) * 1e4 - np.nansum(registered[known])
            registered[m] = left * resident[m] / resident[m].sum()
    gap = registered - resident
    inflow = np.where(np.isfinite(gap), np.maximum(0.0, -gap), 0.0)
    outflow = np.where(np.isfinite(gap), np.maximum(0.0, gap), 0.0)
    origin_p = outflow / outflow.sum() if outflow.sum() > 0 else np.zeros(geo.n)
    share = inflow / np.maximum(resident, 1.0)
    out = share[:, None] * origin_p[None, :]
    np.fill_diagonal(out, 0.0)
    out *= (share / np.maximum(out.sum(axis=1), 1e-300))[:, None]
    return out


@functools.cache
def _registered_2007() -> pd.DataFrame:
    """``chongqing_registered_2007.csv`` (packaged), read once per process."""
    import pandas as pd

    from migration_abm.geography import data_path

    return pd.read_csv(data_path("chongqing_registered_2007.csv"), dtype={"code": str})


@functools.cache
def _age_table_2010() -> pd.DataFrame:
    """The rows of ``chongqing_age_2010_districts.csv`` with age shares, read once per process."""
    import pandas as pd

    from migration_abm.geography import data_path

    t = pd.read_csv(data_path("chongqing_age_2010_districts.csv"), dtype={"code": str})
    return t[t.share_0_14.notna()]


def age_shares_2010(geo: Geography, asked_by: tuple[str, str, object] = ("config", "data.regions", "")
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Shares of residents aged 0-14 and 65+ in 2010 per district ([2, district]), and whether imputed.

    Read for the five districts of ``chongqing_age_2010_districts.csv`` (彭水 from its census bulletin;
    梁平, 綦江 — the former county without 万盛 —, 铜梁, 长寿 derived from their 2020 bulletins); every other
    district of a functional region with a known district takes the pooled shares of its region's known
    districts, and the main city (no district known) the residual of the municipal row (DATA.md §9).
    A region table without ``pop_2010`` or without any of those districts is refused, naming ``asked_by``
    (source, field, value of the option that asked for the table)."""
    if "pop_2010" not in geo.districts.columns:
        raise ConfigError(*asked_by, "needs the region table's pop_2010 column (the 2010 district age "
                          "table weights by it)")
    pop, region = geo.districts["pop_2010"].to_numpy(float), geo.region_index
    shares, imputed = _age_shares_2010(_Keyed((tuple(geo.codes), pop.tobytes(), region.tobytes()),
                                              (geo.codes, pop, region)))
    if shares is None:
        raise ConfigError(*asked_by, "no district of the region table is in chongqing_age_2010_districts.csv "
                          "(Chongqing's 2010 age tables); set it off for another region table")
    return shares.copy(), imputed.copy()


@dataclass(frozen=True)
class _Keyed:
    """The arguments of a memoised function, hashed and compared by ``key`` alone: a key that names
    everything the result depends on, and the (unhashable) objects to compute it from."""

    key: tuple
    args: tuple = field(compare=False)


@functools.lru_cache(maxsize=16)
def _age_shares_2010(inputs: _Keyed) -> tuple[np.ndarray | None, np.ndarray | None]:
    """:func:`age_shares_2010` for district ``codes``, 2010 residents ``pop`` and ``region`` indices;
    (None, None) when no district is in the age table."""
    codes, pop, region = inputs.args
    t = _age_table_2010()
    city = t[t.code == "500000"].iloc[0]
    known = t[t.code != "500000"].set_index("code").reindex(codes)
    if not known.share_0_14.notna().any():
        return None, None
    counts = np.stack([(known[c] / 100 * pop).to_numpy(float, copy=True) for c in ("share_0_14", "share_65p")])
    imputed = ~np.isfinite(counts[0])
    for r in np.unique(region):
        m, k = region == r, (region == r) & ~imputed
        if k.any():  # the region's known districts' pooled shares
            counts[:, m & imputed] = pop[m & imputed] * counts[:, k].sum(axis=1, keepdims=True) / pop[k].sum()
    rest = ~np.isfinite(counts[0])  # regions without a known district: the residual of the municipal row
    if rest.any():
        left = np.array([float(city.share_0_14), float(city.share_65p)])[:, None] / 100 * pop.sum()
        left -= counts[:, ~rest].sum(axis=1, keepdims=True)
        counts[:, rest] = pop[rest] * left / pop[rest].sum()
    return counts / pop, imputed


def district_age_shares(geo: Geography, cfg: Config, pop: np.ndarray) -> np.ndarray:
    """Base-year shares aged 0-14 and 65+ per district ([2, district]): the 2010 district shares
    (:func:`age_shares_2010`) scaled by one factor per band so that, weighted by the base-year residents
    ``pop``, they average the configured city shares (the districts keep their 2010 differences)."""
    s = age_shares_2010(geo, (cfg.source, "population.district_age_structure", True))[0]
    city = np.array([cfg.population.share_0_14, cfg.population.share_65_plus])
    return s * (city * pop.sum() / (s * pop).sum(axis=1))[:, None]


def _district_pmfs(geo: Geography, cfg: Config, pop: np.ndarray) -> np.ndarray:
    """Base-year age distribution per district ([district, age]) as :func:`synthesize` draws it."""
    if cfg.population.district_age_structure:
        return np.stack([age_pmf(cfg, a, b) for a, b in district_age_shares(geo, cfg, pop).T])
    return np.repeat(age_pmf(cfg)[None, :], geo.n, axis=0)


def expected_vital_rates(geo: Geography, cfg: Config, pop: np.ndarray) -> tuple[float, float]:
    """Crude birth and death rates (per 1 000) that the first year of a run from the base-year residents
    ``pop`` has in expectation: deaths over each district's age distribution after a year's ageing, births
    of the members then aged 20-39 (households with no free slot are ignored)."""
    pmf = _district_pmfs(geo, cfg, pop)
    deaths = pop @ (pmf @ death_probability(cfg)[1:])  # (age a now dies at the age a + 1 it reaches)
    births = (pop * pmf[:, 19:39].sum(axis=1)) @ birth_probability(geo, cfg, pop)
    return 1000 * births / pop.sum(), 1000 * deaths / pop.sum()


def with_observed_vital_rates(geo: Geography, cfg: Config) -> Config:
    """``cfg`` with ``fertility_rate`` and ``mortality_gompertz_a`` set so that
    :func:`expected_vital_rates` equals the observed city rates of the base year (else the latest earlier
    year; :meth:`Observations.vital_rates`), when ``demography.vital_rates_observed``; else ``cfg``."""
    if not cfg.demography.vital_rates_observed:
        return cfg
    year = cfg.run.start_year
    cbr, cdr, _ = _observed_city(geo, "vital_rates", year)
    pop = geo.population(year)
    d = cfg.demography  # (a calibration sets up thousands of models that differ in behaviour only)
    a = _gompertz_level(_Keyed((year, cdr, pop.tobytes(), tuple(geo.codes), repr(cfg.data),
                                repr(cfg.population), d.mortality_makeham, d.mortality_gompertz_b),
                               (geo, cfg, pop, cdr)))
    unit = replace(cfg, demography=replace(cfg.demography, mortality_gompertz_a=a, fertility_rate=1.0))
    tfr = cbr / expected_vital_rates(geo, unit, pop)[0]
    return cfg.with_overrides({"demography.mortality_gompertz_a": a, "demography.fertility_rate": tfr},
                              "demography.vital_rates_observed")


@functools.lru_cache(maxsize=64)
def _gompertz_level(inputs: _Keyed) -> float:
    """The ``mortality_gompertz_a`` at which the base residents ``pop`` have ``cdr`` expected deaths per
    1 000 in the first year (it depends only on the age structure and the other mortality terms)."""
    from scipy.optimize import brentq

    geo, cfg, pop, cdr = inputs.args

    def gap(a: float) -> float:  # (a level at which no old-age shape holds share_80_plus is too high)
        unvalidated = replace(cfg, demography=replace(cfg.demography, mortality_gompertz_a=a))
        try:
            return expected_vital_rates(geo, unvalidated, pop)[1] - cdr
        except ConfigError as e:
            if e.field != "population.share_80_plus":
                raise
            return 1e3

    d, old = cfg.demography, cfg.population.old_age
    top = (MAX_OLD_AGE_HAZARD - d.mortality_makeham) / math.exp(d.mortality_gompertz_b * old)
    if not gap(1e-9) < 0 < gap(top):
        raise ConfigError(cfg.source, "demography.vital_rates_observed", True,
                          f"no Gompertz level up to {top:.3g} gives the observed {cdr} deaths per 1 000 of "
                          f"{cfg.run.start_year} with mortality_makeham = {d.mortality_makeham} and "
                          f"mortality_gompertz_b = {d.mortality_gompertz_b}")
    return float(brentq(gap, 1e-9, top, xtol=1e-12))


def birth_probability(geo: Geography, cfg: Config, pop: np.ndarray) -> np.ndarray:
    """Yearly birth probability per member aged 20-39, per district: TFR / 40 (20 fertile years, half of
    adults are women) × the district's 2010 children (0-14) per resident aged 15-64 relative to the city's
    to the power ``demography.fertility_child_ratio_elasticity``, normalised so the multipliers average 1
    over ``pop`` (the base-year residents): the city's rate stays the configured one, its districts differ."""
    p = cfg.demography.fertility_rate / 40.0
    e = cfg.demography.fertility_child_ratio_elasticity
    if e == 0.0:
        return np.full(geo.n, p)
    s = age_shares_2010(geo, (cfg.source, "demography.fertility_child_ratio_elasticity", e))[0]
    m = (s[0] / (1 - s[0] - s[1])) ** e
    return p * m * (pop.sum() / (pop * m).sum())


def synthesize(geo: Geography, cfg: Config, rng: np.random.Generator,
               urban_share: np.ndarray | None = None) -> Households:
    """Synthetic households at ``run.start_year``: district totals exact in persons; ``urban_share``
    per district is :func:`base_urban_share` (computed here unless the caller already has it).

    Household sizes are 1 + Poisson(mean - 1) capped at ``max_household_size``; member ages are drawn
    from :func:`age_pmf` (per district with ``population.district_age_structure``:
    :func:`district_age_shares`), then swapped between households (of the same district with district
    structure) so every household has an adult while the age distribution is kept exactly (a swap moves,
    never changes, an age).
    """
    year = cfg.run.start_year
    pop = geo.population(year)
    if not np.all(np.isfinite(pop)):
        missing = list(geo.codes[~np.isfinite(pop)])
        raise ConfigError(cfg.source, "run.start_year", year, f"census pop_{year} missing for districts {missing}")
    p = cfg.population
    K = p.max_household_size
    hpa = cfg.run.households_per_agent
    n_d = np.maximum(1, np.rint(pop / (p.household_size * hpa))).astype(np.int64)
    district = np.repeat(np.arange(geo.n, dtype=np.int16), n_d)
    n = len(district)
    size = np.minimum(1 + rng.poisson(p.household_size - 1, n), K)
    ages = np.empty((n, K), dtype=np.int8)
    # ages from age_pmf as rng.choice(AGE_MAX + 1, size=members, p=age_pmf) draws them, row-major; the
    # uniforms in blocks of rows drawn into one reused buffer (the same stream as one call)
    if p.district_age_structure:  # one age distribution per district, rows take their district's
        shares = district_age_shares(geo, cfg, pop)
        cdf = np.stack([age_pmf(cfg, a, b) for a, b in shares.T]).cumsum(axis=1)
        table = district
    else:
        cdf = age_pmf(cfg).cumsum()[None, :]
        table = np.zeros(n, dtype=np.int16)
    cdf /= cdf[:, -1:]
    bounds = np.append(np.arange(0, n, SETUP_BLOCK), n)
    members = np.diff(np.concatenate([[0], np.cumsum(size)])[bounds])  # per block
    buf = np.empty(max(n, int(members.max(initial=0))))
    for b in range(len(members)):
        lo, hi = bounds[b], bounds[b + 1]
        kernels.draw_ages(ages[lo:hi], size[lo:hi], cdf, table[lo:hi], rng.random(out=buf[:members[b]]))
    if p.district_age_structure:  # swaps within each district (rows are grouped by district), keeping its ages
        for lo, hi in zip(np.cumsum(n_d) - n_d, np.cumsum(n_d), strict=True):
            _give_every_household_an_adult(ages[lo:hi], rng, strict=False)
    _give_every_household_an_adult(ages, rng)  # (with district structure: only a district short of adults)
    hh = Households(
        ages=-np.sort(-ages, axis=1), district=district, urban=np.zeros(n, bool),
        origin=district.copy(), hukou_district=district.copy(), hukou_ag=np.ones(n, bool),
        skill=np.zeros(n, np.int8), employed=np.zeros(n, bool), sector=np.zeros(n, np.int8),
        years_here=rng.integers(0, 21, n).astype(np.int16), platform_u=rng.random(n, dtype=np.float32),
        weight=np.zeros(n))
    # exact district totals: weight = census persons / sampled members
    members = np.bincount(district, weights=hh.size(), minlength=geo.n)
    hh.weight = (pop / members)[district]
    hh.invalidate()
    u = buf[:n]  # each rng.random(out=u) draws what rng.random(n) would, without a fresh array
    if urban_share is None:
        urban_share = base_urban_share(geo, cfg, year)
    hh.urban = rng.random(out=u) < urban_share[district]
    hh.hukou_ag = ~hh.urban | (rng.random(out=u) < p.urban_agricultural_hukou_share)
    rng.random(out=u)
    hi = np.where(hh.urban, p.high_skill_share_urban, p.high_skill_share_rural)
    lo = np.where(hh.urban, p.low_skill_share_urban, p.low_skill_share_rural)
    hh.skill = np.where(u < lo, np.int8(0), np.where(u < 1 - hi, np.int8(1), np.int8(2)))
    has_workers = hh.workers() > 0
    hh.employed = has_workers & (rng.random(out=u) < cfg.economy.employment_rate)
    services_share = np.array([cfg.economy.urban_services_share.get(r, 0.5) for r in REGIONS])[geo.region_index]
    farm = ~hh.urban & (rng.random(out=u) < cfg.economy.rural_agriculture_share)
    serv = rng.random(out=u) < services_share[district]
    hh.sector = np.where(farm, np.int8(0), np.where(serv, np.int8(2), np.int8(1)))
    if p.migrant_stock:
        _assign_migrant_stock(hh, geo, cfg, year, rng, u)
    return hh


def _assign_migrant_stock(hh: Households, geo: Geography, cfg: Config, year: int, rng: np.random.Generator,
                          buf: np.ndarray) -> None:
    """Give a share of each district's households a hukou (and origin) elsewhere: the base-year stock of
    migrants (:func:`migrant_stock_shares`); a ``migrant_outside_share`` of it comes from outside
    (``buf``: a float64 work buffer of ``hh.n``)."""
    shares = migrant_stock_shares(geo, year)
    total = shares.sum(axis=1)
    u = rng.random(out=buf)
    is_migrant = u < total[hh.district]
    rows = np.flatnonzero(is_migrant)
    outside = rng.random(len(rows)) < cfg.population.migrant_outside_share
    inside_rows = rows[~outside]
    cum = np.cumsum(shares, axis=1) / np.maximum(total, 1e-300)[:, None]
    draw = rng.random(len(inside_rows))
    origin = np.minimum(kernels.count_below(cum, hh.district[inside_rows], draw), geo.n - 1).astype(np.int16)
    hh.origin[inside_rows] = origin
    hh.hukou_district[inside_rows] = origin
    hh.origin[rows[outside]] = OUTSIDE
    hh.hukou_district[rows[outside]] = OUTSIDE
    hh.hukou_ag[rows] = True
    hh.years_here[rows] = np.minimum(hh.years_here[rows], 10)


def _give_every_household_an_adult(ages: np.ndarray, rng: np.random.Generator, strict: bool = True) -> None:
    """Swap a child of each adult-less household with a spare adult (every adult but the first of
    households with 2+ adults, row-major) of another household, spare adults picked at random. Too few
    spare adults: an error, or with ``strict=False`` nothing done (a later citywide pass swaps them)."""
    needy, spare = kernels.adultless(ages, 18)
    if not len(needy):
        return
    if spare < len(needy):
        if strict:
            raise ValueError("age structure has too few adults to give every household one")
        return
    kernels.swap_in_adults(ages, needy, rng.choice(spare, size=len(needy), replace=False), 18)


# --------------------------------------------------------------------------------------------------
# demography
# --------------------------------------------------------------------------------------------------

def age_and_die(hh: Households, cfg: Config, rng: np.random.Generator, n_districts: int) -> np.ndarray:
    """Age every member one year and remove those who die (one uniform per member, row-major);
    returns deaths (persons) per district."""
    q = death_probability(cfg)
    counts = hh.counts()
    u = rng.random(out=hh.scratch(2, int(counts["size"].sum(dtype=np.int64))))
    out = np.zeros(n_districts)
    kernels.age_and_die(hh.ages, u, q, hh.district, hh.weight, out, *(counts[c] for c, _ in COUNTS))
    return out


def give_birth(hh: Households, p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Births: each member aged 20-39 of a household in district d has a child with probability ``p[d]``
    (:func:`birth_probability`): ``rng.binomial(fertile, p[d])`` over the rows with fertile members, drawn
    by the kernel with numpy's algorithm from numpy's uniforms (the same draws). A household with no free
    slot cannot add a child. Returns births (persons) per district."""
    counts = hh.counts()
    out = np.zeros(len(p))
    k = hh.ages.shape[1]
    if not p.any():  # numpy draws nothing for p = 0
        return out
    if p.max() > 0.5 or p.max() * k > 30.0 or not p.all():
        raise ValueError(f"births drawn by inversion need 0 < p <= 0.5 and p * {k} <= 30, got {p.min()}..{p.max()}")
    q = 1.0 - p
    qn = np.array([[math.exp(n * math.log(qd)) for n in range(k + 1)] for qd in q])  # libm's exp and log, as numpy's C code
    bound = np.array([[int(min(n, n * pd + 10.0 * math.sqrt(n * pd * qd + 1))) for n in range(k + 1)]
                      for pd, qd in zip(p, q, strict=True)])
    fertile, i = counts["fertile"], 0
    while i < hh.n:  # a second pass only if numpy's algorithm had to draw again (rounding; ~never)
        u = rng.random(out=hh.scratch(2, int(np.count_nonzero(fertile[i:]))))
        i = kernels.add_births(fertile, u, i, p, q, qn, bound, hh.ages, counts["size"], counts["persons"],
                               hh.weight, hh.district, out)
    return out


def leave_home(hh: Households, cfg: Config, rng: np.random.Generator) -> Households:
    """Young adults (20-29) who are not the head leave to form a one-person household in the same
    place. Returns the new households (caller appends them); removes the members from their parents."""
    k, flat = hh.ages.shape[1], hh.ages.reshape(-1)  # (a view: the member table is contiguous)
    u = rng.random(out=hh.scratch(2, kernels.young_members(flat, k, 20, 29)))  # one uniform per candidate
    r, c = kernels.leaving_members(flat, k, 20, 29, u, cfg.demography.leave_home_rate)
    new = hh.take(r)
    new.ages = np.full((len(r), k), NO_MEMBER, dtype=np.int8)
    new.ages[:, 0] = hh.ages[r, c]
    new.employed = np.zeros(len(r), bool)
    new.platform_u = rng.random(len(r), dtype=np.float32)
    # leavers are more often educated than their parents: bump one level with probability 0.5
    new.skill = np.minimum(2, new.skill + (rng.random(len(r)) < cfg.demography.leaver_upskill)).astype(np.int8)
    counts = hh.counts()
    kernels.remove_members(hh.ages, r, c, counts["size"], counts["workers"], counts["fertile"],
                           counts["persons"], hh.weight)
    return new
