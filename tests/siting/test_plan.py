"""End-to-end: fake model results -> demand points -> plan; CSV input validation; outputs; CLI."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from migration_abm.cli import main as cli_main
from migration_abm.errors import InputError
from migration_abm.siting import SitingSettings, plan_for_results, plan_from_csv
from migration_abm.siting.demand import district_demand, locate_districts, sample_points, shapes

SMALL = {"points_total": 3000, "n_candidates": 300, "time_limit_s": 20}


def test_end_to_end_coverage_rises(fake_results, tmp_path) -> None:
    plan = plan_for_results(fake_results, 2030, "primary_school", budget=15, config=SMALL, seed=3,
                            out_dir=tmp_path)
    assert plan.coverage_after["weighted"] > plan.coverage_before["weighted"]
    assert 0 <= plan.coverage_before["weighted"] <= 1 and 0 <= plan.coverage_after["points"] <= 1
    assert len(plan.new_sites) <= 15 and len(plan.new_sites) > 0
    assert plan.bound >= plan.objective - 1e-6 and 0 <= plan.gap <= 1
    # age band 6-11 of the year's structure is the total demand
    want = district_demand(fake_results, 2030, SitingSettings().facility("primary_school")).sum()
    assert plan.demand["weight"].sum() == pytest.approx(want, rel=1e-9)
    assert plan.unmet_demand == pytest.approx(want - plan.demand["served_after"].sum())
    assert set(plan.districts["district"]) == {"500112", "500105", "500103"}
    for name in ("sites.csv", "demand.csv", "districts.csv", "assignment.csv", "summary.csv", "sites.geojson",
                 "map.png"):
        assert (tmp_path / name).stat().st_size > 0
    gj = json.loads((tmp_path / "sites.geojson").read_text())
    layers = pd.Series([f["properties"]["layer"] for f in gj["features"]])
    assert (layers == "site").sum() == len(plan.sites)
    assert (layers == "catchment").sum() == plan.assignment["site_id"].nunique() > 0
    # capacity respected at every open site
    assert np.all(plan.sites["load"] <= plan.sites["capacity"] + 1e-6)


def test_points_are_seeded_and_inside_districts(fake_results) -> None:
    s = SitingSettings.from_dict({"points_total": 2000})
    pop = fake_results.population_by_district().loc[2020]
    urban = fake_results.urban_share(2020)
    a = sample_points(pop, urban, s, seed=7)
    b = sample_points(pop, urban, s, seed=7)
    c = sample_points(pop, urban, s, seed=8)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["lon"], c["lon"])
    loc = locate_districts(a[["lon", "lat"]].to_numpy(), shapes())
    assert (loc == a["district"].to_numpy()).mean() > 0.97  # simplified outlines overlap slightly
    assert a.groupby("district")["share"].sum().to_numpy() == pytest.approx(1.0)


def test_district_selection_by_region(fake_results) -> None:
    plan = plan_for_results(fake_results, 2025, "hospital", districts="expansion", budget=3, config=SMALL)
    assert set(plan.demand["district"]) == {"500112", "500105"}  # Yubei and Jiangbei are expansion
    with pytest.raises(InputError, match="districts"):
        plan_for_results(fake_results, 2025, "hospital", districts="atlantis", config=SMALL)
    with pytest.raises(InputError, match="year"):
        plan_for_results(fake_results, 2040, "hospital", config=SMALL)


def _write(path, rows, cols):
    pd.DataFrame(rows, columns=cols).to_csv(path, index=False)
    return path


@pytest.mark.parametrize(("rows", "cols", "where", "reason"), [
    ([[106.5, 29.5]], ["lon", "lat"], "columns", "needs column"),
    ([[106.5, 29.5, 1], [106.5, np.nan, 2]], ["lon", "lat", "weight"], "row 3, column lat", "finite"),
    ([[106.5, 29.5, 1], [196.5, 29.5, 2]], ["lon", "lat", "weight"], "row 3, column lon", "within"),
    ([[106.5, 29.5, -1]], ["lon", "lat", "weight"], "row 2, column weight", ">= 0"),
    ([["a", 106.5, 29.5, 1], ["a", 106.6, 29.5, 1]], ["id", "lon", "lat", "weight"], "row 3, column id", "duplicate"),
])
def test_bad_demand_csv(tmp_path, rows, cols, where, reason) -> None:
    f = _write(tmp_path / "d.csv", rows, cols)
    with pytest.raises(InputError) as e:
        plan_from_csv(f, "clinic", config=SMALL)
    assert e.value.source == str(f) and e.value.field.startswith(where) and reason in e.value.reason


def test_bad_existing_capacity(tmp_path) -> None:
    d = _write(tmp_path / "d.csv", [[106.55, 29.56, 5]], ["lon", "lat", "weight"])
    e = _write(tmp_path / "e.csv", [[106.55, 29.56, -3]], ["lon", "lat", "capacity"])
    with pytest.raises(InputError, match="row 2, column capacity"):
        plan_from_csv(d, "clinic", existing_csv=e, config=SMALL)


def test_csv_plan_and_cli(tmp_path, capsys) -> None:
    rng = np.random.default_rng(0)
    n = 400
    d = _write(tmp_path / "d.csv", np.column_stack([106.50 + 0.08 * rng.random(n), 29.52 + 0.08 * rng.random(n),
                                                     rng.integers(1, 50, n)]), ["lon", "lat", "weight"])
    c = _write(tmp_path / "c.csv", [[f"c{i}", 106.50 + 0.08 * x, 29.52 + 0.08 * y] for i, (x, y) in
                                    enumerate(rng.random((60, 2)))], ["id", "lon", "lat"])
    e = _write(tmp_path / "e.csv", [["old1", 106.54, 29.56, 2000]], ["id", "lon", "lat", "capacity"])
    out = tmp_path / "out"
    argv = ["site", "--demand", str(d), "--candidates", str(c), "--existing", str(e), "--facility", "clinic",
            "--budget", "4", "--model", "mclp", "--out", str(out), "-q"]
    assert cli_main(argv) == 0
    assert "clinic: " in capsys.readouterr().out
    sites = pd.read_csv(out / "sites.csv")
    assert (sites["status"] == "new").sum() == 4 and (sites["status"] == "existing").sum() == 1
    summ = pd.read_csv(out / "summary.csv").iloc[0]
    assert summ["weighted_after_pct"] > summ["weighted_before_pct"]
    assert cli_main(argv) == 2  # an earlier plan is not replaced silently
    assert cli_main(argv + ["--overwrite"]) == 0
    assert cli_main(["site", "--demand", str(d), "--facility", "clinic", "--budget", "-1", "-q"]) == 2
    assert cli_main(["site", "--facility", "clinic", "-q"]) == 2  # neither --results nor --demand


def test_p_median_through_the_cli(tmp_path, capsys) -> None:
    """p-median is selectable from the CLI (registry name) and solves a small instance to optimality."""
    rng = np.random.default_rng(5)
    n = 120
    pts = np.column_stack([106.50 + 0.03 * rng.random(n), 29.52 + 0.03 * rng.random(n), rng.integers(1, 9, n)])
    d = _write(tmp_path / "d.csv", pts, ["lon", "lat", "weight"])
    c = _write(tmp_path / "c.csv", [[f"c{i}", 106.50 + 0.03 * x, 29.52 + 0.03 * y] for i, (x, y) in
                                    enumerate(rng.random((12, 2)))], ["id", "lon", "lat"])
    out = tmp_path / "pm"
    assert cli_main(["site", "--demand", str(d), "--candidates", str(c), "--facility", "clinic", "--budget", "3",
                     "--model", "p_median", "--out", str(out), "-q"]) == 0
    assert "[p_median]" in capsys.readouterr().out
    summ = pd.read_csv(out / "summary.csv").iloc[0]
    assert summ["model"] == "p_median" and summ["status"] == "optimal" and summ["new_sites"] == 3
    # brute force over all 3-subsets of the 12 candidates on the same walking minutes
    from migration_abm.siting.plan import _circuity, walk_minutes

    cand, dem = pd.read_csv(c), pd.read_csv(out / "demand.csv", dtype={"district": str})
    s = SitingSettings()
    cost = walk_minutes(pts[:, :2], cand[["lon", "lat"]].to_numpy(), _circuity(dem, s), s)
    best = min(pts[:, 2] @ cost[:, list(k)].min(axis=1) for k in itertools.combinations(range(12), 3))
    assert summ["objective"] == pytest.approx(best, rel=1e-6)


def test_settings_validation() -> None:
    with pytest.raises(InputError, match="unknown key"):
        SitingSettings.from_dict({"walkspeed": 5})
    with pytest.raises(InputError, match="walk_speed_kmh"):
        SitingSettings.from_dict({"walk_speed_kmh": -1})
    with pytest.raises(InputError, match="model"):
        SitingSettings.from_dict({"model": "magic"})
    with pytest.raises(InputError, match="facilities.school"):
        SitingSettings.from_dict({"facilities": {"school": {"capacity": 3}}})
    s = SitingSettings.from_dict({"district_circuity": {"500101": 1.5}, "facilities": {"clinic": {"minutes": 15}}})
    assert s.district_circuity["500103"] == pytest.approx(1.37) and s.district_circuity["500101"] == 1.5
    assert s.facility("clinic").minutes == 15
    assert s.radius_km(10) == pytest.approx(4.8 * 10 / 60 / 1.2)
    hosp = s.facility("hospital")
    assert hosp.beds_per_1000 is not None and hosp.beds_per_1000.verified and not hosp.capacity.verified
