"""Seeded generators of siting benchmark instances: the sparse clustered family and the dense city family.

The dense family mimics the 20-minute circles of a hilly main city: demand clustered around district
centres (70 % within ~3 km of a centre, 30 % within ~12 km), lognormal weights, candidates near the
demand, a 1.23 km radius, so that a demand point reaches 6–17 candidates (``arcs_per_point`` reports it).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

LON0, LAT0, KX, KY = 106.3, 29.3, 96.9, 111.2
DENSE_RADIUS_KM = 1.23


def _lonlat(xy: np.ndarray) -> np.ndarray:
    return np.column_stack([LON0 + xy[:, 0] / KX, LAT0 + xy[:, 1] / KY])


def sparse_instance(n: int, m: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clustered demand (80 % in Gaussian clusters, 20 % uniform) over a 60 × 60 km area near Chongqing;
    candidates drawn from the same mixture; integer weights 1–100 (the original benchmark family)."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 60, (max(5, n // 400), 2))

    def draw(k: int) -> np.ndarray:
        kc = int(0.8 * k)
        c = centres[rng.integers(0, len(centres), kc)] + rng.normal(0, 2.0, (kc, 2))
        return _lonlat(np.vstack([c, rng.uniform(0, 60, (k - kc, 2))]))

    demand = draw(n)
    sites = draw(m)
    return demand, sites, rng.integers(1, 101, n).astype(float)


def dense_instance(n: int, m: int, seed: int = 0, districts: int | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dense clustered city instance: ``districts`` centres (default m // 70, at least 4) at least
    9 km apart; each demand point lies within ~3 km (70 %) or ~12 km (30 %) of its centre; lognormal
    weights (σ 1); candidates are demand points jittered by 300 m, so they sit where people live."""
    rng = np.random.default_rng(seed)
    k = districts or max(4, m // 70)
    side = 9.0 * np.sqrt(k) * 1.3
    centres: list[np.ndarray] = []
    while len(centres) < k:
        c = rng.uniform(0, side, 2)
        if all(np.hypot(*(c - o)) >= 9.0 for o in centres) or rng.random() < 0.01:
            centres.append(c)
    cen = np.asarray(centres)
    size = rng.dirichlet(np.full(k, 3.0))  # unequal districts

    def draw(count: int) -> np.ndarray:
        home = rng.choice(k, size=count, p=size)
        near = rng.random(count) < 0.7
        sigma = np.where(near, 3.0, 12.0) / 2.45  # 2-D Gaussian: 95 % within 2.45 σ (~3 km / ~12 km)
        return cen[home] + rng.normal(0.0, 1.0, (count, 2)) * sigma[:, None]

    dxy = draw(n)
    pick = rng.choice(n, size=m, replace=m > n)
    sxy = dxy[pick] + rng.normal(0.0, 0.3, (m, 2))
    weights = np.round(rng.lognormal(mean=3.0, sigma=1.0, size=n), 2)
    return _lonlat(dxy), _lonlat(sxy), weights


def arcs_per_point(a: sp.spmatrix) -> dict[str, float]:
    """Coverage arcs per demand point: mean and the 10/50/90 % quantiles (the density of an instance)."""
    deg = np.diff(sp.csr_matrix(a).indptr)
    q10, q50, q90 = np.quantile(deg, [0.1, 0.5, 0.9]) if len(deg) else (0.0, 0.0, 0.0)
    return {"mean": float(deg.mean()) if len(deg) else 0.0, "p10": float(q10), "median": float(q50),
            "p90": float(q90)}
