"""CLI: --help for every subcommand, exit codes (0 ok, 2 bad input), one-line error messages."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import pytest

from migration_abm.cli import build_parser

REPO = Path(__file__).resolve().parents[1]


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every (nested) subcommand path of the parser, e.g. ("config", "show")."""
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out.append(prefix + (name,))
                out += _commands(sub, prefix + (name,))
    return out


def _all_commands() -> list[tuple[str, ...]]:
    try:
        return _commands(build_parser())
    except Exception:  # noqa: BLE001 - reported by test_parser_builds; keep the core commands collectable
        return [("info",), ("config",), ("config", "show"), ("run",)]


COMMANDS = _all_commands()


def test_parser_builds():
    build_parser()  # every registered subsystem's add_parsers must work


def test_core_commands_present():
    assert {("info",), ("config",), ("config", "show"), ("run",)} <= set(COMMANDS)


@pytest.mark.parametrize("command", [()] + COMMANDS, ids=lambda c: " ".join(c) or "top")
def test_help(cli, command):
    code, out, err = cli(*command, "--help")
    assert code == 0, err
    assert out.startswith("usage: migration-abm") and " ".join(command) in out.splitlines()[0]


def test_no_command_is_usage_error(cli):
    code, _, err = cli()
    assert code == 2 and "usage:" in err
    code, _, err = cli("no-such-command")
    assert code == 2 and "invalid choice" in err


def test_config_show_ok(cli):
    code, out, err = cli("config", "show", str(REPO / "configs" / "baseline.toml"))
    assert code == 0, err
    assert "[run]" in out and "[policy.hukou]" in out and err == ""


@pytest.mark.parametrize("item, key", [
    ("run.seed=abc", "run.seed"),
    ("policy.job_matching.coverage=1.5", "policy.job_matching.coverage"),
    ("behaviour.nope=1", "behaviour.nope"),
    ("novalue", "novalue"),
])
def test_bad_set_exit_2(cli, item, key):
    code, out, err = cli("config", "show", str(REPO / "configs" / "baseline.toml"), "--set", item)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("migration-abm: error: --set: ") and key in lines[0]


def test_missing_config_exit_2(cli, tmp_path):
    path = tmp_path / "missing.toml"
    for argv in (("config", "show", str(path)), ("-q", "run", str(path))):
        code, _, err = cli(*argv)
        assert code == 2, argv
        assert str(path) in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("extra, word", [
    (("--seed", "-1"), "--seed"),
    (("--out", "result.txt"), "--out"),
    (("--set", "run.end_year=2000"), "run.end_year"),
])
def test_run_bad_flags_exit_2_before_simulating(cli, tmp_path, monkeypatch, extra, word):
    # ``simulate`` must not be reached: replace it with something that would fail loudly
    import migration_abm.model as model

    monkeypatch.setattr(model, "simulate", lambda *a, **k: pytest.fail("simulate called on bad input"))
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("run", str(REPO / "configs" / "baseline.toml"), *extra)
    assert code == 2 and word in err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_bad_input_message_is_exactly_one_line(cli):
    code, out, err = cli("config", "show", str(REPO / "configs" / "baseline.toml"), "--set", "policy.hukou.enabled=1")
    assert code == 2 and out == ""
    assert err == "migration-abm: error: --set: policy.hukou.enabled = 1: must be true or false\n"


def test_internal_error_exit_1(cli, monkeypatch):
    import migration_abm.geography as geography

    def broken(*a, **k):
        raise RuntimeError("bug")

    monkeypatch.setattr(geography.Geography, "load", classmethod(lambda cls, *a, **k: broken()))
    code, _, err = cli("info")
    assert code == 1 and "internal error: RuntimeError: bug" in err


def _subparser(path: tuple[str, ...]) -> argparse.ArgumentParser:
    p = build_parser()
    for name in path:
        p = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
    return p


@pytest.mark.parametrize("command", [()] + COMMANDS, ids=lambda c: " ".join(c) or "top")
def test_help_is_plain_text_and_every_option_documented(cli, command):
    code, out, _ = cli(*command, "--help")
    assert code == 0 and "``" not in out and ":class:" not in out and "wired in" not in out
    undocumented = [a.option_strings for a in _subparser(command)._actions if a.option_strings and not a.help]
    assert undocumented == []


def test_worker_defaults_agree():
    helps = {name: next(a.help for a in _subparser((name,))._actions if "--workers" in a.option_strings)
             for name in ("sweep", "calibrate")}
    assert helps["calibrate"].startswith(helps["sweep"]) and "all cores" in helps["sweep"]


@pytest.mark.parametrize("flags, level", [((), logging.WARNING), (("-v",), logging.INFO), (("-q",), logging.ERROR)])
def test_log_levels_and_quiet_dask(cli, monkeypatch, flags, level):
    seen = {}
    monkeypatch.setattr(logging, "basicConfig", lambda **kw: seen.update(kw))
    code, _, err = cli(*flags, "config", "show", str(REPO / "configs" / "baseline.toml"))
    assert code == 0, err
    assert seen["level"] == level
    assert os.environ["DASK_LOGGING__DISTRIBUTED"] == ("info" if flags == ("-v",) else "warning")


def test_unknown_set_key_suggests(cli):
    code, _, err = cli("config", "show", str(REPO / "configs" / "baseline.toml"), "--set", "behaviour.beta_stya=1")
    assert code == 2 and "did you mean 'beta_stay'?" in err


def test_site_model_choices_are_the_registry(cli):
    from migration_abm.siting import registry

    code, out, _ = cli("site", "--help")
    assert code == 0 and all(name in out for name in registry.names())
