"""Sweep engine acceptance tests: seed contract across executors, dask cluster, resume, failures."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from migration_abm.cli import main as exp_main
from migration_abm.errors import InputError
from migration_abm.experiments import ExecutorSpec, load_experiment, load_sweep, run_sweep, store_digest
from migration_abm.experiments.store import base_path, journal_path, read_status
from migration_abm.experiments.worker import DONE, FAILED

PY = sys.executable
BIN = Path(sys.executable).parent


def _stop(procs: list[subprocess.Popen]) -> None:
    """Terminate dask processes started by a test (workers first), killing any that hang."""
    for p in reversed(procs):
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _counts(path: Path) -> int:
    """Runs recorded so far (store + journal), or -1 while the store is not there yet."""
    try:
        code, _ = read_status(path)
    except InputError:
        return -1
    return int((code != 0).sum())


# ---- failure isolation, store contents, analysis ---------------------------------------------------

def test_failing_runs_recorded_rest_complete(toy_toml: Path, tmp_path: Path) -> None:
    out = tmp_path / "toy.h5"
    s = run_sweep(load_experiment(toy_toml), out, "serial", progress=False)
    assert (s.total, s.done, s.failed, s.pending) == (12, 8, 4, 0)
    sw = load_sweep(out)
    assert (sw.status[:2] == FAILED).all() and (sw.status[2:] == DONE).all()  # beta_stay=-20 -> points 0, 1
    fails = sw.failures()
    assert len(fails) == 4 and fails["traceback"].str.contains("deliberate failure").all()
    assert fails["traceback"].str.contains("Traceback").all()
    pop = sw.array("population")
    assert np.isnan(pop[:2]).all() and np.isfinite(pop[2:]).all()
    assert pop.shape == (6, 2, 7, 38)
    tidy = sw.tidy()
    assert len(tidy) == 8 * 7 * 5
    assert {"point", "replicate", "year", "region", "population", "behaviour.beta_stay", "hukou_years"} <= set(tidy)
    summ = sw.summary()
    assert (summ["population_n"] == 2).all() and len(summ) == 4 * 7 * 5
    assert (summ["population_q05"] <= summ["population_q95"]).all()
    # CLI: exit 1 when runs failed; exit 2 when the store exists and neither --resume nor --force
    assert exp_main(["sweep", str(toy_toml), "--serial", "--out", str(tmp_path / "c.h5"), "--no-progress"]) == 1
    assert (tmp_path / "c.png").stat().st_size > 0  # the end-of-sweep figure, failed points left blank
    assert exp_main(["sweep", str(toy_toml), "--serial", "--out", str(tmp_path / "c.h5"), "--no-progress"]) == 2
    # retrying the failed runs reproduces the same store
    before = store_digest(out)
    s2 = run_sweep(load_experiment(toy_toml), out, "serial", resume=True, retry_failed=True, progress=False)
    assert s2.ran == 4 and store_digest(out) == before


def test_resume_rejects_a_different_experiment(toy_toml: Path, tmp_path: Path) -> None:
    out = tmp_path / "toy.h5"
    run_sweep(load_experiment(toy_toml), out, "serial", progress=False)
    changed = load_experiment(toy_toml, {"replicates": 3})
    with pytest.raises(InputError, match="different experiment"):
        run_sweep(changed, out, "serial", resume=True, progress=False)
    with pytest.raises(InputError, match="store exists"):
        run_sweep(load_experiment(toy_toml), out, "serial", progress=False)


# ---- seed contract: identical stores whatever the executor --------------------------------------

def test_seed_contract_serial_processes_localcluster(real_toml: Path, tmp_path: Path) -> None:
    exp = load_experiment(real_toml)
    digests = {}
    for name, spec in [("serial", ExecutorSpec("serial")), ("procs", ExecutorSpec("process", workers=2)),
                       ("dask", ExecutorSpec("dask", workers=2))]:
        out = tmp_path / f"{name}.h5"
        s = run_sweep(exp, out, spec, progress=False, batch_size=3)
        assert s.done == exp.n_runs == 8, name
        digests[name] = store_digest(out)
    assert len(set(digests.values())) == 1, digests
    sw = load_sweep(tmp_path / "serial.h5")
    pop = sw.array("population")
    # common random numbers: replicates differ, and policies matter
    assert not np.array_equal(pop[0, 0], pop[0, 1])
    assert not np.array_equal(pop[0, 0], pop[3, 0])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_existing_dask_cluster_via_scheduler(real_toml: Path, tmp_path: Path) -> None:
    port = _free_port()
    addr = f"tcp://127.0.0.1:{port}"
    procs = []
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    try:
        procs.append(subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                       "--dashboard-address", ":0"], cwd=tmp_path, env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        procs.append(subprocess.Popen([str(BIN / "dask"), "worker", addr, "--nworkers", "1", "--nthreads", "1",
                                       "--host", "127.0.0.1", "--dashboard-address", ":0"], cwd=tmp_path, env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        out = tmp_path / "cluster.h5"
        rc = exp_main(["sweep", str(real_toml), "--scheduler", addr, "--out", str(out), "--no-progress"])
        assert rc == 0
    finally:
        _stop(procs)
    ref = tmp_path / "serial.h5"
    run_sweep(load_experiment(real_toml), ref, "serial", progress=False)
    assert store_digest(out) == store_digest(ref)


# ---- resume after SIGKILL ---------------------------------------------------------------------------

@pytest.mark.parametrize("swmr", [False, True], ids=["default", "swmr"])
def test_resume_after_sigkill_gives_identical_store(toy_toml: Path, tmp_path: Path, swmr: bool) -> None:
    ref = tmp_path / "ref.h5"
    run_sweep(load_experiment(toy_toml), ref, "serial", progress=False)
    out = tmp_path / "killed.h5"
    cmd = [PY, "-m", "migration_abm", "sweep", str(toy_toml), "--workers", "2", "--batch-size", "1",
           "--out", str(out), "--no-progress"] + (["--swmr"] if swmr else [])
    proc = subprocess.Popen(cmd, env={**os.environ, "MIGRATION_ABM_TOY_DELAY": "0.4"}, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if out.exists() and _counts(out) >= 3:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    recorded = _counts(out)
    assert 3 <= recorded < 12
    assert journal_path(out).exists()
    if swmr:  # the killed SWMR writer left HDF5's "open for write" flags set; resume rebuilds from the base
        assert base_path(out).exists()
        with pytest.raises(OSError, match="already open"):
            h5py.File(out, "r+").close()
    s = run_sweep(load_experiment(toy_toml), out, "serial", resume=True, progress=False)
    assert s.ran == 12 - recorded and s.pending == 0
    assert store_digest(out) == store_digest(ref)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("killed", ".killed"))) == ["killed.h5"]


def test_sobol_sweep_indices(tmp_path: Path) -> None:
    from migration_abm.experiments import Experiment

    exp = Experiment.from_dict({
        "design": "sobol", "samples": 32, "replicates": 1, "seed": 9, "outputs": ["population"],
        "run_function": "migration_abm.experiments.toy:toy_simulate", "set": {"run.end_year": 2013},
        "parameters": {"behaviour.beta_income": {"min": 0.0, "max": 3.0},
                       "policy.hukou.core.min_years": {"min": 0, "max": 5}}})
    out = tmp_path / "sobol.h5"
    run_sweep(exp, out, "serial", progress=False)
    sw = load_sweep(out)
    idx = sw.sobol("population", area="core", n_bootstrap=100)
    assert list(idx.index) == ["behaviour.beta_income", "policy.hukou.core.min_years"]
    # the toy's core population depends on beta_income, not on hukou years
    assert idx.loc["behaviour.beta_income", "ST"] > 0.5 > idx.loc["policy.hukou.core.min_years", "ST"]
    with pytest.raises(InputError):
        load_sweep(tmp_path / "nope.h5")


def test_sweep_to_xarray_and_live_journal(toy_toml: Path, tmp_path: Path) -> None:
    out = tmp_path / "toy.h5"
    run_sweep(load_experiment(toy_toml), out, "serial", progress=False)
    sw = load_sweep(out)
    ds = sw.to_xarray()
    assert ds["population"].dims == ("point", "replicate", "year", "district")
    assert ds["population"].attrs["units"] == "persons"
    assert list(ds["year"].values) == list(range(2010, 2017))
    assert ds["district_name"].sel(district="500103").item() == "Yuzhong"
    assert set(ds["status"].values.ravel()) == {"done", "failed"}
    assert ds["behaviour.beta_stay"].values.tolist() == sw.points["behaviour.beta_stay"].tolist()
    assert np.array_equal(ds["population"].values, sw.array("population"), equal_nan=True)
    # runs still in a journal (a writer killed before folding) are seen by readers, not by the digest
    from migration_abm.experiments.store import Journal
    from migration_abm.experiments.worker import RunOutcome

    j = Journal(out)  # append only, no fold: as if the writer were killed right after the append
    arr = np.full((7, 38), 5.0)
    j.append([RunOutcome(0, 0, DONE, {n: arr for n in sw.outputs}, "", 0.1)], tuple(sw.outputs))
    j.close(remove=False)
    live = load_sweep(out)
    assert live.status[0, 0] == DONE and (live.array("population")[0, 0] == 5.0).all()
    with pytest.raises(InputError, match="not folded"):
        store_digest(out)


def test_sweep_ends_with_a_summary_table(toy_toml: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "toy.h5"
    assert exp_main(["sweep", str(toy_toml), "--serial", "--out", str(out), "--no-progress"]) == 1
    text = capsys.readouterr().out
    assert "8 done, 4 failed" in text and "population 2016, persons: median [5 %, 95 %]" in text
    rows = [ln for ln in text.splitlines() if ln.startswith("| ") and ln[2].isdigit()]
    assert len(rows) == 6 and rows[0].endswith("| 0 | 2 | – |") and "," in rows[2].split("|")[-2]


# ---- checks before any store is created ---------------------------------------------------------------

def test_unimportable_run_function_and_bad_paths_leave_nothing(toy_toml: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(toy_toml.read_text(encoding="utf-8").replace("toy:toy_simulate", "toy:no_such_fn"),
                   encoding="utf-8")
    nomod = tmp_path / "nomod.toml"
    nomod.write_text(toy_toml.read_text(encoding="utf-8").replace("experiments.toy:", "no_such_module:"),
                     encoding="utf-8")
    before = sorted(p.name for p in tmp_path.iterdir())
    for exp, what in [(bad, "no_such_fn"), (nomod, "no_such_module")]:
        out = tmp_path / "sub" / "s.h5"
        assert exp_main(["sweep", str(exp), "--serial", "--out", str(out), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert "run_function" in err and what in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / "sub").exists()
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    assert exp_main(["sweep", str(toy_toml), "--serial", "--out", str(tmp_path / "afile" / "s.h5"),
                     "--no-progress"]) == 2
    assert "is a file" in capsys.readouterr().err
    assert exp_main(["sweep", str(toy_toml), "--serial", "--out", str(tmp_path), "--no-progress"]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*before, "afile"])


def test_unreachable_scheduler_leaves_no_store(toy_toml: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "new" / "folder" / "s.h5"
    addr = f"tcp://127.0.0.1:{_free_port()}"
    sched = tmp_path / "scheduler.json"
    sched.write_text(f'{{"type": "Scheduler", "address": "{addr}"}}', encoding="utf-8")
    for flags in (["--scheduler", addr], ["--scheduler-file", str(sched)],
                  ["--scheduler-file", str(tmp_path / "missing.json")]):
        t0 = time.monotonic()
        assert exp_main(["sweep", str(toy_toml), *flags, "--out", str(out), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert flags[0] in err and len(err.strip().splitlines()) == 1, err
        assert time.monotonic() - t0 < 30
        assert sorted(p.name for p in tmp_path.iterdir()) == ["scheduler.json", "toy.toml"]


@pytest.mark.slow
def test_scheduler_file_cluster(real_toml: Path, tmp_path: Path) -> None:
    """The real model on a cluster found through a scheduler file (dask's HPC convention)."""
    _scheduler_file_sweep(real_toml, tmp_path)


def test_scheduler_file_cluster_toy(toy_toml: Path, tmp_path: Path) -> None:
    """A `dask scheduler --scheduler-file` process on loopback with one worker; the store equals a serial
    one, and nothing but the summary is printed (no dask INFO lines without -v)."""
    _scheduler_file_sweep(toy_toml, tmp_path)


def _scheduler_file_sweep(toml: Path, tmp_path: Path) -> None:
    sched = tmp_path / "scheduler.json"
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    procs = []
    try:
        procs.append(subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
                                       "--scheduler-file", str(sched), "--dashboard-address", ":0"],
                                      cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 60
        while not sched.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        procs.append(subprocess.Popen([str(BIN / "dask"), "worker", "--scheduler-file", str(sched), "--nworkers",
                                       "1", "--nthreads", "1", "--host", "127.0.0.1", "--dashboard-address", ":0"],
                                      cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        out = tmp_path / "cluster.h5"
        proc = subprocess.run([PY, "-m", "migration_abm", "sweep", str(toml), "--scheduler-file", str(sched),
                               "--out", str(out), "--no-progress"], cwd=tmp_path, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode in (0, 1), proc.stderr
        assert "INFO" not in proc.stderr and "distributed" not in proc.stderr, proc.stderr
        assert "dask scheduler from" in proc.stdout + proc.stderr
    finally:
        _stop(procs)
    ref = tmp_path / "serial.h5"
    run_sweep(load_experiment(toml), ref, "serial", progress=False)
    assert store_digest(out) == store_digest(ref)


def test_district_tables_carry_names(toy_toml: Path, tmp_path: Path) -> None:
    out = tmp_path / "toy.h5"
    run_sweep(load_experiment(toy_toml), out, "serial", progress=False)
    sw = load_sweep(out)
    tidy = sw.tidy("district")
    assert list(tidy.columns[:5]) == ["point", "replicate", "year", "district", "district_name"]
    assert (tidy.loc[tidy["district"] == "500103", "district_name"] == "Yuzhong").all()
    summ = sw.summary("district")
    assert (summ.loc[summ["district"] == "500101", "district_name"] == "Wanzhou").all()


def test_damaged_sweep_store_is_an_input_error(toy_toml: Path, tmp_path: Path) -> None:
    out = tmp_path / "toy.h5"
    run_sweep(load_experiment(toy_toml), out, "serial", progress=False)
    with h5py.File(out, "r+") as f:
        del f["outputs/in_migrants"]
    sw = load_sweep(out)
    with pytest.raises(InputError, match="in_migrants") as exc:
        sw.array("in_migrants")
    assert exc.value.source == str(out)
    with h5py.File(out, "r+") as f:
        del f["status/code"]
    with pytest.raises(InputError, match="damaged sweep store"):
        load_sweep(out)
    cut = tmp_path / "cut.h5"
    cut.write_bytes(out.read_bytes()[:5000])
    with pytest.raises(InputError, match="cut.h5"):
        load_sweep(cut)
