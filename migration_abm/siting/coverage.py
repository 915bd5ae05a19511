"""Sparse coverage sets from great-circle radius queries (KD-tree on unit vectors); never a dense matrix."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from migration_abm.geography import EARTH_RADIUS_KM


def unit_vectors(lonlat: np.ndarray) -> np.ndarray:
    """Points on the unit sphere for lon/lat in degrees (chord distance is monotone in great-circle distance)."""
    lon, lat = np.radians(np.asarray(lonlat, dtype=float)).T
    return np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])


def coverage_matrix(demand_lonlat: np.ndarray, site_lonlat: np.ndarray, radius_km: float | np.ndarray
                    ) -> sp.csr_matrix:
    """Demand × site 0/1 CSR matrix: 1 where the site lies within the demand point's radius (km).

    ``radius_km`` may be one value or one per demand point (e.g. per-district circuity). Built from
    ``cKDTree.query_ball_point`` on the sites' unit vectors with the chord of each great-circle radius,
    so memory grows with the covered pairs only.
    """
    from scipy.spatial import cKDTree

    n, m = len(demand_lonlat), len(site_lonlat)
    if n == 0 or m == 0:
        return sp.csr_matrix((n, m))
    r = np.broadcast_to(np.asarray(radius_km, dtype=float), (n,))
    chord = 2.0 * np.sin(np.minimum(r / EARTH_RADIUS_KM, np.pi) / 2.0) * (1 + 1e-12)
    ind = cKDTree(unit_vectors(site_lonlat)).query_ball_point(unit_vectors(demand_lonlat), chord)
    lens = np.fromiter((len(i) for i in ind), dtype=np.int64, count=n)
    indptr = np.concatenate([[0], np.cumsum(lens)])
    indices = np.concatenate([np.asarray(i, dtype=np.int64) for i in ind])
    a = sp.csr_matrix((np.ones(len(indices)), indices, indptr), shape=(n, m))
    a.sort_indices()
    return a
