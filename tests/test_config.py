"""Scenario config: validation errors name file, dotted key and value; ``extends``; ``--set``; TOML round-trip."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from migration_abm.config import Config, from_toml_text, load_config
from migration_abm.errors import ConfigError, InputError
from migration_abm.geography import REGIONS, load_districts

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs").glob("*.toml"))
EXE = Path(sys.executable).with_name("migration-abm")


def _assert_names(err: InputError | str, source: str, key: str, value: str) -> None:
    text = str(err)
    assert "\n" not in text.strip(), f"message must be one line: {text!r}"
    assert source in text and key in text and value in text, text


# --------------------------------------------------------------------------------------------------
# bad configs written as TOML files: (file text, dotted key, rendered bad value, words of the reason)
# --------------------------------------------------------------------------------------------------

BAD = {
    "unknown_top": ("foo = 1\n", "foo", "1", "unknown key"),
    "unknown_run": ("[run]\nfoo = 1\n", "run.foo", "1", "unknown key"),
    "unknown_nested": ("[policy.hukou.expansion]\nmin_yrs = 3\n", "policy.hukou.expansion.min_yrs", "3",
                       "unknown key"),
    "unknown_table": ("[polcy.hukou]\nenabled = true\n", "polcy", "enabled", "unknown key"),
    "seed_str": ('[run]\nseed = "x"\n', "run.seed", "'x'", "integer"),
    "seed_float": ("[run]\nseed = 1.5\n", "run.seed", "1.5", "integer"),
    "seed_negative": ("[run]\nseed = -1\n", "run.seed", "-1", ">= 0"),
    "bool_int": ("[policy.hukou]\nenabled = 1\n", "policy.hukou.enabled", "1", "true or false"),
    "float_bool": ("[behaviour]\nreturn_rate = true\n", "behaviour.return_rate", "True", "number"),
    "str_number": ("[data]\ncircuity = \"1.2\"\n", "data.circuity", "'1.2'", "number"),
    "table_scalar": ("[policy]\nhukou = 3\n", "policy.hukou", "3", "table"),
    "negative_rate": ("[behaviour]\nreturn_rate = -0.1\n", "behaviour.return_rate", "-0.1", ">= 0"),
    "prob_above_1": ("[policy.job_matching]\ncoverage = 1.5\n", "policy.job_matching.coverage", "1.5", "<= 1"),
    "nan": ("[behaviour]\nreturn_rate = nan\n", "behaviour.return_rate", "nan", "finite"),
    "end_before_start": ("[run]\nstart_year = 2010\nend_year = 2005\n", "run.end_year", "2005", "start_year"),
    "reloc_end_before_start": ("[policy.ecological_relocation]\nstart_year = 2015\nend_year = 2014\n",
                               "policy.ecological_relocation.end_year", "2014", "start_year"),
    "unknown_region_urban": ("[population.urban_share]\ncentre = 0.9\n", "population.urban_share.centre", "0.9",
                             "unknown region"),
    "unknown_region_capacity": ("[behaviour.carrying_capacity]\nnorth_eco = 0.8\n",
                                "behaviour.carrying_capacity.north_eco", "0.8", "unknown region"),
    "unknown_region_housing": ("[capacity.housing_growth]\ncore_area = 0.01\n",
                               "capacity.housing_growth.core_area", "0.01", "unknown region"),
    "region_value_range": ("[population.urban_share]\ncore = 1.2\n", "population.urban_share.core", "1.2", "<= 1"),
    "unknown_sector": ("[economy.sector_wage_premium]\nmining = 1.2\n", "economy.sector_wage_premium.mining",
                       "mining", "unknown sector"),
    "control_total_key": ("[external.control_total]\nyear2020 = 3.2e7\n", "external.control_total.year2020",
                          "32000000.0", "year"),
    "skill_premium_len": ("[economy]\nskill_wage_premium = [1.0, 2.0]\n", "economy.skill_wage_premium", "[1.0, 2.0]",
                          "3 values"),
    "age_shares": ("[population]\nshare_0_14 = 0.6\nshare_65_plus = 0.5\n", "population.share_65_plus", "0.5",
                   "< 1"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_config_file_rejected_naming_file_key_value(write_file, case):
    text, key, value, reason = BAD[case]
    path = write_file(f"{case}.toml", text)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    err = exc.value
    assert err.source == str(path.resolve())
    assert err.field == key
    assert reason in err.reason
    _assert_names(err, str(path.resolve()), key, value)


@pytest.mark.parametrize("case", ["unknown_run", "unknown_nested", "seed_str", "bool_int", "negative_rate",
                                  "prob_above_1", "end_before_start", "unknown_region_urban"])
def test_bad_config_file_cli_exit_2_one_line(write_file, cli, case):
    text, key, value, _ = BAD[case]
    path = write_file(f"{case}.toml", text)
    code, out, err = cli("config", "show", str(path))
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    _assert_names(lines[0], str(path.resolve()), key, value)


def test_bad_config_subprocess_exit_2(write_file):
    path = write_file("bad.toml", "[policy.hukou.expansion]\nmin_yrs = 3\n")
    proc = subprocess.run([str(EXE), "config", "show", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    _assert_names(lines[0], str(path.resolve()), "policy.hukou.expansion.min_yrs", "3")


def test_invalid_toml(write_file, cli):
    path = write_file("broken.toml", "[run]\nseed = \n")
    with pytest.raises(ConfigError, match="invalid TOML") as exc:
        load_config(path)
    assert exc.value.source == str(path.resolve())
    code, _, err = cli("config", "show", str(path))
    assert code == 2 and str(path.resolve()) in err and "invalid TOML" in err
    assert len(err.strip().splitlines()) == 1


def test_missing_file(tmp_path, cli):
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="not found") as exc:
        load_config(path)
    assert exc.value.source == str(path.resolve())
    code, _, err = cli("config", "show", str(path))
    assert code == 2 and str(path.resolve()) in err


def test_missing_file_subprocess_exit_2(tmp_path):
    path = tmp_path / "nope.toml"
    proc = subprocess.run([str(EXE), "config", "show", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert str(path.resolve()) in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_siting_table_is_validated_with_district_codes(write_file):
    bad = write_file("s.toml", '[siting.district_circuity]\n"500199" = 1.3\n')
    with pytest.raises(ConfigError) as exc:
        load_config(bad)
    _assert_names(exc.value, str(bad.resolve()), "siting.district_circuity.500199", "500199")
    with pytest.raises(ConfigError, match=r"^--set: siting.walk_speed_kmh"):
        load_config(None, ["siting.walk_speed_kmh=0.1"])
    ok = load_config(None, ["siting.district_circuity.500103=1.5"])
    assert ok.siting["district_circuity"]["500103"] == 1.5


# --------------------------------------------------------------------------------------------------
# provenance: the file that wrote the bad key, through extends and --set
# --------------------------------------------------------------------------------------------------

def test_error_names_child_file_through_extends(write_file):
    parent = write_file("base/parent.toml", "[run]\nseed = 5\n")
    child = write_file("child.toml", 'extends = "base/parent.toml"\n[behaviour]\nreturn_rate = -0.1\n')
    with pytest.raises(ConfigError) as exc:
        load_config(child)
    assert exc.value.source == str(child.resolve())
    assert str(parent.resolve()) not in str(exc.value)


def test_error_names_parent_file_when_parent_is_bad(write_file):
    parent = write_file("base/parent.toml", "[run]\nfoo = 1\n")
    child = write_file("child.toml", 'extends = "base/parent.toml"\n[run]\nseed = 3\n')
    with pytest.raises(ConfigError) as exc:
        load_config(child)
    assert exc.value.source == str(parent.resolve()) and exc.value.field == "run.foo"


def test_child_fixing_parent_value_is_accepted(write_file):
    write_file("parent.toml", "[policy.job_matching]\ncoverage = 1.5\n")
    child = write_file("child.toml", 'extends = "parent.toml"\n[policy.job_matching]\ncoverage = 0.5\n')
    assert load_config(child).policy.job_matching.coverage == 0.5


def test_error_names_set_source(write_file, cli):
    path = write_file("ok.toml", "[run]\nseed = 5\n")
    with pytest.raises(ConfigError) as exc:
        load_config(path, ["policy.job_matching.coverage=1.5"])
    assert exc.value.source == "--set" and exc.value.field == "policy.job_matching.coverage"
    code, out, err = cli("config", "show", str(path), "--set", "policy.hukou.enabled=1")
    assert code == 2 and out == ""
    _assert_names(err.strip(), "--set", "policy.hukou.enabled", "1")
    assert str(path.resolve()) not in err


def test_set_error_on_table_it_created_names_set_not_file(write_file):
    path = write_file("ok.toml", "[run]\nseed = 5\n")
    with pytest.raises(ConfigError) as exc:
        load_config(path, ["polcy.hukou.enabled=true"])
    assert exc.value.source == "--set" and exc.value.field == "polcy"
    with pytest.raises(ConfigError, match="is not a table") as exc:
        load_config(path, ["run.seed.x=3"])  # run.seed is a scalar written by the file
    assert exc.value.source == "--set"


def test_set_fixing_bad_file_value_is_accepted(write_file):
    path = write_file("bad.toml", "[run]\nend_year = 2005\n")
    with pytest.raises(ConfigError):
        load_config(path)
    assert load_config(path, ["run.end_year=2020"]).run.end_year == 2020


def test_end_year_error_names_file_that_set_start_year(write_file):
    # end_year comes from the defaults (2035); the file moved start_year past it
    path = write_file("late.toml", "[run]\nstart_year = 2040\n")
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert exc.value.field == "run.end_year" and exc.value.source == str(path.resolve())


# --------------------------------------------------------------------------------------------------
# extends
# --------------------------------------------------------------------------------------------------

def test_extends_child_overrides_parent_keeps_rest(write_file, tmp_path, monkeypatch):
    write_file("base/grand.toml", """
        [run]
        end_year = 2025
        [external]
        out_rate = 0.02
    """)
    write_file("base/parent.toml", """
        extends = "grand.toml"
        [run]
        seed = 5
        end_year = 2030
        [behaviour]
        return_rate = 0.05
        [population.urban_share]
        expansion = 0.8
    """)
    child = write_file("scen/child.toml", """
        extends = "../base/parent.toml"
        [run]
        seed = 7
        [population.urban_share]
        core = 0.95
    """)
    monkeypatch.chdir(tmp_path.parent)  # cwd unrelated to either file
    cfg = load_config(child)
    assert cfg.run.seed == 7  # child wins
    assert cfg.run.end_year == 2030  # parent wins over grandparent
    assert cfg.external.out_rate == 0.02  # grandparent kept
    assert cfg.behaviour.return_rate == 0.05  # parent kept
    # region dicts merge key by key: child, parent and defaults all present
    assert cfg.population.urban_share["core"] == 0.95
    assert cfg.population.urban_share["expansion"] == 0.8
    assert cfg.population.urban_share["southeast_eco"] == Config().population.urban_share["southeast_eco"]
    assert cfg.run.households_per_agent == Config().run.households_per_agent  # default kept
    assert cfg.source == str(child.resolve())


def test_extends_data_paths_relative_to_naming_file(write_file, tmp_path, monkeypatch):
    write_file("base/parent.toml", '[data]\nregions = "tables/my.csv"\n')
    child = write_file("child.toml", 'extends = "base/parent.toml"\n')
    monkeypatch.chdir(tmp_path.parent)
    cfg = load_config(child)
    assert Path(cfg.data.regions) == (tmp_path / "base" / "tables" / "my.csv").resolve()
    assert cfg.data.boundaries == "chongqing"


def test_extends_missing_parent(write_file, tmp_path):
    child = write_file("child.toml", 'extends = "nowhere.toml"\n')
    with pytest.raises(ConfigError, match="not found") as exc:
        load_config(child)
    assert str((tmp_path / "nowhere.toml").resolve()) in str(exc.value)


def test_extends_not_a_string(write_file):
    child = write_file("child.toml", "extends = 3\n")
    with pytest.raises(ConfigError, match="path string") as exc:
        load_config(child)
    assert exc.value.field == "extends"


@pytest.mark.parametrize("files", [
    {"a.toml": 'extends = "a.toml"\n'},
    {"a.toml": 'extends = "b.toml"\n', "b.toml": 'extends = "a.toml"\n'},
    {"a.toml": 'extends = "sub/b.toml"\n', "sub/b.toml": 'extends = "../c.toml"\n', "c.toml": 'extends = "a.toml"\n'},
])
def test_circular_extends_rejected(write_file, files):
    paths = [write_file(name, text) for name, text in files.items()]
    with pytest.raises(ConfigError, match="circular") as exc:
        load_config(paths[0])
    assert exc.value.field == "extends"


def test_diamond_like_reuse_is_not_circular(write_file):
    write_file("common.toml", "[run]\nseed = 11\n")
    write_file("mid.toml", 'extends = "common.toml"\n')
    child = write_file("child.toml", 'extends = "mid.toml"\n[run]\nend_year = 2020\n')
    cfg = load_config(child)
    assert (cfg.run.seed, cfg.run.end_year) == (11, 2020)


# --------------------------------------------------------------------------------------------------
# --set mechanics and Config.with_overrides
# --------------------------------------------------------------------------------------------------

def test_set_typed_parsing(write_file):
    path = write_file("s.toml", "[run]\nseed = 5\n")
    cfg = load_config(path, [
        "run.seed=42",                              # int
        "behaviour.return_rate=0.05",               # float
        "run.households_per_agent=50",              # int accepted where a float is expected
        "policy.hukou.enabled=false",               # bool
        "data.boundaries=none",                     # bare string
        'data.regions="chongqing"',                 # quoted string
        "policy.hukou.expansion.min_years = 3",     # nested dotted key, spaces around '='
        "economy.core.industry=-0.01",              # negative float in a nested dataclass
        "population.urban_share.core=0.9",          # one key of a region dict
        "external.control_total.2020=32054159",     # dict with year keys
        "economy.skill_wage_premium=[0.5, 1.0, 2.0]",  # list
    ])
    assert cfg.run.seed == 42 and type(cfg.run.seed) is int
    assert cfg.behaviour.return_rate == 0.05
    assert cfg.run.households_per_agent == 50.0 and type(cfg.run.households_per_agent) is float
    assert cfg.policy.hukou.enabled is False
    assert cfg.data.boundaries == "none" and cfg.data.regions == "chongqing"
    assert cfg.policy.hukou.expansion.min_years == 3
    assert cfg.policy.hukou.core.min_years == Config().policy.hukou.core.min_years
    assert cfg.economy.core.industry == -0.01
    assert cfg.population.urban_share["core"] == 0.9
    assert cfg.population.urban_share["expansion"] == Config().population.urban_share["expansion"]
    assert cfg.external.control_total == {"2020": 32054159.0}
    assert cfg.economy.skill_wage_premium == [0.5, 1.0, 2.0]


@pytest.mark.parametrize("item, key, reason", [
    ("run.seed=x", "run.seed", "integer"),
    ("run.seed=3.0", "run.seed", "integer"),
    ("policy.hukou.enabled=True", "policy.hukou.enabled", "true or false"),   # Python spelling is a string
    ("behaviour.return_rate=-0.1", "behaviour.return_rate", ">= 0"),
    ("run.fooo=1", "run.fooo", "unknown key"),
    ("policy.hukou.expansion.min_yrs=3", "policy.hukou.expansion.min_yrs", "unknown key"),
    ("run.seed.x=3", "run.seed", "integer"),                 # tables created by --set are blamed on --set
    ("polcy.hukou.enabled=true", "polcy", "unknown key"),
    ("run.seed", "run.seed", "KEY=VALUE"),
    ("run.end_year=1999", "run.end_year", "start_year"),
])
def test_set_validated_like_files(item, key, reason):
    with pytest.raises(ConfigError) as exc:
        load_config(None, [item])
    assert exc.value.source == "--set" and exc.value.field == key and reason in exc.value.reason


def test_with_overrides_dict_and_list(write_file):
    base = load_config(write_file("s.toml", "[run]\nseed = 5\n"))
    before = base.to_dict()
    a = base.with_overrides({"run.seed": 9, "policy.job_matching.coverage": 0.7})
    b = base.with_overrides(["run.seed=9", "policy.job_matching.coverage=0.7"])
    assert a.to_dict() == b.to_dict()
    assert (a.run.seed, a.policy.job_matching.coverage) == (9, 0.7)
    assert base.to_dict() == before  # the original is not modified
    assert a.source == base.source
    with pytest.raises(ConfigError) as exc:
        base.with_overrides({"policy.job_matching.coverage": 1.5})
    assert exc.value.source == "--set"
    with pytest.raises(ConfigError) as exc:
        base.with_overrides({"run.nope": 1}, source="design point 3")
    assert exc.value.source == "design point 3" and exc.value.field == "run.nope"


def test_load_config_none_equals_defaults():
    assert load_config(None).to_dict() == Config().to_dict()
    assert load_config(None).source == "<defaults>"


# --------------------------------------------------------------------------------------------------
# TOML round-trip and the packaged scenarios
# --------------------------------------------------------------------------------------------------

def test_to_toml_round_trips_with_changes():
    cfg = Config().with_overrides({
        "run.seed": 3, "data.regions": 'C:\\odd "path"\\区县.csv', "external.control_total.2020": 3.2e7,
        "siting": {"budget": 12, "facilities": {"hospital": {"minutes": 25.0}}}, "behaviour.return_rate": 1e-05,
    })
    text = cfg.to_toml()
    back = from_toml_text(text)
    assert back.to_dict() == cfg.to_dict()
    assert back.data.regions == 'C:\\odd "path"\\区县.csv'


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_packaged_configs_load_and_round_trip(path):
    cfg = load_config(path)
    assert from_toml_text(cfg.to_toml()).to_dict() == cfg.to_dict()


def test_packaged_configs_present():
    names = {p.name for p in CONFIGS}
    assert {"baseline.toml", "no_policy.toml"} <= names


def test_config_show_round_trips(cli, write_file):
    base = (REPO / "configs" / "baseline.toml").as_posix()
    path = write_file("s.toml", f'extends = "{base}"\n[run]\nseed = 77\n')
    code, out, err = cli("config", "show", str(path), "--set", "policy.hukou.expansion.min_years=7")
    assert code == 0, err
    assert out.startswith("# resolved from")
    shown = from_toml_text(out)
    expected = load_config(path, ["policy.hukou.expansion.min_years=7"])
    assert shown.to_dict() == expected.to_dict()
    assert shown.run.seed == 77 and shown.policy.hukou.expansion.min_years == 7


# --------------------------------------------------------------------------------------------------
# defaults that cite FACTS.md (see migration_abm/data/DATA.md)
# --------------------------------------------------------------------------------------------------

def test_fact_derived_defaults():
    c = Config()
    assert c.population.household_size == 2.70
    assert c.population.share_0_14 == pytest.approx(489.80 / 2884.6170, abs=5e-5)  # 2010 bulletin 16.98 %
    assert c.population.share_65_plus == pytest.approx(333.41 / 2884.6170, abs=5e-5)  # 11.56 %
    # 2013 survey (FACTS §2); our expansion = the nine main-city districts minus 渝中 (DATA.md)
    main_urban = 490.07 * 0.9436 + 318.46 * 0.7788
    yuzhong = (630090 + 588717) / 2 / 1e4
    assert c.population.urban_share["expansion"] == pytest.approx((main_urban - yuzhong) / (808.53 - yuzhong), abs=5e-5)
    assert {k: v for k, v in c.population.urban_share.items() if k != "expansion"} == {
        "core": 1.0, "new_development": 0.5486, "northeast_eco": 0.4180, "southeast_eco": 0.3464}
    # 2010 GDP by region (亿元, yearbook 2011 t.2-13) / the region's 2010 census population (packaged table)
    gdp = c.economy.gdp_per_capita_by_region
    d = load_districts()
    pop = d.groupby("functional_region")["pop_2010"].sum()
    main_city = 3490.83e8 / (pop["core"] + pop["expansion"])
    assert gdp["core"] == gdp["expansion"] == pytest.approx(main_city, abs=1)
    assert gdp["new_development"] == pytest.approx((6145.32 - 3490.83) * 1e8 / pop["new_development"], abs=1)
    assert gdp["northeast_eco"] == pytest.approx(1347.53e8 / pop["northeast_eco"], abs=1)
    assert gdp["southeast_eco"] == pytest.approx(432.73e8 / pop["southeast_eco"], abs=1)
    assert set(gdp) == set(REGIONS)


def test_district_gdp_year_after_start_is_rejected(write_file):
    """No information from after a run's start enters its inputs: district GDP of 2020 in a 2010 run."""
    with pytest.raises(ConfigError) as exc:
        load_config(write_file("s.toml", "[run]\nstart_year = 2010\n[economy]\ndistrict_gdp_year = 2020\n"))
    assert exc.value.field == "economy.district_gdp_year" and exc.value.value == 2020
    assert load_config(None, {"run.start_year": 2020, "economy.district_gdp_year": 2020}).economy.district_gdp_year == 2020
