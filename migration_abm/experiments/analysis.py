"""Reading a sweep store: tidy DataFrames (parameters as columns), summaries across replicates, Sobol
indices, an xarray view. Runs still in the store's journal (a sweep running or killed) are included."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from migration_abm.errors import InputError
from migration_abm.experiments.sensitivity import sobol_indices, sobol_second_order
from migration_abm.experiments.store import open_read, overlay_status, read_journal
from migration_abm.experiments.worker import DONE, FAILED, STATUS_NAMES
from migration_abm.geography import REGIONS


def _s(a: np.ndarray) -> np.ndarray:
    return a.astype(str) if a.dtype.kind == "S" else a


@dataclass
class Sweep:
    """A sweep store opened for analysis (arrays are read lazily, one output at a time)."""

    path: Path
    attrs: dict[str, Any]
    years: np.ndarray
    codes: np.ndarray
    regions: np.ndarray
    scenarios: list[str]
    parameters: list[str]
    outputs: list[str]
    values: np.ndarray
    scenario_index: np.ndarray
    block: np.ndarray
    sample: np.ndarray
    status: np.ndarray
    _cache: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def n_points(self) -> int:
        return int(self.status.shape[0])

    @property
    def n_replicates(self) -> int:
        return int(self.status.shape[1])

    @property
    def experiment(self) -> dict[str, Any]:
        """The stored experiment description (design, parameters, seeds, outputs...)."""
        return json.loads(str(self.attrs["experiment_json"]))

    # ---- tables ------------------------------------------------------------------------------
    @cached_property
    def points(self) -> pd.DataFrame:
        """One row per design point: scenario name, parameter values (and Sobol block / sample)."""
        df = pd.DataFrame(self.values, columns=self.parameters, index=pd.RangeIndex(self.n_points, name="point"))
        df.insert(0, "scenario", np.asarray(self.scenarios, dtype=object)[self.scenario_index])
        if self.attrs.get("design") == "sobol":
            df["block"], df["sample"] = self.block, self.sample
        return df

    @cached_property
    def runs(self) -> pd.DataFrame:
        """One row per run: point, replicate, status ('pending' / 'done' / 'failed'), parameters."""
        p, r = np.meshgrid(np.arange(self.n_points), np.arange(self.n_replicates), indexing="ij")
        df = pd.DataFrame({"point": p.ravel(), "replicate": r.ravel(),
                           "status": [STATUS_NAMES[int(c)] for c in self.status.ravel()]})
        return df.join(self.points, on="point")

    def failures(self) -> pd.DataFrame:
        """Failed runs with their tracebacks."""
        with open_read(self.path) as f:
            tb = f["status/traceback"][()].astype(object)
        for o in read_journal(self.path):
            tb[o.point, o.replicate] = o.traceback.encode("utf-8")
        df = self.runs[self.runs["status"] == "failed"].copy()
        df["traceback"] = [tb[p, r].decode("utf-8", "replace") for p, r in zip(df["point"], df["replicate"], strict=True)]
        return df

    # ---- arrays ------------------------------------------------------------------------------
    def array(self, output: str) -> np.ndarray:
        """[point, replicate, year, district] float64; NaN where a run is pending or failed."""
        if output not in self.outputs:
            raise InputError(str(self.path), "output", output, f"not stored; have {', '.join(self.outputs)}")
        if output not in self._cache:
            with open_read(self.path) as f:
                try:
                    arr = f["outputs"][output][()]
                except (KeyError, OSError) as exc:
                    raise InputError(str(self.path), f"outputs/{output}", output,
                                     f"series missing or damaged in the store ({exc})") from None
            for o in read_journal(self.path):
                arr[o.point, o.replicate] = o.arrays[output] if o.status == DONE else np.nan
            self._cache[output] = arr
        return self._cache[output]

    def region_array(self, output: str) -> np.ndarray:
        """[point, replicate, year, region] summed over the districts of each region (REGIONS order)."""
        arr = self.array(output)
        return np.stack([arr[..., self.regions == reg].sum(axis=-1) for reg in REGIONS], axis=-1)

    def _level(self, output: str, level: str) -> tuple[np.ndarray, np.ndarray, str]:
        if level == "region":
            return self.region_array(output), np.array(REGIONS), "region"
        if level == "district":
            return self.array(output), self.codes, "district"
        if level == "city":
            return self.array(output).sum(axis=-1, keepdims=True), np.array(["city"]), "area"
        raise InputError(str(self.path), "level", level, "use region, district or city")

    def tidy(self, level: str = "region", outputs: list[str] | None = None, include_incomplete: bool = False) -> pd.DataFrame:
        """Long table: one row per run × year × region (or district, with its name / city), outputs (persons)
        and parameters as columns."""
        outputs = outputs or self.outputs
        mask = np.ones_like(self.status, bool) if include_incomplete else self.status == DONE
        pi, ri = np.nonzero(mask)
        cols: dict[str, Any] = {}
        labels = None
        for o in outputs:
            arr, labels, col = self._level(o, level)
            cols[o] = arr[pi, ri].reshape(-1)
        n_y, n_a = len(self.years), len(labels)
        df = pd.DataFrame({"point": np.repeat(pi, n_y * n_a), "replicate": np.repeat(ri, n_y * n_a),
                           "year": np.tile(np.repeat(self.years, n_a), len(pi)),
                           col: np.tile(labels, len(pi) * n_y), **cols})
        if level == "district":
            df.insert(4, "district_name", np.tile(self.district_names(), len(pi) * n_y))
        return df.join(self.points, on="point")

    def summary(self, level: str = "region", outputs: list[str] | None = None,
                quantiles: tuple[float, ...] = (0.05, 0.5, 0.95)) -> pd.DataFrame:
        """Statistics across replicates per point × year × area: n, mean, std and quantiles of each output."""
        df = self.tidy(level, outputs)
        area = {"region": "region", "district": "district", "city": "area"}[level]
        keys = ["point", "year", area]
        g = df.groupby(keys, sort=True)[outputs or self.outputs]
        parts = {"n": g.count(), "mean": g.mean(), "std": g.std()}
        for q in quantiles:
            parts[f"q{round(q * 100):02d}"] = g.quantile(q)
        out = pd.concat(parts, axis=1)
        out.columns = [f"{o}_{stat}" for stat, o in out.columns]
        out = out.reset_index()
        if level == "district":
            out.insert(3, "district_name", out["district"].map(dict(zip(self.codes, self.district_names(),
                                                                       strict=True))))
        return out.join(self.points, on="point")

    def final_table(self, output: str | None = None, max_rows: int = 12) -> str:
        """A short Markdown table for the end of a sweep: per design point, runs done / failed and the
        final-year city total of ``output`` (default the first output), median [5 %, 95 %] in persons."""
        from migration_abm.reporting import markdown_table

        output = output or self.outputs[0]
        total = self.array(output)[:, :, -1].sum(axis=-1)  # [point, replicate]; NaN where not done
        df = self.points.drop(columns=[c for c in ("block", "sample") if c in self.points]).head(max_rows).copy()
        stats = []
        for p in df.index:
            ok = total[p][self.status[p] == DONE]
            stats.append(f"{np.median(ok):,.0f} [{np.quantile(ok, 0.05):,.0f}, {np.quantile(ok, 0.95):,.0f}]"
                         if ok.size else "–")
        df["done"] = (self.status[df.index] == DONE).sum(axis=1)
        df["failed"] = (self.status[df.index] == FAILED).sum(axis=1)
        df[f"{output} {int(self.years[-1])}, persons: median [5 %, 95 %]"] = stats
        text = markdown_table(df.map(lambda v: f"{v:g}" if isinstance(v, float) else v))
        if self.n_points > max_rows:
            text += f"\n({self.n_points - max_rows} more points: `load_sweep(path).summary()`)"
        return text

    # ---- sensitivity -------------------------------------------------------------------------
    def sobol(self, output: str = "population", year: int | None = None, area: str | None = None,
              n_bootstrap: int = 500, confidence: float = 0.95, second_order: bool = False) -> pd.DataFrame:
        """Sobol indices (SALib) of ``output`` in ``year`` (default last) for a region / district code
        (default the whole city), averaged over replicates. Needs a ``design = "sobol"`` sweep with every
        run done. First and total order by default; ``second_order=True`` gives the pairwise S2 table
        (the design must hold the BA blocks, see :func:`~migration_abm.experiments.sensitivity.saltelli_unit`)."""
        if self.attrs.get("design") != "sobol":
            raise InputError(str(self.path), "design", self.attrs.get("design"), "Sobol indices need a sobol design")
        if len(self.scenarios) != 1:
            raise InputError(str(self.path), "scenarios", self.scenarios, "Sobol indices need a single scenario")
        if not (self.status == DONE).all():
            raise InputError(str(self.path), "status", int((self.status != DONE).sum()),
                             "runs pending or failed; finish (--resume) before computing indices")
        k = len(self.parameters)
        blocks = int(self.block.max()) + 1
        if second_order and blocks != 2 * k + 2:
            raise InputError(str(self.path), "design/block", blocks, f"second-order indices need {2 * k + 2} "
                             f"Saltelli blocks (A, B, AB_i, BA_i); this design has {blocks}")
        t = int(np.flatnonzero(self.years == (year if year is not None else self.years[-1]))[0])
        if area is None:
            y = self.array(output)[:, :, t].sum(axis=-1)
        elif area in REGIONS:
            y = self.region_array(output)[:, :, t, REGIONS.index(area)]
        else:
            y = self.array(output)[:, :, t, list(self.codes).index(area)]
        if second_order:
            return sobol_second_order(y.mean(axis=1), k, self.parameters, n_bootstrap, confidence)
        return sobol_indices(y.mean(axis=1), k, self.parameters, n_bootstrap, confidence,
                             second_order=blocks == 2 * k + 2)

    def config_tomls(self) -> list[str]:
        """The resolved base config of each scenario (TOML text), in :attr:`scenarios` order."""
        with open_read(self.path) as f:
            return [t.decode() if isinstance(t, bytes) else str(t) for t in f["scenarios/config_toml"][()]]

    def district_names(self) -> np.ndarray:
        """English district names beside :attr:`codes`, from the district table of the stored config."""
        import tomllib

        from migration_abm.geography import load_districts

        regions = tomllib.loads(self.config_tomls()[0]).get("data", {}).get("regions", "chongqing")
        table = load_districts(None if regions == "chongqing" else regions).set_index("code")
        return table["name_en"].reindex(self.codes).fillna("").to_numpy(str)

    # ---- interoperability --------------------------------------------------------------------
    def to_xarray(self, outputs: list[str] | None = None) -> Any:
        """An ``xarray.Dataset``: each output as (point, replicate, year, district) in persons, with
        coordinates year, district code and name, region, scenario and parameter values per point, status."""
        import xarray as xr

        names = self.district_names()
        data = {o: (("point", "replicate", "year", "district"), self.array(o), {"units": "persons"})
                for o in outputs or self.outputs}
        coords: dict[str, Any] = {
            "point": np.arange(self.n_points), "replicate": np.arange(self.n_replicates), "year": self.years,
            "district": self.codes, "district_name": ("district", names), "region": ("district", self.regions),
            "scenario": ("point", np.asarray(self.scenarios, dtype=object)[self.scenario_index].astype(str)),
            "status": (("point", "replicate"), np.array([STATUS_NAMES[int(c)] for c in self.status.ravel()])
                       .reshape(self.status.shape))}
        for j, p in enumerate(self.parameters):
            coords[p] = ("point", self.values[:, j])
        return xr.Dataset(data, coords=coords, attrs={"source": str(self.path), "name": str(self.attrs.get("name")),
                                                      "design": str(self.attrs.get("design"))})


def load_sweep(path: str | Path) -> Sweep:
    """Open a sweep store for analysis (also works on a store that is still being written)."""
    path = Path(path)
    with open_read(path) as f:
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
        try:
            return _sweep(path, f, attrs)
        except (KeyError, OSError) as exc:
            raise InputError(str(path), "store", str(path), f"incomplete or damaged sweep store ({exc})") from None


def _sweep(path: Path, f: Any, attrs: dict[str, Any]) -> Sweep:
    c = f["coords"]
    return Sweep(path=path, attrs=attrs, years=c["year"][()], codes=_s(c["district"][()]),
                 regions=_s(c["region"][()]), scenarios=list(_s(c["scenario"][()])),
                 parameters=list(_s(c["parameter"][()])), outputs=list(_s(c["output"][()])),
                 values=f["design/values"][()], scenario_index=f["design/scenario"][()],
                 block=f["design/block"][()], sample=f["design/sample"][()],
                 status=overlay_status(path, f["status/code"][()]))
