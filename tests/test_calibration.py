"""ABC-SMC calibration: a toy posterior with a known answer, the fit_until rule, files and reproducibility."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from migration_abm.calibration import (
    BEGIN,
    END,
    POSTERIOR,
    CalibrationSpec,
    abc_smc,
    apply_calibration,
    apply_fitted,
    build_targets,
    calibrate,
    distance,
    fitted_block,
    model_simulator,
    posterior_draws,
    posterior_parameters,
    read_posterior,
    share_errors,
    target_errors,
)
from migration_abm.cli import main
from migration_abm.config import load_config
from migration_abm.errors import ConfigError, InputError
from migration_abm.observations import Observations

ROOT = Path(__file__).resolve().parents[1]


def _weighted(res: pd.DataFrame, col: str) -> tuple[float, float]:
    w = res["weight"].to_numpy()
    x = res[col].to_numpy()
    m = float(w @ x)
    return m, float(np.sqrt(w @ (x - m) ** 2))


def test_posterior_of_a_normal_mean_lands_on_the_known_answer() -> None:
    # y_1..y_n ~ N(mu, 1) with mean 1.0 observed, flat prior on [-10, 10]: posterior N(1.0, 1/n).
    n, ybar = 20, 1.0

    def sim(theta: np.ndarray, g: int, b: int) -> np.ndarray:
        rng = np.random.default_rng([7, g, b])
        return np.abs(theta[:, 0] + rng.standard_normal(len(theta)) / np.sqrt(n) - ybar)

    res = abc_smc(sim, {"mu": (-10.0, 10.0)}, 2000, 8, seed=3)
    mean, sd = _weighted(res.final(), "mu")
    assert mean == pytest.approx(1.0, abs=0.03)
    assert sd == pytest.approx(1 / np.sqrt(n), rel=0.1)
    eps = res.generations["epsilon"].to_numpy()
    assert np.all(np.diff(eps[1:]) < 0)  # tolerances shrink every generation
    # same seed, same posterior
    again = abc_smc(sim, {"mu": (-10.0, 10.0)}, 2000, 8, seed=3)
    pd.testing.assert_frame_equal(res.particles, again.particles)


def test_two_parameter_posterior_separates_an_informed_and_an_uninformed_parameter() -> None:
    # the summary informs a (posterior N(0.5, 0.1²)) and says nothing about b (posterior = U(0, 1) prior)
    def sim(theta: np.ndarray, g: int, b: int) -> np.ndarray:
        rng = np.random.default_rng([11, g, b])
        return np.abs(theta[:, 0] + 0.1 * rng.standard_normal(len(theta)) - 0.5)

    res = abc_smc(sim, {"a": (-2.0, 2.0), "b": (0.0, 1.0)}, 1500, 7, seed=1)
    a_mean, a_sd = _weighted(res.final(), "a")
    b_mean, b_sd = _weighted(res.final(), "b")
    assert a_mean == pytest.approx(0.5, abs=0.02) and a_sd == pytest.approx(0.1, rel=0.15)
    assert b_mean == pytest.approx(0.5, abs=0.05) and b_sd == pytest.approx(1 / np.sqrt(12), rel=0.1)


def test_targets_and_distance_never_read_after_fit_until() -> None:
    obs = Observations.load()
    table = obs.table.copy()
    table.loc[table.year > 2013, "value"] = np.nan
    bad = replace(obs, table=table)
    clean, dirty = build_targets(obs, 2010, 2013), build_targets(bad, 2010, 2013)
    assert [(t.kind, t.year) for t in clean] == [("zones", 2013), ("city", 2013)]
    for a, b in zip(clean, dirty, strict=True):
        np.testing.assert_array_equal(a.observed, b.observed)
    later = build_targets(obs, 2010, 2020)
    assert ("districts", 2020) in [(t.kind, t.year) for t in later]


def test_distance_by_hand() -> None:
    obs = Observations.load()
    targets = build_targets(obs, 2010, 2020)
    years = np.array([2010, 2013, 2020])
    geo = obs.geography
    pop20 = obs.complete_district_population(2020)
    pop13 = pop20 * obs.value("city_total", 2013) / pop20.sum()
    pop = np.stack([pop20, pop13, pop20])
    err = target_errors(pop, years, geo, targets)
    assert np.all(err["districts_2020"] == 0) and err["city_2020"][0] == pytest.approx(0, abs=1e-12)
    assert err["city_2013"][0] == pytest.approx(0, abs=1e-12)
    z = geo.to_zones(pop13) / obs.zone_totals(2013) - 1
    np.testing.assert_allclose(err["zones_2013"], z)
    # groups (districts 2020, zones 2013, city 2013, 2020, 2021, 2022 … up to 2020) weighted equally
    n_groups = len(err)
    assert distance(err, {}) == pytest.approx(np.sqrt(np.mean(z**2) / n_groups))
    assert distance(err, {"zones": 0.0}) == pytest.approx(0.0, abs=1e-12)


def test_vital_targets_read_rates_up_to_the_cut_off_and_score_the_rate_difference() -> None:
    """With the vital group the city's crude birth and death rates after the start up to fit_until are
    targets (2021, 2022 from 2020 to 2023; none before 2012 from 2010 to 2013 but 2012, 2013); the error
    is (simulated − observed rate) / 1 000 over the mean of the year's two populations."""
    obs = Observations.load()
    kinds = [(t.kind, t.year) for t in build_targets(obs, 2020, 2023, vital=True)]
    assert [k for k in kinds if k[0].endswith("_rate")] == [
        ("birth_rate", 2021), ("birth_rate", 2022), ("death_rate", 2021), ("death_rate", 2022)]
    assert not any(t.kind.endswith("_rate") for t in build_targets(obs, 2020, 2023))
    early = build_targets(obs, 2010, 2013, vital=True)
    assert sorted({t.year for t in early if t.kind == "birth_rate"}) == [2012, 2013]
    targets = [t for t in build_targets(obs, 2020, 2022, vital=True) if t.kind.endswith("_rate")]
    years = np.array([2020, 2021, 2022])
    pop = np.full((3, 2), 500.0)  # two districts, 1 000 persons every year
    births = np.array([[0, 0], [3.0, 3.5], [2.0, 4.0]])  # 6.5 and 6.0 per 1 000
    deaths = np.array([[0, 0], [4.0, 4.0], [5.0, 3.0]])  # 8.0 and 8.0 per 1 000
    err = target_errors(pop, years, None, targets, {"births": births, "deaths": deaths})
    assert err["vital_birth_rate_2021"][0] == pytest.approx((6.5 - 6.49) / 1000)
    assert err["vital_birth_rate_2022"][0] == pytest.approx((6.0 - 5.98) / 1000)
    assert err["vital_death_rate_2022"][0] == pytest.approx((8.0 - 8.09) / 1000)
    both = {**err, "city_2022": np.array([0.01])}  # the vital weight applies to both rate kinds
    squares = [e[0] ** 2 for e in err.values()]
    assert distance(both, {"vital": 2.0}) == pytest.approx(np.sqrt((2 * sum(squares) + 1e-4) / (2 * len(squares) + 1)))
    with pytest.raises(ValueError, match="need the births"):
        target_errors(pop, years, None, targets)


