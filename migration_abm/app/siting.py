"""Siting page: run a plan for a facility type on a scenario's run (``plan_for_results``) or load a
plan folder; map existing and new sites with their catchments, served / unserved demand, per-district
coverage before and after, downloads."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd
import solara
import solara.lab

from migration_abm.app import charts, data, state
from migration_abm.app.compare import ARIA, charts_echarts
from migration_abm.app.widgets import note
from migration_abm.errors import InputError
from migration_abm.siting import registry

PLAN_FILES = ("sites.csv", "districts.csv", "demand.csv", "summary.csv", "sites.geojson")

scenario_name: solara.Reactive[str | None] = solara.reactive(None)
facility = solara.reactive("primary_school")
regions: solara.Reactive[list[str]] = solara.reactive(["core"])
year: solara.Reactive[int | None] = solara.reactive(None)
budget = solara.reactive(10)
model = solara.reactive("mclp")
points = solara.reactive(3000)
time_limit = solara.reactive(20.0)
plan_dir: solara.Reactive[str | None] = solara.reactive(None)
message = solara.reactive("")


def read_plan(folder: str | Path) -> dict[str, Any]:
    """A plan folder written by ``write_plan``: its tables (district codes kept as text) and the
    catchment features of its ``sites.geojson``."""
    folder = Path(folder)
    out: dict[str, Any] = {}
    for name in ("sites", "districts", "demand", "summary"):
        p = folder / f"{name}.csv"
        if not p.exists():
            raise InputError(str(folder), "file", p.name, "plan folder lacks this file")
        out[name] = pd.read_csv(p, dtype={"district": str, "id": str, "site_id": str})
    gj = folder / "sites.geojson"
    try:
        feats = json.loads(gj.read_text(encoding="utf-8")).get("features", []) if gj.exists() else []
    except json.JSONDecodeError as exc:
        raise InputError(str(gj), "file", gj.name, f"not readable GeoJSON ({exc})") from None
    out["catchments"] = [f for f in feats if (f.get("properties") or {}).get("layer") == "catchment"]
    return out


@solara.lab.task
def site_task(scn_name: str, fac: str, regs: list[str], yr: int, n_new: int, mdl: str, n_points: int,
              limit: float) -> str:
    """Plan in a background thread; writes the plan folder under results/app/siting/."""
    from migration_abm.config import from_toml_text
    from migration_abm.siting import plan_for_results

    scn = state.by_name(scn_name)
    res = scn.results[0]
    own = from_toml_text(res.config_toml).siting if res.config_toml else {}
    settings = {**own, "model": mdl, "points_total": int(n_points), "time_limit_s": float(limit)}
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = state.results_dir() / "app" / "siting" / f"{scn_name}_{fac}_{yr}_{stamp}"
    k = 2
    while out.exists():
        out, k = out.with_name(f"{scn_name}_{fac}_{yr}_{stamp}_{k}"), k + 1
    t0 = time.perf_counter()
    plan = plan_for_results(res, yr, fac, districts=",".join(regs), budget=int(n_new), config=settings,
                            seed=data.run_seed(res), out_dir=out)
    plan_dir.value = str(out)
    return f"{len(plan.new_sites)} new site(s), planned in {time.perf_counter() - t0:.1f} s; wrote {out.name}/"


def start() -> None:
    scn = state.by_name(scenario_name.value)
    try:
        if scn is None or not scn.results:
            raise InputError("app", "scenario", scenario_name.value, "needs a scenario with run files (not a sweep)")
        if not regions.value:
            raise InputError("app", "districts", "", "choose at least one functional region")
        from migration_abm.siting.settings import SitingSettings

        # the siting schema's own ranges, the same as `site` and `[siting]` apply
        SitingSettings.from_dict({"budget": int(budget.value), "points_total": int(points.value)}, "app")
    except InputError as exc:
        message.value = f"error: {exc}"
        return
    message.value = ""
    yr = year.value if year.value in [int(y) for y in scn.years] else int(scn.years[-1])
    site_task(scn.name, facility.value, list(regions.value), yr, int(budget.value), model.value,
              int(points.value), float(time_limit.value))


@solara.component
def PlanView(folder: str) -> None:
    """Map, coverage chart, table and downloads of one plan folder."""
    try:
        plan = read_plan(folder)
    except InputError as exc:
        solara.Error(f"error: {exc}")
        return
    labels = data.labels_by_code()
    summ = plan["summary"].iloc[0]
    sites, dist = plan["sites"], plan["districts"]
    n_new = int((sites["status"] == "new").sum())
    note(f"**{summ['facility']} {summ['year']}** ({summ['model']}): **{n_new} new site(s)**, "
                    f"{int((sites['status'] == 'existing').sum())} existing; demand served "
                    f"{summ['weighted_before_pct']:.1f} % → {summ['weighted_after_pct']:.1f} %, "
                    f"unmet {summ['unmet_demand']:,.0f} persons; solver {summ['status']}, gap {100 * summ['gap']:.2f} %. "
                    f"`{folder}`", classes=["plan-summary"])
    assumed = [k for k in ("provision", "demand", "travel") if str(summ.get(k, "")) == "assumed"]
    if assumed:
        solara.Warning(f"Assumed {', '.join(assumed)} (not a register or survey): {summ['notes']}")
    else:
        solara.Info(str(summ["notes"]))
    opt = charts.siting_map(f"{summ['facility']} {summ['year']}: sites and the demand each serves", sites,
                            plan["demand"], plan["catchments"])
    opt["aria"] = ARIA
    with solara.Columns([3, 2]):
        with solara.Div(classes=["siting-map"]):
            charts_echarts(opt, "560px", maps={charts.MAP_NAME: _geojson()})
        with solara.Column():
            cats = [labels.get(c, c) for c in dist["district"]]
            charts_echarts(charts.bar_chart("Demand served per district", cats,
                                            {"before": list(dist["pct_before"]), "after": list(dist["pct_after"])},
                                            "% of demand"), f"{120 + 28 * len(cats)}px")
    table = dist.assign(name=[labels.get(c, c) for c in dist["district"]])[
        ["district", "name", "demand", "existing_sites", "new_sites", "pct_before", "pct_after", "unmet_after"]].round(1)
    solara.DataFrame(table, items_per_page=40)
    with solara.Row(style={"flex-wrap": "wrap"}):
        for fname in PLAN_FILES:
            p = Path(folder) / fname
            if p.exists():
                solara.FileDownload(p.read_bytes(), filename=fname, label=f"Download {fname}")


def _geojson() -> dict:
    from migration_abm.app.mapview import _geojson as gj

    return gj()


@solara.component
def Page() -> None:
    from migration_abm.geography import REGIONS
    from migration_abm.siting.settings import CATALOGUE

    solara.Title("Siting · migration-abm")
    runnable = [s.name for s in state.scenarios.value if s.results]
    plans = data.list_plans(state.results_dir())
    with solara.Columns([1, 3]):
        with solara.Column():
            with solara.Card("Run a plan"):
                if not runnable:
                    solara.Info("Run a scenario (or open a run file under Runs) first.")
                else:
                    name = scenario_name.value if scenario_name.value in runnable else runnable[-1]
                    if name != scenario_name.value:
                        scenario_name.value = name
                    scn = state.by_name(name)
                    years = [int(y) for y in scn.years]
                    solara.Select("Scenario (its first run)", values=runnable, value=scenario_name)
                    solara.Select("Facility", values=list(CATALOGUE), value=facility)
                    solara.SelectMultiple("Functional regions", values=regions, all_values=list(REGIONS))
                    yr = year.value if year.value in years else years[-1]
                    solara.SliderInt(f"Year {yr}", value=yr, min=years[0], max=years[-1], on_value=year.set)
                    solara.InputInt("New sites (budget)", value=budget, continuous_update=False)
                    solara.Select("Model", values=list(registry.names()), value=model)
                    solara.InputInt("Demand points", value=points, continuous_update=False)
                    solara.InputFloat("Solver time limit (s)", value=time_limit, continuous_update=False)
                    solara.Button("Run siting", on_click=start, color="primary", disabled=site_task.pending,
                                  classes=["site-button"])
                    if site_task.pending:
                        solara.ProgressLinear(True)
                        solara.Text("planning… (demand disaggregation, then the solver)")
                    if message.value:
                        solara.Error(message.value)
                    elif site_task.error:
                        exc = site_task.exception
                        text = f"error: {exc}" if isinstance(exc, InputError) else \
                            f"internal error: {type(exc).__name__}: {exc}"
                        solara.Error(text)
                    elif site_task.finished and site_task.value:
                        with solara.Div(style={"overflow-wrap": "anywhere"}):
                            solara.Success(site_task.value, classes=["site-done"])
            with solara.Card("…or load a plan"):
                if plans:
                    solara.Select("Plan folder", values=plans, value=plan_dir.value if plan_dir.value in plans else None,
                                  on_value=plan_dir.set)
                else:
                    solara.Text(f"No plan folders (with sites.csv) under {state.results_dir()}/ yet.")
        with solara.Column():
            if plan_dir.value:
                PlanView(plan_dir.value)
            else:
                solara.Info("Run or load a plan to see its sites.")
