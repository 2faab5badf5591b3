"""The GeoPackage as QGIS opens it, on real communes: Lambert-93 for metropolitan France, each
overseas zone in its own layer and CRS, valid geometries, labels, descriptions and styles."""

from __future__ import annotations

import sqlite3

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely

from pipeline.analysis.communes import build_communes
from pipeline.config import Scope
from pipeline.errors import PipelineError
from pipeline.outputs import gpkg

from .conftest import CRS


@pytest.fixture(scope="module")
def aude_reunion(raw):
    """The communes of the Aude and of La Réunion, in WGS84 as a national run stores them."""
    communes = build_communes(raw, Scope.parse("dep:11,974"), **CRS)[0]
    return communes.to_crs(4326)


def layers_of(communes: gpd.GeoDataFrame) -> dict[str, gpd.GeoDataFrame]:
    status = communes[["code_commune", "nom", "code_departement", "epsg", "geometry"]].assign(
        statut=["zone_blanche" if k % 3 else "couverte" for k in range(len(communes))]
    )
    # a territory of each département, the Aude's drawn as a bow tie (invalid)
    x, y = 2.35, 43.21
    bowtie = shapely.Polygon([(x, y), (x + 0.1, y + 0.1), (x + 0.1, y), (x, y + 0.1)])
    reunion = shapely.union_all(communes.loc[communes["code_departement"] == "974"].geometry)
    territories = gpd.GeoDataFrame(
        {
            "id_territoire": ["CAND-11-001", "CAND-974-001"],
            "type_territoire": ["candidate", "cpts_existante"],
            "departements": ["11", "974"],
        },
        geometry=[bowtie, reunion],
        crs=4326,
    )
    return {"communes_statut": status, "territoires": territories}


def test_layers_in_lambert93_and_overseas_crs_all_valid(aude_reunion):
    layers = gpkg.projected_layers(layers_of(aude_reunion), aude_reunion)
    assert {k: v.crs.to_epsg() for k, v in layers.items()} == {
        "communes_statut": 2154,
        "communes_statut_reunion": 2975,
        "territoires": 2154,
        "territoires_reunion": 2975,
    }
    assert set(layers["communes_statut"]["code_departement"]) == {"11"}
    assert (
        len(layers["communes_statut_reunion"]) == (aude_reunion["code_departement"] == "974").sum()
    )
    for frame in layers.values():
        assert shapely.is_valid(frame.geometry.to_numpy()).all()
    repaired = layers["territoires"].geometry.iloc[0]
    assert repaired.geom_type in ("Polygon", "MultiPolygon") and repaired.area > 0
    assert layers["territoires"]["type_territoire_libelle"].tolist() == ["candidat"]
    assert set(layers["communes_statut"]["statut_libelle"]) == {"zone blanche", "couverte"}


def test_an_invalid_geometry_left_fails_with_one_line(aude_reunion):
    frame = gpd.GeoDataFrame(
        {"id_territoire": ["X"]},
        geometry=[shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])],
        crs=2154,
    )
    with pytest.raises(
        PipelineError, match=r"layer territoires: 1 invalid .*\(X: Self-intersection"
    ):
        gpkg.check_valid({"territoires": frame})


def test_written_with_descriptions_and_default_styles(aude_reunion, tmp_path):
    layers = gpkg.projected_layers(layers_of(aude_reunion), aude_reunion)
    target = gpkg.write(tmp_path / "diagnostic.gpkg", layers)
    again = gpkg.write(tmp_path / "again.gpkg", layers)
    assert target.read_bytes() == again.read_bytes(), "same layers, same bytes"
    listed = {name: kind for name, kind in pyogrio.list_layers(target)}
    assert set(listed) == set(layers) | {"layer_styles"}
    for name in layers:
        back = gpd.read_file(target, layer=name)
        assert back.crs.to_epsg() == layers[name].crs.to_epsg()
        assert shapely.is_valid(back.geometry.to_numpy()).all()
    with sqlite3.connect(target) as db:
        contents = dict(db.execute("SELECT table_name, description FROM gpkg_contents"))
        fields = pd.read_sql("SELECT * FROM gpkg_data_columns", db)
        styles = pd.read_sql("SELECT * FROM layer_styles", db)
        extension = db.execute(
            "SELECT extension_name FROM gpkg_extensions WHERE table_name = 'gpkg_data_columns'"
        ).fetchall()
    assert contents["communes_statut"].startswith("Communes (unités de couverture)")
    assert contents["territoires_reunion"].endswith("(reunion)")
    assert extension == [("gpkg_schema",)]
    described = fields.set_index(["table_name", "column_name"])["description"]
    assert described["communes_statut", "code_commune"] == "Code commune (INSEE)"
    assert described["territoires", "type_territoire_libelle"] == "Type de territoire"
    assert set(styles["f_table_name"]) == set(layers) and styles["useAsDefault"].all()
    qml = styles.set_index("f_table_name")["styleQML"]
    assert (
        'attr="type_territoire"' in qml["territoires"] and 'label="candidat"' in qml["territoires"]
    )
    assert "<renderer-v2" in qml["communes_statut_reunion"]
