"""Scenario page: pick a config, change the policy levers (range and documentation from the config
schema), run replicates at a chosen scale in a background thread with a progress bar."""

from __future__ import annotations

import time
from pathlib import Path

import reacton.ipyvuetify as rv
import solara
import solara.lab

from migration_abm.app import data, state
from migration_abm.app.compare import CompareCharts
from migration_abm.app.widgets import note
from migration_abm.errors import InputError

SCALES = {"quick (1 agent = 1000 households)": 1000.0, "reduced (1 agent = 500 households)": 500.0,
          "standard (1 agent = 100 households)": 100.0, "fine (1 agent = 20 households)": 20.0}

config_path = solara.reactive("configs/baseline.toml")
own_path = solara.reactive("")
edits: solara.Reactive[dict[str, str]] = solara.reactive({})
extra_sets = solara.reactive("")
scale = solara.reactive(next(iter(SCALES)))
replicates = solara.reactive(3)
run_name = solara.reactive("")
message: solara.Reactive[str] = solara.reactive("")
POLICIES = ("hukou", "job_matching", "migrant_rights", "land_fiscal_link", "ecological_relocation")
section = solara.reactive(POLICIES[0])


def overrides() -> list[str]:
    """The lever edits and free ``KEY=VALUE`` lines, as the CLI's ``--set`` items, plus the scale."""
    items = [f"{k}={v}" for k, v in edits.value.items()]
    items += [ln.strip() for ln in extra_sets.value.splitlines() if ln.strip()]
    return items + [f"run.households_per_agent={SCALES[scale.value]}"]


def chosen_path() -> str:
    return own_path.value.strip() or config_path.value


@solara.lab.task
def run_task(path: str, sets: list[str], n: int, name: str) -> str:
    """Run ``n`` replicates (seeds 1..n: common random numbers across scenarios) off the UI thread."""
    from migration_abm.config import load_config

    t0 = time.perf_counter()
    cfg = load_config(path, sets)

    shown_at = [0.0]

    def progress(frac: float) -> None:  # at most two updates a second: each one re-renders the bar
        now = time.perf_counter()
        if frac >= 1.0 or now - shown_at[0] >= 0.5:
            shown_at[0] = now
            run_task.progress = 100.0 * frac

    fixed = tuple(item.split("=", 1)[0].strip() for item in sets)  # edits keep their value in every draw
    scn, reused = data.run_scenario(cfg, name, list(range(1, n + 1)), state.results_dir() / "app", progress, fixed)
    state.add_scenarios([scn])
    took = time.perf_counter() - t0
    return (f"{name}: {n} replicate(s) in {took:.1f} s"
            + (f" ({reused} reused from identical earlier runs)" if reused else "")
            + f"; wrote {Path(scn.sources[0]).parent}/")


def start_run() -> None:
    """Validate synchronously (same one-line messages as the CLI), then start the background run."""
    from migration_abm.config import load_config

    sets = overrides()
    try:
        load_config(chosen_path(), sets)
        if not 1 <= int(replicates.value) <= 50:
            raise InputError("app", "replicates", replicates.value, "must be within [1, 50]")
    except InputError as exc:
        message.value = f"error: {exc}"
        return
    message.value = ""
    name = run_name.value.strip() or Path(chosen_path()).stem + ("_edited" if len(sets) > 1 else "")
    run_task(chosen_path(), sets, int(replicates.value), name)


@solara.component
def RunStatus(load_error: str) -> None:
    """Progress bar and outcome of the background run (re-renders alone while the run progresses)."""
    if run_task.pending:
        solara.ProgressLinear(run_task.progress or True)
        solara.Text(f"running… {run_task.progress or 0:.0f} %", classes=["run-progress"])
    if message.value:
        solara.Error(message.value, classes=["run-error"])
    elif load_error:
        solara.Error(load_error, classes=["run-error"])
    elif run_task.finished and run_task.value:
        with solara.Div(style={"overflow-wrap": "anywhere"}):
            solara.Success(run_task.value, classes=["run-done"])
    elif run_task.error:
        solara.Error(f"internal error: {type(run_task.exception).__name__}: {run_task.exception}",
                     classes=["run-error"])
    if edits.value:
        note("**Changed levers:** " + ", ".join(f"`{k}={v}`" for k, v in edits.value.items()))


@solara.component
def LeverInput(lever: data.Lever) -> None:
    """One lever: a control, its range and its documentation."""
    cur = edits.value.get(lever.key)

    def set_value(v: str | bool) -> None:
        text = ("true" if v else "false") if isinstance(v, bool) else str(v).strip()
        new = dict(edits.value)
        default = ("true" if lever.value else "false") if lever.kind == "bool" else f"{lever.value}"
        if text == default or text == "":
            new.pop(lever.key, None)
        else:
            new[lever.key] = text
        edits.value = new
        message.value = ""

    short = lever.key.split(".", 2)[-1]
    style = "min-width: 260px; max-width: 340px; margin-right: 16px"
    if lever.kind == "bool":
        rv.Checkbox(label=short, v_model=(cur == "true") if cur is not None else bool(lever.value),
                    on_v_model=lambda v: set_value(bool(v)), messages=[lever.doc] if lever.doc else [],
                    hide_details=not lever.doc, style_=style)
    else:
        bad = f" {lever.key} = " in message.value
        solara.InputText(label=f"{short}  {lever.range_text}", value=cur if cur is not None else f"{lever.value}",
                         on_value=set_value, continuous_update=False, message=lever.doc, style=style, error=bad)


@solara.component
def Page() -> None:
    solara.Title("Scenario · migration-abm")
    path = chosen_path()

    def load() -> tuple[object | None, str]:
        from migration_abm.config import load_config

        try:
            return load_config(path), ""
        except InputError as exc:
            return None, f"error: {exc}"

    cfg, load_error = solara.use_memo(load, [path])
    with solara.Columns([1, 3]):
        with solara.Card("Scenario"):
            solara.Select("Packaged config", values=data.config_choices(), value=config_path,
                          on_value=lambda v: (config_path.set(v), edits.set({})))
            solara.InputText("…or your own config (path to a TOML file)", value=own_path, continuous_update=False,
                             on_value=lambda v: (own_path.set(v), edits.set({})))
            solara.Select("Scale", values=list(SCALES), value=scale)
            solara.InputInt("Replicates (seeds 1…n)", value=replicates, continuous_update=False)
            solara.InputText("Name of this scenario", value=run_name, continuous_update=False)
            solara.InputTextArea("Other settings, one KEY=VALUE per line (as --set)", value=extra_sets,
                                 continuous_update=False, rows=3)
            solara.Button("Run scenario", on_click=start_run, color="primary", disabled=run_task.pending or cfg is None,
                          classes=["run-button"])
            RunStatus(load_error)
        with solara.Column():
            if cfg is not None:
                note(f"**Policy levers** of `{cfg.source}` — each field's valid range is shown "
                                "next to its name; out-of-range or mistyped values are refused with the CLI's message.")
                solara.ToggleButtonsSingle(value=section, values=list(POLICIES))
                with solara.Row(style={"flex-wrap": "wrap"}):
                    for lever in data.levers(getattr(cfg.policy, section.value), f"policy.{section.value}"):
                        LeverInput(lever)
            if state.shown.value:
                CompareCharts(compact=True)
