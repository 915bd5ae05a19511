"""Calibration throughput (run: `python benchmarks/bench_calibration.py [--against DIR] [--particles N] [--rounds R]`).

What one ABC particle of `experiments/calibration_backcast.toml` costs in a worker: the run from the
2010 census to its `fit_until` (2013) and the backcast run from the 2000 census to 2010, both at the
spec's 300 households per agent, with parameters drawn from the spec's prior box (the same draws and
seeds for every tree). Each tree runs in a fresh process that first does one untimed particle (kernel
cache load, the set-up memos a long-lived worker holds), then times N particles one by one; with
``--against DIR`` (e.g. a worktree of an older commit) the trees alternate for R rounds in the same
invocation, so the ratio compares like with like. Prints per-particle medians (s), the ratio, and the
1-minute load before and after. Not measured: the sweep engine's store writes and process pool (a few
ms per run, the same for every tree) and the ABC bookkeeping between generations.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "experiments" / "calibration_backcast.toml"

CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
from migration_abm.calibration import CalibrationSpec, simulate_from_census
from migration_abm.model import simulate

spec = CalibrationSpec.from_toml(sys.argv[2])
base = spec.base_config()
back = base.with_overrides({"run.start_year": spec.backcast_from, "run.end_year": base.run.start_year},
                           source="bench [backcast_from]")
rng = np.random.default_rng(2013)
names = list(spec.parameters)
lo, hi = (np.array([spec.parameters[k][i] for k in names]) for i in (0, 1))
n = int(sys.argv[3])
out = {"forward": [], "backcast": []}
for i in range(n + 1):
    theta = dict(zip(names, map(float, lo + (hi - lo) * rng.random(len(names)))))
    t0 = time.perf_counter()
    simulate(base.with_overrides(theta), seed=1000 + i)
    t1 = time.perf_counter()
    simulate_from_census(back.with_overrides(theta), 1000 + i)
    t2 = time.perf_counter()
    if i:  # the first particle is the untimed warm-up
        out["forward"].append(t1 - t0)
        out["backcast"].append(t2 - t1)
print(json.dumps(out))
"""


def particles(tree: Path, n: int) -> dict[str, list[float]]:
    """Seconds per particle (forward run, backcast run) with the package in ``tree``, in a fresh process."""
    done = subprocess.run([sys.executable, "-c", CHILD, str(tree), str(SPEC), str(n)], check=True,
                          capture_output=True, text=True, cwd=tree)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--against", type=Path, help="a source tree to time the same particles with")
    ap.add_argument("--particles", type=int, default=12, help="timed particles per tree and round (default 12)")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds (default 2)")
    args = ap.parse_args()
    trees = {"this tree": ROOT} | ({f"against {args.against}": args.against.resolve()} if args.against else {})
    times: dict[str, dict[str, list[float]]] = {k: {"forward": [], "backcast": []} for k in trees}
    load0 = os.getloadavg()[0]
    for _ in range(args.rounds):
        for label, tree in trees.items():
            for part, secs in particles(tree, args.particles).items():
                times[label][part] += secs
    load1 = os.getloadavg()[0]
    print(f"{SPEC.name}: {args.particles} particles x {args.rounds} rounds per tree; load {load0:.2f} -> {load1:.2f}")
    medians = {}
    for label, parts in times.items():
        total = [f + b for f, b in zip(parts["forward"], parts["backcast"], strict=True)]
        medians[label] = statistics.median(total)
        print(f"  {label:40s} median s/particle {medians[label]:.3f}  (2010->2013 {statistics.median(parts['forward']):.3f}, "
              f"2000->2010 {statistics.median(parts['backcast']):.3f}; {len(total)} particles)")
    if args.against:
        mine, theirs = medians.values()
        print(f"  ratio (against / this tree): {theirs / mine:.2f}")


if __name__ == "__main__":
    main()
