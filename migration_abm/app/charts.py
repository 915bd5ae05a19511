"""ECharts option dicts for the page (ECharts ships with solara-assets, so charts work offline).

Pure functions of arrays: line charts with 5–95 % bands, choropleth maps, and the siting map.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

#: Scenario colours (colour-blind-safe Okabe–Ito order).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
MAP_NAME = "chongqing"


def _r(x: np.ndarray, scale: float) -> list[float | None]:
    return [None if not np.isfinite(v) else round(float(v) / scale, 4) for v in np.asarray(x, float)]


def band_chart(title: str, years: np.ndarray, lines: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]],
               unit: str, scale: float, observed: list[tuple[int, float]] | None = None,
               zero_line: bool = False) -> dict[str, Any]:
    """Median lines with 5–95 % bands (one per scenario) and optional observed points."""
    x = [str(int(y)) for y in years]
    series: list[dict[str, Any]] = []
    for i, (name, med, lo, hi) in enumerate(lines):
        c = PALETTE[i % len(PALETTE)]
        stack = f"band{i}"
        series.append({"name": name, "type": "line", "data": _r(lo, scale), "stack": stack, "stackStrategy": "all", "symbol": "none",
                       "lineStyle": {"opacity": 0}, "itemStyle": {"color": c}, "tooltip": {"show": False}, "silent": True,
                       "legendHoverLink": False})
        series.append({"name": name, "type": "line", "data": [None if a is None or b is None else round(b - a, 4)
                                                                for a, b in zip(_r(lo, scale), _r(hi, scale), strict=True)],
                       "stack": stack, "stackStrategy": "all", "symbol": "none", "lineStyle": {"opacity": 0}, "itemStyle": {"color": c},
                       "areaStyle": {"color": c, "opacity": 0.18}, "tooltip": {"show": False}, "silent": True})
        series.append({"name": name, "type": "line", "data": _r(med, scale), "symbol": "none",
                       "lineStyle": {"color": c, "width": 2}, "itemStyle": {"color": c}})
    if observed:
        series.append({"name": "observed", "type": "scatter", "symbolSize": 9, "itemStyle": {"color": "#000"},
                       "data": [[str(y), round(v / scale, 4)] for y, v in observed if str(y) in x]})
    if zero_line and series:
        series[-1]["markLine"] = {"silent": True, "symbol": "none", "data": [{"yAxis": 0}],
                                  "lineStyle": {"color": "#888", "type": "dashed"}}
    names = [n for n, *_ in lines] + (["observed"] if observed else [])
    return {"title": {"text": title, "textStyle": {"fontSize": 13}},
            "tooltip": {"trigger": "axis"}, "legend": {"data": names, "top": 22, "type": "scroll"},
            "grid": {"left": 60, "right": 16, "top": 60, "bottom": 30},
            "xAxis": {"type": "category", "data": x, "boundaryGap": False},
            "yAxis": {"type": "value", "name": unit, "scale": True, "nameTextStyle": {"align": "left"}},
            "series": series, "animation": False}


def choropleth(title: str, values: pd.Series, labels: dict[str, str], unit: str, selected: str | None = None,
               diverging: bool = False) -> dict[str, Any]:
    """District map coloured by ``values`` (index = district code) with names and a colour legend."""
    v = values.astype(float)
    finite = v[np.isfinite(v)]
    lo, hi = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
    if diverging:
        m = max(abs(lo), abs(hi), 1e-9)
        lo, hi = -m, m
        colors = ["#2166ac", "#92c5de", "#f7f7f7", "#f4a582", "#b2182b"]
    else:
        colors = ["#f7fbff", "#c6dbef", "#6baed6", "#2171b5", "#08306b"]
    data = [{"name": labels.get(c, c), "value": round(float(x), 2), "code": c,
             **({"selected": True} if c == selected else {})} for c, x in v.items() if np.isfinite(x)]
    return {"title": {"text": title, "textStyle": {"fontSize": 13}},
            "tooltip": {"trigger": "item"},
            "visualMap": {"min": round(lo, 2), "max": round(hi, 2), "calculable": True, "left": 10, "bottom": 10,
                          "inRange": {"color": colors}, "precision": 1,
                          "textStyle": {"fontSize": 11}},
            "series": [{"name": unit, "type": "map", "map": MAP_NAME, "roam": True, "selectedMode": "single",
                        "label": {"show": True, "fontSize": 8, "color": "#222"},
                        "emphasis": {"label": {"show": True, "fontSize": 10}},
                        "select": {"itemStyle": {"borderColor": "#d00", "borderWidth": 2}},
                        "data": data}],
            "animation": False}


def _rings(feature: dict[str, Any]) -> list[list[list[float]]]:
    """Outer rings of a GeoJSON (Multi)Polygon, or a MultiPoint's points as one open line."""
    g = feature.get("geometry") or {}
    if g.get("type") == "Polygon":
        return [g["coordinates"][0]]
    if g.get("type") == "MultiPolygon":
        return [poly[0] for poly in g["coordinates"]]
    if g.get("type") == "MultiPoint" and len(g["coordinates"]) > 1:
        return [g["coordinates"]]
    return []


