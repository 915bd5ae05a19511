"""Variance-based (Sobol) sensitivity through SALib: Saltelli sampling, first-order, total and
second-order indices with bootstrap confidence intervals, and the Ishigami test function with its
analytic indices.

Sample layout (also the layout of a ``design = "sobol"`` experiment): ``n`` rows of A, then ``n`` of B,
then ``n`` of each AB_i (A with column i taken from B) — ``n * (k + 2)`` rows in all; with
``second_order=True`` also ``n`` of each BA_i (B with column i taken from A), ``n * (2k + 2)`` rows.
The estimators are SALib's (``SALib.analyze.sobol``: Saltelli 2010 first order, Jansen total order,
Saltelli 2002 second order); outputs are handed to it in its own row order.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import qmc


def saltelli_unit(n: int, k: int, rng: np.random.Generator | int | None = None,
                  second_order: bool = False) -> np.ndarray:
    """Saltelli sample on the unit cube from a scrambled Sobol' sequence in 2k dimensions."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # balance warning when n is not a power of 2
        base = qmc.Sobol(d=2 * k, scramble=True, rng=np.random.default_rng(rng)).random(n)
    a, b = base[:, :k], base[:, k:]
    mats = [a, b]
    for first, second in [(a, b), (b, a)] if second_order else [(a, b)]:
        for i in range(k):
            m = first.copy()
            m[:, i] = second[:, i]
            mats.append(m)
    return np.vstack(mats)


def saltelli_sample(n: int, bounds: Sequence[tuple[float, float]], seed: int | None = None,
                    second_order: bool = False) -> np.ndarray:
    """Saltelli sample scaled to ``bounds`` [(lo, hi), ...]: (n (k + 2), k), or (n (2k + 2), k)."""
    lo, hi = np.asarray(bounds, dtype=float).T
    return lo + saltelli_unit(n, len(lo), seed, second_order) * (hi - lo)


def _analyze(y: np.ndarray, k: int, names: Sequence[str] | None, n_bootstrap: int, confidence: float,
             seed: int, second_order: bool) -> tuple[dict, list[str]]:
    """SALib's Sobol analysis of outputs in this module's layout."""
    from SALib.analyze import sobol

    y = np.asarray(y, dtype=float).ravel()
    blocks = 2 * k + 2 if second_order else k + 2
    if y.size % blocks or y.size == 0:
        raise ValueError(f"{y.size} outputs is not a multiple of {blocks} (the Saltelli sample of {k} parameters"
                         f"{' with second order' if second_order else ''})")
    if not np.all(np.isfinite(y)):
        raise ValueError("outputs contain NaN/inf (failed or missing runs); drop or fill them first")
    b = y.reshape(blocks, -1)
    order = [0, *range(2, k + 2), *(range(k + 2, 2 * k + 2) if second_order else ()), 1]  # A, AB.., BA.., B
    names = list(names) if names is not None else [f"x{i + 1}" for i in range(k)]
    problem = {"num_vars": k, "names": names, "bounds": [[0.0, 1.0]] * k}
    with np.errstate(invalid="ignore", divide="ignore"):
        res = sobol.analyze(problem, b[order].T.ravel(), calc_second_order=second_order,
                            num_resamples=n_bootstrap, conf_level=confidence, seed=seed)
    return res, names


def sobol_indices(y: np.ndarray, k: int, names: Sequence[str] | None = None, n_bootstrap: int = 500,
                  confidence: float = 0.95, seed: int = 0, second_order: bool = False) -> pd.DataFrame:
    """First-order and total Sobol indices of outputs ``y`` evaluated on a Saltelli sample (SALib), with
    ``confidence`` bootstrap intervals (SALib's normal intervals, index ± half-width).

    Returns a DataFrame indexed by parameter with columns S1, S1_lo, S1_hi, ST, ST_lo, ST_hi.
    ``second_order`` says whether ``y`` holds the BA blocks too (see :func:`sobol_second_order`).
    """
    res, names = _analyze(y, k, names, n_bootstrap, confidence, seed, second_order)
    s1, c1, st, ct = (np.asarray(res[c]) for c in ("S1", "S1_conf", "ST", "ST_conf"))
    return pd.DataFrame({"S1": s1, "S1_lo": s1 - c1, "S1_hi": s1 + c1, "ST": st, "ST_lo": st - ct,
                         "ST_hi": st + ct}, index=pd.Index(names, name="parameter"))


def sobol_second_order(y: np.ndarray, k: int, names: Sequence[str] | None = None, n_bootstrap: int = 500,
                       confidence: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Second-order Sobol indices S2 of each parameter pair from a ``second_order=True`` Saltelli sample.

    Returns a DataFrame indexed by (parameter, other) pairs (i < j) with columns S2, S2_lo, S2_hi.
    """
    res, names = _analyze(y, k, names, n_bootstrap, confidence, seed, True)
    rows = [(names[i], names[j], res["S2"][i, j], res["S2_conf"][i, j]) for i in range(k) for j in range(i + 1, k)]
    df = pd.DataFrame(rows, columns=["parameter", "other", "S2", "conf"]).set_index(["parameter", "other"])
    df["S2_lo"], df["S2_hi"] = df["S2"] - df["conf"], df["S2"] + df["conf"]
    return df.drop(columns="conf")


def ishigami(x: np.ndarray, a: float = 7.0, b: float = 0.1) -> np.ndarray:
    """Ishigami function on [-pi, pi]^3 (rows are points)."""
    x = np.atleast_2d(x)
    return np.sin(x[:, 0]) + a * np.sin(x[:, 1]) ** 2 + b * x[:, 2] ** 4 * np.sin(x[:, 0])


def ishigami_indices(a: float = 7.0, b: float = 0.1) -> pd.DataFrame:
    """Analytic first-order and total Sobol indices of :func:`ishigami`."""
    pi4, pi8 = np.pi ** 4, np.pi ** 8
    v = a ** 2 / 8 + b * pi4 / 5 + b ** 2 * pi8 / 18 + 0.5
    v1, v2, v13 = 0.5 * (1 + b * pi4 / 5) ** 2, a ** 2 / 8, b ** 2 * pi8 * 8 / 225
    return pd.DataFrame({"S1": [v1 / v, v2 / v, 0.0], "ST": [(v1 + v13) / v, v2 / v, v13 / v]},
                        index=pd.Index(["x1", "x2", "x3"], name="parameter"))


def ishigami_second_order(a: float = 7.0, b: float = 0.1) -> pd.DataFrame:
    """Analytic second-order indices of :func:`ishigami`: only the x1–x3 pair interacts."""
    pi4, pi8 = np.pi ** 4, np.pi ** 8
    v = a ** 2 / 8 + b * pi4 / 5 + b ** 2 * pi8 / 18 + 0.5
    idx = pd.MultiIndex.from_tuples([("x1", "x2"), ("x1", "x3"), ("x2", "x3")], names=["parameter", "other"])
    return pd.DataFrame({"S2": [0.0, b ** 2 * pi8 * 8 / 225 / v, 0.0]}, index=idx)
