"""Geography: packaged Chongqing table, distances, adjacency, region sums, data-driven census years, CSV checks."""

from __future__ import annotations

import csv
import math

import numpy as np
import pandas as pd
import pytest

from migration_abm.config import load_config
from migration_abm.errors import InputError
from migration_abm.geography import REGIONS, Geography, census_years, data_path, load_districts

YUZHONG, WANZHOU, JIANGBEI, NANAN, CHENGKOU = "500103", "500101", "500105", "500108", "500229"


@pytest.fixture(scope="module")
def geo() -> Geography:
    return Geography.load()


def _idx(geo: Geography, code: str) -> int:
    return int(np.flatnonzero(geo.codes == code)[0])


def _raw_rows() -> list[dict[str, str]]:
    with open(data_path("chongqing_districts.csv"), encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Independent check: spherical law of cosines on the mean Earth radius."""
    p1, p2, dl = math.radians(lat1), math.radians(lat2), math.radians(lon2 - lon1)
    c = math.sin(p1) * math.sin(p2) + math.cos(p1) * math.cos(p2) * math.cos(dl)
    return 6371.0088 * math.acos(max(-1.0, min(1.0, c)))


# --------------------------------------------------------------------------------------------------
# packaged table and the info command
# --------------------------------------------------------------------------------------------------

def test_packaged_table(geo):
    assert geo.n == 38
    assert len(set(geo.codes)) == 38 and all(len(c) == 6 and c.startswith("50") for c in geo.codes)
    assert set(geo.districts["functional_region"]) == set(REGIONS)
    assert geo.census_years == [2000, 2010, 2020]
    assert int(geo.population(2010).sum()) == 28_846_170
    assert int(geo.population(2020).sum()) == 32_054_159  # 7th census total (4 districts imputed)
    assert set(geo.codes[geo.districts["pop_2020_imputed"].to_numpy(bool)]) == {"500233", "500235", "500238", "500242"}
    assert np.isnan(geo.population(2000)).sum() == 7  # the 2000 census gaps are kept as NaN
    imputed = set(geo.codes[geo.districts["pop_2010_imputed"].to_numpy(bool)])
    assert imputed == {"500241", "500242"}  # 秀山, 酉阳


def test_wing_totals_match_2010_bulletin(geo):
    # 2010 bulletin: 一小时经济圈 1,764.49万, 渝东北翼 836.54万, 渝东南翼 283.59万 (FACTS §3). The district
    # table agrees to within 170 persons per wing (the bulletin's own wings sum to 30 more than its total).
    by_region = dict(zip(REGIONS, geo.to_regions(geo.population(2010)), strict=True))
    one_hour = by_region["core"] + by_region["expansion"] + by_region["new_development"]
    assert one_hour == pytest.approx(17_644_900, abs=300)
    assert by_region["northeast_eco"] == pytest.approx(8_365_400, abs=300)
    assert by_region["southeast_eco"] == pytest.approx(2_835_900, abs=300)


def test_info_command(cli):
    code, out, err = cli("info")
    assert code == 0, err
    assert "38 districts in 5 functional regions" in out
    assert "28,846,170" in out
    for region in REGIONS:
        assert region in out
    assert "渝中区" in out and "500243" in out


def test_info_with_user_regions(cli, tmp_path):
    path = _small_table(tmp_path)
    code, out, err = cli("info", "--regions", str(path))
    assert code == 0, err
    assert "3 districts in 2 functional regions" in out
    assert "Total 2010: 1,600" in out


def test_info_bad_regions_exit_2(cli, tmp_path):
    path = _small_table(tmp_path, lat=["29.5", "95", "30.0"])
    code, out, err = cli("info", "--regions", str(path))
    assert code == 2
    assert str(path) in err and "row 3, column lat" in err and len(err.strip().splitlines()) == 1


# --------------------------------------------------------------------------------------------------
# distances and adjacency
# --------------------------------------------------------------------------------------------------

def test_distance_matrix(geo):
    d = geo.distance_km
    assert d.shape == (38, 38)
    np.testing.assert_array_equal(d, d.T)
    np.testing.assert_array_equal(np.diag(d), 0.0)
    off = d[~np.eye(38, dtype=bool)]
    assert off.min() > 3 and off.max() < 600  # Chongqing spans ~470 km × ~450 km


def test_distance_known_pair_and_circuity():
    rows = {r["code"]: r for r in _raw_rows()}
    a, b = rows[YUZHONG], rows[WANZHOU]
    gc = _great_circle_km(float(a["lat"]), float(a["lon"]), float(b["lat"]), float(b["lon"]))
    assert 210 < gc < 230  # 渝中 ↔ 万州 centroids, about 220 km as the crow flies
    g1 = Geography.load(circuity=1.0)
    g12 = Geography.load(circuity=1.2)
    i, j = _idx(g1, YUZHONG), _idx(g1, WANZHOU)
    assert g1.distance_km[i, j] == pytest.approx(gc, rel=1e-9)
    assert g12.distance_km[i, j] == pytest.approx(1.2 * gc, rel=1e-9)
    np.testing.assert_allclose(g12.distance_km, 1.2 * g1.distance_km, rtol=1e-12)


def test_adjacency(geo):
    a = geo.adjacency
    assert a.dtype == bool and a.shape == (38, 38)
    np.testing.assert_array_equal(a, a.T)
    assert not a.diagonal().any()
    assert a.sum(axis=1).min() >= 1  # every district has a neighbour (the municipality is connected)
    yz = _idx(geo, YUZHONG)
    assert a[yz, _idx(geo, JIANGBEI)] and a[yz, _idx(geo, NANAN)]
    assert not a[yz, _idx(geo, CHENGKOU)] and not a[yz, _idx(geo, WANZHOU)]
    assert a.sum(axis=1)[yz] <= 5  # a 23 km² district inside the main city, not a hub


def test_adjacency_needs_boundaries(tmp_path):
    g = Geography.load(_small_table(tmp_path))
    assert g.boundaries is None
    with pytest.raises(InputError, match="boundaries"):
        _ = g.adjacency


# --------------------------------------------------------------------------------------------------
# region sums
# --------------------------------------------------------------------------------------------------

def test_to_regions_sums(geo):
    rng = np.random.default_rng(0)
    v = rng.random((4, geo.n))
    r = geo.to_regions(v)
    assert r.shape == (4, len(REGIONS))
    regions = geo.districts["functional_region"].to_numpy()
    for k, name in enumerate(REGIONS):
        np.testing.assert_allclose(r[:, k], v[:, regions == name].sum(axis=1))
    np.testing.assert_allclose(r.sum(axis=1), v.sum(axis=1))
    # along another axis
    r0 = geo.to_regions(v.T, axis=0)
    np.testing.assert_allclose(r0, r.T)
    counts = geo.to_regions(np.ones(geo.n))
    np.testing.assert_array_equal(counts, [1, 8, 12, 11, 6])


def test_in_regions_and_region_table(geo):
    mask = geo.in_regions(("northeast_eco", "southeast_eco"))
    assert mask.sum() == 17
    tab = geo.region_table()
    assert list(tab["region"]) == list(REGIONS)
    assert tab["pop_2010"].sum() == 28_846_170
    assert tab.loc[tab["region"] == "core", "pop_2000"].isna().all()  # 渝中 lacks a 2000 figure


# --------------------------------------------------------------------------------------------------
# data-driven census years and user tables
# --------------------------------------------------------------------------------------------------

def test_census_years_are_data_driven(tmp_path):
    table = pd.read_csv(data_path("chongqing_districts.csv"), dtype={"code": str})
    table["pop_2030"] = (table["pop_2010"] * 1.1).round().astype(int)
    table["pop_2030_imputed"] = 0
    table["pop_20300"] = 1  # not a 4-digit year: ignored
    path = tmp_path / "with_2030.csv"
    table.to_csv(path, index=False)
    assert census_years(pd.read_csv(path)) == [2000, 2010, 2020, 2030]
    g = Geography.load(path)
    assert g.census_years == [2000, 2010, 2020, 2030]
    np.testing.assert_array_equal(g.population(2030), table["pop_2030"].to_numpy(float))
    with pytest.raises(InputError, match="pop_2040"):
        g.population(2040)
    with pytest.raises(InputError, match="pop_2030"):
        Geography.load().population(2030)  # the packaged table has no 2030 column


def _small_table(tmp_path, **overrides: list[str]):
    cols = {
        "code": ["100001", "100002", "100003"],
        "name_zh": ["甲", "乙", "丙"],
        "name_en": ["A", "B", "C"],
        "kind": ["district", "county", "county"],
        "functional_region": ["expansion", "northeast_eco", "northeast_eco"],
        "area_km2": ["10", "200", "300"],
        "lat": ["29.5", "30.5", "30.0"],
        "lon": ["106.5", "108.4", "107.0"],
        "pop_2010": ["1000", "400", "200"],
    }
    cols.update(overrides)
    path = tmp_path / "mine.csv"
    pd.DataFrame(cols).to_csv(path, index=False)
    return path


def test_user_region_table(tmp_path):
    path = _small_table(tmp_path)
    g = Geography.load(path)
    assert g.n == 3 and list(g.codes) == ["100001", "100002", "100003"]
    assert g.census_years == [2010]
    np.testing.assert_array_equal(g.to_regions(g.population(2010)), [0, 1000, 0, 600, 0])
    assert g.distance_km.shape == (3, 3) and g.distance_km[0, 1] > 150


def test_user_region_table_from_config(write_file, tmp_path):
    _small_table(tmp_path)
    cfg = load_config(write_file("scen.toml", '[data]\nregions = "mine.csv"\nboundaries = "none"\n'))
    g = Geography.load(cfg.data.regions)
    assert g.n == 3


@pytest.mark.parametrize("case, overrides, field, value", [
    ("duplicate code", {"code": ["100001", "100002", "100001"]}, "row 4, column code", "100001"),
    ("non-numeric pop", {"pop_2010": ["1000", "many", "200"]}, "row 3, column pop_2010", "many"),
    ("unknown region", {"functional_region": ["expansion", "north", "northeast_eco"]},
     "row 3, column functional_region", "north"),
    ("lat out of range", {"lat": ["29.5", "30.5", "-91"]}, "row 4, column lat", "-91"),
    ("lon out of range", {"lon": ["181", "108.4", "107.0"]}, "row 2, column lon", "181"),
    ("non-positive area", {"area_km2": ["10", "0", "300"]}, "row 3, column area_km2", "0"),
    ("negative pop", {"pop_2010": ["1000", "400", "-5"]}, "row 4, column pop_2010", "-5"),
])
def test_bad_csv_names_file_row_column(tmp_path, case, overrides, field, value):
    path = _small_table(tmp_path, **overrides)
    with pytest.raises(InputError) as exc:
        load_districts(path)
    err = exc.value
    assert err.source == str(path)
    assert err.field == field, case
    msg = str(err)
    assert str(path) in msg and field in msg and value in msg and "\n" not in msg


def test_a_parsed_table_is_reused_but_never_stale_or_shared(tmp_path):
    """The parse is memoised on the file's content: a same-size rewrite (same clock tick, same length) is
    read anew, and a caller editing its table does not change the next caller's."""
    path = _small_table(tmp_path, pop_2010=["1000", "400", "200"])
    first = load_districts(path)
    first.loc[0, "pop_2010"] = -1.0
    assert load_districts(path)["pop_2010"].tolist() == [1000, 400, 200]
    _small_table(tmp_path, pop_2010=["1000", "400", "300"])
    assert load_districts(path)["pop_2010"].tolist() == [1000, 400, 300]


def test_bad_csv_row_is_the_file_line(tmp_path):
    """'row N' is the line number in the file (header = line 1), so users can jump to it."""
    path = _small_table(tmp_path, pop_2010=["1000", "400", "x"])
    with pytest.raises(InputError) as exc:
        load_districts(path)
    line_no = int(exc.value.field.split(",")[0].split()[1])
    assert path.read_text(encoding="utf-8").splitlines()[line_no - 1].startswith("100003,")


def test_missing_column(tmp_path):
    path = _small_table(tmp_path)
    pd.read_csv(path).drop(columns=["lat"]).to_csv(path, index=False)
    with pytest.raises(InputError) as exc:
        load_districts(path)
    assert exc.value.source == str(path) and exc.value.value == ["lat"] and "lat" in str(exc.value)


def test_no_census_column(tmp_path):
    path = _small_table(tmp_path)
    pd.read_csv(path).rename(columns={"pop_2010": "population"}).to_csv(path, index=False)
    with pytest.raises(InputError, match="pop_YYYY"):
        load_districts(path)


def test_missing_csv_file(tmp_path):
    with pytest.raises(InputError, match="not found") as exc:
        load_districts(tmp_path / "none.csv")
    assert exc.value.source == str(tmp_path / "none.csv")


def test_boundaries_with_unknown_code(tmp_path):
    path = _small_table(tmp_path)
    gj = tmp_path / "b.geojson"
    gj.write_text('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"code": "999999"},'
                  ' "geometry": {"type": "Polygon", "coordinates": [[[106, 29], [107, 29], [107, 30], [106, 29]]]}}]}',
                  encoding="utf-8")
    with pytest.raises(InputError, match="999999"):
        Geography.load(path, gj)


def test_packaged_boundaries_cover_table(geo):
    assert set(geo.boundaries) == set(geo.codes)
    for polys in geo.boundaries.values():
        for ring in polys[0]:
            assert ring.shape[1] == 2
            assert (105 < ring[:, 0]).all() and (ring[:, 0] < 111).all() and (28 < ring[:, 1]).all() and (ring[:, 1] < 33).all()


def test_census_trend_reads_only_censuses_up_to_its_year() -> None:
    """The district share trend for a run starting in 2010 uses 2000 and 2010 only: poisoning the 2020
    column changes nothing; for 2020 it uses 2010 → 2020. Districts missing in the older census get their
    region's weighted mean trend and are flagged."""
    geo = Geography.load()
    t2010, imputed = geo.census_trend(2010)
    poisoned = Geography(geo.districts.assign(pop_2020=1e12), None, 1.0)
    np.testing.assert_array_equal(poisoned.census_trend(2010)[0], t2010)
    assert imputed.sum() == int(geo.districts["pop_2000"].isna().sum()) and np.isfinite(t2010).all()
    p0, p1 = geo.population(2000), geo.population(2010)
    ok = np.isfinite(p0)
    by_hand = 100 * np.log((p1[ok] / p1[ok].sum()) / (p0[ok] / p0[ok].sum())) / 10
    np.testing.assert_allclose(t2010[ok], by_hand)
    t2020, imp2020 = geo.census_trend(2020)
    assert not imp2020.any() and not np.allclose(t2020, t2010)
    assert geo.census_trend(2000)[0].tolist() == [0.0] * geo.n  # one census: no trend
