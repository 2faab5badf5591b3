"""Coordinate reference systems by zone: Lambert-93 for metropolitan France, a local projected CRS
for each DROM.

A table whose communes all lie in one zone is stored in that zone's projected CRS; a table spanning
several zones (all of France) is stored in WGS84 (EPSG:4326) with an ``epsg`` column giving each
commune's projected CRS. Code that measures (areas, distances, adjacency) goes through
:func:`by_zone`, which hands out one projected frame per zone either way.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

WGS84 = 4326


def zone_epsg(
    departements: np.ndarray | list[str], *, metropole: int, drom: dict[str, int]
) -> np.ndarray:
    """Projected EPSG code of each commune from its département code.

    Parameters
    ----------
    departements : array-like of str
        The département code of each commune (``"34"``, ``"2A"``, ``"971"``).
    metropole : int
        EPSG code of metropolitan France (``[communes] crs_metropole``, 2154).
    drom : dict of str to int
        EPSG code of each DROM by its département code (``[communes] crs_drom``).

    Returns
    -------
    ndarray of int64
        One code per commune, in the input order.
    """
    return np.array([int(drom.get(str(d), metropole)) for d in departements], dtype=np.int64)


def storage_crs(epsg: np.ndarray) -> int:
    """The CRS a table is stored in: its zone's when there is one zone, WGS84 otherwise."""
    zones = np.unique(epsg)
    return int(zones[0]) if len(zones) == 1 else WGS84


def by_zone(frame: gpd.GeoDataFrame) -> Iterator[tuple[int, gpd.GeoDataFrame]]:
    """Yield ``(epsg, rows of that zone projected to it)`` in ascending EPSG order.

    Parameters
    ----------
    frame : GeoDataFrame
        Rows with an ``epsg`` column (their zone's projected CRS), stored in that CRS or in WGS84.

    Yields
    ------
    tuple of (int, GeoDataFrame)
        Each zone's code and its rows in that CRS (the rows themselves when already projected).
    """
    for epsg in sorted(np.unique(frame["epsg"])):
        part = frame[frame["epsg"] == epsg]
        yield (
            int(epsg),
            (part if part.crs is not None and part.crs.to_epsg() == epsg else part.to_crs(epsg)),
        )


_EPSG: dict[str, int | None] = {}  # CRS definition → EPSG code (pyproj's lookup takes ~30 µs)


def _epsg_of(crs) -> int | None:
    """EPSG code of a pyproj CRS, looked up once per definition string."""
    if crs.srs not in _EPSG:
        _EPSG[crs.srs] = crs.to_epsg()
    return _EPSG[crs.srs]


