"""The population-by-region notebook runs end to end; the compare report and CLI help work."""

from __future__ import annotations

from pathlib import Path

import pytest

from migration_abm.cli import main as exp_main
from migration_abm.experiments import load_experiment, run_sweep
from migration_abm.experiments.toy import toy_simulate

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "experiments" / "notebooks" / "population_by_region.ipynb"


def test_notebook_executes(toy_toml: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    from migration_abm.config import load_config

    run_path = tmp_path / "run.h5"
    toy_simulate(load_config(None, {"run.end_year": 2016}), seed=3).to_hdf5(run_path)
    sweep_path = tmp_path / "sweep.h5"
    run_sweep(load_experiment(toy_toml), sweep_path, "serial", progress=False)
    monkeypatch.setenv("MIGRATION_ABM_RUN", str(run_path))
    monkeypatch.setenv("MIGRATION_ABM_SWEEP", str(sweep_path))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 2


def test_cli_help(capsys: pytest.CaptureFixture[str]) -> None:
    for cmd in ("sweep", "compare"):
        with pytest.raises(SystemExit) as exc:
            exp_main([cmd, "--help"])
        assert exc.value.code == 0
        assert "--scheduler" in capsys.readouterr().out


def test_cli_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('design = "nope"\n', encoding="utf-8")
    assert exp_main(["sweep", str(bad), "--serial"]) == 2
    assert "design" in capsys.readouterr().err
    assert exp_main(["sweep", str(tmp_path / "missing.toml")]) == 2
    assert exp_main(["compare", str(tmp_path / "missing.toml")]) == 2
    assert exp_main(["sweep", str(bad), "--workers", "0"]) == 2


def test_compare_report_real_model(tmp_path: Path) -> None:
    base, other = REPO / "configs" / "baseline.toml", REPO / "configs" / "no_policy.toml"
    if not (base.exists() and other.exists()):
        pytest.skip("scenario configs not available")
    out = tmp_path / "cmp"
    rc = exp_main(["compare", str(base), str(other), "--replicates", "3", "--out", str(out), "--serial",
                   "--set", "run.households_per_agent=5000", "--set", "run.end_year=2026", "--no-progress"])
    assert rc == 0
    text = (out / "report.md").read_text(encoding="utf-8")
    assert "same 3 replicate seeds" in text and "not** uncertainty in" in text
    assert "no_policy − baseline" in text and "Key figures, 2026" in text
    for png in ("population_by_region.png", "difference_vs_baseline.png", "eco_net_outflow.png",
                "hukou_conversions.png"):
        assert (out / png).stat().st_size > 1000
    assert (out / "key_figures.csv").exists() and (out / "compare.h5").exists()
