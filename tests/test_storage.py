"""Atomic writes and the single-run HDF5 layout (docs/STORAGE.md)."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

from migration_abm import __version__
from migration_abm.config import Config, from_toml_text
from migration_abm.errors import InputError
from migration_abm.results import AGE_BANDS, AGE_MAX, DISTRICT_SERIES, HUKOU_STATUS, Results
from migration_abm.storage import (
    LAYOUT_VERSION,
    atomic_path,
    read_run_file,
    write_run_file,
    write_text_atomic,
)


class Boom(RuntimeError):
    pass


def _listing(folder):
    return sorted(p.name for p in folder.iterdir())


# --------------------------------------------------------------------------------------------------
# atomic_path
# --------------------------------------------------------------------------------------------------

def test_atomic_success_writes_target_only(tmp_path):
    target = tmp_path / "sub" / "out.txt"  # parent created on demand
    with atomic_path(target) as tmp:
        assert tmp != target and tmp.parent == target.parent
        tmp.write_text("new", encoding="utf-8")
        assert not target.exists()  # nothing visible before the block ends
    assert target.read_text(encoding="utf-8") == "new"
    assert _listing(target.parent) == ["out.txt"]


def test_atomic_exception_leaves_no_file(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(Boom), atomic_path(target) as tmp:
        tmp.write_bytes(b"partial")
        raise Boom
    assert not target.exists()
    assert _listing(tmp_path) == []  # no temp file left behind


def test_atomic_exception_keeps_existing_target(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(Boom), atomic_path(target) as tmp:
        tmp.write_text("half-writ", encoding="utf-8")
        raise Boom
    assert target.read_text(encoding="utf-8") == "old"
    assert _listing(tmp_path) == ["out.txt"]


def test_atomic_replaces_existing_target(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old", encoding="utf-8")
    write_text_atomic(target, "new 区县")
    assert target.read_text(encoding="utf-8") == "new 区县"
    assert _listing(tmp_path) == ["out.txt"]


def test_write_run_file_failure_mid_write_leaves_nothing(tmp_path):
    target = tmp_path / "run.h5"
    arrays = {"a": np.ones((2, 3)), "b": np.zeros((2, 3))}
    with pytest.raises(KeyError):  # no dims for "b": fails after "a" was written to the temp file
        write_run_file(target, attrs={}, arrays=arrays, coords={"year": np.arange(2)}, dims={"a": ("year", "x")})
    assert _listing(tmp_path) == []


def test_write_run_file_failure_keeps_previous_result(tmp_path):
    target = tmp_path / "run.h5"
    write_run_file(target, attrs={"seed": "1"}, arrays={"a": np.ones(2)}, coords={}, dims={"a": ("year",)})
    with pytest.raises(KeyError):
        write_run_file(target, attrs={"seed": "2"}, arrays={"a": np.zeros(2)}, coords={}, dims={})
    attrs, arrays, _, _ = read_run_file(target)
    assert attrs["seed"] == "1" and arrays["a"].tolist() == [1.0, 1.0]
    assert _listing(tmp_path) == ["run.h5"]


# --------------------------------------------------------------------------------------------------
# write_run_file / read_run_file
# --------------------------------------------------------------------------------------------------

def test_run_file_round_trip(tmp_path):
    target = tmp_path / "run.h5"
    attrs = {"seed": "entropy=5;spawn_key=", "households_per_agent": 25.0, "note": "渝中 core", "n": 3}
    arrays = {"pop": np.arange(6, dtype=np.float64).reshape(2, 3), "flows": np.arange(18, dtype=np.int32).reshape(2, 3, 3)}
    coords = {"year": np.array([2010, 2011]), "district": np.array(["500101", "500102", "500103"])}
    dims = {"pop": ("year", "district"), "flows": ("year", "origin", "destination")}
    write_run_file(target, attrs=attrs, arrays=arrays, coords=coords, dims=dims)
    a2, arr2, c2, d2 = read_run_file(target)
    for k, v in attrs.items():
        assert a2[k] == v
    assert a2["layout"] == "migration_abm.run" and a2["layout_version"] == LAYOUT_VERSION
    assert a2["package_version"] == __version__
    assert {"git_commit", "created_utc"} <= set(a2)
    assert set(arr2) == set(arrays)
    for k in arrays:
        np.testing.assert_array_equal(arr2[k], arrays[k])
        assert arr2[k].dtype == arrays[k].dtype
    np.testing.assert_array_equal(c2["year"], coords["year"])
    assert list(c2["district"]) == ["500101", "500102", "500103"] and c2["district"].dtype.kind == "U"
    assert d2 == dims


def test_read_run_file_rejects_other_files(tmp_path):
    with pytest.raises(InputError, match="not a readable HDF5"):
        read_run_file(tmp_path / "missing.h5")
    junk = tmp_path / "junk.h5"
    junk.write_text("not hdf5", encoding="utf-8")
    with pytest.raises(InputError, match="not a readable HDF5"):
        read_run_file(junk)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.attrs["layout"] = "something.else"
    with pytest.raises(InputError, match="not a migration-abm run file") as exc:
        read_run_file(other)
    assert exc.value.source == str(other)


# --------------------------------------------------------------------------------------------------
# Results.to_hdf5 / from_hdf5
# --------------------------------------------------------------------------------------------------

def _results() -> Results:
    rng = np.random.default_rng(7)
    years = np.arange(2010, 2013)
    codes = np.array(["500101", "500103", "500105", "500229"])
    regions = np.array(["northeast_eco", "core", "expansion", "northeast_eco"])
    T, D = len(years), len(codes)
    arrays = {k: rng.integers(0, 1000, size=(T, D)).astype(float) for k in DISTRICT_SERIES}
    arrays["flows"] = rng.integers(0, 50, size=(T, D, D)).astype(float)
    arrays["population_age"] = rng.random((T, D, AGE_MAX + 1))
    arrays["population_status_band"] = rng.random((T, D, len(HUKOU_STATUS), len(AGE_BANDS)))
    dims = {k: ("year", "district") for k in DISTRICT_SERIES}
    dims.update(flows=("year", "origin", "destination"), population_age=("year", "district", "age"),
                population_status_band=("year", "district", "hukou_status", "age_band"))
    cfg = Config().with_overrides({"run.end_year": 2012, "run.seed": 3})
    return Results(years=years, codes=codes, regions=regions, arrays=arrays, dims=dims, config_toml=cfg.to_toml(),
                   seed="entropy=3;spawn_key=", attrs={"config_source": "<test>", "households_per_agent": 100.0})


def test_results_round_trip(tmp_path):
    res = _results()
    path = res.to_hdf5(tmp_path / "r.h5")
    assert path == tmp_path / "r.h5" and _listing(tmp_path) == ["r.h5"]
    back = Results.from_hdf5(path)
    np.testing.assert_array_equal(back.years, res.years)
    assert list(back.codes) == list(res.codes) and list(back.regions) == list(res.regions)
    assert set(back.arrays) == set(res.arrays)
    for k, v in res.arrays.items():
        np.testing.assert_array_equal(back.arrays[k], v, err_msg=k)
    assert back.dims == res.dims
    assert back.config_toml == res.config_toml and back.seed == res.seed
    assert from_toml_text(back.config_toml).run.seed == 3
    assert back.attrs["config_source"] == "<test>" and back.attrs["households_per_agent"] == 100.0
    assert back.attrs["layout"] == "migration_abm.run"
    assert "config_toml" not in back.attrs and "seed" not in back.attrs  # moved to their fields
    # labelled views work on the reloaded object and agree with the original
    assert back.population_by_region().equals(res.population_by_region())
    assert back.flows(2011).equals(res.flows(2011))
    assert back.hukou_table(2012).equals(res.hukou_table(2012))


def test_results_file_layout_readable_with_plain_h5py(tmp_path):
    res = _results()
    res.to_hdf5(tmp_path / "r.h5")
    with h5py.File(tmp_path / "r.h5", "r") as f:
        assert {"year", "district", "district_name", "region", "age", "hukou_status", "age_band", "population",
                "flows", "population_status_band"} <= set(f)
        assert f["age"].shape == (AGE_MAX + 1,)
        assert [b.decode() for b in f["age_band"][()]] == [b[0] for b in AGE_BANDS]
        assert f["population"].attrs["dims"] == "year,district"
        assert f["population"].attrs["units"] == "persons" and f["households"].attrs["units"] == "households"
        assert f["population_status_band"].attrs["dims"] == "year,district,hukou_status,age_band"
        assert f["population"].compression == "gzip"
        assert f["year"].attrs["CLASS"] == b"DIMENSION_SCALE"  # netCDF4 dimension scales
        for key in ("layout", "layout_version", "package_version", "git_commit", "created_utc", "config_toml",
                    "seed", "config_source", "households_per_agent"):
            assert key in f.attrs, key


def test_run_file_opens_in_xarray_with_named_dims_and_coords(tmp_path):
    import xarray as xr

    res = _results()
    res.to_hdf5(tmp_path / "r.h5")
    with xr.open_dataset(tmp_path / "r.h5", engine="h5netcdf") as ds:
        assert not any(d.startswith("phony_dim") for d in ds.dims)
        assert ds["population"].dims == ("year", "district")
        assert ds["flows"].dims == ("year", "origin", "destination")
        assert ds["population_status_band"].dims == ("year", "district", "hukou_status", "age_band")
        assert ds["year"].values.tolist() == [2010, 2011, 2012]
        assert ds["district"].values.tolist() == list(res.codes)
        assert ds["district_name"].values.tolist() == ["Wanzhou", "Yuzhong", "Jiangbei", "Chengkou"]
        assert ds["region"].values.tolist() == list(res.regions)
        assert ds["age"].values.tolist() == list(range(AGE_MAX + 1))
        assert ds["population"].attrs["units"] == "persons"
        np.testing.assert_array_equal(ds["population"].sel(district="500103").values,
                                      res.arrays["population"][:, 1])
        assert ds.attrs["seed"] == res.seed
    mem = res.to_xarray()
    assert mem["population"].dims == ("year", "district") and mem["district_name"].values[1] == "Yuzhong"
    np.testing.assert_array_equal(mem["flows"].values, res.arrays["flows"])


def test_layout_1_files_still_read(tmp_path):
    res = _results()
    old = tmp_path / "v1.h5"
    with h5py.File(old, "w") as f:
        f.attrs.update({"layout": "migration_abm.run", "layout_version": 1, "seed": res.seed,
                        "config_toml": res.config_toml})
        for k, v in {"year": res.years, "district": res.codes.astype("S"), "region": res.regions.astype("S")}.items():
            f[f"coords/{k}"] = v
        for k, v in res.arrays.items():
            f[f"data/{k}"] = v
            f[f"data/{k}"].attrs["dims"] = ",".join(res.dims[k])
    back = Results.from_hdf5(old)
    assert back.population_by_region().equals(res.population_by_region())
    assert list(back.district_names()) == ["Wanzhou", "Yuzhong", "Jiangbei", "Chengkou"]


def test_damaged_or_incomplete_run_files_are_input_errors(tmp_path):
    res = _results()
    good = res.to_hdf5(tmp_path / "good.h5")
    missing = tmp_path / "missing.h5"
    shutil.copyfile(good, missing)
    with h5py.File(missing, "r+") as f:
        del f["deaths"]
    with pytest.raises(InputError, match="series missing") as exc:
        Results.from_hdf5(missing)
    assert exc.value.source == str(missing) and exc.value.field == "deaths"
    data = good.read_bytes()
    for cut in (len(data) // 3, len(data) - 2000, 100):
        cut_file = tmp_path / f"cut{cut}.h5"
        cut_file.write_bytes(data[:cut])
        with pytest.raises(InputError) as exc:
            Results.from_hdf5(cut_file)
        assert exc.value.source == str(cut_file)
    damaged = tmp_path / "damaged.h5"
    with h5py.File(good, "r") as f:
        chunk = f["population"].id.get_chunk_info(0)
    blob = bytearray(data)
    blob[chunk.byte_offset:chunk.byte_offset + chunk.size] = b"\xff" * chunk.size
    damaged.write_bytes(bytes(blob))
    with pytest.raises(InputError, match="population") as exc:
        Results.from_hdf5(damaged)
    assert exc.value.source == str(damaged)
    with pytest.raises(InputError, match="directory"):
        Results.from_hdf5(tmp_path)


def test_atomic_files_honour_umask_and_killed_writers_leave_no_temp(tmp_path):
    import os
    import subprocess
    import sys

    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "a.txt", "x")
        _results().to_hdf5(tmp_path / "r.h5")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "r.h5").stat().st_mode & 0o777 == 0o644
    # a writer killed inside atomic_path leaves .r.h5.<pid>.*.tmp; the next write of r.h5 removes it
    code = ("import os, signal, sys; from migration_abm.storage import atomic_path\n"
            "with atomic_path(sys.argv[1]) as t:\n    t.write_text('half'); os.kill(os.getpid(), signal.SIGKILL)")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "r.h5")], check=False)
    assert len(list(tmp_path.glob(".r.h5.*.tmp"))) == 1
    _results().to_hdf5(tmp_path / "r.h5")
    assert _listing(tmp_path) == ["a.txt", "r.h5"]


def test_real_run_follows_documented_conventions(tmp_path):
    """docs/STORAGE.md: row 0 is the base state (no flows); the per-district balance closes with
    in/out_migrants that include the external moves; ``flows`` holds the internal moves only."""
    from migration_abm.model import simulate

    cfg = Config().with_overrides({"run.end_year": 2012, "run.households_per_agent": 2000.0})
    res = Results.from_hdf5(simulate(cfg, 1).to_hdf5(tmp_path / "run.h5"))
    a = res.arrays
    np.testing.assert_array_equal(res.years, [2010, 2011, 2012])
    for k in ("births", "deaths", "in_migrants", "out_migrants", "external_in", "external_out", "flows"):
        assert not a[k][0].any(), k
    change = np.diff(a["population"], axis=0)
    balance = (a["births"] - a["deaths"] + a["in_migrants"] - a["out_migrants"])[1:]
    np.testing.assert_allclose(change, balance, atol=1e-6)
    np.testing.assert_allclose(a["flows"].sum(axis=1), a["in_migrants"] - a["external_in"], atol=1e-6)
    np.testing.assert_allclose(a["flows"].sum(axis=2), a["out_migrants"] - a["external_out"], atol=1e-6)
    assert a["flows"][1:].sum() > 0 and a["external_in"][1:].sum() > 0  # the identities are not vacuous
    assert from_toml_text(res.config_toml).to_dict() == cfg.to_dict()
    assert res.seed == "entropy=1;spawn_key="
