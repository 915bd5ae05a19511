"""Siting optimiser: schools and hospitals where the model puts people (LSCP, MCLP, capacitated MCLP,
p-median on sparse coverage sets, one module per problem family; formulations listed in ``registry``).

Quick use::

    from migration_abm.siting import plan_for_results
    plan = plan_for_results(results, 2030, "primary_school", districts="expansion", budget=30, out_dir="out")
    print(plan.summary())

Names are imported on first use so the command line starts without loading the solvers.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "coverage_matrix": "coverage",
    "LSCP": "lscp", "MCLP": "mclp", "CapacitatedMCLP": "cmclp", "PMedian": "p_median",
    "MODELS": "registry",
    "SitingPlan": "plan", "plan_for_results": "plan", "plan_from_csv": "plan", "plan_sites": "plan",
    "CATALOGUE": "settings", "FacilityType": "settings", "SitingSettings": "settings", "Sourced": "settings",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f"migration_abm.siting.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'migration_abm.siting' has no attribute {name!r}")
