"""The GeoPackage for QGIS (``data/processed/diagnostic.gpkg``): layers in a projected CRS, valid
geometries, French labels beside the codes, layer and field descriptions and a default style.

* **CRS**: the metropolitan features of a layer are in Lambert-93 (EPSG:2154) under the layer's
  name; the features of an overseas département are in a layer of their own, in its CRS
  (``[communes] crs_drom``), named ``<layer>_<zone>`` (``communes_statut_reunion``): one CRS per
  layer, as QGIS and the GeoPackage standard expect.
* **Validity**: every geometry is made valid (its polygonal part kept) and checked; a geometry
  still invalid fails the run (:func:`check_valid`).
* **Codes and labels**: a code column (``statut``, ``type_territoire``, ``palier``) keeps its
  codes, a ``<column>_libelle`` column beside it says it in French.
* **Descriptions and styles**: ``gpkg_contents.description`` describes each layer,
  ``gpkg_data_columns`` (the schema extension) each field, and a ``layer_styles`` table (the one
  QGIS reads and writes) holds a default QML style per layer.
"""

from __future__ import annotations

import html
import sqlite3
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..errors import PipelineError
from ..geo import polygonal
from ..io import atomic_path, write_geopackage
from . import maps
from .reports import column_label

METROPOLE = 2154
ZONE_NAMES = {5490: "antilles", 2972: "guyane", 2975: "reunion", 4471: "mayotte"}
FIXED_TIME = "2000-01-01T00:00:00.000Z"  # as GDAL's OGR_CURRENT_DATE in io.write_geopackage

LAYERS = {
    "communes_statut": "Communes (unités de couverture) et leur statut : couverte par une CPTS, "
    "en zone blanche ou en chevauchement",
    "zones_blanches": "Zones blanches : ensembles contigus de communes couvertes par aucune CPTS",
    "cpts": "CPTS existantes (périmètres du fichier fourni, ou EXEMPLE), palier et enveloppe ACI",
    "chevauchements": "Communes comptées dans deux CPTS, et la proposition de rattachement",
    "territoires": "Territoires : CPTS existantes, extensions proposées et candidats à la création",
}
LABELS = {
    "statut": {
        "couverte": "couverte",
        "zone_blanche": "zone blanche",
        "chevauchement": "chevauchement",
    },
    "type_territoire": {
        "cpts_existante": "CPTS existante",
        "extension": "extension de CPTS",
        "candidate": "candidat",
        "zone_blanche": "zone blanche",
    },
}
# Field descriptions beyond the report labels (:func:`pipeline.outputs.reports.column_label`)
FIELDS = {
    "statut": "Statut de la commune (code)",
    "statut_libelle": "Statut de la commune",
    "type_territoire_libelle": "Type de territoire",
    "type_territoire": "Type de territoire (code)",
    "id_zone_blanche": "Zone blanche",
    "n_cpts": "Nombre de CPTS qui la citent",
    "cpts_ids": "CPTS qui la citent (identifiants)",
    "epsg": "Système de coordonnées de calcul (code EPSG)",
    "n_communes": "Nombre de communes",
    "departements": "Départements",
    "cpts_a": "Première CPTS",
    "cpts_b": "Seconde CPTS",
    "proposition": "Proposition de rattachement",
}
# (column, {code: colour}) of each layer's default style; a single fill when no column
STYLES = {
    "communes_statut": (
        "statut",
        {
            "couverte": maps.TIER_COLOURS["T1"],
            "zone_blanche": maps.WHITE_ZONE,
            "chevauchement": maps.OVERLAP,
        },
    ),
    "zones_blanches": (None, {"": maps.WHITE_ZONE}),
    "cpts": ("palier", dict(maps.TIER_COLOURS)),
    "chevauchements": (None, {"": maps.OVERLAP}),
    "territoires": (
        "type_territoire",
        {
            "cpts_existante": maps.TIER_COLOURS["T2"],
            "extension": maps.EXTENSION,
            "candidate": maps.CANDIDATE,
            "zone_blanche": maps.WHITE_ZONE,
        },
    ),
}


