"""``migration-abm site``: plan schools/hospitals for a model run or from CSVs."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from migration_abm.errors import InputError

EPILOG = """examples:
  migration-abm site --results RUN.h5 --year 2030 --facility primary_school --budget 30 \\
      --districts expansion,new_development --out out/site --seed 1
  migration-abm site --demand demand.csv [--candidates cand.csv] [--existing existing.csv] \\
      --facility hospital --budget 10 --out out/site
CSV columns: demand lon,lat,weight[,id,district]; candidates lon,lat[,id,district,capacity];
existing lon,lat,capacity[,id,district]."""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``site`` subcommand on the main CLI's subparsers; its handler is ``run``."""
    from migration_abm.siting.settings import CATALOGUE

    p = subparsers.add_parser("site", help="site schools/hospitals where the modelled people live",
                              description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_argument_group("input (model results or CSVs)")
    src.add_argument("--results", type=Path, help="model results (HDF5) to derive demand from")
    src.add_argument("--year", type=int, help="simulated year to plan for (with --results)")
    src.add_argument("--demand", type=Path, help="demand points CSV (instead of --results)")
    src.add_argument("--candidates", type=Path, help="candidate sites CSV (default: generated)")
    src.add_argument("--existing", type=Path, help="existing facilities CSV (default with --results: assumed "
                     "base-year provision; with --demand: none)")
    p.add_argument("--facility", required=True, choices=sorted(CATALOGUE), help="facility type")
    p.add_argument("--budget", type=int, help="number of new facilities (default: settings.budget)")
    p.add_argument("--model", choices=("mclp", "capacitated_mclp", "lscp"), help="location model")
    p.add_argument("--districts", help="comma-separated functional regions and/or district codes")
    p.add_argument("--time-limit", type=float, help="solver time limit in seconds")
    p.add_argument("--config", type=Path, help="TOML file whose [siting] table (or top level) sets SitingSettings")
    p.add_argument("--out", type=Path, default=Path("site_out"), help="output directory (default: site_out)")
    p.add_argument("--seed", type=int, default=0, help="seed for demand points and candidates")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run)
    return p


def _settings(args: argparse.Namespace) -> object:
    from migration_abm.siting.settings import SitingSettings

    d: dict = {}
    if args.config is not None:
        import tomllib

        try:
            data = tomllib.loads(Path(args.config).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise InputError(str(args.config), "file", str(args.config), f"not a readable TOML file ({exc})") from None
        d = dict(data.get("siting", data))
    s = SitingSettings.from_dict(d, f"{args.config} [siting]" if args.config else "siting")
    if args.model:
        s.model = args.model
    if args.time_limit is not None:
        if args.time_limit <= 0:
            raise InputError("--time-limit", "time-limit", args.time_limit, "must be > 0")
        s.time_limit_s = float(args.time_limit)
    return s


def run(args: argparse.Namespace) -> int:
    """Handle ``site``: build the plan, write CSV/GeoJSON/PNG to ``--out``, print the summary. Bad input
    raises ``InputError`` (the main CLI maps it to exit code 2)."""
    from migration_abm.siting.plan import plan_for_results, plan_from_csv

    if not args.quiet:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S",
                            stream=sys.stderr)
        logging.getLogger("migration_abm.siting").setLevel(logging.INFO)
    if args.budget is not None and args.budget < 0:
        raise InputError("--budget", "budget", args.budget, "must be >= 0")
    settings = _settings(args)
    if (args.results is None) == (args.demand is None):
        raise InputError("site", "--results/--demand", None, "give exactly one of --results or --demand")
    if args.results is not None:
        if args.year is None:
            raise InputError("site", "--year", None, "--results needs --year")
        if args.candidates is not None or args.existing is not None:
            raise InputError("site", "--candidates/--existing", None, "only supported with --demand CSVs")
        if not args.results.exists():
            raise InputError(str(args.results), "file", str(args.results), "file not found")
        from migration_abm.results import Results

        results = Results.from_hdf5(args.results)
        plan = plan_for_results(results, args.year, args.facility, districts=args.districts, budget=args.budget,
                                config=settings, seed=args.seed, out_dir=args.out)
    else:
        if args.districts:
            raise InputError("site", "--districts", args.districts, "only supported with --results")
        plan = plan_from_csv(args.demand, args.facility, candidates_csv=args.candidates,
                             existing_csv=args.existing, budget=args.budget, config=settings, seed=args.seed,
                             out_dir=args.out)
    print(plan.summary())
    for note in plan.notes:
        print(f"  note: {note}")
    print(f"  wrote {args.out}/(sites|demand|districts|assignment|summary).csv, sites.geojson, map.png")
    return 0
