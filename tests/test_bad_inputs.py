"""Every bad input is a clean error (exit 2, one line naming file, field and value, nothing written),
checked before the work; in-range values never crash; outputs are never overwritten silently.

Each class of bad input from issue 14 has its own parametrised test; the readers are fuzzed with
seeded mutations of the packaged config and district table.
"""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
import pytest

from migration_abm.errors import InputError
from migration_abm.geography import data_path
from migration_abm.schema import MAX_EXTENDS_DEPTH

REPO = Path(__file__).resolve().parents[1]
BASE = REPO / "configs" / "baseline.toml"
QUICK = ("--set", "run.households_per_agent=2000", "--set", "run.end_year=2022")


def snapshot(root: Path) -> list[tuple[str, int]]:
    """Every path under ``root`` with its size (a changed file counts as written)."""
    return sorted((str(p.relative_to(root)), p.stat().st_size if p.is_file() else -1) for p in root.rglob("*"))


@pytest.fixture
def refused(cli, tmp_path, monkeypatch):
    """Run the CLI in ``tmp_path`` and assert a clean refusal: exit 2, exactly one stderr line that
    names every culprit, nothing on stdout, no file created or changed, no simulation or solve."""
    import migration_abm.model as model
    import migration_abm.siting.plan as plan

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(model, "simulate", lambda *a, **k: pytest.fail("simulation started on bad input"))
    monkeypatch.setattr(plan, "plan_for_results", lambda *a, **k: pytest.fail("solve started on bad input"))
    monkeypatch.setattr(plan, "plan_from_csv", lambda *a, **k: pytest.fail("solve started on bad input"))

    def _check(*argv: str, culprits: tuple[str, ...]) -> str:
        before = snapshot(tmp_path)
        code, out, err = cli(*map(str, argv))
        lines = err.strip().splitlines()
        assert code == 2, err
        assert len(lines) == 1 and lines[0].startswith("migration-abm: error: "), err
        for c in culprits:
            assert c in lines[0], (c, lines[0])
        assert out == ""
        assert snapshot(tmp_path) == before
        return lines[0]

    return _check


# --------------------------------------------------------------------------------------------------
# a folder where a file is expected
# --------------------------------------------------------------------------------------------------

FOLDER_CASES = {
    "extends empty": (("config", "show", "c.toml"), {"c.toml": 'extends = ""\n'}, ("c.toml", "extends", "''")),
    "extends folder": (("config", "show", "c.toml"), {"c.toml": 'extends = "somedir"\n'}, ("c.toml", "extends", "somedir")),
    "config is a folder (show)": (("config", "show", "somedir"), {}, ("somedir", "folder")),
    "config is a folder (run)": (("run", "somedir"), {}, ("somedir", "folder")),
    "regions is a folder": (("run", "c.toml"), {"c.toml": '[data]\nregions = "somedir"\n'}, ("somedir", "folder")),
    "boundaries is a folder": (("run", "c.toml"), {"c.toml": '[data]\nboundaries = "somedir"\n'}, ("somedir", "folder")),
    "info --regions folder": (("info", "--regions", "somedir"), {}, ("somedir", "folder")),
    "experiment is a folder": (("sweep", "somedir"), {}, ("somedir", "folder")),
    "compare config is a folder": (("compare", "somedir"), {}, ("somedir", "folder")),
    "site --results folder": (("site", "--results", "somedir", "--facility", "hospital"), {}, ("somedir", "--results")),
    "site --demand folder": (("site", "--demand", "somedir", "--facility", "hospital"), {}, ("somedir", "--demand")),
    "site --config folder": (("site", "--demand", "d.csv", "--config", "somedir", "--facility", "hospital"),
                             {"d.csv": "lon,lat,weight\n106.5,29.5,1\n"}, ("somedir", "folder")),
}


@pytest.mark.parametrize("case", FOLDER_CASES, ids=str)
def test_folder_where_a_file_is_expected(refused, tmp_path, case):
    argv, files, culprits = FOLDER_CASES[case]
    (tmp_path / "somedir").mkdir()
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    refused(*argv, culprits=culprits)


