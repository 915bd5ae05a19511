"""Plausibility checks around a run: the model's size before it starts, its trajectory after it ends.

:func:`check_scale` refuses configs whose agent count would not fit in memory (an arrival count of
1e15 once tried to allocate 196 GiB); :func:`implausible` lists trajectories that leave the range a
projection of one city can defend (the city halving or doubling, a district emptying), which
:func:`warn_implausible` logs as one warning line.
"""

from __future__ import annotations

import logging

import numpy as np

from migration_abm.config import Config
from migration_abm.errors import ConfigError
from migration_abm.results import Results

log = logging.getLogger("migration_abm")

#: largest number of agent rows (households) a run may need: about 3x full-scale Chongqing
#: (1.1e7 households of 2.7 persons at run.households_per_agent = 1)
MAX_AGENT_ROWS = 30_000_000
#: mean size of an arriving household (head, a spouse with probability 0.5, a child with 0.4)
ARRIVAL_SIZE = 1.9
#: the city total may move within [LOW, HIGH] x its base-year value before a warning
CITY_LOW, CITY_HIGH = 0.5, 2.0
#: a district below this share of its base-year population counts as emptied
DISTRICT_EMPTY = 0.1


def estimated_agent_rows(cfg: Config, base_population: float) -> dict[str, float]:
    """Upper estimate of the agent rows a run needs, by cause: the base population, the arrivals of
    every simulated year (compounded by ``in_growth``) and the largest control total."""
    hpa, ext = cfg.run.households_per_agent, cfg.external
    years = np.arange(cfg.run.start_year + 1, cfg.run.end_year + 1) - (ext.in_reference_year or cfg.run.start_year + 1)
    rows = {"run.households_per_agent": base_population / (cfg.population.household_size * hpa)}
    if ext.enabled:
        arrivals = float((ext.in_persons_per_year * (1 + ext.in_growth) ** years).sum())
        rows["external.in_persons_per_year"] = arrivals / (ARRIVAL_SIZE * hpa)
        if ext.control_total:
            year, total = max(ext.control_total.items(), key=lambda kv: kv[1])
            rows[f"external.control_total.{year}"] = total / (ARRIVAL_SIZE * hpa)
    return rows


def check_inputs(cfg: Config) -> None:
    """Before any work: the config's district table and boundaries load (InputError naming the file
    otherwise) and the run fits in :data:`MAX_AGENT_ROWS` agent rows (:func:`check_scale`)."""
    from migration_abm.geography import Geography

    geo = Geography.from_config(cfg.data)
    year = cfg.run.start_year
    base = float(np.nansum(geo.population(year))) if year in geo.census_years else 0.0
    check_scale(cfg, base)


def check_scale(cfg: Config, base_population: float) -> None:
    """Raise a ConfigError naming the dominant cause if the run would need more than
    :data:`MAX_AGENT_ROWS` agent rows."""
    rows = estimated_agent_rows(cfg, base_population)
    total = sum(rows.values())
    if total > MAX_AGENT_ROWS:
        key = max(rows, key=rows.get)
        value = cfg.run.households_per_agent if key == "run.households_per_agent" else (
            cfg.external.in_persons_per_year if key == "external.in_persons_per_year"
            else cfg.external.control_total[key.rsplit(".", 1)[1]])
        raise ConfigError(cfg.source, key, value,
                          f"the run would need about {total:.2g} agent rows (limit {MAX_AGENT_ROWS:.0e}); "
                          "raise run.households_per_agent or lower the arrivals")


def implausible(res: Results) -> list[str]:
    """Plain-language findings on a run's population trajectory: the city total leaving
    [CITY_LOW, CITY_HIGH] x its base-year value, districts falling below DISTRICT_EMPTY of theirs."""
    pop = np.asarray(res.arrays["population"], dtype=float)
    years = np.asarray(res.years)
    out = []
    city = pop.sum(axis=1)
    if city[0] > 0:
        ratio = city / city[0]
        bad = np.flatnonzero((ratio < CITY_LOW) | (ratio > CITY_HIGH))
        if len(bad):
            t = int(bad[0])
            out.append(f"city population {city[t]:,.0f} in {years[t]} is {ratio[t]:.2g}x its {years[0]} value "
                       f"(outside [{CITY_LOW}, {CITY_HIGH}]x)")
    base = pop[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(base > 0, pop / base, 1.0)
    emptied = np.flatnonzero((share < DISTRICT_EMPTY).any(axis=0))
    if len(emptied):
        names = ", ".join(str(res.codes[d]) for d in emptied[:5]) + (" …" if len(emptied) > 5 else "")
        out.append(f"{len(emptied)} district(s) fall below {DISTRICT_EMPTY:.0%} of their {years[0]} population "
                   f"({names})")
    return out


def warn_implausible(res: Results, label: str = "run") -> list[str]:
    """Log :func:`implausible`'s findings as one warning line (visible without -v); returns them."""
    findings = implausible(res)
    if findings:
        log.warning("%s: implausible trajectory: %s; check the config's ranges", label, "; ".join(findings))
    return findings
