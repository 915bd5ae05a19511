"""Validation against observed populations, with the baselines a reviewer asks for.

Targets are the functional-region totals a statistical source reports: core + expansion together
("main city", because the 2013 survey's core is the inner-ring area), new development, north-east and
south-east. What was fitted (2013 regional totals, city totals) is kept apart from what is predicted
(2022 regional totals, 2020 age structure, urbanisation, hukou conversions).

Baselines, all given the same observed city totals the model's control uses:
persistence of 2010 shares; extrapolation of the 2000→2010 share trend; a gravity and a radiation
model of internal flows between districts, each fitted to the same 2013 regional totals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from migration_abm.geography import Geography, data_path

GROUPS: dict[str, tuple[str, ...]] = {
    "main_city": ("core", "expansion"),
    "new_development": ("new_development",),
    "northeast_eco": ("northeast_eco",),
    "southeast_eco": ("southeast_eco",),
}
GROUP_NAMES = tuple(GROUPS)


def load_observed(path: str | Path | None = None) -> pd.DataFrame:
    """Observed targets (long format: kind, year, area, value, unit, use, source)."""
    return pd.read_csv(path or data_path("observed_chongqing.csv"))


def group_index(geo: Geography) -> np.ndarray:
    """Index into GROUP_NAMES for each district."""
    lookup = {r: g for g, regions in enumerate(GROUPS.values()) for r in regions}
    return np.array([lookup[r] for r in geo.districts["functional_region"]])


def to_groups(geo: Geography, per_district: np.ndarray) -> np.ndarray:
    """Sum per-district values (last axis) into the validation groups."""
    gi = group_index(geo)
    arr = np.asarray(per_district, float)
    return np.stack([arr[..., gi == g].sum(axis=-1) for g in range(len(GROUP_NAMES))], axis=-1)


def observed_groups(obs: pd.DataFrame, year: int) -> np.ndarray:
    """Observed regional totals of ``year`` in GROUP_NAMES order."""
    sub = obs[(obs.kind == "region_total") & (obs.year == year)].set_index("area")["value"]
    return sub.reindex(list(GROUP_NAMES)).to_numpy(float)


def city_totals(obs: pd.DataFrame, base_year: int, base_total: float, years: range) -> dict[int, float]:
    """Observed city totals for ``years``, geometric interpolation between observations (and from the
    base-year census); the last observation is carried forward."""
    from migration_abm.migration import geometric_path

    pts = {base_year: base_total}
    pts.update({int(y): float(v) for y, v in obs[obs.kind == "city_total"][["year", "value"]].values})
    return geometric_path(pts, years, carry_forward=True)


def error_table(pred: np.ndarray, obs: np.ndarray) -> pd.DataFrame:
    """Absolute and relative error per group for one prediction."""
    return pd.DataFrame({"observed": obs, "predicted": pred, "abs_error": pred - obs,
                         "rel_error": (pred - obs) / obs}, index=pd.Index(GROUP_NAMES, name="area"))


def averaged_relative_difference(pred: np.ndarray, obs: np.ndarray) -> float:
    """Flee's validation metric: mean over areas of |pred − obs| / obs."""
    return float(np.mean(np.abs(np.asarray(pred) - obs) / obs))


# --------------------------------------------------------------------------------------------------
# baselines
# --------------------------------------------------------------------------------------------------

class Baseline:
    """A population projection by district given the observed city totals."""

    name = "baseline"

    def fit(self, geo: Geography, obs: pd.DataFrame, fit_year: int = 2013) -> Baseline:
        return self

    def predict(self, geo: Geography, totals: dict[int, float], year: int) -> np.ndarray:
        raise NotImplementedError


class Persistence(Baseline):
    """District shares stay at their 2010 values."""

    name = "persistence of 2010 shares"

    def predict(self, geo: Geography, totals: dict[int, float], year: int) -> np.ndarray:
        p = geo.population(2010)
        return p / p.sum() * totals[year]


