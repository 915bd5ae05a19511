"""Fixtures: a small fake model-results object honouring the Results contract the siting code uses."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from migration_abm.geography import load_districts


class FakeResults:
    """Years, codes, population_by_district(), age_structure(year), urban_share(year) — nothing else."""

    def __init__(self, codes: list[str], growth: dict[str, float], years=(2020, 2025, 2030), seed: int = 0) -> None:
        table = load_districts().set_index("code")
        self.years = np.asarray(years, dtype=int)
        self.codes = np.asarray(codes, dtype=str)
        rng = np.random.default_rng(seed)
        base = table.loc[codes, "pop_2010"].to_numpy(float)
        self._pop = {}
        for t, y in enumerate(self.years):
            f = np.array([(1 + growth.get(c, 0.0)) ** t for c in codes])
            self._pop[int(y)] = base * f
        prof = np.exp(-np.arange(101) / 45.0)
        self._profile = prof / prof.sum()
        self._urban = {int(y): pd.Series(np.clip(rng.uniform(0.4, 0.9, len(codes)) + 0.02 * t, 0, 1), index=codes)
                       for t, y in enumerate(self.years)}
        self._urban[int(self.years[-1])].iloc[0] = np.nan  # exercise the default share

    def population_by_district(self) -> pd.DataFrame:
        return pd.DataFrame([self._pop[int(y)] for y in self.years], index=pd.Index(self.years, name="year"),
                            columns=pd.Index(self.codes, name="district"))

    def age_structure(self, year: int) -> pd.DataFrame:
        return pd.DataFrame(np.outer(self._pop[int(year)], self._profile), index=pd.Index(self.codes),
                            columns=list(range(101)))

    def urban_share(self, year: int) -> pd.Series:
        return self._urban[int(year)].copy()


@pytest.fixture
def fake_results() -> FakeResults:
    # Yubei and Jiangbei (expansion; Yubei growing fast) plus Yuzhong (core, hilly circuity)
    return FakeResults(["500112", "500105", "500103"], {"500112": 0.25, "500105": 0.05, "500103": -0.02})
