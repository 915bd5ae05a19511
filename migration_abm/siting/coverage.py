"""Sparse coverage sets from great-circle radius queries (BallTree, haversine); never a dense matrix."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from migration_abm.geography import EARTH_RADIUS_KM


def coverage_matrix(demand_lonlat: np.ndarray, site_lonlat: np.ndarray, radius_km: float | np.ndarray
                    ) -> sp.csr_matrix:
    """Demand × site 0/1 CSR matrix: 1 where the site lies within the demand point's radius (km).

    ``radius_km`` may be one value or one per demand point (e.g. per-district circuity).
    Built from ``BallTree.query_radius`` on the sites, so memory grows with the covered pairs only.
    """
    from sklearn.neighbors import BallTree

    demand = np.radians(np.asarray(demand_lonlat, dtype=float)[:, ::-1])
    sites = np.radians(np.asarray(site_lonlat, dtype=float)[:, ::-1])
    n, m = len(demand), len(sites)
    if n == 0 or m == 0:
        return sp.csr_matrix((n, m))
    r = np.broadcast_to(np.asarray(radius_km, dtype=float), (n,)) / EARTH_RADIUS_KM
    tree = BallTree(sites, metric="haversine")
    ind = tree.query_radius(demand, r=r)
    lens = np.fromiter((len(i) for i in ind), dtype=np.int64, count=n)
    indptr = np.concatenate([[0], np.cumsum(lens)])
    indices = np.concatenate(ind).astype(np.int64) if n else np.zeros(0, np.int64)
    a = sp.csr_matrix((np.ones(len(indices)), indices, indptr), shape=(n, m))
    a.sort_indices()
    return a

