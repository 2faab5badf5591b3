"""Coordinate reference systems by zone: Lambert-93 for metropolitan France, a local projected CRS
for each DROM.

A table whose communes all lie in one zone is stored in that zone's projected CRS; a table spanning
several zones (all of France) is stored in WGS84 (EPSG:4326) with an ``epsg`` column giving each
commune's projected CRS. Code that measures (areas, distances, adjacency) goes through
:func:`by_zone`, which hands out one projected frame per zone either way.
"""

from __future__ import annotations

from collections.abc import Iterator

import geopandas as gpd
import numpy as np
import shapely

WGS84 = 4326


def zone_epsg(
    departements: np.ndarray | list[str], *, metropole: int, drom: dict[str, int]
) -> np.ndarray:
    """Projected EPSG code of each commune from its département code."""
    return np.array([int(drom.get(str(d), metropole)) for d in departements], dtype=np.int64)


def storage_crs(epsg: np.ndarray) -> int:
    """The CRS a table is stored in: its zone's when there is one zone, WGS84 otherwise."""
    zones = np.unique(epsg)
    return int(zones[0]) if len(zones) == 1 else WGS84


def by_zone(frame: gpd.GeoDataFrame) -> Iterator[tuple[int, gpd.GeoDataFrame]]:
    """Yield ``(epsg, rows of that zone projected to it)`` in ascending EPSG order."""
    for epsg in sorted(np.unique(frame["epsg"])):
        part = frame[frame["epsg"] == epsg]
        yield (
            int(epsg),
            (part if part.crs is not None and part.crs.to_epsg() == epsg else part.to_crs(epsg)),
        )


def polygonal(geoms: np.ndarray) -> np.ndarray:
    """Keep the polygonal parts of each geometry (e.g. after make_valid) as MultiPolygons."""
    out = np.empty(len(geoms), dtype=object)
    for k, geom in enumerate(geoms):
        if geom is None or shapely.is_empty(geom):
            out[k] = None
            continue
        parts = shapely.get_parts(geom)
        polys = [p for p in parts if p.geom_type in ("Polygon", "MultiPolygon")]
        flat = [q for p in polys for q in shapely.get_parts(p)]
        out[k] = shapely.MultiPolygon(flat) if flat else None
    return out