def with_labels(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The layer with a French ``<column>_libelle`` beside each code column of :data:`LABELS`.

    Parameters
    ----------
    frame : GeoDataFrame

    Returns
    -------
    GeoDataFrame
    """
    out = frame.copy()
    for column, words in LABELS.items():
        if column in out.columns:
            labels = out[column].map(lambda v, w=words: w.get(v, v) if isinstance(v, str) else v)
            out.insert(out.columns.get_loc(column) + 1, f"{column}_libelle", labels)
    return out


def zone_of(name: str, frame: gpd.GeoDataFrame, coverage: pd.DataFrame) -> np.ndarray:
    """The EPSG code of the zone of each feature: its commune's, else its (first) département's.

    Parameters
    ----------
    name : str
        The layer's name.
    frame : GeoDataFrame
        The layer.
    coverage : DataFrame
        The communes (``code_commune``, ``code_departement``, ``epsg``).

    Returns
    -------
    ndarray of int
    """
    if "epsg" in frame.columns:
        return frame["epsg"].to_numpy(dtype=np.int64)
    if "code_commune" in frame.columns:
        zones = dict(zip(coverage["code_commune"], coverage["epsg"]))
        return frame["code_commune"].map(zones).fillna(METROPOLE).to_numpy(dtype=np.int64)
    zones = dict(zip(coverage["code_departement"], coverage["epsg"]))
    first = frame["departements"].fillna("").astype(str).str.split(";").str[0]
    return first.map(zones).fillna(METROPOLE).to_numpy(dtype=np.int64)


def valid_polygons(geoms: np.ndarray) -> np.ndarray:
    """Geometries made valid, keeping their polygonal part (a repair may add lines or points).

    Parameters
    ----------
    geoms : ndarray of shapely geometries

    Returns
    -------
    ndarray
    """
    geoms = np.asarray(geoms, dtype=object).copy()
    bad = ~pd.isna(geoms) & ~shapely.is_valid(geoms)
    if bad.any():
        geoms[bad] = polygonal(shapely.make_valid(geoms[bad]))
    return geoms


def check_valid(layers: dict[str, gpd.GeoDataFrame]) -> None:
    """Fail when a geometry of a layer is invalid.

    Parameters
    ----------
    layers : dict of GeoDataFrame

    Raises
    ------
    PipelineError
        Naming the layer and the first invalid features.
    """
    for name, frame in layers.items():
        geoms = frame.geometry.to_numpy()
        bad = np.flatnonzero(~pd.isna(geoms) & ~shapely.is_valid(geoms))
        if len(bad):
            first = frame.iloc[bad[:3], 0].astype(str).tolist()
            raise PipelineError(
                f"GeoPackage layer {name}: {len(bad)} invalid geometr(y/ies) after repair "
                f"({', '.join(first)}: {shapely.is_valid_reason(geoms[bad[0]])}); report it with "
                "the perimeter file"
            )


def projected_layers(
    layers: dict[str, gpd.GeoDataFrame], coverage: pd.DataFrame
) -> dict[str, gpd.GeoDataFrame]:
    """Every layer with French labels and valid geometries, its metropolitan features in
    Lambert-93 and those of each overseas zone in a layer of their own, in the zone's CRS.

    Parameters
    ----------
    layers : dict of GeoDataFrame
        Layer name → features (any CRS).
    coverage : DataFrame
        The communes (for the zone of each feature: :func:`zone_of`).

    Returns
    -------
    dict of GeoDataFrame
        Checked by :func:`check_valid`.
    """
    out = {}
    for name, frame in layers.items():
        frame = with_labels(frame)
        zones = zone_of(name, frame, coverage)
        for epsg in sorted(set(zones.tolist()), key=lambda e: (e != METROPOLE, e)):
            part = frame[zones == epsg].to_crs(epsg)
            part = part.set_geometry(valid_polygons(part.geometry.to_numpy()), crs=part.crs)
            key = name if epsg == METROPOLE else f"{name}_{ZONE_NAMES.get(epsg, epsg)}"
            out[key] = part
    check_valid(out)
    return out


def field_description(column: str) -> str:
    """The French description of a field (its report label when it has one)."""
    return FIELDS.get(column) or column_label(column)


def qml(layer: str) -> str:
    """The default QGIS style (QML) of a layer: categories of its code column in the map's
    colours (:data:`STYLES`), or one fill; outlines grey, fills half transparent.

    Parameters
    ----------
    layer : str
        The layer's name (an overseas layer has its metropolitan layer's style).

    Returns
    -------
    str
    """
    base = next((n for n in STYLES if layer == n or layer.startswith(n + "_")), None)
    column, colours = STYLES.get(base, (None, {"": "#888888"}))
    words = LABELS.get(column or "", {})

    def symbol(k: int, colour: str) -> str:
        rgb = ",".join(str(int(colour.lstrip("#")[i : i + 2], 16)) for i in (0, 2, 4))
        return (
            f'<symbol type="fill" name="{k}" alpha="0.6"><layer class="SimpleFill">'
            f'<Option type="Map"><Option type="QString" name="color" value="{rgb},255"/>'
            '<Option type="QString" name="outline_color" value="90,90,90,255"/>'
            '<Option type="QString" name="outline_width" value="0.2"/>'
            '<Option type="QString" name="style" value="solid"/></Option></layer></symbol>'
        )

    if column is None:
        renderer = (
            '<renderer-v2 type="singleSymbol"><symbols>'
            + symbol(0, colours[""])
            + "</symbols></renderer-v2>"
        )
    else:
        categories = "".join(
            f'<category value="{html.escape(code)}" symbol="{k}" render="true" '
            f'label="{html.escape(words.get(code, code))}"/>'
            for k, code in enumerate(colours)
        )
        symbols = "".join(symbol(k, c) for k, c in enumerate(colours.values()))
        renderer = (
            f'<renderer-v2 type="categorizedSymbol" attr="{column}">'
            f"<categories>{categories}</categories><symbols>{symbols}</symbols></renderer-v2>"
        )
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>"
        f'<qgis version="3.28" styleCategories="Symbology">{renderer}</qgis>'
    )


def describe(path: str | Path, layers: dict[str, gpd.GeoDataFrame]) -> None:
    """Add the layer and field descriptions and the default styles to a written GeoPackage.

    Parameters
    ----------
    path : str or Path
        The GeoPackage (a temporary copy: see :func:`write`).
    layers : dict of GeoDataFrame
        What was written in it.
    """
    with sqlite3.connect(path) as db:
        geometry = dict(db.execute("SELECT table_name, column_name FROM gpkg_geometry_columns"))
        db.execute(
            "CREATE TABLE IF NOT EXISTS gpkg_data_columns (table_name TEXT NOT NULL, "
            "column_name TEXT NOT NULL, name TEXT, title TEXT, description TEXT, mime_type TEXT, "
            "constraint_name TEXT, CONSTRAINT pk_gdc PRIMARY KEY (table_name, column_name), "
            "CONSTRAINT gdc_tn UNIQUE (table_name, name))"
        )
        db.execute(
            "INSERT OR IGNORE INTO gpkg_extensions (table_name, column_name, extension_name, "
            "definition, scope) VALUES ('gpkg_data_columns', NULL, 'gpkg_schema', "
            "'http://www.geopackage.org/spec121/#extension_schema', 'read-write')"
        )
        db.execute(
            "CREATE TABLE IF NOT EXISTS layer_styles (id INTEGER PRIMARY KEY AUTOINCREMENT, "
            "f_table_catalog TEXT(256), f_table_schema TEXT(256), f_table_name TEXT(256), "
            "f_geometry_column TEXT(256), styleName TEXT(30), styleQML TEXT, styleSLD TEXT, "
            "useAsDefault BOOLEAN, description TEXT, owner TEXT(30), ui TEXT(30), "
            "update_time DATETIME)"
        )
        db.execute(
            "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, description, "
            "last_change) VALUES ('layer_styles', 'attributes', 'layer_styles', "
            f"'Styles QGIS par défaut des couches', '{FIXED_TIME}')"
        )
        for name, frame in layers.items():
            base = next((n for n in LAYERS if name == n or name.startswith(n + "_")), name)
            zone = "" if name == base else f" ({name.removeprefix(base + '_')})"
            db.execute(
                "UPDATE gpkg_contents SET description = ?, identifier = ? WHERE table_name = ?",
                (LAYERS.get(base, name) + zone, name, name),
            )
            for column in frame.columns:
                if column == frame.geometry.name:
                    continue
                label = field_description(column)
                db.execute(
                    "INSERT INTO gpkg_data_columns (table_name, column_name, name, title, "
                    "description) VALUES (?, ?, ?, ?, ?)",
                    (name, column, column, label, label),
                )
            db.execute(
                "INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, "
                "f_geometry_column, styleName, styleQML, styleSLD, useAsDefault, description, "
                "owner, ui, update_time) VALUES ('', '', ?, ?, ?, ?, '', 1, ?, '', '', ?)",
                (
                    name,
                    geometry.get(name, "geom"),
                    f"{name} (diagnostic CPTS)",
                    qml(name),
                    LAYERS.get(base, name),
                    FIXED_TIME,
                ),
            )


def write(target: str | Path, layers: dict[str, gpd.GeoDataFrame]) -> Path:
    """Write the GeoPackage atomically, with its descriptions and styles (:func:`describe`).

    Parameters
    ----------
    target : str or Path
        ``diagnostic.gpkg``.
    layers : dict of GeoDataFrame
        :func:`pipeline.outputs.export.gis_layers` (projected, valid: :func:`projected_layers`).

    Returns
    -------
    Path
        ``target``.
    """
    with atomic_path(target) as tmp:
        write_geopackage(tmp, layers)
        describe(tmp, layers)
    return Path(target)
