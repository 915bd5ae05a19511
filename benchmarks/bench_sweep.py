"""Benchmark the sweep engine: a 200-run sweep of the default-scale model, 1 vs 2 worker processes.

Reports wall time, throughput, speed-up, store size per run, and checks that the stores of the
different worker counts are identical (seed contract). Run from the repository root::

    .venv/bin/python benchmarks/bench_sweep.py                 # 200 runs, default scale, workers 1 and 2
    .venv/bin/python benchmarks/bench_sweep.py --runs 20 --households-per-agent 1000   # quick look

``--toy`` measures the store instead of the model: the same grid run serially with the toy stand-in model
(milliseconds per run, one flush per run), in each store mode — default (journal, folded into the
store at the end), ``--fold-every-flush`` worst case (the store rewritten after every run), and SWMR
(in place, journal + base copy) — so the ratios are the cost of crash safety::

    .venv/bin/python benchmarks/bench_sweep.py --toy --runs 400 --repeat 3

The grid is hukou admission years (4 values) × job-matching coverage (5 values) × replicates, so
``--runs`` must be a multiple of 20. Worker processes import the package when each pool starts: if the
model code may change while the benchmark runs, run it from a snapshot
(``git archive HEAD | tar -x -C /tmp/snap; PYTHONPATH=/tmp/snap python /tmp/snap/benchmarks/bench_sweep.py``),
otherwise the worker counts run different code (and the identity check fails, rightly).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def experiment(runs: int, hpa: float | None, end_year: int | None, toy: bool = False) -> object:
    from migration_abm.experiments import Experiment

    if runs % 20:
        raise SystemExit("--runs must be a multiple of 20 (4 × 5 grid × replicates)")
    fixed: dict[str, object] = {}
    if hpa is not None:
        fixed["run.households_per_agent"] = hpa
    if end_year is not None:
        fixed["run.end_year"] = end_year
    return Experiment.from_dict({
        "name": "bench_sweep", "base": str(REPO / "configs" / "baseline.toml"), "design": "grid",
        "replicates": runs // 20, "seed": 1234, "set": fixed,
        **({"run_function": "migration_abm.experiments.toy:toy_simulate"} if toy else {}),
        "parameters": {"hukou_years": {"keys": ["policy.hukou.core.min_years", "policy.hukou.expansion.min_years"],
                                       "values": [0, 2, 5, 8]},
                       "policy.job_matching.coverage": {"min": 0.0, "max": 0.8, "levels": 5}}},
        source="bench_sweep")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=1, help="repetitions per worker count (median reported)")
    ap.add_argument("--households-per-agent", type=float, help="default: the model's default scale")
    ap.add_argument("--end-year", type=int)
    ap.add_argument("--json", type=Path, help="also write the figures as JSON here")
    ap.add_argument("--toy", action="store_true", help="time the store modes with the toy model (serial)")
    args = ap.parse_args(argv)
    if args.toy:
        return store_modes(args)

    from migration_abm.experiments import ExecutorSpec, run_sweep, store_digest

    exp = experiment(args.runs, args.households_per_agent, args.end_year)
    scale = exp.scenarios[0].config.run.households_per_agent
    print(f"{exp.n_runs} runs, households_per_agent = {scale:g}, years {exp.years[0]}-{exp.years[-1]}, "
          f"outputs {len(exp.outputs)}", flush=True)
    rows, digests = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for w in args.workers:
            times = []
            for i in range(args.repeat):
                out = Path(tmp) / f"w{w}_{i}.h5"
                t0 = time.perf_counter()
                s = run_sweep(exp, out, ExecutorSpec("process", workers=w), progress=False)
                times.append(time.perf_counter() - t0)
                digests[(w, i)] = store_digest(out)
                size = out.stat().st_size
                print(f"  workers={w} rep={i}: {times[-1]:.1f} s, {s.done} done, {s.failed} failed, "
                      f"store {size / 1e6:.2f} MB ({size / exp.n_runs / 1e3:.1f} kB/run)", flush=True)
            rows.append({"workers": w, "median_s": statistics.median(times), "times_s": times,
                         "runs_per_s": exp.n_runs / statistics.median(times), "store_bytes": size,
                         "store_kb_per_run": size / exp.n_runs / 1e3})
    base = rows[0]["median_s"]
    for r in rows:
        r["speedup"] = base / r["median_s"]
        print(f"workers={r['workers']}: median {r['median_s']:.1f} s, {r['runs_per_s']:.2f} runs/s, "
              f"speed-up {r['speedup']:.2f}x vs {rows[0]['workers']} worker(s), {r['store_kb_per_run']:.1f} kB/run")
    same = len(set(digests.values())) == 1
    print(f"stores identical across worker counts: {same}")
    if args.json:
        args.json.write_text(json.dumps({"runs": exp.n_runs, "households_per_agent": scale, "rows": rows,
                                         "identical": same}, indent=2))
    return 0 if same else 1


def store_modes(args: argparse.Namespace) -> int:
    """Serial toy sweeps, one flush per run, in each store mode; medians of ``--repeat`` sweeps."""
    from migration_abm.experiments import run_sweep, store_digest

    exp = experiment(args.runs, None, args.end_year, toy=True)
    modes = {"default (fold at end)": {}, "fold every flush": {"fold_seconds": 0.0}, "swmr": {"swmr": True}}
    rows, digests = [], set()
    print(f"{exp.n_runs} toy runs, serial, batch size 1, years {exp.years[0]}-{exp.years[-1]}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeat):  # modes interleaved so load changes hit all of them alike
            for name, kw in modes.items():
                out = Path(tmp) / f"{len(rows)}.h5"
                t0 = time.perf_counter()
                run_sweep(exp, out, "serial", batch_size=1, progress=False, **kw)
                rows.append({"mode": name, "rep": rep, "s": time.perf_counter() - t0,
                             "bytes": out.stat().st_size})
                digests.add(store_digest(out))
    base = statistics.median(r["s"] for r in rows if r["mode"].startswith("default"))
    summary = []
    for name in modes:
        t = statistics.median(r["s"] for r in rows if r["mode"] == name)
        summary.append({"mode": name, "median_s": t, "ms_per_run": 1e3 * t / exp.n_runs, "ratio": t / base})
        print(f"{name:22s} median {t:6.2f} s  {1e3 * t / exp.n_runs:6.2f} ms/run  {t / base:5.2f}x default")
    print(f"stores identical across modes: {len(digests) == 1}")
    if args.json:
        args.json.write_text(json.dumps({"runs": exp.n_runs, "rows": rows, "summary": summary,
                                         "identical": len(digests) == 1}, indent=2))
    return 0 if len(digests) == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