@pytest.mark.parametrize("text, culprits", [
    ('extends = "a\\u0000b"\n', ("c.toml", "extends")),
    ('[data]\nregions = "a\\u0000b"\n', ("c.toml", "data.regions")),
    ('[data]\nregions = ""\n', ("c.toml", "data.regions", "''")),
    ('[data]\nboundaries = " "\n', ("c.toml", "data.boundaries")),
], ids=["NUL in extends (was ValueError)", "NUL in regions (was ValueError)", "empty regions", "blank boundaries"])
def test_path_string_naming_nothing(refused, tmp_path, text, culprits):
    (tmp_path / "c.toml").write_text(text, encoding="utf-8")
    refused("run", "c.toml", culprits=culprits)


# --------------------------------------------------------------------------------------------------
# extends chains
# --------------------------------------------------------------------------------------------------

def _chain(tmp_path: Path, n: int) -> Path:
    """c0.toml extends c1.toml ... extends c{n-1}.toml (n files)."""
    for i in range(n - 1):
        (tmp_path / f"c{i}.toml").write_text(f'extends = "c{i + 1}.toml"\n', encoding="utf-8")
    (tmp_path / f"c{n - 1}.toml").write_text("[run]\nseed = 5\n", encoding="utf-8")
    return tmp_path / "c0.toml"


def test_extends_chain_at_the_limit_loads(tmp_path):
    from migration_abm.config import load_config

    assert load_config(_chain(tmp_path, MAX_EXTENDS_DEPTH)).run.seed == 5


@pytest.mark.parametrize("n", [MAX_EXTENDS_DEPTH + 1, 1500], ids=["limit+1", "1500 (was RecursionError)"])
def test_extends_chain_too_long(refused, tmp_path, n):
    _chain(tmp_path, n)
    refused("config", "show", "c0.toml", culprits=("extends", f"longer than {MAX_EXTENDS_DEPTH}"))


# --------------------------------------------------------------------------------------------------
# district tables
# --------------------------------------------------------------------------------------------------

def _table() -> pd.DataFrame:
    return pd.read_csv(data_path("chongqing_districts.csv"), dtype=str, keep_default_na=False)


def _edit(col: str, row: int, value: str):
    def f(t: pd.DataFrame) -> str:
        t.loc[row, col] = value
        return t.to_csv(index=False)
    return f


TABLE_CASES = {
    "empty file": (lambda t: "", ("d.csv", "empty")),
    "header only": (lambda t: t.iloc[:0].to_csv(index=False), ("d.csv", "rows", "header only")),
    "zero population everywhere": (lambda t: t.assign(pop_2010="0").to_csv(index=False),
                                   ("d.csv", "pop_2010", "no district has a positive population")),
    "missing code": (_edit("code", 3, ""), ("d.csv", "row 5", "code", "missing district code")),
    "duplicate code": (_edit("code", 4, "500101"), ("d.csv", "row 6", "code", "duplicate")),
    "non-numeric population": (_edit("pop_2010", 2, "lots"), ("d.csv", "row 4", "pop_2010", "'lots'")),
    "infinite population": (_edit("pop_2010", 2, "inf"), ("d.csv", "row 4", "pop_2010", "inf")),
    "huge population": (_edit("pop_2010", 2, "1e15"), ("d.csv", "row 4", "pop_2010", "within")),
    "negative population": (_edit("pop_2010", 1, "-5"), ("d.csv", "row 3", "pop_2010", "-5")),
    "unknown functional region": (_edit("functional_region", 0, "expanison"),
                                  ("d.csv", "functional_region", "expanison", "did you mean 'expansion'")),
    "non-numeric urban column": (_edit("urban_2010", 0, "many"), ("d.csv", "urban_2010", "'many'")),
    "one row longer than the header": (lambda t: "\n".join(line + (",extra" if i == 3 else "")
                                                            for i, line in enumerate(t.to_csv(index=False).splitlines())),
                                       ("d.csv", "line 4")),
    "every row longer than the header (was KeyError)": (
        lambda t: "\n".join(line + (",extra" if i else "") for i, line in enumerate(t.to_csv(index=False).splitlines())),
        ("d.csv", "more fields than the header")),
    "missing required column": (lambda t: t.drop(columns=["lat"]).to_csv(index=False), ("d.csv", "columns", "lat")),
}


@pytest.mark.parametrize("case", TABLE_CASES, ids=str)
def test_bad_district_table(refused, tmp_path, case):
    make, culprits = TABLE_CASES[case]
    (tmp_path / "d.csv").write_text(make(_table()), encoding="utf-8")
    refused("info", "--regions", "d.csv", culprits=culprits)


