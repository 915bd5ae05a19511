"""``migration-abm site``: plan schools/hospitals for a model run or from a planner's files.

``add_parser`` registers the flags, ``run`` checks them and calls ``plan_for_results`` / ``plan_from_csv``.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from migration_abm.cli.common import check_input_file, check_output_path
from migration_abm.errors import InputError
from migration_abm.siting import registry
from migration_abm.siting.settings import CATALOGUE, SitingSettings

EPILOG = """examples:
  migration-abm site --results results/baseline_seed42.h5 --facility primary_school --budget 30
  migration-abm site --results RUN.h5 --facility hospital --existing hospitals.csv \\
      --travel-times minutes.parquet --model p_median --out results/site/hospital
  migration-abm site --demand demand.csv [--candidates cand.csv] [--existing existing.csv] \\
      --facility hospital --budget 10
Files: demand lon,lat,weight[,id,district]; candidates lon,lat[,id,district,capacity];
existing lon,lat,capacity[,id,district,kind] (rows of other kinds are ignored);
travel times demand_id,site_id,minutes (CSV or .parquet; unlisted pairs are unreachable).
Defaults: --year = last simulated year, --districts = settings.districts (expansion,new_development),
--seed = the run's seed, --out = results/site/<results or demand name>/<facility>."""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``site`` subcommand; its handler is ``run``."""
    p = subparsers.add_parser("site", help="site schools/hospitals where the modelled people live",
                              description=__doc__.splitlines()[0].replace("``", ""), epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_argument_group("inputs")
    src.add_argument("--results", type=Path, help="model results (HDF5) to derive demand from")
    src.add_argument("--year", type=int, help="simulated year to plan for (with --results; default: the last)")
    src.add_argument("--demand", type=Path, help="demand points CSV (instead of --results)")
    src.add_argument("--candidates", type=Path, help="candidate sites CSV (default: generated from the demand)")
    src.add_argument("--existing", type=Path, help="existing facilities CSV (default with --results: ASSUMED "
                     "base-year provision; with --demand: none)")
    src.add_argument("--travel-times", type=Path, help="demand x site travel minutes (CSV/Parquet), used "
                     "instead of the straight-line radius")
    p.add_argument("--facility", required=True, choices=sorted(CATALOGUE), help="facility type")
    p.add_argument("--budget", type=int, help="number of new facilities (default: settings.budget)")
    p.add_argument("--model", choices=registry.names(), help="location model (default: settings.model)")
    p.add_argument("--districts", help="comma-separated functional regions and/or district codes")
    p.add_argument("--time-limit", type=float, help="solver time limit in seconds")
    p.add_argument("--config", type=Path, help="TOML file whose [siting] table (or top level) sets SitingSettings")
    p.add_argument("--out", type=Path, help="output directory (default under results/site/)")
    p.add_argument("--overwrite", "--force", dest="overwrite", action="store_true",
                   help="replace an earlier plan in --out")
    p.add_argument("--seed", type=int, help="seed for demand points and candidates (default: the run's seed, or 0)")
    p.set_defaults(func=run)
    return p


def settings_from_args(args: argparse.Namespace) -> SitingSettings:
    """SitingSettings from ``--config`` plus the ``--model`` / ``--time-limit`` flags."""
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


def out_dir(args: argparse.Namespace) -> Path:
    """``--out`` or results/site/<input stem>/<facility>; refuses to replace an earlier plan silently."""
    src = args.results if args.results is not None else args.demand
    out = args.out if args.out is not None else Path("results") / "site" / Path(src).stem / args.facility
    check_output_path(out, "--out", folder=True, exist_ok=True)
    if (out / "summary.csv").exists() and not args.overwrite:
        raise InputError("--out", "out", str(out), "holds an earlier plan; pass --overwrite or another --out")
    return out


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
    """The seed ``run --site`` used for this run: its root entropy (``entropy=N;spawn_key=()``), else the
    stored config's run.seed, else 0."""
    seed = str(results.seed)
    m = re.fullmatch(r"entropy=(\d+);spawn_key=\(?\)?", seed) or re.fullmatch(r"(\d+)", seed)
    if m:
        return int(m.group(1))
    m = re.search(r"^seed = (\d+)$", results.config_toml, flags=re.MULTILINE)
    return int(m.group(1)) if m else 0


def run(args: argparse.Namespace) -> int:
    """Handle ``site``: check the flags, build the plan, write it, print the summary (InputError → exit 2)."""
    from migration_abm.siting.plan import plan_for_results, plan_from_csv

    quiet = bool(getattr(args, "quiet", False))  # logs like every command: INFO with -v; progress bars on stderr
    if args.budget is not None and args.budget < 0:
        raise InputError("--budget", "budget", args.budget, "must be >= 0")
    if (args.results is None) == (args.demand is None):
        raise InputError("site", "--results/--demand", None, "give exactly one of --results or --demand")
    settings = settings_from_args(args)
    for flag in ("results", "demand", "candidates", "existing", "travel_times"):
        if getattr(args, flag) is not None:
            check_input_file(getattr(args, flag), f"--{flag.replace('_', '-')}")
    out = out_dir(args)
    if args.results is not None:
        results = read_results(args.results)
        year = int(results.years[-1]) if args.year is None else args.year
        seed = args.seed if args.seed is not None else run_seed(results)
        plan = plan_for_results(results, year, args.facility, districts=args.districts or settings.districts,
                                budget=args.budget,
                                config=settings, seed=seed, out_dir=out, existing=args.existing,
                                candidates=args.candidates, travel_times=args.travel_times, progress=not quiet)
    else:
        if args.districts:
            raise InputError("site", "--districts", args.districts, "only supported with --results")
        plan = plan_from_csv(args.demand, args.facility, candidates_csv=args.candidates,
                             existing_csv=args.existing, budget=args.budget, config=settings,
                             seed=args.seed or 0, out_dir=out, travel_times=args.travel_times)
    print(plan.summary())
    for note in plan.notes:
        print(f"  note: {note}")
    print(f"  wrote {out}/(sites|demand|districts|assignment|summary).csv, sites.geojson, map.png")
    return 0
