"""``migration-abm info``: functional regions and districts with census populations."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``info``."""
    p = sub.add_parser("info", help="regions and districts with census populations")
    p.add_argument("--regions", help="a district CSV instead of the packaged Chongqing table")
    p.set_defaults(func=cmd_info)


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