def zone_geometries(frame: gpd.GeoDataFrame) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Yield ``(epsg, row positions, geometries of those rows projected to it)`` in ascending EPSG
    order, like :func:`by_zone` but without copying the frame (for measures on many small calls).
    """
    epsg = frame["epsg"].to_numpy()
    geoms = frame.geometry.values
    for code in sorted(np.unique(epsg)):
        rows = np.flatnonzero(epsg == code)
        part = geoms[rows]
        if part.crs is None or _epsg_of(part.crs) != code:
            part = part.to_crs(code)
        yield int(code), rows, np.asarray(part)


def polygonal(geoms: np.ndarray) -> np.ndarray:
    """Keep the polygonal parts of each geometry (e.g. after make_valid) as MultiPolygons; a missing
    or empty geometry, or one without any polygonal part, becomes None.
    """
    geoms = np.asarray(geoms, dtype=object)
    out = np.full(len(geoms), None, dtype=object)
    present = np.flatnonzero(~pd.isna(geoms))
    present = present[~shapely.is_empty(geoms[present])]
    parts, owner = shapely.get_parts(geoms[present], return_index=True)
    keep = np.isin(shapely.get_type_id(parts), [3, 6])  # Polygon, MultiPolygon
    polygons, index = shapely.get_parts(parts[keep], return_index=True)
    if len(polygons):
        shapely.multipolygons(polygons, indices=present[owner[keep][index]], out=out)
    return out


def union_of_coverage(geoms: np.ndarray):
    """Union of polygons that tile without overlapping (communes), the fast way when it is exact.

    GEOS's coverage union only removes the edges the polygons share; its result is the union when
    it is valid and its area is the sum of the parts' (no part overlaps or contains another).
    Otherwise (overlapping or near-coincident borders in the source) the general union is used.
    Missing geometries are left out; no geometry gives an empty collection, as ``union_all``.
    """
    geoms = np.asarray(geoms, dtype=object)
    geoms = geoms[~pd.isna(geoms)]
    if len(geoms) < 2:
        return shapely.union_all(geoms)
    try:
        merged = shapely.coverage_union_all(geoms)
    except shapely.errors.GEOSException:
        return shapely.union_all(geoms)
    total = float(shapely.area(geoms).sum())
    if shapely.is_valid(merged) and abs(shapely.area(merged) - total) <= 1e-9 * total:
        return merged
    return shapely.union_all(geoms)


def union_groups(geoms: np.ndarray, keys, *, union=None) -> tuple[np.ndarray, np.ndarray]:
    """Union of ``geoms`` per key (``GeoDataFrame.dissolve(key, sort=True)``), each group's
    geometries in their row order, with ``union`` (default :func:`union_of_coverage`); the groups
    are shared between two threads, GEOS releasing the GIL while it works.

    Returns
    -------
    keys : ndarray
        The distinct keys, sorted.
    unions : ndarray of geometries
        The union of each key's geometries (missing geometries left out).
    """
    union = union or union_of_coverage
    geoms = np.asarray(geoms, dtype=object)
    codes, uniques = pd.factorize(np.asarray(keys, dtype=object), sort=True)
    order = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
    groups = [geoms[order[a:b]] for a, b in zip(starts[:-1], starts[1:])]
    # largest groups first, so the two threads finish together
    by_size = sorted(range(len(groups)), key=lambda g: -len(groups[g]))
    unions = np.empty(len(groups), dtype=object)
    if min(os.cpu_count() or 1, 2) < 2 or len(groups) < 2:
        unions[:] = [union(g) for g in groups]
    else:
        with ThreadPoolExecutor(max_workers=2) as pool:
            unions[by_size] = list(pool.map(union, [groups[g] for g in by_size]))
    return np.asarray(uniques, dtype=object), unions


def geometry_key(geoms: np.ndarray, *parts: object) -> str:
    """Hex sha256 of the geometries (WKB, missing ones marked) and of ``parts``: the key of a
    result computed from these geometries alone.
    """
    digest = hashlib.sha256(repr(parts).encode())
    for wkb in shapely.to_wkb(np.asarray(geoms, dtype=object)):
        digest.update(wkb if wkb is not None else b"\0")
    return digest.hexdigest()


def pack_geometries(geoms: np.ndarray) -> dict[str, np.ndarray]:
    """Geometries as plain arrays (WKB bytes and offsets; -1 length for a missing geometry), for
    :func:`pipeline.io.cached_arrays`; :func:`unpack_geometries` gives them back exactly.
    """
    wkb = shapely.to_wkb(np.asarray(geoms, dtype=object))
    lengths = np.array([-1 if w is None else len(w) for w in wkb], dtype=np.int64)
    blob = b"".join(w for w in wkb if w is not None)
    return {"wkb": np.frombuffer(blob, dtype=np.uint8), "lengths": lengths}


def unpack_geometries(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """Inverse of :func:`pack_geometries`."""
    lengths, blob = arrays["lengths"], arrays["wkb"].tobytes()
    ends = np.cumsum(np.maximum(lengths, 0))
    wkb = np.array(
        [None if n < 0 else blob[e - n : e] for n, e in zip(lengths, ends)], dtype=object
    )
    out = np.full(len(wkb), None, dtype=object)
    present = lengths >= 0
    out[present] = shapely.from_wkb(wkb[present])
    return out
