"""Command-line interface: ``migration-abm`` (or ``python -m migration_abm``).

Exit codes: 0 success, 2 bad input (config, CSV, flag), 1 internal error.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from migration_abm.errors import InputError

log = logging.getLogger("migration_abm")


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value by dotted key, e.g. policy.hukou.expansion.min_years=3")


def cmd_info(args: argparse.Namespace) -> int:
    """Print functional regions and districts with census populations."""
    import pandas as pd

    from migration_abm.geography import Geography

    geo = Geography.load(args.regions)
    pd.set_option("display.width", 160)
    pd.set_option("display.max_rows", 200)
    years = geo.census_years
    print(f"{geo.n} districts in {len(set(geo.districts['functional_region']))} functional regions "
          f"(census years: {', '.join(map(str, years))})\n")
    reg = geo.region_table()
    for y in years:
        reg[f"pop_{y}"] = reg[f"pop_{y}"].map(lambda v: "n/a" if pd.isna(v) else f"{int(v):,}")
    print(reg.to_string(index=False))
    print()
    tab = geo.table()
    for y in years:
        flag = geo.districts.get(f"pop_{y}_imputed", pd.Series(False, index=tab.index)).astype(bool)
        tab[f"pop_{y}"] = [("n/a" if pd.isna(v) else f"{int(v):,}") + (" *" if f else "")
                           for v, f in zip(tab[f"pop_{y}"], flag, strict=True)]
    print(tab.to_string(index=False))
    for y in years:
        total = geo.population(y)
        if pd.notna(total).all():
            print(f"\nTotal {y}: {int(total.sum()):,}")
    print("\n* imputed value (see migration_abm/data/DATA.md)")
    return 0


def cmd_config_show(args: argparse.Namespace) -> int:
    """Print the fully resolved config as TOML."""
    from migration_abm.config import load_config

    cfg = load_config(args.config, args.overrides)
    sys.stdout.write(f"# resolved from {cfg.source}\n" + cfg.to_toml())
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Run one scenario, write the HDF5 result and a population-by-region PNG (and siting plans)."""
    from migration_abm.config import load_config
    from migration_abm.model import simulate
    from migration_abm.plotting import plot_population_by_region

    cfg = load_config(args.config, args.overrides)
    seed = cfg.run.seed if args.seed is None else args.seed
    if seed < 0:
        raise InputError("--seed", "seed", seed, "must be >= 0")
    out = Path(args.out) if args.out else Path("results") / f"{Path(args.config).stem}_seed{seed}.h5"
    if out.suffix not in (".h5", ".hdf5"):
        raise InputError("--out", "out", str(out), "must end in .h5 or .hdf5")
    log.info("running %s (seed %d, %s households per agent) %d→%d", cfg.source, seed,
             cfg.run.households_per_agent, cfg.run.start_year, cfg.run.end_year)
    res = simulate(cfg, seed, progress=not args.quiet)
    res.to_hdf5(out)
    pop = res.population_by_region()
    png = plot_population_by_region(pop, out.with_suffix(".png"),
                                    title=f"{Path(args.config).stem}: population by functional region")
    print(f"wrote {out} and {png}")
    print((pop.iloc[[0, -1]] / 1e4).round(1).rename_axis(columns="万 persons").to_string())
    if args.site:
        site_final_year(res, cfg, out.with_name(out.stem + "_siting"), seed)
    return 0


MAIN_JOB_FACILITIES = ("primary_school", "hospital")
MAIN_JOB_REGIONS = "expansion,new_development"


def site_final_year(res: object, cfg: object, out_dir: Path, seed: int) -> None:
    """The main job's second half: site primary schools and hospitals for the final simulated year in
    the expansion and new-development districts; plans, coverage tables and maps under ``out_dir``."""
    from migration_abm.siting import plan_for_results

    year = int(res.years[-1])
    for facility in MAIN_JOB_FACILITIES:
        target = out_dir / facility
        plan = plan_for_results(res, year, facility, districts=MAIN_JOB_REGIONS, config=cfg.siting or None,
                                seed=seed, out_dir=target)
        before, after = plan.coverage_before, plan.coverage_after
        print(f"{facility} {year}: {len(plan.new_sites)} new sites, weighted coverage "
              f"{100 * before['weighted']:.1f} % → {100 * after['weighted']:.1f} % "
              f"(gap {100 * plan.gap:.2f} %); wrote {target}/")


def _add_logging_flags(sub: argparse._SubParsersAction) -> None:
    """Accept -v/-q after the subcommand too (``migration-abm run X -q``), recursively."""
    for p in set(sub.choices.values()):
        if "-v" not in p._option_string_actions:
            p.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, help="more log output")
        if "-q" not in p._option_string_actions:
            p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="only errors")
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                _add_logging_flags(action)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="migration-abm", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("info", help="regions and districts with census populations")
    p.add_argument("--regions", help="a district CSV instead of the packaged Chongqing table")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("config", help="inspect scenario configs")
    csub = p.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    ps = csub.add_parser("show", help="print the fully resolved config")
    ps.add_argument("config", help="scenario TOML file")
    _add_config_args(ps)
    ps.set_defaults(func=cmd_config_show)

    p = sub.add_parser("run", help="run one scenario and write its HDF5 result")
    p.add_argument("config", help="scenario TOML file, e.g. configs/baseline.toml")
    p.add_argument("--out", help="output .h5 path (default results/<config>_seed<seed>.h5)")
    p.add_argument("--seed", type=int, help="override run.seed")
    p.add_argument("--site", action="store_true",
                   help="also site primary schools and hospitals for the final year (the main job)")
    _add_config_args(p)
    p.set_defaults(func=cmd_run)

    from migration_abm.app import add_parser as add_app_parser
    from migration_abm.experiments.cli import add_parsers as add_experiment_parsers
    from migration_abm.siting.cli import add_parser as add_site_parser
    from migration_abm.validation import add_parsers as add_validation_parsers

    add_site_parser(sub)
    add_experiment_parsers(sub)
    add_validation_parsers(sub)
    add_app_parser(sub)
    _add_logging_flags(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.ERROR if args.quiet else (logging.DEBUG if args.verbose > 1 else
                                              logging.INFO if args.verbose else logging.WARNING)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"migration-abm: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("migration-abm: interrupted (a sweep continues with --resume)", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - last-resort handler maps to exit 1
        if args.verbose:
            raise
        print(f"migration-abm: internal error: {type(exc).__name__}: {exc} (run with -v for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
