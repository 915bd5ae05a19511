"""Variance-based (Sobol) sensitivity: Saltelli sampling, Saltelli-2010 first-order and Jansen total
indices with bootstrap confidence intervals, and the Ishigami test function with its analytic indices.

Sample layout (also the layout of a ``design = "sobol"`` experiment): ``n`` rows of A, then ``n`` of B,
then ``n`` of each AB_i (A with column i taken from B) — ``n * (k + 2)`` rows in all.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import qmc


def saltelli_unit(n: int, k: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """Saltelli sample on the unit cube from a scrambled Sobol' sequence in 2k dimensions: (n(k+2), k)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # balance warning when n is not a power of 2
        base = qmc.Sobol(d=2 * k, scramble=True, rng=np.random.default_rng(rng)).random(n)
    a, b = base[:, :k], base[:, k:]
    mats = [a, b]
    for i in range(k):
        ab = a.copy()
        ab[:, i] = b[:, i]
        mats.append(ab)
    return np.vstack(mats)


def saltelli_sample(n: int, bounds: Sequence[tuple[float, float]], seed: int | None = None) -> np.ndarray:
    """Saltelli sample scaled to ``bounds`` [(lo, hi), ...]: array of shape (n (k + 2), k)."""
    lo, hi = np.asarray(bounds, dtype=float).T
    return lo + saltelli_unit(n, len(lo), seed) * (hi - lo)


def _estimates(fa: np.ndarray, fb: np.ndarray, fab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """S1, ST for arrays with a leading (bootstrap) axis: fa, fb (..., n); fab (..., k, n)."""
    var = np.var(np.concatenate([fa, fb], axis=-1), axis=-1, ddof=1)[..., None]
    with np.errstate(invalid="ignore", divide="ignore"):
        s1 = np.mean(fb[..., None, :] * (fab - fa[..., None, :]), axis=-1) / var
        st = 0.5 * np.mean((fa[..., None, :] - fab) ** 2, axis=-1) / var
    return s1, st


def sobol_indices(y: np.ndarray, k: int, names: Sequence[str] | None = None, n_bootstrap: int = 500,
                  confidence: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """First-order (Saltelli 2010) and total (Jansen 1999) Sobol indices of outputs ``y`` evaluated on a
    Saltelli sample; percentile bootstrap intervals over the n base rows.

    Returns a DataFrame indexed by parameter with columns S1, S1_lo, S1_hi, ST, ST_lo, ST_hi.
    """
    y = np.asarray(y, dtype=float).ravel()
    if y.size % (k + 2):
        raise ValueError(f"{y.size} outputs is not a multiple of k + 2 = {k + 2}")
    if not np.all(np.isfinite(y)):
        raise ValueError("outputs contain NaN/inf (failed or missing runs); drop or fill them first")
    n = y.size // (k + 2)
    blocks = y.reshape(k + 2, n)
    fa, fb, fab = blocks[0], blocks[1], blocks[2:]
    s1, st = _estimates(fa, fb, fab)
    idx = np.random.default_rng(seed).integers(0, n, size=(n_bootstrap, n))
    bs1, bst = _estimates(fa[idx], fb[idx], fab[:, idx].transpose(1, 0, 2))
    q = [(1 - confidence) / 2 * 100, (1 + confidence) / 2 * 100]
    s1_ci, st_ci = np.nanpercentile(bs1, q, axis=0), np.nanpercentile(bst, q, axis=0)
    names = list(names) if names is not None else [f"x{i + 1}" for i in range(k)]
    return pd.DataFrame({"S1": s1, "S1_lo": s1_ci[0], "S1_hi": s1_ci[1], "ST": st, "ST_lo": st_ci[0],
                         "ST_hi": st_ci[1]}, index=pd.Index(names, name="parameter"))


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
