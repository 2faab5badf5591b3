"""Enhanced two-step floating catchment area (E2SFCA, Luo & Qi 2009) between communes.

Supply sits at the commune centre where practitioners practise; demand is the commune's population
at its centre. With distance bands ``d_1 < … < d_r`` and weights ``w_1 ≥ … ≥ w_r``:

1. for each supply commune j: ``R_j = S_j / Σ_k w(d_kj) · P_k`` over the communes k within ``d_r``;
2. for each commune i: ``A_i = Σ_j w(d_ij) · R_j``, reported per 10,000 inhabitants.

Distances are straight lines between commune centres (``point_on_surface``) in each zone's projected
CRS; only pairs closer than the largest band are formed (one STRtree ``dwithin`` query), so the work
is sparse — no 35k × 35k matrix.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import scipy.sparse as sp
import shapely

from ..geo import by_zone


def band_weights(
    distance_km: np.ndarray, bands_km: list[float], weights: list[float]
) -> np.ndarray:
    """Weight of each distance: ``weights[b]`` for the first band ``b`` with ``distance <=
    bands_km[b]``, 0 beyond the last band.
    """
    index = np.searchsorted(np.asarray(bands_km), distance_km, side="left")
    table = np.r_[np.asarray(weights, dtype=float), 0.0]
    return table[index]


def e2sfca(
    frame: gpd.GeoDataFrame,
    supply: np.ndarray,
    *,
    bands_km: list[float],
    weights: list[float],
    population: str = "population",
) -> np.ndarray:
    """E2SFCA accessibility of each commune, practitioners per 10,000 inhabitants (NaN without
    geometry).

    Parameters
    ----------
    frame : GeoDataFrame
        Communes with an ``epsg`` column (measured zone by zone).
    supply : array
        Practitioners per commune (same order as ``frame``).
    bands_km, weights : list of float
        Distance bands (increasing) and their weights.
    """
    n = len(frame)
    supply = np.asarray(supply, dtype=float)
    pop = frame[population].fillna(0).to_numpy(dtype=float)
    out = np.full(n, np.nan)
    reach = float(bands_km[-1]) * 1000.0
    for _epsg, zone in by_zone(frame.assign(_row=np.arange(n))):
        zone = zone[zone.geometry.notna()]
        rows = zone["_row"].to_numpy()
        points = shapely.point_on_surface(zone.geometry.to_numpy())
        i, j = shapely.STRtree(points).query(points, predicate="dwithin", distance=reach)
        w = band_weights(shapely.distance(points[i], points[j]) / 1000.0, bands_km, weights)
        m = len(rows)
        W = sp.csr_matrix((w, (i, j)), shape=(m, m))  # symmetric: W[i, j] = w(d_ij)
        demand = W.T @ pop[rows]  # Σ_k w(d_kj) P_k for each j
        ratio = np.divide(supply[rows], demand, out=np.zeros(m), where=demand > 0)
        out[rows] = (W @ ratio) * 10_000.0
    return out
