"""Map page: the 38 districts coloured by population, change or migration balance for a chosen year;
click a district for its trajectory."""

from __future__ import annotations

import functools

import numpy as np
import solara

from migration_abm.app import charts, data, state
from migration_abm.app.compare import ARIA, charts_echarts
from migration_abm.app.widgets import note

scenario_name: solara.Reactive[str | None] = solara.reactive(None)
measure = solara.reactive("population")
year: solara.Reactive[int | None] = solara.reactive(None)
district: solara.Reactive[str | None] = solara.reactive(None)


@functools.cache
def _geojson() -> dict:
    return data.boundaries_geojson()


@functools.cache
def _labels() -> dict[str, str]:
    return data.labels_by_code()


@solara.component
def Page() -> None:
    solara.Title("Map · migration-abm")
    names = [s.name for s in state.scenarios.value]
    if not names:
        solara.Info("No scenario yet: run one under Scenario or open one under Runs.")
        return
    name = scenario_name.value if scenario_name.value in names else names[-1]
    scn = state.by_name(name)
    y0, y1 = int(scn.years[0]), int(scn.years[-1])
    yr = year.value if year.value is not None and y0 <= year.value <= y1 else y1
    with solara.Row(style={"flex-wrap": "wrap"}):
        solara.Select("Scenario", values=names, value=name, on_value=scenario_name.set)
        solara.ToggleButtonsSingle(value=measure, values=list(data.MEASURES))
        solara.SliderInt("Year", value=yr, min=y0, max=y1, on_value=year.set)
        solara.Text(str(yr), classes=["map-year"])
    values = data.district_values(scn, yr, measure.value)
    unit = data.MEASURES[measure.value]
    labels = _labels()
    code_of = {v: k for k, v in labels.items()}
    opt = charts.choropleth(f"{name}: {unit}, {yr} (median of {scn.n_replicates} replicate(s))", values, labels,
                            unit, selected=district.value, diverging=measure.value != "population")
    opt["aria"] = ARIA

    def on_click(ev: dict) -> None:
        code = code_of.get(ev.get("name", ""))
        if code is not None:
            district.value = code

    with solara.Columns([3, 2]):
        with solara.Div(classes=["district-map"]):
            charts_echarts(opt, "620px", maps={charts.MAP_NAME: _geojson()}, on_click=on_click)
        with solara.Column():
            if district.value is None or district.value not in list(scn.codes):
                solara.Info("Click a district on the map for its trajectory.")
            else:
                j = list(scn.codes).index(district.value)
                lines = [(name, *(b[:, j] for b in data.bands(data.levels(scn))))]
                t = charts.band_chart(f"{labels.get(district.value, district.value)}: population", scn.years, lines,
                                      "thousand persons", 1e3)
                t["aria"] = ARIA
                note(f"**{labels.get(district.value, district.value)}** ({district.value})",
                                classes=["district-trajectory"])
                charts_echarts(t, "300px")
                m = [(name, *(b[:, j] for b in data.bands(scn.net_migration)))]
                if np.isfinite(scn.net_migration[..., j]).any():
                    charts_echarts(charts.band_chart("migration balance per year", scn.years, m, "thousand persons",
                                                     1e3, zero_line=True), "260px")
            top = values.sort_values(ascending=False)
            note(f"**Highest:** {labels.get(top.index[0])} ({top.iloc[0]:,.1f}); "
                            f"**lowest:** {labels.get(top.index[-1])} ({top.iloc[-1]:,.1f}) — {unit}")