def _spec(tmp_path: Path, **extra: str) -> Path:
    body = {"base": f'"{ROOT / "configs/hindcast_2010.toml"}"', "seed": "4", "particles": "4", "generations": "2",
            "max_batches": "2"}
    body.update(extra)
    text = "\n".join(f"{k} = {v}" for k, v in body.items())
    text += ('\n[set]\n"run.households_per_agent" = 8000.0\n'
             '[parameters."behaviour.consider_base"]\nmin = 0.01\nmax = 0.05\n')
    path = tmp_path / "cal.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_model_calibration_is_reproducible_and_its_posterior_usable(tmp_path: Path) -> None:
    spec = CalibrationSpec.from_toml(_spec(tmp_path))
    one = calibrate(spec, tmp_path / "serial", workers=1, progress=False)
    two = calibrate(spec, tmp_path / "parallel", workers=2, progress=False)
    a = pd.read_csv(tmp_path / "serial" / POSTERIOR)
    b = pd.read_csv(tmp_path / "parallel" / POSTERIOR)
    pd.testing.assert_frame_equal(a, b)  # bit-identical for any worker count
    assert one["fitted"] == two["fitted"] and 0.01 <= one["fitted"]["behaviour.consider_base"] <= 0.05
    draws = posterior_draws(tmp_path / "serial" / POSTERIOR, 5, seed=1)
    assert draws == posterior_draws(tmp_path / "serial" / POSTERIOR, 5, seed=1)
    final = set(a[a.generation == a.generation.max()]["behaviour.consider_base"])
    assert all(set(d) == {"behaviour.consider_base"} and d["behaviour.consider_base"] in final for d in draws)
    cfg = tmp_path / "base.toml"
    cfg.write_text("[run]\nseed = 1\n", encoding="utf-8")
    apply_fitted(cfg, fitted_block(one))
    apply_fitted(cfg, fitted_block(one))  # idempotent: replaces, never duplicates
    text = cfg.read_text(encoding="utf-8")
    assert text.count(BEGIN) == 1 and text.count(END) == 1 and "consider_base" in text
    # --apply: the posterior travels with the config, and the config's run.posterior finds it
    calibrated = tmp_path / "calibrated.toml"
    calibrated.write_text("# header\n", encoding="utf-8")
    copy = apply_calibration(calibrated, one)
    loaded = load_config(calibrated)
    assert Path(loaded.run.posterior) == copy.resolve()
    assert loaded.behaviour.consider_base == one["fitted"]["behaviour.consider_base"]
    assert posterior_draws(loaded.run.posterior, 3, seed=2) == posterior_draws(tmp_path / "serial" / POSTERIOR, 3, seed=2)
    # the CLI refuses to overwrite a finished calibration
    assert main(["calibrate", str(spec.source), "--out", str(tmp_path / "serial"), "-q"]) == 2


