"""Siting model registry: formulation name → model class, read by the settings, ``plan_sites`` and the CLI.

A new formulation is one module (a class with ``name``, ``from_problem``, ``solve`` and ``serve``)
plus one line here. Classes are imported on first use, so reading the names costs nothing.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

#: name -> "module:Class" (modules under migration_abm.siting)
MODELS: dict[str, str] = {
    "mclp": "mclp:MCLP",
    "capacitated_mclp": "cmclp:CapacitatedMCLP",
    "lscp": "lscp:LSCP",
    "p_median": "p_median:PMedian",
}


def names() -> tuple[str, ...]:
    """The registered formulation names."""
    return tuple(MODELS)


def get(name: str) -> Any:
    """The model class registered under ``name`` (KeyError if none)."""
    module, cls = MODELS[name].split(":")
    return getattr(import_module(f"migration_abm.siting.{module}"), cls)
