"""The HiGHS wrapper keeps the licence banner off stdout."""

from __future__ import annotations

import pytest


def test_highs_banner_suppressed(capfd: pytest.CaptureFixture[str]) -> None:
    from migration_abm.siting._highs import new_highs

    new_highs()
    new_highs()
    assert capfd.readouterr().out == ""
