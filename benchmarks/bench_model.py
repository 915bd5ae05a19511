"""Model benchmarks (run: `python benchmarks/bench_model.py [--full] [--reference DIR] [--repeats N]`).

1. Per household-year (process CPU time): the yearly migration decision by the compiled kernels
   (:func:`migration_abm.migration.decide` — consideration, destination choice and draw — then the
   movers relocate and the flows are recorded) vs the fair per-object baseline (benchmarks/per_object.py:
   one ``mesa.Agent`` per household doing the same in plain Python, ``agents.do``) on the same households
   and model state, at 20 000 and 100 000 households; medians of N, each side timed warm (after an
   untimed run of its own) and cold (right after the other side's run). Also the whole internal-migration
   step (the movers' urban draw and job search on top) against the same baseline.
2. Default run (configs/baseline.toml at its default scale) with the kernels cached: median wall time;
   the one-off kernel compile time (a fresh process with an empty cache vs one with a warm cache).
3. Scaling (``--full``): households_per_agent 100 / 10 / 1 (1 = full scale, ≈10.7 M households), each in a
   fresh process: set-up time, CPU and wall seconds per simulated year, page faults, peak RSS.
   ``--config`` adds full-scale rows for other configs (configs/hindcast_2010.toml: the 2010 base year,
   ≈10.7 M households); ``--reference DIR`` runs the same rows with the package found in DIR (e.g.
   `git archive` of the pre-kernel commit) so before/after come from the same run.
Machine load (1-minute average) is recorded with every figure.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from per_object import ObjectModel  # noqa: E402

from migration_abm import kernels, migration  # noqa: E402
from migration_abm.config import load_config  # noqa: E402
from migration_abm.model import MigrationModel, simulate  # noqa: E402

BASELINE = ROOT / "configs" / "baseline.toml"
HOUSEHOLDS_2020 = 1.2e7  # households per agent = this / households wanted (rows come out close)


def load() -> float:
    return round(os.getloadavg()[0], 2)


def bench_per_object(n_households: int, repeats: int) -> dict:
    """Kernel vs per-object decision on the same state (year 2 of a run): CPU time per household-year.

    Each repeat times both sides *cold*, each run right after the other side's (the per-object run evicts
    the caches the kernels' data sat in), and *warm*: the per-object step of a freshly built
    :class:`ObjectModel` after a first one has run, and the kernels' median of ten consecutive runs after
    an untimed one, the state put back in place before each (the steady state of a yearly loop); garbage
    of the other side's run (the agents' reference cycles) is collected before each warm timing.
    Medians over repeats."""
    cfg = load_config(BASELINE, {"run.households_per_agent": HOUSEHOLDS_2020 / n_households})
    t: dict[str, list[float]] = {k: [] for k in ("obj_cold", "kern_cold", "obj", "kern", "full")}
    loads = []
    for i in range(repeats):
        m = MigrationModel(cfg, rng=i)
        m.run(until=cfg.run.start_year + 1)
        rng = copy.deepcopy(m.rng)
        n = m.households.n
        u_consider, u_choose = rng.random(n), rng.random(n)
        state = copy.deepcopy(m.households), copy.deepcopy(m.rng), m.flow_matrix.copy()
        loads.append(load())
        t["obj_cold"].append(_timed(ObjectModel(m, u_consider, u_choose).step) / n)
        t["kern_cold"].append(_timed(_decide_and_relocate, m) / n)
        _restore(m, state)
        gc.collect()  # the agents of the cold run (reference cycles) are not left for the next timings
        t["obj"].append(_timed(ObjectModel(m, u_consider, u_choose).step) / n)  # (the cold run warmed it up)
        gc.collect()
        kept = m.households.district.copy(), m.rng.bit_generator.state
        warm = []
        for _ in range(11):  # what decide + relocate change: districts, flows, the generator's state
            m.households.district[:] = kept[0]
            m.flow_matrix[:] = state[2]
            m.rng.bit_generator.state = kept[1]
            warm.append(_timed(_decide_and_relocate, m) / n)
        t["kern"].append(statistics.median(warm[1:]))
        _restore(m, state)
        t["full"].append(_timed(migration.internal_migration, m) / n)  # whole internal-migration step
    med = {k: statistics.median(v) for k, v in t.items()}
    return {"households": n, "kernel_cpu_ns_per_household_year": med["kern"] * 1e9,
            "per_object_cpu_ns_per_household_year": med["obj"] * 1e9, "speed_ratio": med["obj"] / med["kern"],
            "internal_migration_cpu_ns_per_household_year": med["full"] * 1e9,
            "speed_ratio_internal_migration": med["obj"] / med["full"],
            "cold_kernel_cpu_ns_per_household_year": med["kern_cold"] * 1e9,
            "cold_per_object_cpu_ns_per_household_year": med["obj_cold"] * 1e9,
            "cold_speed_ratio": med["obj_cold"] / med["kern_cold"],
            **{f"{k}_ns_all": [x * 1e9 for x in v] for k, v in t.items()}, "load": loads}


def _restore(m: MigrationModel, state: tuple) -> None:
    """Put a copy of the saved (households, rng, flows) back into the model."""
    m.households, m.rng, m.flow_matrix = copy.deepcopy(state[0]), copy.deepcopy(state[1]), state[2].copy()


def _decide_and_relocate(m: MigrationModel) -> None:
    """What the per-object agents do: decide, then movers change district and the flows are recorded."""
    rows, dest = migration.decide(m)
    kernels.relocate(rows, dest, m.households.district, m.households.persons(), m.flow_matrix, m.geo.n)


def _timed(f, *args) -> float:
    """Process CPU seconds of one call (the machine is shared: wall time would count other jobs)."""
    t0 = time.process_time()
    f(*args)
    return time.process_time() - t0


def bench_default(repeats: int) -> dict:
    cfg = load_config(BASELINE)
    simulate(cfg, seed=0)  # kernels loaded from the cache (compiled if the cache was cold)
    times, loads = [], []
    for i in range(repeats):
        loads.append(load())
        t0 = time.perf_counter()
        simulate(cfg, seed=i)
        times.append(time.perf_counter() - t0)
    return {"default_run_s_median": statistics.median(times), "default_run_s_all": times,
            "years": f"{cfg.run.start_year}-{cfg.run.end_year}", "households_per_agent": cfg.run.households_per_agent,
            "load": loads}


TINY_RUN = r"""
import sys, time
t0 = time.perf_counter()
from migration_abm.config import load_config
from migration_abm.model import simulate
simulate(load_config(sys.argv[1], {"run.households_per_agent": 5000.0}), seed=1)
print(time.perf_counter() - t0)
"""


def bench_compile(repeats: int) -> dict:
    """One-off compile time: a tiny run in a fresh process with an empty kernel cache minus the same run
    with the cache warm (medians)."""
    cold, warm = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as d:
            env = {**os.environ, "NUMBA_CACHE_DIR": d}
            run = [sys.executable, "-c", TINY_RUN, str(BASELINE)]
            cold.append(float(subprocess.run(run, env=env, check=True, capture_output=True, text=True).stdout))
            warm.append(float(subprocess.run(run, env=env, check=True, capture_output=True, text=True).stdout))
    return {"cold_s_median": statistics.median(cold), "warm_s_median": statistics.median(warm),
            "compile_s": statistics.median(cold) - statistics.median(warm), "load": load()}


SCALE_CHILD = r"""
import json, os, resource, statistics, sys, time
if sys.argv[4]:
    sys.path.insert(0, sys.argv[4])
