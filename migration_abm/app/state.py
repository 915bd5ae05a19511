"""Per-browser-session state shared by the pages (Solara reactives are scoped to each session)."""

from __future__ import annotations

import os
from pathlib import Path

import solara

from migration_abm.app import RESULTS_ENV
from migration_abm.app.data import Scenario


def results_dir() -> Path:
    """The results folder the app reads and writes (``--results``, default ./results)."""
    return Path(os.environ.get(RESULTS_ENV, "results"))


#: Scenarios loaded or run in this session, in the order they arrived.
scenarios: solara.Reactive[list[Scenario]] = solara.reactive([])
#: Names of the scenarios shown in Compare, and the reference they are differenced against.
shown: solara.Reactive[list[str]] = solara.reactive([])
reference: solara.Reactive[str | None] = solara.reactive(None)
level: solara.Reactive[str] = solara.reactive("region")


def add_scenarios(new: list[Scenario]) -> None:
    """Add (or replace by name) scenarios and show them in Compare; the first one is the reference."""
    names = {s.name for s in new}
    scenarios.value = [s for s in scenarios.value if s.name not in names] + list(new)
    shown.value = [n for n in shown.value if n not in names] + [s.name for s in new]
    if reference.value is None or reference.value not in {s.name for s in scenarios.value}:
        reference.value = shown.value[0]


def by_name(name: str | None) -> Scenario | None:
    return next((s for s in scenarios.value if s.name == name), None)