def test_bad_district_table_through_a_config_before_simulating(refused, tmp_path):
    (tmp_path / "d.csv").write_text(_table().assign(pop_2020="0").to_csv(index=False), encoding="utf-8")
    (tmp_path / "c.toml").write_text(f'extends = "{BASE.as_posix()}"\n[data]\nregions = "d.csv"\nboundaries = "none"\n',
                                     encoding="utf-8")
    refused("run", "c.toml", culprits=("d.csv", "pop_2020"))


# --------------------------------------------------------------------------------------------------
# files that are not UTF-8
# --------------------------------------------------------------------------------------------------

NOT_UTF8 = b"[run]\nseed = 1 # \xff\xfe\n"
UTF8_CASES = {
    "config": (("config", "show", "bad.toml"), ("bad.toml", "UTF-8")),
    "config through extends": (("config", "show", "c.toml"), ("bad.toml", "UTF-8")),
    "experiment": (("sweep", "bad.toml"), ("bad.toml", "UTF-8")),
    "experiment with --set": (("sweep", "bad.toml", "--set", "behaviour.beta_income=2"), ("bad.toml", "UTF-8")),
    "district table": (("info", "--regions", "bad.csv"), ("bad.csv", "UTF-8")),
    "siting config": (("site", "--demand", "d.csv", "--config", "bad.toml", "--facility", "hospital"),
                      ("bad.toml", "UTF-8")),
}


@pytest.mark.parametrize("case", UTF8_CASES, ids=str)
def test_file_not_utf8(refused, tmp_path, case):
    argv, culprits = UTF8_CASES[case]
    (tmp_path / "bad.toml").write_bytes(NOT_UTF8)
    (tmp_path / "bad.csv").write_bytes(data_path("chongqing_districts.csv").read_bytes().replace(b"core", b"c\xffre", 1))
    (tmp_path / "c.toml").write_text('extends = "bad.toml"\n', encoding="utf-8")
    (tmp_path / "d.csv").write_text("lon,lat,weight\n106.5,29.5,1\n", encoding="utf-8")
    refused(*argv, culprits=culprits)


# --------------------------------------------------------------------------------------------------
# results files for site --results
# --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def run_file(tmp_path_factory) -> Path:
    from migration_abm.config import load_config
    from migration_abm.model import simulate

    cfg = load_config(BASE, ["run.households_per_agent=2000", "run.end_year=2021"])
    path = tmp_path_factory.mktemp("run") / "run.h5"
    simulate(cfg, 3, progress=False).to_hdf5(path)
    return path


def _without_population(src: Path, dst: Path) -> None:
    dst.write_bytes(src.read_bytes())
    with h5py.File(dst, "a") as f:
        names: list[str] = []
        f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset)
                     and name.rsplit("/", 1)[-1] == "population" else None)
        assert names, "run file has no population dataset"
        for name in names:
            del f[name]


RESULTS_CASES = {
    "text file": lambda src, dst: dst.write_text("not hdf5\n", encoding="utf-8"),
    "truncated HDF5": lambda src, dst: dst.write_bytes(src.read_bytes()[:4000]),
    "HDF5 that is not a run file": lambda src, dst: h5py.File(dst, "w").close(),
    "run file without the population series": _without_population,
}


@pytest.mark.parametrize("case", RESULTS_CASES, ids=str)
def test_bad_results_file(refused, tmp_path, run_file, case):
    RESULTS_CASES[case](run_file, tmp_path / "r.h5")
    refused("site", "--results", "r.h5", "--facility", "hospital", culprits=("r.h5",))


# --------------------------------------------------------------------------------------------------
# output paths: checked before the work, never clobbered
# --------------------------------------------------------------------------------------------------

def _outputs_setup(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("mine\n", encoding="utf-8")
    (tmp_path / "old.h5").write_text("an earlier result\n", encoding="utf-8")
    (tmp_path / "adir.h5").mkdir()
    (tmp_path / "d.csv").write_text("lon,lat,weight\n106.5,29.5,1\n", encoding="utf-8")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "baseline_seed20100728.h5").write_text("earlier\n", encoding="utf-8")
    (tmp_path / "results" / "site" / "d" / "hospital").mkdir(parents=True)
    (tmp_path / "results" / "site" / "d" / "hospital" / "summary.csv").write_text("earlier\n", encoding="utf-8")