import migration_abm
from migration_abm.config import load_config
from migration_abm.model import MigrationModel
def usage():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), time.process_time(), r.ru_minflt + r.ru_majflt
cfg = load_config(sys.argv[1], {"run.households_per_agent": float(sys.argv[2])})
w0, c0, f0 = usage()
m = MigrationModel(cfg, rng=1)
w1, c1, f1 = usage()
steps = []
for _ in range(int(sys.argv[3])):
    a = usage(); m.step(); b = usage()
    steps.append({"wall_s": b[0] - a[0], "cpu_s": b[1] - a[1], "page_faults": b[2] - a[2]})
med = lambda k: statistics.median(s[k] for s in steps)
print(json.dumps({"package": migration_abm.__file__, "rows_end": int(m.households.n), "setup_wall_s": w1 - w0, "setup_cpu_s": c1 - c0,
                  "setup_page_faults": f1 - f0, "year_cpu_s_median": med("cpu_s"), "year_wall_s_median": med("wall_s"),
                  "year_page_faults_median": med("page_faults"), "steps": steps, "load_end": os.getloadavg()[0],
                  "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2}))
"""


def bench_scale(hpa: float, years: int, source: str = "", config: Path = BASELINE) -> dict:
    """One scale in a fresh process (so the peak RSS is the model's own)."""
    before = load()
    out = subprocess.run([sys.executable, "-c", SCALE_CHILD, str(config), str(hpa), str(years), source],
                         check=True, capture_output=True, text=True, cwd=source or ROOT)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    r.update(config=config.name, households_per_agent=hpa, load_start=before,
             ns_per_household_year=1e9 * r["year_cpu_s_median"] / r["rows_end"])
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--full", action="store_true", help="also the scaling table down to full scale (≈3 GB, minutes)")
    ap.add_argument("--years", type=int, default=5, help="simulated years per scale in the scaling table")
    ap.add_argument("--reference", help="a source tree (e.g. the pre-kernel commit) to run the scaling table with too")
    ap.add_argument("--config", type=Path, action="append", default=[],
                    help="also run the full-scale row with this config (e.g. configs/hindcast_2010.toml: 2010 base year)")
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args()
    res: dict = {"date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "cpus": os.cpu_count()}
    res["per_object"] = [bench_per_object(n, args.repeats) for n in (20_000, 100_000)]
    res["default"] = bench_default(args.repeats)
    res["compile"] = bench_compile(max(1, args.repeats // 2))
    if args.full:
        ref = str(Path(args.reference).resolve()) if args.reference else None
        res["scaling"] = [bench_scale(h, args.years) for h in (100.0, 10.0, 1.0)]
        res["scaling"] += [bench_scale(1.0, args.years, config=c.resolve()) for c in args.config]
        if ref:
            res["reference_scaling"] = [bench_scale(h, args.years, ref) for h in (100.0, 10.0, 1.0)]
            res["reference_scaling"] += [bench_scale(1.0, args.years, ref, c.resolve()) for c in args.config]
    print(json.dumps(res, indent=2))
    if args.json:
        from migration_abm.storage import write_text_atomic

        write_text_atomic(Path(args.json), json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
