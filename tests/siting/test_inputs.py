"""Planning inputs: the run's own geography, travel-time tables, existing-facility files, "assumed" labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import FakeResults

from migration_abm.errors import InputError
from migration_abm.geography import Geography, load_districts
from migration_abm.siting import SitingSettings, plan_for_results, plan_from_csv
from migration_abm.siting.plan import _circuity, walk_minutes
from migration_abm.siting.plot import map_title

FAST = {"points_total": 2500, "n_candidates": 250, "time_limit_s": 5, "model": "mclp", "mip_gap": 0.01}


def _user_table_results(tmp_path) -> tuple[FakeResults, set[str]]:
    """The packaged table with 500112 recoded as 900112, boundaries 'none', as a run would store it."""
    table = load_districts()
    table["code"] = table["code"].astype(str).replace({"500112": "900112"})
    path = tmp_path / "my_districts.csv"
    table.drop(columns=["pop_2000_imputed"]).to_csv(path, index=False)
    codes = load_districts()["code"].astype(str).tolist()
    res = FakeResults(codes, {})
    res.codes = np.asarray([c if c != "500112" else "900112" for c in codes])
    res._urban = {y: s.rename(index={"500112": "900112"}) for y, s in res._urban.items()}
    res.config_toml = f'[data]\nregions = "{path}"\nboundaries = "none"\n'
    want = set(table.loc[table["functional_region"].isin(["expansion", "new_development"]), "code"])
    return res, want


def test_user_district_table_flows_through(tmp_path) -> None:
    """Every expansion and new-development district of the user's table (recoded 900112 included) is in
    the plans, whether the geography is rebuilt from the results' config or passed in."""
    res, want = _user_table_results(tmp_path)
    assert "900112" in want and len(want) == 20
    for geo in (None, Geography.load(str(tmp_path / "my_districts.csv"), None)):
        plan = plan_for_results(res, 2030, "primary_school", districts="expansion,new_development", budget=5,
                                config=FAST, geography=geo)
        assert set(plan.districts["district"]) == want
        assert set(plan.demand["district"]) == want
        assert plan.boundaries is None and any("disc" in n for n in plan.notes)
        assert plan.district_names["900112"] == "Yubei"


def test_travel_time_table_equals_radius(tmp_path) -> None:
    """A table listing the straight-line walking minutes of every pair gives the radius plan exactly."""
    rng = np.random.default_rng(3)
    n, m = 300, 40
    dem = pd.DataFrame({"id": [f"d{i}" for i in range(n)], "lon": 106.50 + 0.05 * rng.random(n),
                        "lat": 29.55 + 0.05 * rng.random(n), "weight": rng.integers(1, 40, n)})
    cand = pd.DataFrame({"id": [f"c{j}" for j in range(m)], "lon": 106.50 + 0.05 * rng.random(m),
                         "lat": 29.55 + 0.05 * rng.random(m)})
    dem.to_csv(tmp_path / "d.csv", index=False)
    cand.to_csv(tmp_path / "c.csv", index=False)
    cfg = {"mip_gap": 0.0, "time_limit_s": 30}
    by_radius = plan_from_csv(tmp_path / "d.csv", "clinic", candidates_csv=tmp_path / "c.csv", budget=4, config=cfg)
    s = SitingSettings()
    minutes = walk_minutes(dem[["lon", "lat"]].to_numpy(float), cand[["lon", "lat"]].to_numpy(float),
                           _circuity(by_radius.demand, s), s)
    r, c = np.nonzero(minutes <= 3 * s.facility("clinic").minutes)  # a routing engine lists nearby pairs only
    table = pd.DataFrame({"demand_id": dem["id"].to_numpy()[r], "candidate_id": cand["id"].to_numpy()[c],
                          "minutes": minutes[r, c]})
    for path in (tmp_path / "tt.csv", tmp_path / "tt.parquet"):
        table.to_csv(path, index=False) if path.suffix == ".csv" else table.to_parquet(path)
        by_table = plan_from_csv(tmp_path / "d.csv", "clinic", candidates_csv=tmp_path / "c.csv", budget=4,
                                 config=cfg, travel_times=path)
        assert sorted(by_table.new_sites["id"]) == sorted(by_radius.new_sites["id"])
        assert by_table.objective == pytest.approx(by_radius.objective)
        assert by_table.coverage_after == pytest.approx(by_radius.coverage_after)
        assert not by_table.assumed["travel"] and by_radius.assumed["travel"]
    bad = table.assign(demand_id=table["demand_id"].replace({"d0": "nobody"}))
    bad.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(InputError, match="unknown demand_id"):
        plan_from_csv(tmp_path / "d.csv", "clinic", candidates_csv=tmp_path / "c.csv", config=cfg,
                      travel_times=tmp_path / "bad.csv")