def test_posterior_draws_follow_the_weights(tmp_path: Path) -> None:
    path = tmp_path / POSTERIOR
    pd.DataFrame({"generation": [0, 1, 1], "particle": [0, 0, 1], "x": [9.0, 1.0, 2.0], "distance": [1, 0.1, 0.1],
                  "weight": [1.0, 0.9, 0.1]}).to_csv(path, index=False)
    draws = [d["x"] for d in posterior_draws(path, 4000, seed=0)]
    assert set(draws) == {1.0, 2.0}  # only the last generation
    assert np.mean(np.array(draws) == 1.0) == pytest.approx(0.9, abs=0.02)
    with pytest.raises(InputError):
        posterior_draws(tmp_path / "missing.csv", 1, 0)


def test_bad_calibration_file_is_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(f'base = "{ROOT / "configs/hindcast_2010.toml"}"\n[parameters."behaviour.beta_income"]\n'
                   'min = 3.0\nmax = 1.0\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"parameters\.behaviour\.beta_income"):
        CalibrationSpec.from_toml(bad)
    assert main(["calibrate", str(bad), "--out", str(tmp_path / "o")]) == 2
    with pytest.raises(ConfigError, match="quantile"):
        CalibrationSpec.from_toml(_spec(tmp_path, quantile="1.5"))
    with pytest.raises(ConfigError, match="targets.zones"):
        CalibrationSpec.from_toml(_spec(tmp_path, targets='{ zones = "a" }'))
    with pytest.raises(ConfigError, match="fit_until"):
        CalibrationSpec.from_toml(_spec(tmp_path, fit_until="2005")).base_config()


def test_packaged_calibration_file_parses() -> None:
    spec = CalibrationSpec.from_toml(ROOT / "experiments/calibration.toml")
    assert spec.fit_until == 2013 and len(spec.parameters) == 13
    assert spec.base_config().run.end_year == 2013


def test_only_fits_to_all_the_data_rewrite_the_packaged_defaults() -> None:
    """--apply of a validation fit (data <= 2013) would put a hindcast's parameters into every projection."""
    specs = [CalibrationSpec.from_toml(p) for p in sorted((ROOT / "experiments").glob("calibration*.toml"))]
    applying = {s.name: s.fit_until for s in specs if s.apply_to is not None}
    assert applying == {"calibration_projection": 2023, "calibration_forward": 2023}
    assert all(s.apply_to is None for s in specs if s.fit_until < 2023)


def test_a_rewritten_posterior_is_read_again(tmp_path: Path) -> None:
    """read_posterior is cached per file version: a new calibration written to the same path is seen."""
    path = tmp_path / "posterior.csv"
    frame = pd.DataFrame({"generation": [0, 1], "particle": [0, 0], "behaviour.beta_income": [1.0, 2.0],
                          "distance": [0.1, 0.05], "weight": [1.0, 1.0]})
    frame.to_csv(path, index=False)
    assert read_posterior(path)["behaviour.beta_income"].tolist() == [2.0]
    assert read_posterior(path) is read_posterior(path)
    frame.assign(**{"behaviour.beta_income": [1.0, 33.0], "extra.key": [0.0, 0.5]}).to_csv(path, index=False)
    again = read_posterior(path)
    assert again["behaviour.beta_income"].tolist() == [33.0]
    assert posterior_parameters(again) == ["behaviour.beta_income", "extra.key"]
    assert posterior_parameters(again, ("extra.key",)) == ["behaviour.beta_income"]


def test_backcast_runs_fit_the_start_census_shares(tmp_path: Path) -> None:
    """With backcast_from, every particle also runs from the 2000 census, and its 2010 district shares
    enter the distance as one more group: recomputed here from the backcast store by hand."""
    from migration_abm.experiments import load_sweep

    plain = CalibrationSpec.from_toml(_spec(tmp_path, generations="1"))
    back = replace(plain, backcast_from=2000, name="b")
    obs = Observations.load()
    calibrate(plain, tmp_path / "plain", workers=1, progress=False)
    calibrate(back, tmp_path / "back", workers=1, progress=False)
    a, b = (pd.read_csv(tmp_path / d / POSTERIOR) for d in ("plain", "back"))
    np.testing.assert_array_equal(a["behaviour.consider_base"], b["behaviour.consider_base"])  # same proposals
    pop = np.nanmean(load_sweep(tmp_path / "back" / "gen00_batch00_backcast.h5").array("population"), axis=1)
    assert pop.shape[1] == 11  # 2000 … 2010
    errs = share_errors(pop[:, -1], obs.complete_district_population(2010), ~obs.district_imputed(2010))
    groups = len(build_targets(obs, 2010, 2013))  # zones 2013, city 2013
    expected = np.sqrt((groups * a["distance"].to_numpy() ** 2 + np.mean(errs ** 2, axis=1)) / (groups + 1))
    np.testing.assert_allclose(b["distance"].to_numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(share_errors(np.array([[1.0, 3.0]]), np.array([2.0, 2.0]), np.array([True, True])),
                               [[-0.5, 0.5]])


def test_backcast_needs_an_earlier_census(tmp_path: Path) -> None:
    spec = CalibrationSpec.from_toml(_spec(tmp_path))
    for year in (2010, 1990):
        with pytest.raises(ConfigError, match="backcast_from"):
            model_simulator(replace(spec, backcast_from=year), tmp_path, Observations.load(), 1, False, False)