OUTPUT_CASES = {
    "run --out under a regular file": (("run", BASE, "--out", "afile/x.h5"), ("--out", "afile", "not a folder")),
    "run --out an existing result": (("run", BASE, "--out", "old.h5"), ("--out", "old.h5", "--force")),
    "run --out a folder": (("run", BASE, "--out", "adir.h5"), ("--out", "adir.h5", "is a directory")),
    "run default out exists": (("run", BASE), ("baseline_seed20100728.h5", "--force")),
    "run --site plan folder under a file": (("run", BASE, "--out", "afile/x.h5", "--site"), ("afile",)),
    "site --out an existing file": (("site", "--demand", "d.csv", "--facility", "hospital", "--out", "afile"),
                                    ("--out", "afile", "a directory is needed")),
    "site --out under a file": (("site", "--demand", "d.csv", "--facility", "hospital", "--out", "afile/plan"),
                                ("--out", "afile")),
    "site default out holds a plan": (("site", "--demand", "d.csv", "--facility", "hospital"),
                                      ("results/site/d/hospital", "--overwrite")),
    "sweep --out under a file": (("sweep", REPO / "experiments" / "hukou_job_matching.toml", "--out", "afile/s.h5"),
                                 ("--out", "afile")),
    "validate --out an existing file": (("validate", "--config", REPO / "configs" / "hindcast_2010.toml", "--forward-config", BASE,
                                         "--out", "afile"),
                                        ("--out", "afile")),
    "compare --out under a file": (("compare", BASE, "--out", "afile/cmp"), ("--out", "afile")),
}


@pytest.mark.parametrize("case", OUTPUT_CASES, ids=str)
def test_bad_output_path(refused, tmp_path, case):
    argv, culprits = OUTPUT_CASES[case]
    _outputs_setup(tmp_path)
    refused(*argv, culprits=culprits)


def test_output_in_read_only_folder(refused, tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.access(ro, os.W_OK):  # root writes anywhere: emulate a read-only mount for this folder
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, *a, **k: False if Path(p).resolve() == ro else real(p, mode, *a, **k))
    try:
        refused("run", BASE, "--out", "ro/sub/x.h5", culprits=("--out", "ro", "not writable"))
    finally:
        ro.chmod(0o755)