def test_existing_facility_csv_is_used_and_binds(fake_results, tmp_path) -> None:
    """The file's facilities of this kind are the plan's existing sites (ids kept, other kinds ignored),
    and their capacities bind in the capacitated model."""
    seat = load_districts().set_index("code").loc["500112"]  # Yubei's district seat: dense demand
    LON0, LAT0 = float(seat["lon"]), float(seat["lat"])  # noqa: N806
    seats = pd.DataFrame({"id": ["S1", "S2", "H1"], "lon": [LON0, LON0 + 0.01, LON0], "lat": [LAT0, LAT0, LAT0 + 0.01],
                          "capacity": [50.0, 80.0, 9999.0], "kind": ["primary_school", "primary_school", "hospital"]})
    seats.to_csv(tmp_path / "existing.csv", index=False)
    cfg = {**FAST, "model": "capacitated_mclp"}
    plan = plan_for_results(fake_results, 2030, "primary_school", districts="500112", budget=3, config=cfg,
                            existing=tmp_path / "existing.csv")
    ex = plan.sites[plan.sites["status"] == "existing"].set_index("id")
    assert sorted(ex.index) == ["S1", "S2"]
    assert np.all(ex["load"] <= ex["capacity"] + 1e-6) and np.isclose(ex["load"], ex["capacity"]).any()
    assert plan.coverage_before["weighted"] * plan.demand["weight"].sum() == pytest.approx(ex["capacity"].sum())
    assert not plan.assumed["provision"] and "assumed provision" not in plan.summary()
    seats.assign(kind="clinic").to_csv(tmp_path / "other.csv", index=False)
    with pytest.raises(InputError, match="kind"):
        plan_for_results(fake_results, 2030, "primary_school", districts="500112", config=cfg,
                         existing=tmp_path / "other.csv")


def test_assumed_labels_when_synthetic(fake_results, tmp_path) -> None:
    """Synthetic provision/demand/reach is called "assumed" on the console line, the map title and the CSVs."""
    plan = plan_for_results(fake_results, 2030, "hospital", districts="500105", budget=2, config=FAST,
                            out_dir=tmp_path / "out")
    assert plan.assumed["provision"] and plan.assumed["demand"] and plan.assumed["travel"]
    assert "assumed provision, demand and travel" in plan.summary()
    assert "ASSUMED PROVISION" in map_title(plan)
    summ = pd.read_csv(tmp_path / "out" / "summary.csv").iloc[0]
    assert summ["provision"] == "assumed" and summ["demand"] == "assumed" and "ASSUMED" in summ["notes"]
    sites = pd.read_csv(tmp_path / "out" / "sites.csv")
    assert sites.loc[sites["status"] == "existing", "assumed"].all()
    # a planner's own demand, sites and travel times: nothing assumed, no label
    d = plan.demand[["id", "lon", "lat", "weight", "district"]]
    d.to_csv(tmp_path / "d.csv", index=False)
    ex = plan.sites[plan.sites["status"] == "existing"][["id", "lon", "lat", "capacity"]]
    ex.to_csv(tmp_path / "e.csv", index=False)
    ex.assign(id="c" + ex["id"]).to_csv(tmp_path / "c.csv", index=False)
    tt = pd.DataFrame({"demand_id": d["id"], "site_id": ex["id"].iloc[0], "minutes": 5.0})
    tt.to_csv(tmp_path / "tt.csv", index=False)
    own = plan_from_csv(tmp_path / "d.csv", "hospital", candidates_csv=tmp_path / "c.csv",
                        existing_csv=tmp_path / "e.csv", budget=0, config=FAST, travel_times=tmp_path / "tt.csv")
    assert own.assumption_label() == "" and "assumed" not in own.summary().lower()
    assert "ASSUMED" not in map_title(own)
