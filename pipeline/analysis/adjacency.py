"""Adjacency between communes from their geometries, tolerant to simplified borders.

Two communes are neighbours when their borders come within ``tolerance_m`` metres of each other
(one vectorised STRtree ``dwithin`` query, in each zone's projected CRS). Groups of communes with no
land neighbour (islands) are linked to the nearest commune of the rest of their zone when it lies
within ``island_link_max_km``, and flagged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import connected_components

from ..geo import by_zone, geometry_key
from ..io import cached_arrays, code_fingerprint


@dataclass(frozen=True)
class Adjacency:
    """Undirected commune graph.

    Attributes
    ----------
    n : int
        Number of communes (rows of the frame it was built from, in that order).
    i, j : ndarray
        Edge end points, ``i < j``, sorted.
    island_link : ndarray of bool
        Per edge: True when the edge links an island group to the nearest commune across water.
    island : ndarray of bool
        Per commune: True when it belongs to a group linked across water.
    """

    n: int
    i: np.ndarray
    j: np.ndarray
    island_link: np.ndarray
    island: np.ndarray

    def matrix(self, mask: np.ndarray | None = None) -> sp.csr_matrix:
        """Symmetric boolean CSR matrix, optionally restricted to edges between ``mask``
        communes.
        """
        keep = np.ones(len(self.i), bool) if mask is None else (mask[self.i] & mask[self.j])
        i, j = self.i[keep], self.j[keep]
        data = np.ones(2 * len(i), dtype=np.int8)
        return sp.csr_matrix((data, (np.r_[i, j], np.r_[j, i])), shape=(self.n, self.n))

    def neighbours(self) -> list[np.ndarray]:
        """Neighbour index arrays, one per commune."""
        m = self.matrix()
        return [m.indices[m.indptr[k] : m.indptr[k + 1]] for k in range(self.n)]


def components(adjacency: Adjacency, mask: np.ndarray | None = None) -> np.ndarray:
    """Connected-component label of each commune in the graph restricted to ``mask`` (-1 outside).

    Labels are numbered in the order of each component's first commune, so they are deterministic.
    """
    mask = np.ones(adjacency.n, bool) if mask is None else np.asarray(mask, bool)
    i, j = adjacency.i, adjacency.j
    if len(i) > 1 and not (i[1:] >= i[:-1]).all():
        graph = adjacency.matrix(mask)
    else:  # edges sorted by i: one direction suffices, its CSR form built directly
        keep = mask[i] & mask[j]
        indptr = np.zeros(adjacency.n + 1, dtype=np.int32)
        np.cumsum(np.bincount(i[keep], minlength=adjacency.n), out=indptr[1:])
        graph = sp.csr_matrix(
            (np.ones(int(keep.sum())), j[keep].astype(np.int32), indptr),  # float: no conversion
            shape=(adjacency.n, adjacency.n),
        )
    _, raw = connected_components(graph, directed=False)
    labels = np.full(adjacency.n, -1, dtype=np.int64)
    inside = np.flatnonzero(mask)
    if len(inside):
        _values, first, inverse = np.unique(raw[inside], return_index=True, return_inverse=True)
        rank = np.empty(len(first), dtype=np.int64)
        rank[np.argsort(first)] = np.arange(len(first))  # numbered by first commune
        labels[inside] = rank[inverse]
    return labels


_CACHE: dict[str, Adjacency] = {}


def build_adjacency(
    frame: gpd.GeoDataFrame,
    *,
    tolerance_m: float = 20.0,
    island_link_max_km: float = 40.0,
    cache: str | Path | None = None,
) -> Adjacency:
    """Adjacency of the communes of ``frame`` (any CRS; measured in each zone's projected CRS).

    The result is kept for the process, and in the folder ``cache`` when given, keyed by a hash of
    the geometries, zones, parameters and code: the stages of one run (perimeters, coverage,
    territories read the same communes) compute it once, and the next run with the same scope
    reads it.

    Parameters
    ----------
    frame : GeoDataFrame
        Communes with an ``epsg`` column (see :mod:`pipeline.geo`); rows without geometry get no
        neighbour.
    tolerance_m : float
        Borders closer than this are shared.
    island_link_max_km : float
        Maximum water crossing for linking an island group to the rest of its zone.
    cache : path, optional
        Folder of the disposable copies (``Settings.cache_dir``).
    """
    key = geometry_key(
        frame.geometry.to_numpy(),
        str(frame.crs),
        np.asarray(frame["epsg"], dtype=np.int64).tobytes(),
        tolerance_m,
        island_link_max_km,
        code_fingerprint(),
    )
    if key not in _CACHE:
        _CACHE.clear()  # one scope per run: keep only the latest

        def compute() -> dict[str, np.ndarray]:
            built = _build(frame, tolerance_m, island_link_max_km)
            return {k: getattr(built, k) for k in ("i", "j", "island_link", "island")}

        arrays = cached_arrays(compute, cache=cache, name="adjacency", key=key)
        _CACHE[key] = Adjacency(len(frame), **arrays)
    return _CACHE[key]


def _build(frame: gpd.GeoDataFrame, tolerance_m: float, island_link_max_km: float) -> Adjacency:
    n = len(frame)
    edges_i, edges_j, links = [], [], []
    island = np.zeros(n, bool)
    for _epsg, part in by_zone(frame.assign(_row=np.arange(n))):
        part = part[part.geometry.notna() & ~part.geometry.is_empty]
        rows = part["_row"].to_numpy()
        geoms = part.geometry.to_numpy()
        a, b = shapely.STRtree(geoms).query(geoms, predicate="dwithin", distance=tolerance_m)
        keep = a < b
        a, b = rows[a[keep]], rows[b[keep]]
        link_a, link_b, island_rows = _island_links(
            geoms, rows, a, b, n, island_link_max_km * 1000.0
        )
        island[island_rows] = True
        edges_i += [a, link_a]
        edges_j += [b, link_b]
        links += [np.zeros(len(a), bool), np.ones(len(link_a), bool)]
    i = np.concatenate(edges_i) if edges_i else np.empty(0, np.int64)
    j = np.concatenate(edges_j) if edges_j else np.empty(0, np.int64)
    link = np.concatenate(links) if links else np.empty(0, bool)
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    order = np.lexsort((hi, lo))
    lo, hi, link = lo[order], hi[order], link[order]
    first = np.r_[True, (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])] if len(lo) else np.empty(0, bool)
    return Adjacency(n, lo[first].astype(np.int64), hi[first].astype(np.int64), link[first], island)


def _island_links(
    geoms: np.ndarray, rows: np.ndarray, a: np.ndarray, b: np.ndarray, n: int, max_distance: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edges linking each land group of one zone, except the largest, to its nearest other group
    within ``max_distance``; also the rows of the groups so linked (the islands).
    """
    local = np.full(n, -1)
    local[rows] = np.arange(len(rows))
    graph = sp.csr_matrix((np.ones(len(a)), (local[a], local[b])), shape=(len(rows), len(rows)))
    count, labels = connected_components(graph, directed=False)
    if count <= 1:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64)
    sizes = np.bincount(labels)
    mainland = int(np.argmax(sizes))
    out_a, out_b, islands = [], [], []
    for group in range(count):
        if group == mainland:
            continue
        inside = np.flatnonzero(labels == group)
        outside = np.flatnonzero(labels != group)
        tree = shapely.STRtree(geoms[outside])
        src, dst = tree.query_nearest(
            geoms[inside], max_distance=max_distance, all_matches=False, return_distance=False
        )
        if len(src) == 0:
            continue  # farther than the limit (e.g. Corse): stays apart
        dist = shapely.distance(geoms[inside][src], geoms[outside][dst])
        best = int(np.lexsort((rows[outside][dst], rows[inside][src], dist))[0])
        out_a.append(rows[inside][src[best]])
        out_b.append(rows[outside][dst[best]])
        islands.append(rows[inside])
    island_rows = np.concatenate(islands) if islands else np.empty(0, np.int64)
    return np.asarray(out_a, np.int64), np.asarray(out_b, np.int64), island_rows


def shared_border_length(
    frame: gpd.GeoDataFrame, pairs_i: np.ndarray, pairs_j: np.ndarray, *, tolerance_m: float = 20.0
) -> np.ndarray:
    """Approximate length (m) of the border shared by each pair of communes, in their zone's CRS.

    The length of commune ``i``'s boundary lying within ``tolerance_m`` of commune ``j``.
    """
    out = np.zeros(len(pairs_i))
    needed = np.unique(
        np.r_[np.asarray(pairs_i, dtype=np.int64), np.asarray(pairs_j, dtype=np.int64)]
    )
    subset = frame.iloc[needed].assign(_row=needed)  # project only the communes of the pairs
    for _epsg, part in by_zone(subset):
        local = dict(zip(part["_row"], part.geometry))
        for k, (a, b) in enumerate(zip(pairs_i, pairs_j)):
            if a in local and b in local and local[a] is not None and local[b] is not None:
                boundary = shapely.boundary(local[a])
                out[k] = shapely.intersection(
                    boundary, shapely.buffer(local[b], tolerance_m)
                ).length
    return out
