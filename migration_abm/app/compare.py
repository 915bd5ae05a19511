"""Compare page: population by functional region or 一区两群 zone over time with 5–95 % bands across
replicates and the model discrepancy, paired differences versus a reference scenario, observed points,
key figures as CSV."""

from __future__ import annotations

import solara

from migration_abm.app import charts, data, state
from migration_abm.app.widgets import note

ARIA = {"enabled": True, "data": {"maxCount": 60}}


def _panels(level: str, scns: list[data.Scenario], ref: data.Scenario | None) -> list[tuple[dict, dict | None]]:
    """(population chart, difference chart) option pairs, one pair per area."""
    obs = data.observed(level)
    labels = data.area_labels(level)
    years = scns[0].years
    per = {s.name: data.by_area(s, level, "levels") for s in scns}
    diffs = {s.name: data.difference(s, ref, level) for s in scns if ref is not None and s.name != ref.name}
    out = []
    for j, area in enumerate(data.areas(level)):
        lines = [(s.name, *(b[:, j] for b in data.bands(per[s.name]))) for s in scns]
        pop = charts.band_chart(f"{labels[area]}: population", years, lines, "million persons", 1e6, obs[area])
        pop["aria"] = ARIA
        diff = None
        if diffs:
            dl = [(f"{n} − {ref.name}" + ("" if paired else " (unpaired means)"), *(b[:, j] for b in data.bands(d)))
                  for n, (d, paired) in diffs.items()]
            diff = charts.band_chart(f"{labels[area]}: difference vs {ref.name}", years, dl, "thousand persons",
                                     1e3, zero_line=True)
            diff["aria"] = ARIA
        out.append((pop, diff))
    return out


@solara.component
def CompareCharts(compact: bool = False) -> None:
    """The comparison charts of the scenarios selected in Compare (also shown under Scenario)."""
    scns = [s for n in state.shown.value if (s := state.by_name(n)) is not None]
    if not scns:
        solara.Info("No scenario yet: run one under Scenario or open one under Runs.")
        return
    first = scns[0]
    scns = [s for s in scns if len(s.years) == len(first.years) and (s.years == first.years).all()]
    ref = state.by_name(state.reference.value)
    if ref is not None and not (len(ref.years) == len(first.years) and (ref.years == first.years).all()):
        ref = None
    panels = _panels(state.level.value, scns, ref)
    if compact:
        panels = panels[:2]
    height = "300px" if compact else "340px"
    with solara.Div(classes=["compare-charts"]):
        for pop, diff in panels:
            with solara.Columns([1, 1] if diff else [1]):
                charts_echarts(pop, height)
                if diff:
                    charts_echarts(diff, height)


def charts_echarts(option: dict, height: str, maps: dict | None = None, on_click=None) -> None:
    """An ECharts figure served from the local solara-assets copy."""
    solara.FigureEcharts(option=option, maps=maps or {}, on_click=on_click,
                         attributes={"style": f"height: {height}; width: 100%;", "class": "echart"}, responsive=True)


@solara.component
def Page() -> None:
    solara.Title("Compare · migration-abm")
    names = [s.name for s in state.scenarios.value]
    if not names:
        solara.Info("No scenario yet: run one under Scenario or open one under Runs.")
        return
    with solara.Row(style={"flex-wrap": "wrap", "align-items": "center"}):
        solara.SelectMultiple("Scenarios shown", values=state.shown, all_values=names)
        solara.Select("Reference", values=names, value=state.reference)
        solara.ToggleButtonsSingle(value=state.level, values=list(data.LEVELS))
    shown = [s for n in state.shown.value if (s := state.by_name(n)) is not None]
    ref = state.by_name(state.reference.value)
    if shown and ref is not None:
        first = shown[0]
        mismatch = [s.name for s in shown + [ref] if not (len(s.years) == len(first.years) and (s.years == first.years).all())]
        if mismatch:
            solara.Warning(f"Years differ from {first.name}; not shown: {', '.join(mismatch)}")
        year = int(first.years[-1])
        valid = [s for s in shown if s.name not in mismatch]
        if ref.name not in mismatch and valid:
            kf = data.key_figures(valid, ref, state.level.value, year)
            note(f"**Key figures, {year}** (persons; median and 5–95 % range: {data.uncertainty_text(valid)}; "
                 "differences are paired per replicate when the scenarios share seeds)")
            solara.DataFrame(kf.drop(columns=["paired"]), items_per_page=20)
            solara.FileDownload(kf.to_csv(index=False).encode(), filename=f"key_figures_{state.level.value}_{year}.csv",
                                label="Download key figures (CSV)")
    note(f"Bands: 5–95 % over {data.uncertainty_text(shown)}. "
         "Black points: observed totals (census sums of the district table, 2020 with 4 imputed districts as "
         "flagged there; survey totals from `observed_chongqing.csv`).")
    CompareCharts()