def test_run_with_different_overrides_keeps_both_and_refuses_a_rerun(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = str(BASE)
    assert cli("-q", "run", base, *QUICK)[0] == 0
    assert cli("-q", "run", base, *QUICK, "--set", "behaviour.beta_stay=1.5")[0] == 0
    assert cli("-q", "run", base, "--set", "behaviour.beta_stay=1.5", *QUICK)[0] == 2  # same overrides, any order
    files = sorted((tmp_path / "results").glob("*.h5"))
    assert len(files) == 2 and all(f.name.startswith("baseline_seed20100728_") for f in files), files
    umask = os.umask(0)
    os.umask(umask)
    assert all(f.stat().st_mode & 0o777 == 0o666 & ~umask for f in files)  # honours the umask
    code, _, err = cli("-q", "run", base, *QUICK, "--force")
    assert code == 0, err


# --------------------------------------------------------------------------------------------------
# magnitudes and in-range values
# --------------------------------------------------------------------------------------------------

MAGNITUDE_CASES = {
    "arrivals 1e15": ("external.in_persons_per_year=1e15", ("external.in_persons_per_year", "<=")),
    "control total 1e15": ("external.control_total.2030=1e15", ("external.control_total.2030", "<=")),
    "arrival growth 0.5": ("external.in_growth=0.5", ("external.in_growth", "<= 0.2")),
    "households per agent 0.5": ("run.households_per_agent=0.5", ("run.households_per_agent", ">= 1")),
    "agent rows over the limit": ("run.households_per_agent=1", ("agent rows",)),
    "household size cap 2 (was IndexError)": ("population.max_household_size=2", ("population.max_household_size",)),
    "household size 1 (no adults to go round)": ("population.household_size=1.0", ("population.household_size", "adults")),
    "mortality slope 0.3 (age draw was NaN)": ("demography.mortality_gompertz_b=0.3", ("demography.mortality_gompertz_b",)),
    "labour share 0 (zero wages, log 0 in the income terms)": ("economy.labour_share=0", ("economy.labour_share", ">= 0.05")),
    "skill premium 0": ("economy.skill_wage_premium=[0.0, 1.0, 1.6]", ("economy.skill_wage_premium", ">= 0.05")),
    "regional GDP 0 (zero wages there)": ("economy.gdp_per_capita_by_region.southeast_eco=0",
                                          ("economy.gdp_per_capita_by_region", ">= 1")),
    "carrying capacity 0 (was ZeroDivisionError)": ("behaviour.carrying_capacity.northeast_eco=0",
                                                    ("behaviour.carrying_capacity", ">= 0.01")),
    "district GDP year without data": ("economy.district_gdp_year=852", ("economy.district_gdp_year", "852")),
}


@pytest.mark.parametrize("case", MAGNITUDE_CASES, ids=str)
def test_magnitude_or_combination_refused(refused, case):
    item, culprits = MAGNITUDE_CASES[case]
    extra = ("--set", "external.in_persons_per_year=1e7") if "agent rows" in culprits else ()
    refused("run", BASE, "--set", item, *extra, culprits=culprits)


@pytest.mark.parametrize("item", ["population.max_household_size=3", "population.household_size=1.3",
                                  "demography.mortality_gompertz_b=0.12", "external.in_growth=-0.2"])
def test_in_range_edge_values_simulate(item):
    from migration_abm.config import load_config
    from migration_abm.model import simulate

    cfg = load_config(BASE, ["run.households_per_agent=2000", "run.end_year=2022", item])
    res = simulate(cfg, 1, progress=False)
    assert np.isfinite(res.arrays["population"]).all() and res.arrays["population"].sum() > 0


def test_explosive_trajectory_warns_one_line(cli, tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("run", str(BASE), "--replicates", "1", "--set", "run.households_per_agent=2000", "--set", "run.end_year=2024",
                       "--set", "external.in_persons_per_year=1e7", "--set", "external.in_growth=0.2")
    warned = [r for r in caplog.records if "implausible trajectory" in r.getMessage()]
    assert code == 0, err
    assert len(warned) == 1 and warned[0].levelno == logging.WARNING and "city population" in warned[0].getMessage()
    assert "\n" not in warned[0].getMessage()


def test_an_override_of_a_posterior_column_wins_over_the_draw(tmp_path):
    """`run --set K=V` with K also drawn from run.posterior: every replicate keeps V (the draw supplies
    the other columns only)."""
    import numpy as np

    from migration_abm.config import load_config
    from migration_abm.ensemble import posterior_config

    post = tmp_path / "post.csv"
    post.write_text("generation,particle,weight,external.in_growth,behaviour.beta_stay\n0,0,1.0,0.01,0.5\n",
                    encoding="utf-8")
    cfg = load_config(BASE, [f'run.posterior="{post.as_posix()}"', "external.in_growth=0.1"])
    ss = np.random.SeedSequence(1)
    drawn = posterior_config(cfg, ss)
    kept = posterior_config(cfg, ss, fixed=("external.in_growth",))
    assert drawn.external.in_growth == 0.01 and drawn.behaviour.beta_stay == 0.5
    assert kept.external.in_growth == 0.1 and kept.behaviour.beta_stay == 0.5


def _results(pop: np.ndarray):
    from migration_abm.results import Results

    return Results(years=np.arange(2020, 2020 + len(pop)), codes=np.array(["a", "b"]), regions=np.array(["core", "core"]),
                   arrays={"population": np.asarray(pop, float)}, dims={"population": ("year", "district")})


@pytest.mark.parametrize("pop, expect", [
    ([[100, 100], [110, 95], [120, 90]], []),
    ([[100, 100], [250, 200], [400, 300]], ["city population"]),
    ([[100, 100], [60, 40], [40, 20]], ["city population"]),
    ([[100, 100], [190, 5], [190, 5]], ["1 district(s)", "(b)"]),
])
def test_implausible_findings(pop, expect):
    from migration_abm.checks import implausible

    found = " ".join(implausible(_results(np.array(pop))))
    assert all(e in found for e in expect) and (found == "") == (not expect)


# --------------------------------------------------------------------------------------------------
# --set on sweep is reported as --set; did you mean
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("item, culprits", [
    ("behaviour.beta_incom=2", ("--set: behaviour.beta_incom = 2", "did you mean 'beta_income'")),
    ("policy.hukou.apply_rate=7", ("--set: policy.hukou.apply_rate = 7", "<= 1.0")),
    ("run.seed=3", ("--set: run.seed = 3", "not allowed")),
])
def test_sweep_bad_set_is_labelled_set(refused, item, culprits):
    refused("sweep", REPO / "experiments" / "hukou_job_matching.toml", "--set", item, culprits=culprits)


@pytest.mark.parametrize("argv, hint", [
    (("rn", "x"), "did you mean 'run'?"),
    (("site", "--demand", "d.csv", "--facility", "hospitl"), "did you mean 'hospital'?"),
])
def test_cli_choices_suggest(cli, argv, hint):
    code, _, err = cli(*argv)
    assert code == 2 and hint in err


# --------------------------------------------------------------------------------------------------
# fuzzing the readers: seeded mutations of the packaged config and district table
# --------------------------------------------------------------------------------------------------

TOKENS = ["", "0", "-1", "1e308", "1e15", "nan", "inf", "-inf", "true", '"x"', "[]", "[1, 2]", "{}", "{a = 1}",
          '""', "2", "3.5", "-0.0", "999999999999", '"chongqing"', '"none"', '"."', '"/"']


def _mutate_toml(rng: random.Random, text: str) -> str:
    lines = text.splitlines()
    for _ in range(rng.randint(1, 4)):
        i, op = rng.randrange(len(lines)), rng.random()
        if op < 0.5 and " = " in lines[i]:
            lines[i] = f"{lines[i].split(' = ')[0]} = {rng.choice(TOKENS)}"
        elif op < 0.6:
            del lines[i]
        elif op < 0.7:
            lines.insert(i, lines[rng.randrange(len(lines))])
        elif op < 0.8:
            lines[i] = lines[i][: rng.randrange(len(lines[i]) + 1)]
        elif op < 0.9:
            j = rng.randrange(len(lines[i]) + 1)
            lines[i] = lines[i][:j] + rng.choice("[]={}\"'.,#\\é") + lines[i][j:]
        else:
            lines.insert(i, f"[{rng.choice(['run', 'data', 'siting', 'external', 'policy.hukou', 'x'])}]")
    return "\n".join(lines) + "\n"


CELLS = ["", "0", "-5", "abc", "1e20", "inf", "nan", "NA", "core", "x", "500101", '"', "1,2", "é", "0.0"]


def _mutate_csv(rng: random.Random, text: str) -> str:
    rows = text.splitlines()
    for _ in range(rng.randint(1, 4)):
        i, op = rng.randrange(len(rows)), rng.random()
        cells = rows[i].split(",")
        if op < 0.6:
            cells[rng.randrange(len(cells))] = rng.choice(CELLS)
            rows[i] = ",".join(cells)
        elif op < 0.7 and len(rows) > 1:
            del rows[i]
        elif op < 0.8:
            rows.insert(i, rows[rng.randrange(len(rows))])
        elif op < 0.9:
            rows[i] = rows[i][: rng.randrange(len(rows[i]) + 1)]
        else:
            del cells[rng.randrange(len(cells))]
            rows[i] = ",".join(cells)
    return "\n".join(rows) + "\n"


@pytest.mark.parametrize("seed", range(4))
def test_fuzz_config_reader(tmp_path, seed):
    from migration_abm.config import load_config

    rng, text, path = random.Random(seed), BASE.read_text(encoding="utf-8"), tmp_path / "c.toml"
    for _ in range(50):
        path.write_text(_mutate_toml(rng, text), encoding="utf-8")
        try:
            load_config(path)
        except InputError:
            continue


@pytest.mark.parametrize("name", ["hukou_job_matching.toml", "sensitivity_sobol.toml"])
def test_fuzz_experiment_reader(tmp_path, name):
    from migration_abm.experiments.spec import Experiment

    rng, path = random.Random(name), tmp_path / name
    text = (REPO / "experiments" / name).read_text(encoding="utf-8").replace('"../configs/', f'"{REPO.as_posix()}/configs/')
    for _ in range(30):
        path.write_text(_mutate_toml(rng, text), encoding="utf-8")
        try:
            Experiment.from_toml(path).design_points()
        except InputError:
            continue


@pytest.mark.parametrize("seed", range(4))
def test_fuzz_district_table_reader(tmp_path, seed):
    from migration_abm.geography import Geography

    rng, text, path = random.Random(seed), data_path("chongqing_districts.csv").read_text(encoding="utf-8"), tmp_path / "d.csv"
    for _ in range(50):
        path.write_text(_mutate_csv(rng, text), encoding="utf-8")
        try:
            geo = Geography.load(path)
        except InputError:
            continue
        assert np.isfinite(geo.distance_km).all() and len(geo.region_index) == geo.n


def _config_leaves() -> list[tuple[str, Any, Any]]:
    """Every user-set field of the config (not ``run.*`` or internal ones): (key, type, dataclass field)."""
    import dataclasses
    import typing

    from migration_abm.config import Config

    def walk(cls: type, prefix: str = "") -> list:
        out, hints = [], typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            tp = hints[f.name]
            if dataclasses.is_dataclass(tp):
                out += walk(tp, prefix + f.name + ".")
            elif not f.metadata.get("internal") and (prefix + f.name).split(".")[0] != "run":
                out.append((prefix + f.name, tp, f))
        return out

    return walk(Config)


def _numeric_fields() -> list[tuple[str, type, float | None, float | None]]:
    return [(key, tp, f.metadata.get("min") if tp is not bool else None, f.metadata.get("max") if tp is not bool else None)
            for key, tp, f in _config_leaves() if tp in (int, float, bool)]


def _container_bound_overrides() -> list[str]:
    """``--set`` items putting one entry of a numeric dict or list field at its lower or upper bound."""
    import dataclasses
    import typing

    items = []
    for key, tp, f in _config_leaves():
        kind = typing.get_origin(tp)
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        values = list(default.values()) if kind is dict else default if kind is list else None
        if not values or not all(isinstance(v, (int, float)) for v in values):
            continue
        for bound in (f.metadata.get("min"), f.metadata.get("max")):
            if bound is None:
                continue
            if kind is dict:
                items += [f"{key}.{k}={float(bound)!r}" for k in default]
            else:
                items += [f"{key}=[{', '.join(repr(float(bound) if j == i else float(v)) for j, v in enumerate(values))}]"
                          for i in range(len(values))]
    return items


def _simulates_or_is_refused(sets: list[str]) -> bool:
    """A short run of BASE with ``sets``: True if it simulates to finite populations, False if the config or
    the set-up refuses it in one line (anything else fails the calling test)."""
    from migration_abm.config import load_config
    from migration_abm.model import simulate

    try:
        cfg = load_config(BASE, ["run.households_per_agent=2000", "run.end_year=2022", *sets])
    except InputError:
        return False
    try:
        res = simulate(cfg, 1, progress=False)
    except InputError as e:
        assert "\n" not in str(e) and e.field, sets
        return False
    assert np.isfinite(res.arrays["population"]).all(), sets
    return True


def _in_range_runs(seed: int, n: int, k: int) -> None:
    """``n`` short runs, each with ``k`` fields set to a bound or a uniform draw inside their range: every
    one either is refused as a one-line ConfigError (by the config, or at set-up where only the combination
    can be checked, e.g. a Makeham term above the observed death rate) or simulates without an exception;
    most simulate."""
    rng, fields = random.Random(seed), _numeric_fields()
    simulated = 0
    for _ in range(n):
        sets = []
        for key, tp, lo, hi in rng.sample(fields, k):
            if tp is bool:
                sets.append(f"{key}={rng.choice(['true', 'false'])}")
                continue
            lo2 = -1e3 if lo is None else lo
            hi2 = max(lo2 * 10, 1e4) if hi is None else hi
            v = rng.choice([lo2, hi2, rng.uniform(lo2, hi2)])
            sets.append(f"{key}={int(round(v)) if tp is int else float(v)!r}")
        simulated += _simulates_or_is_refused(sets)
    assert simulated >= n // 2, f"only {simulated} of {n} in-range configs simulated"


@pytest.mark.filterwarnings("error::RuntimeWarning")  # a log of 0 or 0/0 is a silent bad value, not a result
def test_every_bound_of_region_and_list_fields_simulates_or_is_refused():
    """Each entry of a numeric dict or list field (regional shares, capacities, premiums) at each bound of
    its range: refused in one line (by the config or at set-up), or simulated to finite populations without
    a numpy warning."""
    items = _container_bound_overrides()
    assert any(i.startswith("behaviour.carrying_capacity.") for i in items) and any("[" in i for i in items)
    for item in items:
        _simulates_or_is_refused([item])


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_fuzz_in_range_values_simulate():
    _in_range_runs(seed=11, n=8, k=4)


@pytest.mark.slow
@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_fuzz_in_range_values_simulate_many():
    _in_range_runs(seed=12, n=300, k=6)
