"""``migration-abm run``: one scenario to an HDF5 result and a chart (``--site``: the main job)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from migration_abm.cli.common import add_config_args, check_output_path, overrides_tag
from migration_abm.errors import InputError

log = logging.getLogger("migration_abm")

MAIN_JOB_FACILITIES = ("primary_school", "hospital")
MAIN_JOB_REGIONS = "expansion,new_development"


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``run``."""
    p = sub.add_parser("run", help="run one scenario and write its HDF5 result")
    p.add_argument("config", help="scenario TOML file, e.g. configs/baseline.toml")
    p.add_argument("--out", help="output .h5 path (default results/<config>_seed<seed>[_<hash of --set>].h5)")
    p.add_argument("--seed", type=int, help="override run.seed")
    p.add_argument("--force", action="store_true", help="replace existing outputs")
    p.add_argument("--replicates", type=int, default=10, metavar="N",
                   help="ensemble size for the uncertainty band (default 10; seeds spawned from the run seed, "
                   "one posterior draw each when run.posterior is set); 1 = one run with the run seed")
    p.add_argument("--site", action="store_true",
                   help="also site primary schools and hospitals for the final year (the main job)")
    add_config_args(p)
    p.set_defaults(func=cmd_run)


def default_out(config: str, seed: int, overrides: list[str]) -> Path:
    """results/<config stem>_seed<seed>.h5, with a hash of the overrides when there are any."""
    tag = overrides_tag(overrides)
    return Path("results") / f"{Path(config).stem}_seed{seed}{'_' + tag if tag else ''}.h5"


def cmd_run(args: argparse.Namespace) -> int:
    """Run one scenario, write the HDF5 result and a population-by-region PNG (and siting plans)."""
    from migration_abm.checks import check_inputs, warn_implausible
    from migration_abm.config import load_config
    from migration_abm.model import simulate
    from migration_abm.plotting import plot_population_by_region

    cfg = load_config(args.config, args.overrides)
    seed = cfg.run.seed if args.seed is None else args.seed
    if seed < 0:
        raise InputError("--seed", "seed", seed, "must be >= 0")
    out = Path(args.out) if args.out else default_out(args.config, seed, args.overrides)
    if out.suffix not in (".h5", ".hdf5"):
        raise InputError("--out", "out", str(out), "must end in .h5 or .hdf5")
    if args.replicates < 1:
        raise InputError("--replicates", "replicates", args.replicates, "must be >= 1")
    check_output_path(out, force=args.force)
    check_output_path(out.with_suffix(".png"), force=args.force)
    if args.replicates > 1:
        check_output_path(bands_csv(out), force=args.force)
    if args.site:
        check_output_path(siting_dir(out), folder=True, force=args.force)
    check_inputs(cfg)
    log.info("running %s (seed %d, %s households per agent) %d→%d", cfg.source, seed,
             cfg.run.households_per_agent, cfg.run.start_year, cfg.run.end_year)
    if args.replicates == 1:
        res = simulate(cfg, seed, progress=not args.quiet)
        res.to_hdf5(out)
        pop = res.population_by_region()
        png = plot_population_by_region(pop, out.with_suffix(".png"),
                                        title=f"{Path(args.config).stem}: population by functional region (one run)")
        print(f"wrote {out} and {png}")
        print((pop.iloc[[0, -1]] / 1e4).round(1).rename_axis(columns="万 persons").to_string())
    else:
        fixed = tuple(item.partition("=")[0].strip() for item in args.overrides)
        res = _run_ensemble(cfg, seed, args.replicates, out, Path(args.config).stem, quiet=args.quiet, fixed=fixed)
    warn_implausible(res, str(out))
    if args.site:
        site_final_year(res, cfg, siting_dir(out), seed, progress=not args.quiet)
    return 0


def siting_dir(out: Path) -> Path:
    """Folder of the main job's siting plans next to the run file."""
    return out.with_name(out.stem + "_siting")


def bands_csv(out: Path) -> Path:
    """The ensemble's band table next to the run file."""
    return out.with_name(out.stem + "_bands.csv")


def _run_ensemble(cfg: object, seed: int, replicates: int, out: Path, name: str, quiet: bool,
                  fixed: tuple[str, ...] = ()) -> object:
    """Replicates with bands: replicate 1's result to ``out``, bands to ``<out>_bands.csv`` and the figure.
    ``--set`` keys (``fixed``) keep their value in every replicate instead of a posterior draw."""
    from migration_abm.ensemble import bands, ensemble, observed_points
    from migration_abm.geography import Geography
    from migration_abm.plotting import plot_projection_bands
    from migration_abm.storage import write_text_atomic

    runs = ensemble(cfg, seed, replicates, progress=not quiet, fixed=fixed)
    geo = Geography.from_config(cfg.data)
    table = bands(runs, geo, cfg.run.share_discrepancy_sd, seed)
    runs[0].to_hdf5(out)
    csv = bands_csv(out)
    write_text_atomic(csv, table.round(0).to_csv(index=False))
    what = "stochastic and parameter uncertainty (posterior draws)" if cfg.run.posterior else "stochastic uncertainty only"
    if cfg.run.share_discrepancy_sd > 0:
        what += f" and model discrepancy (district shares, sd {cfg.run.share_discrepancy_sd:.3f} per 10 years)"
    png = plot_projection_bands(table, observed_points(geo, cfg.run.start_year - 10, cfg.run.end_year),
                                out.with_suffix(".png"), f"{name}: {replicates} replicates, {what}",
                                note="bands: 80 % and 95 % intervals; points: census, 1 % surveys, year-end totals")
    last = table[table.year == table.year.max()].set_index("area")
    print(f"wrote {out} (replicate 1 of {replicates}), {csv} and {png}")
    print(f"{int(table.year.max())} residents (万 persons), median [80 % interval], {what}:")
    for area, row in last.iterrows():
        print(f"  {area:16s} {row['q50'] / 1e4:8.1f} [{row['q10'] / 1e4:.1f}, {row['q90'] / 1e4:.1f}]")
    return runs[0]


#: solver seconds per plan in the main job unless the config's [siting] sets time_limit_s (docs/SITING.md)
MAIN_JOB_TIME_LIMIT_S = 3.0


def site_final_year(res: object, cfg: object, out_dir: Path, seed: int, progress: bool = False) -> None:
    """The main job's second half: site primary schools and hospitals for the final simulated year in
    the expansion and new-development districts; plans, coverage tables and maps under ``out_dir``."""
    from migration_abm.siting import plan_for_results

    year = int(res.years[-1])
    for facility in MAIN_JOB_FACILITIES:
        target = out_dir / facility
        plan = plan_for_results(res, year, facility, districts=MAIN_JOB_REGIONS,
                                config={"time_limit_s": MAIN_JOB_TIME_LIMIT_S, **(cfg.siting or {})},
                                seed=seed, out_dir=target, progress=progress)
        before, after = plan.coverage_before, plan.coverage_after
        lab = plan.assumption_label()
        print(f"{facility} {year}: {len(plan.new_sites)} new sites, weighted coverage "
              f"{100 * before['weighted']:.1f} % → {100 * after['weighted']:.1f} %{' on ' + lab if lab else ''} "
              f"(gap {100 * plan.gap:.2f} %); wrote {target}/")
