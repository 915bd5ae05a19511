"""Benchmark: MCLP on the dense clustered city family (``siting_instances.dense_instance``).

``.venv/bin/python benchmarks/siting_dense.py --size 10000 --seeds 0 1 2 --repeats 1 --budget 7
--best-known results/bench/best_known_10k.jsonl``. Each run builds the coverage from the points and
solves with the time limit set so that build + solve fit in ``--budget`` seconds (wall clock). Reported
per run: arcs per demand point, seconds, objective, certified bound and which bound it is, gap, the
shortfall against the best known solution (from ``siting_best_known.py``), and the time the incumbent
first came within ``--target`` of it. Medians over all runs close the table; ``uptime`` load is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from siting_instances import DENSE_RADIUS_KM, arcs_per_point, dense_instance

from migration_abm.siting.coverage import coverage_matrix
from migration_abm.siting.mclp import MCLP

#: n demand -> (m candidates, p)
SIZES = {2000: (200, 20), 5000: (500, 40), 10000: (1000, 60), 20000: (2000, 100), 50000: (5000, 200)}


def load_best_known(path: Path | None) -> dict[tuple[int, int], float]:
    """(n, seed) -> best known objective, from JSON lines written by siting_best_known.py."""
    if path is None or not path.exists():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {(r["n"], r["seed"]): max(r["objective"], r.get("quick_objective", 0.0)) for r in rows}


def run_once(n: int, seed: int, budget: float, gap: float, best: float | None, target: float) -> dict:
    """One timed build + solve on instance (n, seed)."""
    m, p = SIZES[n]
    d, c, w = dense_instance(n, m, seed)
    t0 = time.perf_counter()
    a = coverage_matrix(d, c, DENSE_RADIUS_KM)
    build = time.perf_counter() - t0
    model = MCLP(a, w, p, time_limit=max(0.1, budget - build), mip_gap=gap, seed=seed).solve()
    secs = time.perf_counter() - t0
    row = {"n": n, "m": m, "p": p, "seed": seed, "arcs_per_point": round(arcs_per_point(a)["mean"], 2),
           "seconds": round(secs, 2), "build_s": round(build, 2), "objective": round(model.objective_, 2),
           "bound": round(model.bound_, 2), "bound_kind": model.bound_kind_, "gap_pct": round(100 * model.gap_, 3),
           "status": model.status_, "stages": {k: round(v, 2) for k, v in model.result_.stages.items()}}
    if best:
        row["best_known"] = best
        row["below_best_pct"] = round(100 * (best - model.objective_) / best, 4)
        hit = next((build + t for t, v in model.result_.trace if v >= best * (1 - target)), None)
        row[f"reach_{100 * target:g}pct_s"] = None if hit is None else round(hit, 2)
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, choices=sorted(SIZES), default=10000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--budget", type=float, default=7.0, help="wall seconds for build + solve")
    ap.add_argument("--gap", type=float, default=1e-4, help="target relative gap")
    ap.add_argument("--target", type=float, default=1e-3, help="'reach' = within this share of the best known")
    ap.add_argument("--best-known", type=Path)
    ap.add_argument("--json", type=Path, help="append the rows here (JSON lines)")
    args = ap.parse_args(argv)
    best = load_best_known(args.best_known)
    run_once(2000, 99, 2.0, 1e-4, None, args.target)  # warm-up: imports and first HiGHS call are not timed
    rows = []
    for seed in args.seeds:
        for _ in range(args.repeats):
            row = run_once(args.size, seed, args.budget, args.gap, best.get((args.size, seed)), args.target)
            row["load"] = os.getloadavg()
            rows.append(row)
            print(json.dumps(row), flush=True)
            if args.json:
                with args.json.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(row) + "\n")
    summary = {"n": args.size, "runs": len(rows), "median_seconds": statistics.median(r["seconds"] for r in rows),
               "median_gap_pct": statistics.median(r["gap_pct"] for r in rows),
               "max_gap_pct": max(r["gap_pct"] for r in rows), "load_end": os.getloadavg()}
    if all("below_best_pct" in r for r in rows):
        summary["median_below_best_pct"] = statistics.median(r["below_best_pct"] for r in rows)
        summary["max_below_best_pct"] = max(r["below_best_pct"] for r in rows)
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
