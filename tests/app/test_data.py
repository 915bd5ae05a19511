"""The page's data layer without a browser: levers from the schema, runs and their reuse, bands,
paired differences, key figures, map values, the results-folder listing, and the command's checks."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from migration_abm.app import data
from migration_abm.config import load_config
from migration_abm.errors import InputError

SMALL = ["run.households_per_agent=4000", "run.end_year=2023"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("app_runs")
    base = load_config("configs/baseline.toml", SMALL)
    other = load_config("configs/baseline.toml", SMALL + ["policy.hukou.apply_rate=0.05"])
    seen: list[float] = []
    a, _ = data.run_scenario(base, "base", [1, 2], out, seen.append)
    b, _ = data.run_scenario(other, "slow", [1, 2], out)
    return out, a, b, seen


def test_levers_carry_the_schema_range_and_doc():
    lv = {x.key: x for x in data.levers(load_config().policy.hukou, "policy.hukou")}
    rate = lv["policy.hukou.apply_rate"]
    assert (rate.kind, rate.lo, rate.hi, rate.range_text) == ("float", 0.0, 1.0, "[0, 1]")
    assert rate.doc == "yearly probability an eligible household applies"
    assert lv["policy.hukou.core.min_years"].kind == "int"
    assert lv["policy.hukou.enabled"].range_text == "true / false"


def test_run_scenario_writes_files_reports_progress_and_reuses_identical_runs(runs):
    out, a, _, seen = runs
    assert a.pop.shape == (2, 4, 38) and [s.split(";")[0] for s in a.seeds] == ["entropy=1", "entropy=2"]
    assert all(p.startswith(str(out)) and p.endswith(f"_seed{s}.h5") for p, s in zip(a.sources, (1, 2), strict=True))
    assert seen == sorted(seen) and seen[-1] == 1.0
    assert [data.run_seed(r) for r in a.results] == [1, 2]
    again, reused = data.run_scenario(load_config("configs/baseline.toml", SMALL), "base", [1, 2], out)
    assert reused == 2 and np.array_equal(again.pop, a.pop)


def test_paired_differences_and_key_figures(runs):
    _, a, b, _ = runs
    diff, paired = data.difference(b, a, "zone")
    assert paired and diff.shape == (2, 4, 4)
    assert np.allclose(diff, data.by_area(b, "zone") - data.by_area(a, "zone"))
    assert np.allclose(data.by_area(a, "zone").sum(-1), a.pop.sum(-1))  # zones partition the city
    kf = data.key_figures([a, b], a, "region", 2023)
    assert len(kf) == 10 and (kf[kf.scenario == "base"]["difference_vs_reference"] == 0).all()
    row = kf[(kf.scenario == "slow") & (kf.area == "core")].iloc[0]
    d, _ = data.difference(b, a, "region")
    assert row["difference_vs_reference"] == round(float(np.median(d[:, list(a.years).index(2023), 0])))


def test_map_values_and_observed_points(runs):
    _, a, _, _ = runs
    pop = data.district_values(a, 2023, "population")
    assert len(pop) == 38 and np.isclose(pop.sum(), np.median(a.pop[:, -1], axis=0).sum())
    change = data.district_values(a, 2020, "change")
    assert np.allclose(change, 0)
    with pytest.raises(InputError, match="not simulated"):
        data.district_values(a, 2040, "population")
    obs = data.observed("zone")
    assert (2022, 10477600.0) in obs["main_city"]
    core = dict(data.observed("region")["core"])
    assert core[2010] == 630090.0  # 渝中 in the 2010 census
    names = data.labels_by_code()
    gj = data.boundaries_geojson()
    assert len(gj["features"]) == 38 and {f["properties"]["name"] for f in gj["features"]} == set(names.values())


def test_results_listing_opens_runs(runs):
    out, a, _, _ = runs
    table = data.list_results(out)
    assert set(table["kind"]) == {"run"} and len(table) == 4
    (scn,) = data.open_entry(table["path"][0])
    assert scn.n_replicates == 1 and scn.pop.shape[1:] == a.pop.shape[1:]
    (out / "junk.h5").write_text("not hdf5")
    with pytest.raises(InputError, match="not a readable HDF5"):
        data.open_entry(out / "junk.h5")


def test_app_command_checks_its_flags(cli, tmp_path):
    from migration_abm.app import server_command

    code, _, err = cli("app", "--port", "70000")
    assert code == 2 and "--port: port = 70000: must be within [0, 65535]" in err
    f = tmp_path / "file"
    f.write_text("")
    code, _, err = cli("app", "--results", str(f))
    assert code == 2 and "is not a directory" in err
    cmd, env = server_command(8000, tmp_path)
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1" and env["MIGRATION_ABM_RESULTS"] == str(tmp_path.resolve())


def test_sweep_store_opens_as_one_scenario_per_point(tmp_path):
    from migration_abm.experiments import load_experiment, run_sweep

    spec = tmp_path / "toy.toml"
    spec.write_text('name = "toy"\ndesign = "grid"\nreplicates = 2\nseed = 7\n'
                    'run_function = "migration_abm.experiments.toy:toy_simulate"\n'
                    'outputs = ["population", "in_migrants", "out_migrants", "external_in", "external_out"]\n'
                    '[set]\n"run.end_year" = 2023\n'
                    '[parameters."behaviour.beta_stay"]\nvalues = [0.0, 2.0]\n', encoding="utf-8")
    store = tmp_path / "toy.h5"
    run_sweep(load_experiment(spec), store, "serial", progress=False)
    table = data.list_results(tmp_path)
    assert list(table["kind"]) == ["sweep"] and "2 point(s) × 2 replicate(s), 4 done" in table["detail"][0]
    scns = data.open_entry(store)
    assert [s.name for s in scns] == ["toy: base #0 (behaviour.beta_stay=0)", "toy: base #1 (behaviour.beta_stay=2)"]
    assert all(s.pop.shape == (2, 14, 38) and np.isfinite(s.net_migration).all() for s in scns)
    diff, paired = data.difference(scns[1], scns[0], "region")
    assert paired and diff.shape == (2, 14, 5)


def test_config_choices_lists_scenarios_not_shared_fragments():
    names = {Path(p).name for p in data.config_choices()}
    assert {"baseline.toml", "no_policy.toml", "hindcast_2010.toml"} <= names
    assert not names & {"calibrated.toml", "calibrated_2020.toml", "policies_adopted.toml"}


def test_population_bands_carry_the_configs_model_discrepancy(runs):
    """Levels (charts, key figures) get the config's run.share_discrepancy_sd as `run`'s bands do; each
    sample keeps its replicate's city total; the paired differences leave the discrepancy out."""
    _, a, b, _ = runs
    sd = load_config("configs/baseline.toml").run.share_discrepancy_sd
    assert sd > 0 and a.share_sd == sd
    t = len(a.years) - 1
    lv = data.by_area(a, "zone", "levels")
    reps = data.by_area(a, "zone")
    draws = lv.shape[0] // a.n_replicates
    assert draws > 1 and lv.shape == (a.n_replicates * draws, *reps.shape[1:])
    assert np.allclose(lv.reshape(a.n_replicates, draws, *reps.shape[1:]).sum(-1), a.pop.sum(-1)[:, None])
    width = lambda x: np.quantile(x[:, t], 0.95, axis=0) - np.quantile(x[:, t], 0.05, axis=0)  # noqa: E731
    assert (width(lv) > width(reps)).all()
    kf = data.key_figures([a, b], a, "zone", int(a.years[-1]))
    row = kf[(kf.scenario == "base") & (kf.area == "southeast_eco")].iloc[0]
    assert row["population_q95"] - row["population_q05"] == pytest.approx(width(lv)[3], abs=2)
    diff, paired = data.difference(b, a, "zone")
    assert paired and np.allclose(diff, data.by_area(b, "zone") - reps)
    plain = dataclasses.replace(a, share_sd=0.0, _levels=None)
    assert data.levels(plain) is plain.pop


def test_replicates_draw_the_posterior_as_run_does(runs):
    """With run.posterior each seed draws its own parameter set, the same one under every scenario."""
    _, a, b, _ = runs
    rate = [r.config_toml.split("return_rate = ")[1].split("\n")[0] for r in (*a.results, *b.results)]
    assert rate[0] != rate[1] and rate[:2] == rate[2:]


def test_an_edited_posterior_parameter_keeps_the_users_value(tmp_path):
    """A lever the user set is not replaced by the posterior draw (as `run --set` keeps it)."""
    cfg = load_config("configs/baseline.toml", SMALL + ["behaviour.return_rate=0.0123"])
    scn, _ = data.run_scenario(cfg, "edited", [1, 2], tmp_path, fixed=("behaviour.return_rate",))
    assert all("return_rate = 0.0123\n" in r.config_toml for r in scn.results)
    drawn, _ = data.run_scenario(cfg, "drawn", [1], tmp_path)
    assert "return_rate = 0.0123\n" not in drawn.results[0].config_toml
