"""Best known solutions of dense MCLP instances: a long HiGHS run on the full MILP.

``.venv/bin/python benchmarks/siting_best_known.py --n 10000 --m 1000 --p 60 --seeds 0 1 2 --limit 900``
prints one JSON line per seed (objective, bound, gap, seconds) and appends it to ``--json`` if given.
The model is the plain MCLP (x binary, y ≤ Ax, Σx ≤ p) with identical rows merged (an exact
reduction), warm-started from the package's own 7-second solution.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from siting_instances import DENSE_RADIUS_KM, arcs_per_point, dense_instance

from migration_abm.siting._highs import solve_milp
from migration_abm.siting.coverage import coverage_matrix
from migration_abm.siting.mclp import MCLP
from migration_abm.siting.reduce import merge_identical_rows


def best_known(n: int, m: int, p: int, seed: int, limit: float) -> dict:
    """Long HiGHS run on one dense instance; returns objective, bound and gap."""
    d, c, w = dense_instance(n, m, seed)
    a = coverage_matrix(d, c, DENSE_RADIUS_KM)
    quick = MCLP(a, w, p, time_limit=7.0, mip_gap=1e-4).solve()
    live = np.diff(a.indptr) > 0
    ar, wr, _ = merge_identical_rows(a[live], w[live])
    nr, mf = ar.shape
    top = sp.hstack([-ar, sp.identity(nr, format="csr")], format="csr")
    budget = sp.csr_matrix((np.ones(mf), (np.zeros(mf, dtype=np.int64), np.arange(mf))), shape=(1, mf + nr))
    x0 = np.zeros(mf)
    x0[quick.selected_] = 1.0
    y0 = np.minimum(1.0, np.asarray(ar @ x0).ravel())
    t0 = time.perf_counter()
    res = solve_milp(np.concatenate([np.zeros(mf), wr]), sp.vstack([top, budget], format="csc"),
                     np.full(nr + 1, -np.inf), np.concatenate([np.zeros(nr), [p]]), np.zeros(mf + nr),
                     np.ones(mf + nr), np.concatenate([np.ones(mf, bool), np.zeros(nr, bool)]), maximize=True,
                     time_limit=limit, mip_rel_gap=1e-6, start=np.concatenate([x0, y0]))
    x = np.zeros(m)
    x[np.flatnonzero(res.x[:mf] > 0.5)] = 1.0
    obj = float(w[(a @ x) > 0].sum())  # re-scored on the original rows
    return {"n": n, "m": m, "p": p, "seed": seed, "arcs_per_point": arcs_per_point(a), "objective": obj,
            "bound": res.bound, "gap": res.gap, "status": res.status, "seconds": time.perf_counter() - t0,
            "quick_objective": quick.objective_}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--m", type=int, default=1000)
    ap.add_argument("--p", type=int, default=60)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--limit", type=float, default=900.0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    for seed in args.seeds:
        row = best_known(args.n, args.m, args.p, seed, args.limit)
        print(json.dumps(row), flush=True)
        if args.json:
            with args.json.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
