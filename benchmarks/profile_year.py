"""Where a simulated year goes (run: `python benchmarks/profile_year.py [--hpa 1] [--years 3]`).

Process CPU time per compiled kernel (every ``numba`` dispatcher in :mod:`migration_abm.kernels`) and per
method of the model's numpy Generator, summed over each step, and the rest (Python, numpy calls) as
"other"; configs/baseline.toml (2020 base year) at ``--hpa`` households per agent, seed 1 as
bench_model.py's scaling rows. The wrappers add a few µs per call, so the total is a little above an
unwrapped step. Machine load (1-minute average) is printed with each year.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from migration_abm import kernels  # noqa: E402
from migration_abm.config import load_config  # noqa: E402
from migration_abm.model import MigrationModel  # noqa: E402

SPENT: collections.Counter[str] = collections.Counter()
CALLS: collections.Counter[str] = collections.Counter()


def timed(name: str, f):
    def call(*args, **kw):
        t0 = time.process_time()
        try:
            return f(*args, **kw)
        finally:
            SPENT[name] += time.process_time() - t0
            CALLS[name] += 1
    return call


class TimedGenerator:
    """The model's Generator with its methods timed (attributes passed through)."""

    def __init__(self, rng) -> None:
        self.rng = rng

    def __getattr__(self, name: str):
        f = getattr(self.rng, name)
        return timed(f"rng.{name}", f) if callable(f) else f


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hpa", type=float, default=1.0, help="households per agent (1 = full scale)")
    ap.add_argument("--years", type=int, default=3)
    ap.add_argument("--top", type=int, default=15, help="rows per year")
    args = ap.parse_args()
    for name in dir(kernels):
        f = getattr(kernels, name)
        if hasattr(f, "py_func"):  # a numba dispatcher
            setattr(kernels, name, timed(name, f))
    cfg = load_config(ROOT / "configs" / "baseline.toml", {"run.households_per_agent": args.hpa})
    t0 = time.process_time()
    m = MigrationModel(cfg, rng=1)
    print(f"set-up {time.process_time() - t0:.2f} s CPU, {m.households.n} rows, load {os.getloadavg()[0]:.2f}")
    m.rng = TimedGenerator(m.rng)
    for _ in range(args.years):
        SPENT.clear()
        CALLS.clear()
        t0 = time.process_time()
        m.step()
        total = time.process_time() - t0
        print(f"{m.year}: {total:.3f} s CPU, {m.households.n} rows, load {os.getloadavg()[0]:.2f}")
        ranked = SPENT.most_common()
        for name, s in ranked[:args.top]:
            print(f"  {name:24s} {s:7.3f} s  ({CALLS[name]} calls)")
        print(f"  {f'{len(ranked[args.top:])} more kernels':24s} {sum(s for _, s in ranked[args.top:]):7.3f} s")
        print(f"  {'Python, numpy':24s} {total - sum(SPENT.values()):7.3f} s")


if __name__ == "__main__":
    main()
