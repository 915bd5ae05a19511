"""Runs page: the run files and sweep stores under the results folder; open any in Compare."""

from __future__ import annotations

from pathlib import Path

import solara

from migration_abm.app import data, state
from migration_abm.app.widgets import note
from migration_abm.errors import InputError
from migration_abm.results import Results

picked: solara.Reactive[list[str]] = solara.reactive([])
message = solara.reactive("")
refresh = solara.reactive(0)


def open_each(paths: list[str]) -> None:
    """Each picked entry as its own scenario (a sweep store gives one per design point)."""
    try:
        new = [s for p in paths for s in data.open_entry(p)]
    except InputError as exc:
        message.value = f"error: {exc}"
        return
    state.add_scenarios(new)
    message.value = f"opened {len(new)} scenario(s) in Compare: {', '.join(s.name for s in new)}"


def open_together(paths: list[str]) -> None:
    """Picked run files as replicates of one scenario (e.g. the same config with several seeds)."""
    try:
        runs = [Results.from_hdf5(p) for p in paths]
        name = " + ".join(Path(p).stem for p in paths) if len(paths) <= 2 else f"{Path(paths[0]).stem} +{len(paths) - 1}"
        scn = data.scenario_from_results(name, runs, paths)
    except InputError as exc:
        message.value = f"error: {exc}"
        return
    state.add_scenarios([scn])
    message.value = f"opened {name} ({len(runs)} replicates) in Compare"


@solara.component
def Page() -> None:
    solara.Title("Runs · migration-abm")
    root = state.results_dir()
    table = solara.use_memo(lambda: data.list_results(root), [refresh.value, str(root)])
    note(f"Run files (`migration-abm run`, this page's runs) and sweep stores (`sweep`, `compare`) "
                    f"under `{root}/`.")
    solara.Button("Refresh", on_click=lambda: refresh.set(refresh.value + 1), text=True)
    if table.empty:
        solara.Info(f"Nothing under {root}/ yet.")
        return
    solara.DataFrame(table.drop(columns=["path"]), items_per_page=25)
    files = list(table["file"])
    full = dict(zip(table["file"], table["path"], strict=True))
    kinds = dict(zip(table["file"], table["kind"], strict=True))
    solara.SelectMultiple("Pick entries", values=picked, all_values=files)
    chosen = [full[f] for f in picked.value if f in full]
    only_runs = bool(chosen) and all(kinds[f] == "run" for f in picked.value if f in kinds)
    with solara.Row():
        solara.Button("Open each in Compare", on_click=lambda: open_each(chosen), disabled=not chosen,
                      color="primary", classes=["open-each"])
        solara.Button("Open together as replicates", on_click=lambda: open_together(chosen),
                      disabled=not (only_runs and len(chosen) > 1))
    if message.value:
        (solara.Error if message.value.startswith("error") else solara.Success)(message.value)
