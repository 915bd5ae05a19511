"""Siting optimiser: schools and hospitals where the model puts people (LSCP, MCLP, capacitated MCLP,
p-median on sparse coverage sets; lazy greedy → swap → Lagrangian bound → warm-started HiGHS MILP).

Quick use::

    from migration_abm.siting import plan_for_results
    plan = plan_for_results(results, 2030, "primary_school", districts="expansion", budget=30, out_dir="out")
    print(plan.summary())
"""

from migration_abm.siting.coverage import coverage_matrix
from migration_abm.siting.models import LSCP, MCLP, CapacitatedMCLP, PMedian
from migration_abm.siting.plan import SitingPlan, plan_for_results, plan_from_csv, plan_sites
from migration_abm.siting.settings import CATALOGUE, FacilityType, SitingSettings, Sourced

__all__ = ["CATALOGUE", "LSCP", "MCLP", "CapacitatedMCLP", "FacilityType", "PMedian", "SitingPlan",
           "SitingSettings", "Sourced", "coverage_matrix", "plan_for_results", "plan_from_csv", "plan_sites"]
