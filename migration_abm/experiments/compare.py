"""Side-by-side comparison of scenario configs with common random numbers: a Markdown report with PNGs.

Every config runs the same N replicate seeds (replicate r uses one stream for all configs), so the
difference between two configs is computed per replicate (paired) — much tighter than comparing two
independent bands. Bands are quantiles over replicates: stochastic variation, plus parameter uncertainty
when the configs name a calibration posterior (`run.posterior`; each replicate draws one parameter set),
plus in the population *levels* the model discrepancy that `run` adds (`run.share_discrepancy_sd`), with
the same draws under every config — so it leaves the paired differences alone, as a structural error the
configs share should.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from migration_abm.errors import InputError
from migration_abm.experiments.analysis import Sweep, load_sweep
from migration_abm.experiments.executors import ExecutorSpec
from migration_abm.experiments.runner import SweepSummary, run_sweep
from migration_abm.experiments.spec import DEFAULT_OUTPUTS, Experiment
from migration_abm.experiments.worker import DONE
from migration_abm.geography import ECO_REGIONS, REGIONS
from migration_abm.reporting import REGION_LABELS, markdown_table, save_figure
from migration_abm.storage import write_text_atomic

Q_LO, Q_HI = 0.05, 0.95
DEFAULT_SEED = 20240601


@dataclass
class Comparison:
    """Arrays of a finished comparison: [config, replicate, year, ...] over replicates done for all."""

    names: list[str]
    years: np.ndarray
    replicates: np.ndarray
    pop: np.ndarray        # [c, r, y, region]
    pop_levels: np.ndarray  # [c, r × draws, y, region]: pop with the model discrepancy (= pop without one)
    share_sd: list[float]  # each config's run.share_discrepancy_sd
    eco_net_out: np.ndarray  # [c, r, y] internal moves out of eco regions minus moves in
    eco_ext_net_out: np.ndarray  # [c, r, y] external out minus external in, eco regions
    hukou: np.ndarray      # [c, r, y] city hukou conversions
    failed: int


def parse_sets(items: list[str] | None) -> dict[str, object]:
    """``["a.b=1", "c=true"]`` -> ``{"a.b": 1, "c": True}`` (TOML values; bare words are strings)."""
    from migration_abm.schema import parse_value

    out: dict[str, object] = {}
    for item in items or []:
        if "=" not in item:
            raise InputError("--set", item, item, "expected KEY=VALUE")
        k, v = item.split("=", 1)
        out[k.strip()] = parse_value(v.strip())
    return out


def comparison_experiment(configs: list[str | Path], replicates: int, overrides: dict[str, object] | None = None,
                          seed: int = DEFAULT_SEED, run_function: str | None = None) -> Experiment:
    """One scenario per config, no parameters, ``replicates`` replicates with common random numbers."""
    if len(configs) < 1:
        raise InputError("compare", "configs", configs, "give at least one config")
    scen: dict[str, str] = {}
    for c in configs:
        p = Path(c)
        name = p.stem
        i = 2
        while name in scen:
            name, i = f"{p.stem}_{i}", i + 1
        scen[name] = str(p.resolve())
    raw: dict[str, object] = {"name": "compare", "scenarios": scen, "design": "none", "replicates": replicates,
                              "seed": seed, "common_random_numbers": True, "outputs": list(DEFAULT_OUTPUTS),
                              "set": dict(overrides or {})}
    raw["run_function"] = run_function or "migration_abm.ensemble:simulate_draw"
    return Experiment.from_dict(raw, source="compare")


def extract(sweep: Sweep, share_sd: list[float] | None = None, seed: int = DEFAULT_SEED) -> Comparison:
    """Pull the compared quantities out of a comparison store (runs done for every config only).

    ``share_sd`` (one per config) adds the model discrepancy to the population levels
    (``ensemble.with_share_discrepancy``; one stream, so every config gets the same draws)."""
    from migration_abm.ensemble import discrepancy_draws, discrepancy_stream, with_share_discrepancy

    ok = (sweep.status == DONE).all(axis=0)
    reps = np.flatnonzero(ok)
    failed = int((sweep.status != DONE).sum())
    eco = np.isin(sweep.regions, ECO_REGIONS)
    pop = sweep.region_array("population")[:, reps]
    sds = list(share_sd or [0.0] * len(sweep.scenarios))
    if max(sds, default=0.0) > 0 and len(reps):
        district = sweep.array("population")[:, reps]
        draws = discrepancy_draws(len(reps))
        one_hot = np.stack([sweep.regions == r for r in REGIONS], axis=-1).astype(float)
        levels = np.stack([with_share_discrepancy(
            district[c], sweep.years, int(sweep.years[0]), sd,
            discrepancy_stream(seed), draws)
            if sd > 0 else np.repeat(district[c], draws, axis=0) for c, sd in enumerate(sds)]) @ one_hot
    else:
        levels = pop
    out_, in_ = sweep.array("out_migrants")[:, reps], sweep.array("in_migrants")[:, reps]
    ext_out, ext_in = sweep.array("external_out")[:, reps], sweep.array("external_in")[:, reps]
    return Comparison(names=list(sweep.scenarios), years=sweep.years, replicates=reps, pop=pop,
                      pop_levels=levels, share_sd=sds,
                      eco_net_out=(out_[..., eco] - in_[..., eco]).sum(-1),
                      eco_ext_net_out=(ext_out[..., eco] - ext_in[..., eco]).sum(-1),
                      hukou=sweep.array("hukou_conversions")[:, reps].sum(-1), failed=failed)


def _band(ax: plt.Axes, years: np.ndarray, x: np.ndarray, label: str, color: str) -> None:
    """Median line and 5–95 % band of x [replicate, year] (persons, axis labelled with separators)."""
    from matplotlib.ticker import StrMethodFormatter

    lo, med, hi = np.quantile(x, [Q_LO, 0.5, Q_HI], axis=0)
    ax.fill_between(years, lo, hi, color=color, alpha=0.25, lw=0)
    ax.plot(years, med, color=color, lw=1.8, label=label)
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))


def _save(fig: plt.Figure, path: Path) -> str:
    return save_figure(fig, path, dpi=110).name


def _q(x: np.ndarray) -> tuple[float, float, float]:
    """Median, 5 % and 95 % quantiles across replicates."""
    lo, med, hi = np.quantile(x, [Q_LO, 0.5, Q_HI])
    return float(med), float(lo), float(hi)


def _fmt(x: np.ndarray) -> str:
    med, lo, hi = _q(x)
    return f"{med:,.0f} [{lo:,.0f}, {hi:,.0f}]"


def key_figures(cmp: Comparison) -> pd.DataFrame:
    """Tidy key figures: one row per config (or paired difference) × quantity × area, numeric median,
    lo (5 %) and hi (95 %) across replicates (population levels: across replicates × discrepancy draws),
    in persons; ``replicates`` counts runs, not draws."""
    y = cmp.years
    span = f"{int(y[1])}-{int(y[-1])}"
    quantities = [(f"population_{int(y[-1])}", lambda c, levels: (cmp.pop_levels if levels else cmp.pop)[c, :, -1, :],
                   True),
                  (f"hukou_conversions_{span}", lambda c, _: cmp.hukou[c, :, 1:].sum(-1), False),
                  (f"net_eco_outflow_{span}", lambda c, _: cmp.eco_net_out[c, :, 1:].sum(-1), False)]
    rows = []
    for c, name in enumerate(cmp.names):
        for kind, label in [("level", name)] + ([("difference", f"{name} - {cmp.names[0]}")] if c else []):
            for q, get, by_region in quantities:
                val = get(c, True) if kind == "level" else get(c, False) - get(0, False)
                areas = [(REGION_LABELS[r], val[:, k]) for k, r in enumerate(REGIONS)] if by_region else []
                areas.append(("Whole municipality", val.sum(-1) if by_region else val))
                for area, x in areas:
                    med, lo, hi = _q(x)
                    rows.append({"config": label, "kind": kind, "quantity": q, "area": area, "unit": "persons",
                                 "median": med, "lo": lo, "hi": hi, "replicates": len(cmp.replicates)})
    return pd.DataFrame(rows)


def write_report(cmp: Comparison, out: Path, n_requested: int, overrides: dict[str, object],
                 configs: list[str | Path], seed: int) -> Path:
    """Figures + report.md + key_figures.csv in ``out``."""
    from migration_abm.config import load_config

    exp_posterior = load_config(configs[0], overrides).run.posterior
    out.mkdir(parents=True, exist_ok=True)
    colors = plt.get_cmap("tab10").colors
    y, names, n = cmp.years, cmp.names, len(cmp.replicates)
    if n == 0:
        raise InputError(str(out), "replicates", 0, "no replicate finished for every config; nothing to report")
    figs = {}
    fig, axes = plt.subplots(2, 3, figsize=(13, 7), sharex=True, layout="constrained")
    for k, reg in enumerate([*REGIONS, "city"]):
        ax = axes.flat[k]
        for c, name in enumerate(names):
            x = cmp.pop_levels[c].sum(-1) if reg == "city" else cmp.pop_levels[c, :, :, k]
            _band(ax, y, x, name, colors[c % 10])
        ax.set_title(REGION_LABELS.get(reg, "Whole municipality"))
        if k % 3 == 0:
            ax.set_ylabel("residents (persons)")
        ax.grid(alpha=0.3)
    axes.flat[0].legend(frameon=False, fontsize=8)
    sources = ["stochastic"] + (["parameter"] if exp_posterior else []) + (
        ["model discrepancy"] if max(cmp.share_sd, default=0.0) > 0 else [])
    fig.suptitle(f"Population by functional region: median and 5–95 % band over {n} replicates "
                 f"({' + '.join(sources)} uncertainty)")
    figs["population"] = _save(fig, out / "population_by_region.png")

    if len(names) > 1:
        fig, axes = plt.subplots(2, 3, figsize=(13, 7), sharex=True, layout="constrained")
        for k, reg in enumerate([*REGIONS, "city"]):
            ax = axes.flat[k]
            for c in range(1, len(names)):
                a = cmp.pop[c].sum(-1) if reg == "city" else cmp.pop[c, :, :, k]
                b = cmp.pop[0].sum(-1) if reg == "city" else cmp.pop[0, :, :, k]
                _band(ax, y, a - b, f"{names[c]} − {names[0]}", colors[c % 10])
            ax.axhline(0, color="k", lw=0.8)
            ax.set_title(REGION_LABELS.get(reg, "Whole municipality"))
            if k % 3 == 0:
                ax.set_ylabel("difference (persons)")
            ax.grid(alpha=0.3)
        axes.flat[0].legend(frameon=False, fontsize=8)
        fig.suptitle(f"Difference vs {names[0]}, paired by replicate (common random numbers), 5–95 % band, n = {n}")
        figs["difference"] = _save(fig, out / f"difference_vs_{names[0]}.png")

    fig, axes = plt.subplots(1, 2, figsize=(12, 4), layout="constrained")
    for c, name in enumerate(names):
        _band(axes[0], y[1:], cmp.eco_net_out[c][:, 1:], name, colors[c % 10])
        _band(axes[1], y[1:], cmp.eco_ext_net_out[c][:, 1:], name, colors[c % 10])
    axes[0].set_title("Net moves out of the ecological regions to other districts")
    axes[1].set_title("Net moves out of the ecological regions to the rest of China")
    for ax in axes:
        ax.set_ylabel("persons per year")
        ax.axhline(0, color="k", lw=0.8)
        ax.grid(alpha=0.3)
    axes[0].legend(frameon=False, fontsize=8)
    figs["eco"] = _save(fig, out / "eco_net_outflow.png")

    fig, axes = plt.subplots(1, 2, figsize=(12, 4), layout="constrained")
    for c, name in enumerate(names):
        _band(axes[0], y[1:], cmp.hukou[c][:, 1:], name, colors[c % 10])
        _band(axes[1], y[1:], np.cumsum(cmp.hukou[c][:, 1:], axis=1), name, colors[c % 10])
    axes[0].set_title("Hukou conversions per year (persons)")
    axes[1].set_title("Cumulative hukou conversions (persons)")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].legend(frameon=False, fontsize=8)
    figs["hukou"] = _save(fig, out / "hukou_conversions.png")

    end = int(y[-1])
    rows = []
    for c, name in enumerate(names):
        row = {"config": name}
        for k, reg in enumerate(REGIONS):
            row[REGION_LABELS[reg]] = _fmt(cmp.pop_levels[c, :, -1, k])
        row["City"] = _fmt(cmp.pop_levels[c, :, -1].sum(-1))
        row[f"Hukou conversions {int(y[1])}–{end}"] = _fmt(cmp.hukou[c, :, 1:].sum(-1))
        row[f"Net eco outflow {int(y[1])}–{end}"] = _fmt(cmp.eco_net_out[c, :, 1:].sum(-1))
        rows.append(row)
    table = pd.DataFrame(rows).set_index("config")
    diff_rows = []
    for c in range(1, len(names)):
        row = {"config": f"{names[c]} − {names[0]}"}
        for k, reg in enumerate(REGIONS):
            row[REGION_LABELS[reg]] = _fmt(cmp.pop[c, :, -1, k] - cmp.pop[0, :, -1, k])
        row["City"] = _fmt(cmp.pop[c, :, -1].sum(-1) - cmp.pop[0, :, -1].sum(-1))
        row["Hukou conversions"] = _fmt(cmp.hukou[c, :, 1:].sum(-1) - cmp.hukou[0, :, 1:].sum(-1))
        row["Net eco outflow"] = _fmt(cmp.eco_net_out[c, :, 1:].sum(-1) - cmp.eco_net_out[0, :, 1:].sum(-1))
        diff_rows.append(row)
    write_text_atomic(out / "key_figures.csv", key_figures(cmp).to_csv(index=False))

    sets = ", ".join(f"`{k}={v}`" for k, v in overrides.items()) or "none"
    lines = [
        f"# Scenario comparison: {', '.join(names)}", "",
        f"Configs: {', '.join(f'`{c}`' for c in configs)}. Overrides applied to every config: {sets}. "
        f"Root seed {seed}; store `compare.h5` in this folder (reload with `migration_abm.load_sweep`).", "",
        "## How to read the uncertainty", "",
        f"* Every config was run with the **same {n} replicate seeds** (common random numbers): replicate r "
        "draws the same random streams under every config, so differences are computed **per replicate** "
        "(paired) before taking quantiles.",
        f"* Lines are medians; shaded bands and bracketed ranges are the **5–95 % quantiles across the {n} "
        + ("replicates, each with its own parameter set drawn from the calibration posterior** (`run.posterior`"
           f" = `{exp_posterior}`; replicate r uses the same draw under every config). They combine run-to-run "
           "randomness and parameter uncertainty — **not** uncertainty in the data."
           if exp_posterior else
           "stochastic replicates**. They show the model's run-to-run randomness — **not** uncertainty in "
           "its parameters (no `run.posterior` in the configs) or its data."),
        ("* The population **levels** (the population figure and the level rows of the tables) also carry the "
         "model's structural error in each district's share of the city, measured on a backcast "
         f"(`run.share_discrepancy_sd` = {', '.join(f'{v:g}' for v in cmp.share_sd)} per 10 years, growing "
         "with √years; `ensemble.with_share_discrepancy`), with the same draws under every config: a structural "
         "error the configs share, so the paired differences leave it out."
         if max(cmp.share_sd, default=0.0) > 0 else
         "* They leave out the model's structural error (no `run.share_discrepancy_sd` in the configs)."),
    ]
    if n < 20:
        lines.append(f"* With only {n} replicates the 5 % and 95 % quantiles are interpolated between the "
                     "few smallest/largest values; treat the bands as rough (close to min–max).")
    if cmp.failed or n < n_requested:
        lines.append(f"* **{cmp.failed} run(s) failed**; only the {n} replicates that finished under every "
                     f"config (of {n_requested} requested) are used. Tracebacks: `load_sweep(...).failures()`.")
    lines += ["", "## Population by functional region", "", f"![population by region]({figs['population']})", ""]
    if "difference" in figs:
        lines += [f"## Difference vs {names[0]}", "", f"![difference]({figs['difference']})", ""]
    lines += ["## Net flows out of the ecological regions", "",
              "Internal: moves from eco-region districts to districts in other regions minus moves back "
              "(moves between eco districts cancel). External: departures to minus arrivals from the rest "
              "of China. Positive = net outflow.", "", f"![eco net outflow]({figs['eco']})", "",
              "## Hukou conversions", "", f"![hukou conversions]({figs['hukou']})", "",
              f"## Key figures, {end}", "",
              f"Median [5 %, 95 %] across {n} replicates, in persons; population at the end of {end}, "
              f"flows summed over {int(y[1])}–{end}. The same figures as numbers: `key_figures.csv` "
              "(columns config, kind, quantity, area, unit, median, lo, hi).", "", markdown_table(table), ""]
    if diff_rows:
        dt = pd.DataFrame(diff_rows).set_index("config")
        lines += [f"Paired differences vs {names[0]} (persons; median [5 %, 95 %] of per-replicate "
                  "differences):", "", markdown_table(dt), ""]
    report = out / "report.md"
    write_text_atomic(report, "\n".join(lines))
    return report


def compare(configs: list[str | Path], out: str | Path, replicates: int = 10,
            overrides: dict[str, object] | None = None, executor: ExecutorSpec | None = None,
            seed: int = DEFAULT_SEED, progress: bool = True, run_function: str | None = None) -> tuple[Path, SweepSummary]:
    """Run each config with common random numbers and write ``out/report.md`` (+ PNGs, CSV, store)."""
    if replicates < 1:
        raise InputError("--replicates", "replicates", replicates, "must be >= 1")
    out = Path(out)
    exp = comparison_experiment(configs, replicates, overrides, seed, run_function)
    summary = run_sweep(exp, out / "compare.h5", executor or ExecutorSpec("process"), overwrite=True,
                        progress=progress)
    if summary.interrupted:
        raise KeyboardInterrupt
    from migration_abm.config import load_config

    share_sd = [load_config(c, overrides).run.share_discrepancy_sd for c in configs]
    report = write_report(extract(load_sweep(summary.path), share_sd, seed), out, replicates,
                          dict(overrides or {}), [str(c) for c in configs], seed)
    return report, summary
