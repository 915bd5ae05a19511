"""Bit-identity check for speed work (run: `python benchmarks/digests.py [--against DIR]`).

Prints a SHA-256 digest of ``Results.arrays`` for nine config/seed pairs (seed 7): baseline at 100, 20
and 300 households per agent, no_policy, strong_job_matching, hindcast_2010_controlled,
lever_land_fiscal_link, lever_ecological_relocation, tight_hukou_expansion. With ``--against DIR`` the
same runs are made with the package found in DIR (e.g. `git archive` of the commit before a change, or
main's worktree; the configs are this tree's in both) in a separate process, and the script exits 1
unless every digest is equal.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAIRS = [("baseline.toml", {"run.households_per_agent": 100.0}), ("baseline.toml", {"run.households_per_agent": 20.0}),
         ("baseline.toml", {"run.households_per_agent": 300.0}), ("no_policy.toml", {}),
         ("strong_job_matching.toml", {}), ("hindcast_2010_controlled.toml", {}), ("lever_land_fiscal_link.toml", {}),
         ("lever_ecological_relocation.toml", {}), ("tight_hukou_expansion.toml", {})]
SEED = 7

CHILD = r"""
import hashlib, json, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
from migration_abm.config import load_config
from migration_abm.model import simulate
out = []
for name, over in json.loads(sys.argv[2]):
    r = simulate(load_config(f"{sys.argv[4]}/{name}", over), seed=int(sys.argv[3]))
    h = hashlib.sha256()
    for k in sorted(r.arrays):
        h.update(k.encode())
        h.update(np.ascontiguousarray(r.arrays[k]).tobytes())
    out.append(h.hexdigest())
print(json.dumps(out))
"""


def digests(tree: Path) -> list[str]:
    """The nine digests computed with the package in ``tree`` (and this tree's configs), in a fresh process."""
    out = subprocess.run([sys.executable, "-c", CHILD, str(tree), json.dumps(PAIRS), str(SEED), str(ROOT / "configs")],
                         check=True, capture_output=True, text=True, cwd=tree)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--against", type=Path, help="a source tree whose package must give the same digests")
    args = ap.parse_args()
    mine = digests(ROOT)
    theirs = digests(args.against.resolve()) if args.against else None
    for i, ((name, over), d) in enumerate(zip(PAIRS, mine, strict=True)):
        same = "" if theirs is None else ("  same" if theirs[i] == d else f"  DIFFERS (reference {theirs[i]})")
        print(f"{name:34s} {json.dumps(over):38s} {d}{same}")
    if theirs is not None:
        print("all nine equal" if theirs == mine else "digests differ")
        sys.exit(0 if theirs == mine else 1)


if __name__ == "__main__":
    main()
