"""Matplotlib figures of runs and validation (saved with the Agg canvas, atomically; see reporting)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import MaxNLocator

from migration_abm.reporting import REGION_COLORS, REGION_LABELS, save_figure


def plot_population_by_region(pop: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """Line chart of persons (millions) by functional region over the years."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for region in pop.columns:
        ax.plot(pop.index, pop[region] / 1e6, label=REGION_LABELS.get(region, region),
                color=REGION_COLORS.get(region), lw=2)
    ax.set_xlabel("year")
    ax.set_ylabel("residents (millions)")
    ax.set_title(title or "Projected population by functional region")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=9)
    return save_figure(fig, path)


def plot_validation_bands(years, groups, observed: pd.DataFrame, names, path: str | Path) -> Path:
    """Simulated 5–95 % bands and medians by region group, with observed totals as points."""
    import numpy as np

    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.6), sharex=True)
    for g, (ax, name) in enumerate(zip(axes, names, strict=True)):
        sim = groups[:, :, g] / 1e4
        lo, mid, hi = np.percentile(sim, [5, 50, 95], axis=0)
        ax.fill_between(years, lo, hi, alpha=0.3, color="C0", label="simulated 5–95 %")
        ax.plot(years, mid, color="C0", label="simulated median")
        o = observed[(observed.kind == "region_total") & (observed.area == name)]
        for use, marker in (("calibration", "s"), ("validation", "o")):
            oo = o[o.use == use]
            ax.scatter(oo.year, oo.value / 1e4, color="k" if use == "validation" else "C3", marker=marker,
                       zorder=3, label=f"observed ({'fitted' if use == 'calibration' else 'held out'})")
        ax.set_title(name.replace("_", " "))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("persons (10 000s)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, frameon=False)
    return save_figure(fig, path)


def plot_district_trajectories(geo, runs, flags: pd.DataFrame, path: str | Path) -> Path:
    """Median simulated population index (2010 = 1) per district, one panel per region; flagged
    districts (implausible sign reversal) drawn in red."""
    import numpy as np

    pop = np.median(np.stack([r.arrays["population"] for r in runs]), axis=0)
    years = runs[0].years
    regions = list(REGION_LABELS)
    fig, axes = plt.subplots(1, len(regions), figsize=(4 * len(regions), 3.6), sharey=True)
    flagged = set(flags.loc[flags["flag"], "code"])
    for ax, region in zip(axes, regions, strict=True):
        idx = np.flatnonzero(geo.districts["functional_region"].to_numpy() == region)
        for i in idx:
            code = geo.codes[i]
            ax.plot(years, pop[:, i] / pop[0, i], color="C3" if code in flagged else "0.4",
                    lw=1.8 if code in flagged else 0.8)
        ax.axhline(1, color="k", lw=0.5)
        ax.set_title(REGION_LABELS[region], fontsize=9)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("population index (2010 = 1)")
    return save_figure(fig, path)


def _panel(ax, title: str) -> None:
    """The small-multiple panel style of the band and sweep figures: title, integer years, light grid."""
    ax.set_title(title, fontsize=9)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
    ax.grid(alpha=0.3)


ZONE_LABELS = {"main_city": "Main city (core + expansion)", "new_development": "New development",
               "northeast_eco": "North-east eco", "southeast_eco": "South-east eco", "city": "Municipality"}


def plot_projection_bands(table: pd.DataFrame, observed: pd.DataFrame, path: str | Path, title: str = "",
                          note: str = "") -> Path:
    """Median and 80 % / 95 % bands per zone and for the city (table from ``ensemble.bands``), with the
    observed census and survey totals as points (persons, millions)."""
    areas = list(dict.fromkeys(table["area"]))
    fig, axes = plt.subplots(1, len(areas), figsize=(3.3 * len(areas), 3.4), sharex=True)
    for ax, area in zip(axes, areas, strict=True):
        t = table[table.area == area]
        ax.fill_between(t.year, t["q2.5"] / 1e6, t["q97.5"] / 1e6, color="C0", alpha=0.18, lw=0, label="95 %")
        ax.fill_between(t.year, t["q10"] / 1e6, t["q90"] / 1e6, color="C0", alpha=0.35, lw=0, label="80 %")
        ax.plot(t.year, t["q50"] / 1e6, color="C0", lw=1.8, label="median")
        o = observed[observed.area == area]
        if len(o):
            ax.scatter(o.year, o.value / 1e6, color="k", s=18, zorder=3, label="observed")
        _panel(ax, ZONE_LABELS.get(area, area))
    axes[0].set_ylabel("residents (millions)")
    axes[0].legend(frameon=False, fontsize=7)
    fig.suptitle(title or "Projected population", fontsize=10)
    if note:
        fig.text(0.5, -0.04, note, ha="center", fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


#: design points drawn as their own coloured line in a sweep figure; more are drawn as a grey bundle
SWEEP_POINTS_COLOURED = 10


def plot_sweep(years, region_pop, regions, point_labels: list[str], path: str | Path, title: str = "") -> Path:
    """One panel per functional region: each design point's median over its replicates (persons,
    millions) over the years — coloured and labelled for up to ``SWEEP_POINTS_COLOURED`` points, a grey
    bundle with the median across points beyond that. ``region_pop`` is [point, replicate, year, region]."""
    import numpy as np

    ran = np.isfinite(region_pop).any(axis=(1, 2, 3))  # points with a finished run (failed ones stay blank)
    med = np.full((region_pop.shape[0], *region_pop.shape[2:]), np.nan)
    med[ran] = np.nanmedian(region_pop[ran], axis=1) / 1e6  # [point, year, region]
    many = len(point_labels) > SWEEP_POINTS_COLOURED
    fig, axes = plt.subplots(1, len(regions), figsize=(3.2 * len(regions), 3.4), sharex=True)
    for j, (ax, region) in enumerate(zip(axes, regions, strict=True)):
        for p, label in enumerate(point_labels):
            if many:
                ax.plot(years, med[p, :, j], color="0.6", lw=0.6, alpha=0.5)
            else:
                ax.plot(years, med[p, :, j], lw=1.5, label=label)
        if many:
            ax.plot(years, np.median(med[ran, :, j], axis=0), color=REGION_COLORS.get(region, "k"), lw=2,
                    label="median of points")
        _panel(ax, REGION_LABELS.get(region, region))
    axes[0].set_ylabel("residents (millions)")
    axes[0].legend(frameon=False, fontsize=6)
    fig.suptitle(title or "Sweep: population by functional region (median over replicates per point)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)