def siting_map(title: str, sites: pd.DataFrame, demand: pd.DataFrame, catchments: list[dict[str, Any]],
               max_points: int = 4000) -> dict[str, Any]:
    """Existing and new sites with the catchments they serve (GeoJSON features from the plan's
    ``sites.geojson``) over served / unserved demand points."""
    series: list[dict[str, Any]] = []
    d = demand
    if len(d) > max_points:
        d = d.iloc[np.linspace(0, len(d) - 1, max_points).astype(int)]
    for flag, name, color in ((True, "demand served", "#31a354"), (False, "demand unserved", "#de2d26")):
        part = d[d["covered_after"].astype(str).str.lower().isin(["true", "1"]) == flag]
        series.append({"name": name, "type": "scatter", "coordinateSystem": "geo", "symbolSize": 3,
                       "itemStyle": {"color": color, "opacity": 0.6}, "silent": True,
                       "data": [[round(a, 5), round(b, 5)] for a, b in zip(part["lon"], part["lat"], strict=True)]})
    status = dict(zip(sites["id"].astype(str), sites["status"], strict=True))
    for kind, name, color, size in (("existing", "existing sites", "#3182bd", 7), ("new", "new sites", "#ff7f00", 11)):
        rings = [r for f in catchments if status.get(str(f["properties"].get("site_id"))) == kind for r in _rings(f)]
        series.append({"name": f"{name}: catchment served", "type": "lines", "coordinateSystem": "geo",
                       "polyline": True, "silent": True, "lineStyle": {"color": color, "width": 1, "opacity": 0.8},
                       "data": [{"coords": [[round(x, 5), round(y, 5)] for x, y, *_ in r]} for r in rings]})
        part = sites[sites["status"] == kind]
        series.append({"name": name, "type": "scatter", "coordinateSystem": "geo", "symbolSize": size,
                       "symbol": "diamond" if kind == "new" else "circle",
                       "itemStyle": {"color": color, "borderColor": "#000", "borderWidth": 0.5},
                       "data": [{"name": str(i), "value": [round(a, 5), round(b, 5)]} for i, a, b in
                                zip(part["id"], part["lon"], part["lat"], strict=True)]})
    lon = pd.concat([sites["lon"], demand["lon"]])
    lat = pd.concat([sites["lat"], demand["lat"]])
    pad = 0.02
    geo = {"map": MAP_NAME, "roam": True, "label": {"show": True, "fontSize": 9, "color": "#555"},
           "itemStyle": {"areaColor": "#f4f4f4", "borderColor": "#999"}, "silent": True}
    if len(lon):
        geo["boundingCoords"] = [[float(lon.min()) - pad, float(lat.max()) + pad],
                                 [float(lon.max()) + pad, float(lat.min()) - pad]]
    return {"title": {"text": title, "textStyle": {"fontSize": 13}}, "tooltip": {"trigger": "item"},
            "legend": {"top": 22, "data": [s["name"] for s in series]}, "geo": geo, "series": series,
            "animation": False}


def bar_chart(title: str, categories: list[str], groups: dict[str, list[float]], unit: str) -> dict[str, Any]:
    """Grouped horizontal bars (e.g. coverage before / after per district)."""
    colors = ("#9ecae1", "#08519c", "#fd8d3c")
    return {"title": {"text": title, "textStyle": {"fontSize": 13}}, "tooltip": {"trigger": "axis"},
            "legend": {"top": 22}, "grid": {"left": 130, "right": 20, "top": 50, "bottom": 30},
            "xAxis": {"type": "value", "name": unit},
            "yAxis": {"type": "category", "data": categories, "inverse": True},
            "series": [{"name": k, "type": "bar", "data": [None if not np.isfinite(x) else round(float(x), 2) for x in v],
                        "itemStyle": {"color": colors[i % len(colors)]}} for i, (k, v) in enumerate(groups.items())],
            "animation": False}
