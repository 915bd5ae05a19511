"""Scenario comparison report on the toy model: numeric key figures in persons."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from migration_abm.experiments import ExecutorSpec
from migration_abm.experiments.compare import compare

REPO = Path(__file__).resolve().parents[2]
TOY = "migration_abm.experiments.toy:toy_simulate"


def test_key_figures_are_numbers_in_persons(tmp_path: Path) -> None:
    base, other = REPO / "configs" / "baseline.toml", REPO / "configs" / "no_policy.toml"
    if not (base.exists() and other.exists()):
        pytest.skip("scenario configs not available")
    report, summary = compare([base, other], tmp_path / "cmp", 4, {"run.end_year": 2025}, ExecutorSpec("serial"),
                              progress=False, run_function=TOY)
    assert summary.failed == 0
    kf = pd.read_csv(tmp_path / "cmp" / "key_figures.csv")
    assert list(kf.columns) == ["config", "kind", "quantity", "area", "unit", "median", "lo", "hi", "replicates"]
    for col in ("median", "lo", "hi"):
        assert pd.api.types.is_float_dtype(kf[col]), col
    assert (kf["lo"] <= kf["median"]).all() and (kf["median"] <= kf["hi"]).all()
    assert set(kf["unit"]) == {"persons"} and set(kf["kind"]) == {"level", "difference"}
    city = kf[(kf.config == "baseline") & (kf.quantity == "population_2025") & (kf.area == "Whole municipality")]
    regions = kf[(kf.config == "baseline") & (kf.quantity == "population_2025") & (kf.area != "Whole municipality")]
    assert len(city) == 1 and len(regions) == 5 and city["median"].item() > 2e7  # persons, not millions
    assert "in persons" in report.read_text(encoding="utf-8")


def test_discrepancy_widens_level_bands_but_not_paired_differences(tmp_path: Path) -> None:
    """run.share_discrepancy_sd adds the model's structural share error to the population levels, with
    the same draws under every config, so the paired differences are those without it."""
    base, other = REPO / "configs" / "baseline.toml", REPO / "configs" / "no_policy.toml"
    kf = {}
    for sd in (0.0, 0.3):
        compare([base, other], tmp_path / f"cmp{sd}", 4, {"run.end_year": 2025, "run.share_discrepancy_sd": sd},
                ExecutorSpec("serial"), progress=False, run_function=TOY)
        kf[sd] = pd.read_csv(tmp_path / f"cmp{sd}" / "key_figures.csv")
    pop = "population_2025"
    for sd, t in kf.items():
        kf[sd] = t[t.quantity == pop].set_index(["config", "kind", "area"])
    diff = kf[0.3].xs("difference", level="kind")
    pd.testing.assert_frame_equal(diff, kf[0.0].xs("difference", level="kind"))
    lvl0, lvl = kf[0.0].xs("level", level="kind"), kf[0.3].xs("level", level="kind")
    regions = [a for a in lvl.index.get_level_values("area").unique() if a != "Whole municipality"]
    width = (lvl.hi - lvl.lo).loc[("baseline", regions)]
    assert (width > (lvl0.hi - lvl0.lo).loc[("baseline", regions)]).all()
    report = (tmp_path / "cmp0.3" / "report.md").read_text(encoding="utf-8")
    assert "share_discrepancy_sd` = 0.3, 0.3" in report
    assert set(lvl.replicates) == {4}  # runs, not runs × discrepancy draws
