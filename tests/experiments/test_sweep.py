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
from migration_abm.experiments.worker import DONE, FAILED

PY = sys.executable
BIN = Path(sys.executable).parent


def _counts(path: Path) -> int:
    try:
        with h5py.File(path, "r", swmr=True, locking=False) as f:
            return int((f["status/code"][()] != 0).sum())
    except Exception:  # noqa: BLE001 - the writer may be mid-flush; try again
        return -1


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
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    ref = tmp_path / "serial.h5"
    run_sweep(load_experiment(real_toml), ref, "serial", progress=False)
    assert store_digest(out) == store_digest(ref)


# ---- resume after SIGKILL ---------------------------------------------------------------------------

@pytest.mark.parametrize("swmr", [False, True], ids=["closed-between-flushes", "swmr"])
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
    if recorded == -1:  # SWMR writer died with the file open: only SWMR readers may open it now
        with h5py.File(out, "r", swmr=True, locking=False) as f:
            recorded = int((f["status/code"][()] != 0).sum())
    assert 3 <= recorded < 12
    if swmr:  # the killed SWMR writer left HDF5's "open for write" flags set: resume must recover the file
        with pytest.raises(OSError, match="already open"):
            h5py.File(out, "r+").close()
    s = run_sweep(load_experiment(toy_toml), out, "serial", resume=True, progress=False)
    assert s.ran == 12 - recorded and s.pending == 0
    assert store_digest(out) == store_digest(ref)


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
