"""Model benchmarks (run: `python benchmarks/bench_model.py [--full] [--repeats N]`).

1. Default run (configs/baseline.toml, 2010→2035): median wall time of N runs.
2. Full scale (1 agent = 1 household, ≈10.7 M rows): median seconds per simulated year and peak RSS,
   measured in a fresh subprocess so the peak is the model's own.
3. Per-object comparison: the yearly migration decision (consider → destination logit → move) done by a
   plain Mesa Agent per household versus the vectorised column version, on the same ≈20 000 households
   and the same district-level inputs; reported per household-year and as a ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import mesa
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from migration_abm.config import load_config  # noqa: E402
from migration_abm.migration import logit as _logit  # noqa: E402
from migration_abm.model import MigrationModel, simulate  # noqa: E402
from migration_abm.policy import hukou_openness, nonlocal_rights  # noqa: E402

BASELINE = ROOT / "configs" / "baseline.toml"


def bench_default(repeats: int) -> dict:
    cfg = load_config(BASELINE)
    times = []
    for i in range(repeats):
        t0 = time.perf_counter()
        simulate(cfg, seed=i)
        times.append(time.perf_counter() - t0)
    return {"default_run_s_median": statistics.median(times), "default_run_s_all": times,
            "households_per_agent": cfg.run.households_per_agent}


FULL_SCALE_CHILD = r"""
import json, resource, sys, time
from migration_abm.config import load_config
from migration_abm.model import MigrationModel
cfg = load_config(sys.argv[1], {"run.households_per_agent": 1.0})
t0 = time.perf_counter(); m = MigrationModel(cfg, rng=1); init = time.perf_counter() - t0
steps = []
for _ in range(int(sys.argv[2])):
    t0 = time.perf_counter(); m.step(); steps.append(time.perf_counter() - t0)
print(json.dumps({"rows": int(m.households.n), "init_s": init, "step_s": steps,
                  "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2}))
"""


def bench_full_scale(years: int) -> dict:
    out = subprocess.run([sys.executable, "-c", FULL_SCALE_CHILD, str(BASELINE), str(years)], check=True,
                         capture_output=True, text=True, cwd=ROOT)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    r["step_s_median"] = statistics.median(r["step_s"])
    return r


class HouseholdAgent(mesa.Agent):
    """One household as a plain Mesa agent: the same stage-1/stage-2 decision as the column model."""

    def __init__(self, model: mesa.Model, row: dict) -> None:
        super().__init__(model)
        self.__dict__.update(row)

    def step(self) -> None:
        env = self.model.env
        b = env["b"]
        x = (env["logit_base"] + b.consider_young * (18 <= self.head <= 34) + b.consider_old * (self.head >= 60)
             + b.consider_unemployed * self.jobless + b.consider_rural * (not self.urban)
             + b.consider_overload * env["overload"][self.district])
        if self.model.rng.random() >= 1.0 / (1.0 + np.exp(-x)):
            return
        access = np.where(env["cols"] == self.hukou_district, 1.0, env["openness"])
        u = b.beta_income * np.log(self.prem * env["wage"] * (env["p"] + (1 - env["p"]) * env["fallback"]))
        u[self.district] = b.beta_income * np.log(max(self.income, 1.0))
        u += b.beta_hukou * access
        u += b.beta_school * self.children * (access + (1 - access) * env["school_nl"])
        u += b.beta_insurance * (access + (1 - access) * env["ins_nl"])
        u += env["base"]
        dist = env["dist"][self.district]
        u -= b.beta_distance * np.log1p(dist)
        cost = b.moving_cost_yuan + b.cost_per_km_yuan * dist
        cost[self.district] = 0.0
        u -= b.beta_cost * cost / max(self.income, 1000.0)
        u[self.district] += b.beta_stay
        self.district = int(np.argmax(u + self.model.rng.gumbel(size=u.shape)))


class ObjectModel(mesa.Model):
    """Mesa model with one HouseholdAgent per household row of a column model."""

    def __init__(self, src: MigrationModel) -> None:
        super().__init__(rng=np.random.default_rng(0))
        hh, lab, b = src.households, src.labour, src.cfg.behaviour
        income = lab.income(hh)
        jobless = ~hh.employed & (hh.workers() > 0)
        prem = lab.skill_premium[hh.skill] * np.maximum(hh.workers(), 1)
        kids = hh.has_children()
        for i in range(hh.n):
            HouseholdAgent(self, {"head": int(hh.ages[i, 0]), "jobless": bool(jobless[i]), "urban": bool(hh.urban[i]),
                                  "district": int(hh.district[i]), "hukou_district": int(hh.hukou_district[i]),
                                  "income": float(income[i]), "prem": float(prem[i]), "children": bool(kids[i])})
        _, service_pc, pressure = src._pressures()
        size = np.log(np.maximum(lab.jobs[:, 1:].sum(axis=1), 1.0))
        school_nl, ins_nl = nonlocal_rights(src.cfg, src.year)
        self.env = {"b": b, "logit_base": _logit(b.consider_base), "overload": np.zeros(src.geo.n),
                    "cols": np.arange(src.geo.n), "openness": hukou_openness(src.geo, src.cfg, src.year),
                    "wage": lab.nonfarm_wage(), "p": lab.find_rate, "fallback": src.cfg.economy.unemployed_income_share,
                    "school_nl": school_nl, "ins_nl": ins_nl, "dist": src.geo.distance_km,
                    "base": b.beta_service * np.log(np.maximum(service_pc, 1e-6)) - b.beta_housing * pressure
                    + b.beta_size * size}

    def step(self) -> None:
        self.agents.do("step")


def bench_per_object(n_households: int, repeats: int) -> dict:
    cfg = load_config(BASELINE, {"run.households_per_agent": 10.7e6 / n_households})
    vec, obj = [], []
    for i in range(repeats):
        m = MigrationModel(cfg, rng=i)
        n = m.households.n
        t0 = time.perf_counter()
        m._internal_migration()
        vec.append((time.perf_counter() - t0) / n)
        om = ObjectModel(MigrationModel(cfg, rng=i))
        t0 = time.perf_counter()
        om.step()
        obj.append((time.perf_counter() - t0) / n)
    v, o = statistics.median(vec), statistics.median(obj)
    return {"households": n, "vectorised_us_per_household_year": v * 1e6, "per_object_us_per_household_year": o * 1e6,
            "speed_ratio": o / v}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--full", action="store_true", help="also run the full-scale benchmark (≈4 GB, minutes)")
    ap.add_argument("--full-years", type=int, default=3)
    ap.add_argument("--json", help="write results to this file")
    args = ap.parse_args()
    res = {"default": bench_default(args.repeats), "per_object": bench_per_object(20000, args.repeats)}
    if args.full:
        res["full_scale"] = bench_full_scale(args.full_years)
    print(json.dumps(res, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
