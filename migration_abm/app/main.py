"""The Solara app: five pages (Scenario, Compare, Map, Siting, Runs) as routes of one page."""

from __future__ import annotations

from importlib import import_module

import solara

from migration_abm.app import compare, mapview, runs, scenario, siting

# Import the model and the siting optimiser while the server starts (Solara imports this module
# before it answers), so a planner's first run does not wait seconds for mesa and the solvers to load.
for _name in ("migration_abm.model", "migration_abm.siting.plan"):
    import_module(_name)

TITLE = "migration-abm · Chongqing's five functional regions"


@solara.component
def Layout(children: list | None = None) -> None:
    """Title bar and one tab per page (labelled), the current page below."""
    import solara.lab

    router = solara.use_router()
    current, all_routes = solara.use_route()
    index = all_routes.index(current) if current in all_routes else 0
    paths = [solara.resolve_path(r) for r in all_routes]
    with solara.Column(gap="0px", style={"min-height": "100vh"}):
        with solara.Row(style={"background": "#1565c0", "padding": "10px 18px", "align-items": "center"}):
            solara.Text(TITLE, style={"color": "white", "font-size": "18px", "font-weight": "500"})
        with solara.lab.Tabs(value=index, on_value=lambda i: router.push(paths[i]),
                             align="center", background_color="#1976d2", dark=True, slider_color="#ffeb3b"):
            for r in all_routes:
                solara.lab.Tab(r.label)
        solara.Column(children=children or [], style={"padding": "12px 16px"})


routes = [
    solara.Route(path="/", component=scenario.Page, label="Scenario", layout=Layout),
    solara.Route(path="compare", component=compare.Page, label="Compare"),
    solara.Route(path="map", component=mapview.Page, label="Map"),
    solara.Route(path="siting", component=siting.Page, label="Siting"),
    solara.Route(path="runs", component=runs.Page, label="Runs"),
]
