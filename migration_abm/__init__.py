"""migration-abm: household migration across Chongqing's five functional regions, and siting of
schools and hospitals for the projected population."""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "simulate": "migration_abm.model",
    "MigrationModel": "migration_abm.model",
    "Results": "migration_abm.results",
    "load_config": "migration_abm.config",
    "Config": "migration_abm.config",
    "Geography": "migration_abm.geography",
    "load_sweep": "migration_abm.experiments",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    """Import public names on first use so `import migration_abm` stays fast for the CLI."""
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'migration_abm' has no attribute {name!r}")
