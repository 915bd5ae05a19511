"""Experiment specification: parsing, validation errors, designs and the seeding contract."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from migration_abm.config import load_config
from migration_abm.errors import ConfigError
from migration_abm.experiments import Experiment, load_experiment

REPO = Path(__file__).resolve().parents[2]
TOY = "migration_abm.experiments.toy:toy_simulate"


def test_grid_from_toml(toy_toml: Path) -> None:
    exp = load_experiment(toy_toml)
    assert exp.n_points == 6 and exp.n_runs == 12
    pts = exp.design_points()
    assert [p.values for p in pts[:2]] == [(-20.0, 0), (-20.0, 5)]
    cfg = exp.point_config(pts[1])
    assert cfg.policy.hukou.core.min_years == 5 and cfg.policy.hukou.expansion.min_years == 5
    assert cfg.run.end_year == 2016


def test_from_dict_with_config_objects() -> None:
    base = load_config(None, {"run.end_year": 2012})
    exp = Experiment.from_dict({"scenarios": {"a": base, "b": base.with_overrides({"behaviour.beta_income": 2.0})},
                                "design": "lhs", "samples": 5, "replicates": 3, "seed": 1,
                                "parameters": {"behaviour.beta_cost": {"min": 0.5, "max": 1.5}}, "run_function": TOY})
    assert exp.n_points == 10 and exp.n_runs == 30
    vals = np.array([p.values[0] for p in exp.design_points()[:5]])
    assert np.all((vals >= 0.5) & (vals <= 1.5))
    # LHS: one sample per stratum
    assert sorted(np.floor((vals - 0.5) * 5).astype(int)) == [0, 1, 2, 3, 4]
    assert exp.point_config(exp.design_points()[7]).behaviour.beta_income == 2.0


def test_designs_deterministic_and_sobol_layout() -> None:
    raw = {"design": "sobol", "samples": 8, "seed": 3, "run_function": TOY,
           "parameters": {"behaviour.beta_cost": {"min": 0.0, "max": 2.0},
                          "policy.hukou.core.min_years": {"min": 0, "max": 10}}}
    a, b = Experiment.from_dict(raw), Experiment.from_dict(raw)
    assert a.n_points == 8 * 4
    pa, pb = a.design_points(), b.design_points()
    assert pa == pb
    assert all(isinstance(p.values[1], int) and 0 <= p.values[1] <= 10 for p in pa)
    A, B, AB1 = pa[0:8], pa[8:16], pa[16:24]
    assert all(ab.values[0] == bb.values[0] and ab.values[1] == aa.values[1]
               for aa, bb, ab in zip(A, B, AB1, strict=True))
    other = Experiment.from_dict({**raw, "seed": 4}).design_points()
    assert other != pa


def test_seed_contract_crn_and_independent() -> None:
    raw = {"design": "grid", "seed": 11, "replicates": 3, "run_function": TOY,
           "parameters": {"behaviour.beta_cost": {"values": [0.5, 1.0]}}}
    crn = Experiment.from_dict(raw)
    ind = Experiment.from_dict({**raw, "common_random_numbers": False})
    state = lambda e, p, r: tuple(e.run_seed(p, r).generate_state(4))  # noqa: E731
    assert state(crn, 0, 1) == state(crn, 1, 1) != state(crn, 0, 2)
    assert state(ind, 0, 1) != state(ind, 1, 1)
    # spawned from one root SeedSequence
    root = np.random.SeedSequence(11)
    assert state(ind, 1, 2) == tuple(root.spawn(2)[1].spawn(3)[2].generate_state(4))
    assert state(crn, 0, 2) == tuple(np.random.SeedSequence(11).spawn(3)[2].generate_state(4))


@pytest.mark.parametrize("text, field", [
    ('bogus = 1', "bogus"),
    ('design = "factorial"\n[parameters."behaviour.beta_cost"]\nvalues = [1.0]', "design"),
    ('outputs = ["population", "nonsense"]', "outputs[1]"),
    ('[parameters."behaviour.no_such_thing"]\nvalues = [1.0]', "parameters.behaviour.no_such_thing.keys"),
    ('[parameters."behaviour.beta_cost"]\nvalues = [-5.0]', "parameters.behaviour.beta_cost"),
    ('design = "lhs"\nsamples = 4\n[parameters."behaviour.beta_cost"]\nmin = 2.0\nmax = 1.0', "parameters.behaviour.beta_cost.max"),
    ('[parameters."behaviour.beta_cost"]\nmin = 0.0\nmax = 1.0', "parameters.behaviour.beta_cost.levels"),
    ('[parameters."run.end_year"]\nvalues = [2020]', "parameters.run.end_year.keys"),
    ('design = "sobol"\n[parameters."behaviour.beta_cost"]\nmin = 0.0\nmax = 1.0', "samples"),
    ('replicates = 0', "replicates"),
    ('[parameters."policy.hukou.core.min_years"]\nmin = 0\nmax = 2\nlevels = 5', "parameters.policy.hukou.core.min_years.levels"),
    ('[parameters.x]\nkeys = "behaviour.beta_cost"\nvalues = [1.0]\nstep = 2', "parameters.x.step"),
    ('base = "missing.toml"', "base"),
    ('[set]\n"behaviour.beta_cost" = -1.0', "set.behaviour.beta_cost"),
])
def test_bad_experiments_raise_config_error(tmp_path: Path, text: str, field: str) -> None:
    p = tmp_path / "bad.toml"
    p.write_text(f'seed = 1\n{text}\n', encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_experiment(p)
    assert exc.value.field == field
    assert str(p.resolve()) in str(exc.value) and "\n" not in str(exc.value)


def test_shipped_experiments_load() -> None:
    if not (REPO / "configs" / "baseline.toml").exists():
        pytest.skip("configs not available")
    names = ("hukou_job_matching", "behaviour_lhs", "sensitivity_sobol", "policy_scenarios")
    designs = {load_experiment(REPO / "experiments" / f"{n}.toml").design for n in names}
    assert {"grid", "lhs", "sobol"} <= designs


def test_direct_dataclass_construction(tmp_path: Path) -> None:
    from migration_abm.experiments import Parameter, run_sweep
    from migration_abm.experiments.spec import Scenario

    base = load_config(None, {"run.end_year": 2012})
    exp = Experiment(name="direct", scenarios=(Scenario("base", base),), design="grid", replicates=2, seed=5,
                     parameters=(Parameter("cov", ("policy.job_matching.coverage",), values=(0.1, 0.2)),),
                     run_function=TOY, outputs=("population",))
    s = run_sweep(exp, tmp_path / "d.h5", "serial", progress=False)
    assert s.done == 4
    with pytest.raises(ConfigError):
        Experiment(name="x", scenarios=(Scenario("base", base),), design="lhs", samples=0, seed=1,
                   parameters=exp.parameters)
