"""Benchmark: the main job's siting part (``migration-abm run configs/baseline.toml --site``), timed alone.

``.venv/bin/python benchmarks/siting_main_job.py [--households-per-agent 2000]`` simulates the baseline
(not timed), then plans the main job's facilities exactly as ``run --site`` does and prints, per
facility and in total, CPU seconds (``time.process_time``, all threads) and wall seconds, with the load.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from migration_abm.cli.run import MAIN_JOB_FACILITIES, MAIN_JOB_REGIONS, MAIN_JOB_TIME_LIMIT_S
from migration_abm.config import load_config
from migration_abm.model import simulate
from migration_abm.siting import plan_for_results

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--households-per-agent", type=float, help="override run.households_per_agent")
    args = ap.parse_args(argv)
    over = {} if args.households_per_agent is None else {"run.households_per_agent": args.households_per_agent}
    cfg = load_config(ROOT / "configs/baseline.toml", over)
    res = simulate(cfg, cfg.run.seed)
    year = int(res.years[-1])
    c0, t0 = time.process_time(), time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for facility in MAIN_JOB_FACILITIES:
            c1, t1 = time.process_time(), time.perf_counter()
            plan = plan_for_results(res, year, facility, districts=MAIN_JOB_REGIONS,
                                    config={"time_limit_s": MAIN_JOB_TIME_LIMIT_S, **(cfg.siting or {})},
                                    seed=cfg.run.seed, out_dir=Path(tmp) / facility)
            print(f"{facility}: cpu {time.process_time() - c1:.2f} s, wall {time.perf_counter() - t1:.2f} s; "
                  f"{plan.summary()}", flush=True)
    print(f"siting part: cpu {time.process_time() - c0:.2f} s, wall {time.perf_counter() - t0:.2f} s, "
          f"load {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
