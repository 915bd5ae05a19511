"""Fixtures for the experiments tests: tiny experiment TOMLs for the toy and the real model."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BASELINE = REPO / "configs" / "baseline.toml"
TOY = "migration_abm.experiments.toy:toy_simulate"


def write_toml(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def toy_toml(tmp_path: Path) -> Path:
    """3 × 2 grid × 2 replicates of the toy model; point values beta_stay = -20 fail deliberately."""
    return write_toml(tmp_path / "toy.toml", f'''
name = "toy"
design = "grid"
replicates = 2
seed = 7
run_function = "{TOY}"
outputs = ["population", "in_migrants", "hukou_conversions"]
[set]
"run.end_year" = 2016
[parameters."behaviour.beta_stay"]
values = [-20.0, 0.0, 2.0]
[parameters.hukou_years]
keys = ["policy.hukou.core.min_years", "policy.hukou.expansion.min_years"]
min = 0
max = 5
levels = 2
''')


@pytest.fixture
def real_toml(tmp_path: Path) -> Path:
    """A 2 × 2 grid × 2 replicates of the real model at a tiny scale."""
    if not BASELINE.exists():
        pytest.skip("configs/baseline.toml not available")
    return write_toml(tmp_path / "real.toml", f'''
name = "real_small"
base = "{BASELINE.as_posix()}"
design = "grid"
replicates = 2
seed = 2024
common_random_numbers = true
[set]
"run.households_per_agent" = 5000
"run.end_year" = 2025
[parameters."policy.job_matching.coverage"]
values = [0.0, 0.6]
[parameters."policy.hukou.expansion.min_years"]
values = [1, 5]
''')
