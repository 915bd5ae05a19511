"""``migration-abm site``: plan schools/hospitals for a model run or from CSVs."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from migration_abm.cli.common import check_input_file, check_output_path
from migration_abm.cli.run import MAIN_JOB_REGIONS as DEFAULT_DISTRICTS
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
                              description=__doc__.splitlines()[0].replace("``", ""), epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_argument_group("input (model results or CSVs)")
    src.add_argument("--results", type=Path, help="model results (HDF5) to derive demand from")
    src.add_argument("--year", type=int, help="simulated year to plan for (with --results; default: the last)")
    src.add_argument("--demand", type=Path, help="demand points CSV (instead of --results)")
    src.add_argument("--candidates", type=Path, help="candidate sites CSV (default: generated)")
    src.add_argument("--existing", type=Path, help="existing facilities CSV (default with --results: assumed "
                     "base-year provision; with --demand: none)")
    p.add_argument("--facility", required=True, choices=sorted(CATALOGUE), help="facility type")
    p.add_argument("--budget", type=int, help="number of new facilities (default: settings.budget)")
    p.add_argument("--model", choices=("mclp", "capacitated_mclp", "lscp"), help="location model")
    p.add_argument("--districts", help="comma-separated functional regions and/or district codes "
                   f"(default with --results: {DEFAULT_DISTRICTS}, as run --site)")
    p.add_argument("--time-limit", type=float, help="solver time limit in seconds")
    p.add_argument("--config", type=Path, help="TOML file whose [siting] table (or top level) sets SitingSettings")
    p.add_argument("--out", type=Path, help="output folder (default results/site/<results or demand name>/<facility>)")
    p.add_argument("--force", "--overwrite", dest="force", action="store_true", help="replace an earlier plan in --out")
    p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="only errors")
    p.add_argument("--seed", type=int, help="seed for demand points and candidates (default: the run's seed, or 0)")
    p.set_defaults(func=run)
    return p


def _settings(args: argparse.Namespace) -> object:
    from migration_abm.siting.settings import SitingSettings

    d: dict = {}
    if args.config is not None:
        from migration_abm.schema import read_toml_file

        data = read_toml_file(Path(args.config), "siting")
        d = dict(data["siting"]) if isinstance(data.get("siting"), dict) else data
    s = SitingSettings.from_dict(d, f"{args.config} [siting]" if args.config else "siting")
    if args.model:
        s.model = args.model
    if args.time_limit is not None:
        if args.time_limit <= 0:
            raise InputError("--time-limit", "time-limit", args.time_limit, "must be > 0")
        s.time_limit_s = float(args.time_limit)
    return s


def read_results(path: Path) -> object:
    """A run file for siting; anything unreadable or incomplete is an InputError naming the file."""
    from migration_abm.results import Results

    try:
        results = Results.from_hdf5(path)
        results.population_by_district()
        results.urban_share(int(results.years[-1]))
    except InputError:
        raise
    except (OSError, KeyError, ValueError, TypeError, IndexError) as exc:
        raise InputError(str(path), "file", str(path), f"not a complete migration-abm run file ({exc})") from None
    return results


def run_seed(results: object) -> int:
    """The seed ``run --site`` would use for this run: its root entropy (``entropy=N;spawn_key=``), else
    the stored config's run.seed, else 0."""
    m = re.fullmatch(r"entropy=(\d+);spawn_key=\(?\)?", str(results.seed)) or re.fullmatch(r"(\d+)", str(results.seed))
    if m:
        return int(m.group(1))
    m = re.search(r"^seed = (\d+)$", results.config_toml, flags=re.MULTILINE)
    return int(m.group(1)) if m else 0


def run(args: argparse.Namespace) -> int:
    """Handle ``site``: build the plan, write CSV/GeoJSON/PNG to ``--out``, print the summary. Bad input
    raises ``InputError`` (the main CLI maps it to exit code 2)."""
    from migration_abm.siting.plan import plan_for_results, plan_from_csv

    if args.budget is not None and args.budget < 0:
        raise InputError("--budget", "budget", args.budget, "must be >= 0")
    settings = _settings(args)
    if (args.results is None) == (args.demand is None):
        raise InputError("site", "--results/--demand", None, "give exactly one of --results or --demand")
    if args.results is not None:
        if args.candidates is not None or args.existing is not None:
            raise InputError("site", "--candidates/--existing", None, "only supported with --demand CSVs")
    for flag in ("results", "demand", "candidates", "existing"):
        if getattr(args, flag) is not None:
            check_input_file(getattr(args, flag), f"--{flag}")
    src = args.results if args.results is not None else args.demand
    out = args.out if args.out is not None else Path("results") / "site" / Path(src).stem / args.facility
    check_output_path(out, folder=True, force=args.force)
    if args.results is not None:
        results = read_results(args.results)
        year = int(results.years[-1]) if args.year is None else args.year
        seed = args.seed if args.seed is not None else run_seed(results)
        plan = plan_for_results(results, year, args.facility, districts=args.districts or DEFAULT_DISTRICTS,
                                budget=args.budget, config=settings, seed=seed, out_dir=out)
    else:
        if args.districts:
            raise InputError("site", "--districts", args.districts, "only supported with --results")
        plan = plan_from_csv(args.demand, args.facility, candidates_csv=args.candidates,
                             existing_csv=args.existing, budget=args.budget, config=settings, seed=args.seed or 0,
                             out_dir=out)
    print(plan.summary())
    for note in plan.notes:
        print(f"  note: {note}")
    print(f"  wrote {out}/(sites|demand|districts|assignment|summary).csv, sites.geojson, map.png")
    return 0