class ShareTrend(Baseline):
    """Each group's 2000→2010 log-share trend, continued and renormalised.

    The 2000 census lacks 7 districts, so the trend of a group is measured on the districts present in
    both censuses (its share of the complete-case total), then applied to the complete 2010 shares.
    """

    name = "2000→2010 share trend"

    def predict(self, geo: Geography, totals: dict[int, float], year: int) -> np.ndarray:
        p0, p1 = geo.population(2000), geo.population(2010)
        both = np.isfinite(p0) & np.isfinite(p1)
        g0 = to_groups(geo, np.where(both, p0, 0.0))
        g1 = to_groups(geo, np.where(both, p1, 0.0))
        rate = (np.log(g1 / g1.sum()) - np.log(g0 / g0.sum())) / 10.0
        share10 = to_groups(geo, p1) / p1.sum()
        share = share10 * np.exp(rate * (year - 2010))
        share /= share.sum()
        # spread each group's total over its districts by their 2010 within-group shares
        gi = group_index(geo)
        within = p1 / to_groups(geo, p1)[gi]
        return share[gi] * totals[year] * within


@dataclass
class FlowBaseline(Baseline):
    """Yearly internal flows T_ij between districts redistribute population; the city total follows
    the observed totals. Subclasses define the flow kernel; parameters are fitted by least squares on
    the relative errors of the fit-year regional totals."""

    params_: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def flows(self, pop: np.ndarray, dist: np.ndarray, params: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _project(self, geo: Geography, totals: dict[int, float], year: int, params: np.ndarray) -> np.ndarray:
        pop = geo.population(2010).copy()
        dist = geo.distance_km
        for y in range(2011, year + 1):
            t = self.flows(pop, dist, params)
            pop = pop + t.sum(axis=0) - t.sum(axis=1)
            pop = np.maximum(pop, 0.0) * totals[y] / np.maximum(pop, 0.0).sum()
        return pop

    def fit(self, geo: Geography, obs: pd.DataFrame, fit_year: int = 2013) -> FlowBaseline:
        from scipy.optimize import minimize

        totals = city_totals(obs, 2010, float(geo.population(2010).sum()), range(2010, fit_year + 1))
        target = observed_groups(obs, fit_year)

        def loss(x: np.ndarray) -> float:
            with np.errstate(all="ignore"):
                pred = to_groups(geo, self._project(geo, totals, fit_year, x))
            value = float(np.sum(((pred - target) / target) ** 2))
            return value if np.isfinite(value) else 1e12

        best = None
        for x0 in self.starts():
            res = minimize(loss, x0, method="Nelder-Mead", options={"xatol": 1e-4, "fatol": 1e-10, "maxiter": 2000})
            if best is None or res.fun < best.fun:
                best = res
        self.params_ = best.x
        self.fit_loss_ = float(best.fun)
        return self

    def starts(self) -> list[np.ndarray]:
        raise NotImplementedError

    def predict(self, geo: Geography, totals: dict[int, float], year: int) -> np.ndarray:
        return self._project(geo, totals, year, self.params_)


class Gravity(FlowBaseline):
    """Production-constrained gravity model: a share τ ≤ 20 % of each district's population moves each
    year, to j with probability ∝ P_j^γ · d_ij^−β (Wilson 1971); fitted: τ, γ, β."""

    name = "gravity model"

    def flows(self, pop: np.ndarray, dist: np.ndarray, params: np.ndarray) -> np.ndarray:
        tau = 0.2 / (1 + np.exp(-params[0]))
        gamma, beta = params[1], params[2]
        d = np.where(dist > 0, dist, np.inf)
        attract = (pop / pop.mean())[None, :] ** gamma * d ** -beta
        return tau * pop[:, None] * attract / attract.sum(axis=1, keepdims=True)

    def starts(self) -> list[np.ndarray]:
        return [np.array([t, g, b]) for t in (-3.0, 0.0) for g in (0.8, 1.5) for b in (1.0, 2.0)]


class Radiation(FlowBaseline):
    """Simini et al. (2012): T_ij = τ P_i · P_i P_j / ((P_i + s_ij)(P_i + P_j + s_ij)), s_ij = population
    within d_ij of i (excluding i and j); fitted: the outflow rate τ (one parameter)."""

    name = "radiation model"

    def flows(self, pop: np.ndarray, dist: np.ndarray, params: np.ndarray) -> np.ndarray:
        tau = 1 / (1 + np.exp(-params[0]))
        order = np.argsort(dist, axis=1)
        sorted_pop = pop[order]
        cum = np.cumsum(sorted_pop, axis=1) - sorted_pop  # population strictly closer (incl. i at rank 0)
        s = np.empty_like(dist)
        np.put_along_axis(s, order, cum, axis=1)
        s = s - pop[:, None]  # exclude the origin itself
        s = np.maximum(s, 0.0)
        pi, pj = pop[:, None], pop[None, :]
        t = tau * pi * (pi * pj) / ((pi + s) * (pi + pj + s))
        np.fill_diagonal(t, 0.0)
        return t

    def starts(self) -> list[np.ndarray]:
        return [np.array([x]) for x in (-6.0, -4.0, -2.0)]


BASELINES: tuple[type[Baseline], ...] = (Persistence, ShareTrend, Gravity, Radiation)


# --------------------------------------------------------------------------------------------------
# the validation report
# --------------------------------------------------------------------------------------------------

def run_replicates(config: object, replicates: int, until: int) -> list:
    """Run a config ``replicates`` times with seeds spawned from its run.seed."""
    from migration_abm.model import simulate

    seeds = np.random.SeedSequence(config.run.seed).spawn(replicates)
    return [simulate(config, s, until=until) for s in seeds]


def validate(config: object, out_dir: str | Path, replicates: int = 5) -> pd.DataFrame:
    """Run the hindcast, compare model and baselines on fitted and predicted targets, write the report."""
    from migration_abm.plotting import plot_district_trajectories, plot_validation_bands
    from migration_abm.storage import write_text_atomic

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    geo = Geography.from_config(config.data)
    obs = load_observed()
    until = 2023  # last observed year
    runs = run_replicates(config, replicates, until)
    years = runs[0].years
    pop = np.stack([r.arrays["population"] for r in runs])  # [rep, year, district]
    groups = to_groups(geo, pop)                               # [rep, year, group]
    totals = city_totals(obs, 2010, float(geo.population(2010).sum()), range(2010, until + 1))

    parts = []

    def add(model: str, year: int, pred: np.ndarray, role: str) -> None:
        target = observed_groups(obs, year)
        tab = error_table(pred, target).reset_index()
        tab.loc[len(tab)] = {"area": "ARD (mean |rel|)", "rel_error": averaged_relative_difference(pred, target)}
        parts.append(tab.assign(model=model, year=year, role=role))

    baselines = [cls().fit(geo, obs) for cls in BASELINES]
    for year, role in ((2013, "fitted"), (2022, "predicted")):
        t = int(np.flatnonzero(years == year)[0])
        add("ABM (median of replicates)", year, np.median(groups[:, t], axis=0), role)
        # the same regional shares rescaled to the observed city total (what the control would do)
        sh = groups[:, t] / groups[:, t].sum(axis=1, keepdims=True)
        add("ABM shares × observed city total", year, np.median(sh, axis=0) * totals[year], role)
        for b in baselines:
            add(b.name, year, to_groups(geo, b.predict(geo, totals, year)), role)
    table = pd.concat(parts, ignore_index=True)[["model", "year", "role", "area", "observed", "predicted",
                                                   "abs_error", "rel_error"]]
    table.to_csv(out / "validation_table.csv", index=False)

    # city-level extras: totals, age structure 2020, urbanisation, conversions
    extras = city_level_checks(runs, obs)
    extras.to_csv(out / "city_checks.csv", index=False)
    flags = district_plausibility(geo, runs)
    flags.to_csv(out / "district_plausibility.csv", index=False)
    plot_validation_bands(years, groups, obs, GROUP_NAMES, out / "regions_observed_vs_simulated.png")
    plot_district_trajectories(geo, runs, flags, out / "district_trajectories.png")
    write_text_atomic(out / "validation.md", render_markdown(table, extras, flags, replicates, config))
    return table


def city_level_checks(runs: list, obs: pd.DataFrame) -> pd.DataFrame:
    """City totals, 2020 age structure, urbanisation, household size and hukou conversions vs observed."""
    years = runs[0].years
    rows = []

    def med(values: list[float]) -> float:
        return float(np.median(values))

    for _, o in obs[obs.kind.isin(["city_total", "urbanisation", "household_size", "age_share",
                                   "hukou_conversions"])].iterrows():
        y = int(o.year)
        if y not in years:
            continue
        t = int(np.flatnonzero(years == y)[0])
        vals = []
        for r in runs:
            pop = r.arrays["population"][t].sum()
            if o.kind == "city_total":
                vals.append(pop)
            elif o.kind == "urbanisation":
                vals.append(r.arrays["urban_population"][t].sum() / pop)
            elif o.kind == "household_size":
                vals.append(pop / r.arrays["households"][t].sum())
            elif o.kind == "age_share":
                ages = r.arrays["population_age"][t].sum(axis=0)
                lo, hi = (60, 200) if o.area == "60+" else map(int, o.area.split("-"))
                vals.append(ages[lo:hi + 1].sum() / ages.sum())
            elif o.kind == "hukou_conversions":
                vals.append(r.arrays["hukou_conversions"][1:t + 1].sum())
        pred = med(vals)
        rows.append({"kind": o.kind, "year": y, "area": o.area, "use": o.use, "observed": o.value,
                     "predicted": pred, "rel_error": (pred - o.value) / o.value})
    return pd.DataFrame(rows)


def district_plausibility(geo: Geography, runs: list, start: int = 2010, end: int = 2022) -> pd.DataFrame:
    """Simulated 2010→2022 change per district vs the 2000→2010 census trend; flags sign reversals that
    no policy explains (growth in destination regions and decline in eco regions are policy-driven)."""
    years = runs[0].years
    t0, t1 = int(np.flatnonzero(years == start)[0]), int(np.flatnonzero(years == end)[0])
    pop = np.median(np.stack([r.arrays["population"] for r in runs]), axis=0)
    sim = pop[t1] / pop[t0] - 1
    p00, p10 = geo.population(2000), geo.population(2010)
    trend = p10 / p00 - 1
    region = geo.districts["functional_region"].to_numpy()
    reversed_ = np.isfinite(trend) & (np.sign(sim) != np.sign(trend))
    policy = ((np.isin(region, ["expansion", "new_development", "core"]) & (sim > 0))
              | (np.isin(region, ["northeast_eco", "southeast_eco"]) & (sim < 0)))
    return pd.DataFrame({"code": geo.codes, "name_en": geo.districts["name_en"], "region": region,
                         "trend_2000_2010": trend, f"sim_{start}_{end}": sim,
                         "sign_reversed": reversed_, "policy_reason": reversed_ & policy,
                         "flag": reversed_ & ~policy})


def render_markdown(table: pd.DataFrame, extras: pd.DataFrame, flags: pd.DataFrame, replicates: int,
                    config: object) -> str:
    """The validation report as Markdown."""
    def fmt(df: pd.DataFrame) -> str:
        d = df.copy()
        for c in ("observed", "predicted", "abs_error"):
            if c in d:
                d[c] = d[c].map(lambda v: "" if pd.isna(v) else (f"{v:,.0f}" if abs(v) > 10 else f"{v:.4f}"))
        for c in ("trend_2000_2010", "sim_2010_2022"):
            if c in d:
                d[c] = d[c].map(lambda v: "n/a" if pd.isna(v) else f"{100 * v:+.1f} %")
        if "rel_error" in d:
            d["rel_error"] = [f"{100 * v:.2f} %" if area == "ARD (mean |rel|)" else f"{100 * v:+.2f} %"
                              for v, area in zip(d["rel_error"], d.get("area", [""] * len(d)), strict=True)]
        cols = list(d.columns)
        lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(str(x) for x in row) + " |" for row in d.itertuples(index=False)]
        return "\n".join(lines)

    pred = table[(table.role == "predicted") & (table.area == "ARD (mean |rel|)")][["model", "rel_error"]]
    worst = table[(table.role == "predicted") & (table.area != "ARD (mean |rel|)")].groupby("model")["rel_error"].agg(
        lambda s: s.abs().max())
    summary = pred.set_index("model").rename(columns={"rel_error": "ARD 2022"}).join(worst.rename("max |rel error| 2022"))
    summary = summary.map(lambda v: f"{100 * v:.2f} %")
    n_flag = int(flags["flag"].sum())
    return "\n\n".join([
        "# Validation report",
        f"Config: `{getattr(config, 'source', '')}`; {replicates} stochastic replicates; households per agent "
        f"{config.run.households_per_agent}. Fitted targets: 2013 regional totals and city totals. "
        "Predicted (out of sample): 2022 regional totals, 2020 age structure, urbanisation, household size, "
        "hukou conversions. Baselines receive the observed city totals; the ABM row does not (its city total is "
        "simulated), the 'shares × observed city total' row isolates the regional distribution.",
        "## 2022 out-of-sample summary\n\n" + fmt(summary.reset_index().rename(columns={"index": "model"})),
        "## Regional totals: model and baselines\n\n" + fmt(table),
        "## City-level checks\n\n" + fmt(extras),
        f"## District plausibility\n\n{n_flag} district(s) flagged (simulated 2010→2022 change of opposite sign to "
        "the 2000→2010 census trend with no policy reason).\n\n" + fmt(flags[flags.sign_reversed]),
    ]) + "\n"
