"""The whole mission on a reduced baseline: project, then site primary schools for the final year."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from migration_abm.cli import main
from migration_abm.config import load_config
from migration_abm.model import simulate
from migration_abm.siting import plan_for_results

ROOT = Path(__file__).resolve().parents[1]


def test_baseline_then_primary_schools_raise_coverage(tmp_path: Path) -> None:
    cfg = load_config(ROOT / "configs/baseline.toml", {"run.households_per_agent": 2000.0, "run.end_year": 2030})
    res = simulate(cfg, seed=3)
    plan = plan_for_results(res, 2030, "primary_school", districts="expansion,new_development", budget=15,
                            seed=3, out_dir=tmp_path / "plan")
    assert 0 < len(plan.new_sites) <= 15
    assert plan.coverage_after["weighted"] > plan.coverage_before["weighted"]
    assert plan.gap <= 0.01 + 1e-9
    assert (tmp_path / "plan" / "sites.geojson").stat().st_size > 0


def test_make_run_main_job_writes_projection_and_plans(tmp_path: Path) -> None:
    """What `make run` does (`migration-abm run configs/baseline.toml --site`), at a reduced scale."""
    out = tmp_path / "baseline.h5"
    code = main(["run", str(ROOT / "configs/baseline.toml"), "--site", "--out", str(out), "-q",
                 "--set", "run.households_per_agent=4000", "--set", "run.end_year=2025", "--replicates", "3"])
    assert code == 0 and out.exists() and out.with_suffix(".png").exists()
    bands = pd.read_csv(out.with_name("baseline_bands.csv"))
    assert set(bands.area) == {"main_city", "new_development", "northeast_eco", "southeast_eco", "city"}
    assert list(bands.year.unique()) == list(range(2020, 2026))
    assert (bands["q2.5"] <= bands["q50"]).all() and (bands["q50"] <= bands["q97.5"]).all()
    for facility in ("primary_school", "hospital"):
        d = tmp_path / "baseline_siting" / facility
        summary = pd.read_csv(d / "summary.csv")
        assert summary["weighted_after_pct"].iloc[0] >= summary["weighted_before_pct"].iloc[0]
        assert (d / "map.png").exists() and (d / "sites.csv").exists()


def test_run_site_uses_a_users_own_district_table(tmp_path: Path) -> None:
    """A user's table (the packaged one with 渝北 500112 recoded as 900112, no boundaries) flows through
    `run --site` unchanged: every expansion and new-development district of that table is planned for."""
    table = pd.read_csv(ROOT / "migration_abm/data/chongqing_districts.csv", dtype={"code": str})
    table["code"] = table["code"].replace({"500112": "900112"})
    regions = tmp_path / "my_districts.csv"
    table.to_csv(regions, index=False)
    cfg = tmp_path / "my.toml"
    cfg.write_text(f'extends = "{(ROOT / "configs/baseline.toml").as_posix()}"\n'
                   f'[data]\nregions = "{regions.as_posix()}"\nboundaries = "none"\n'
                   '[economy]\ndistrict_gdp_year = 0\n', encoding="utf-8")
    out = tmp_path / "my.h5"
    code = main(["run", str(cfg), "--site", "--out", str(out), "-q", "--replicates", "1",
                 "--set", "run.households_per_agent=4000", "--set", "run.end_year=2022"])
    assert code == 0
    expected = set(table.loc[table.functional_region.isin(["expansion", "new_development"]), "code"])
    assert "900112" in expected and len(expected) == 20
    for facility in ("primary_school", "hospital"):
        planned = set(pd.read_csv(tmp_path / "my_siting" / facility / "districts.csv", dtype={"district": str})["district"])
        assert planned == expected, facility
