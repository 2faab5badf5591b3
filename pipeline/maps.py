"""Self-contained interactive maps (folium/Leaflet), in French.

Every map embeds Leaflet's script and style (from the npm package, see :mod:`pipeline.vendor`):
it draws with no network; base tiles are optional decoration. Geometries are simplified once, at
commune level, with a coverage simplification that keeps shared borders, and every other layer
(CPTS, white zones, candidates) is the union of simplified communes — no gap or sliver between
neighbours. Coordinates are rounded. Element ids are numbered, so the same data gives the same HTML.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .geo import WGS84, by_zone

TIER_COLOURS = {"T1": "#9ecae1", "T2": "#4292c6", "T3": "#2171b5", "T4": "#08306b"}
WHITE_ZONE = "#e31a1c"
OVERLAP = "#6a3d9a"
CANDIDATE = "#ff7f00"
EXTENSION = "#33a02c"
DENSITY_COLOURS = ["#ffffd4", "#fee391", "#fec44f", "#fe9929", "#d95f0e", "#993404"]


def euros(value) -> str:
    return f"{int(value):,} €".replace(",", " ") if pd.notna(value) else "—"


def people(value) -> str:
    return f"{int(value):,}".replace(",", " ") if pd.notna(value) else "—"


def simplify_communes(coverage: gpd.GeoDataFrame, *, tolerance_m: float, decimals: int) -> gpd.GeoDataFrame:
    """Commune geometries simplified zone by zone keeping shared borders, in WGS84, rounded."""
    parts = []
    for _epsg, zone in by_zone(coverage):
        geoms = zone.geometry.to_numpy()
        present = ~pd.isna(geoms)
        simple = geoms.copy()
        simple[present] = shapely.coverage_simplify(geoms[present], tolerance_m)
        parts.append(gpd.GeoDataFrame(zone.drop(columns="geometry"), geometry=simple, crs=zone.crs).to_crs(WGS84))
    out = gpd.GeoDataFrame(pd.concat(parts), crs=WGS84).loc[coverage.index]
    return out.set_geometry(round_coordinates(out.geometry.to_numpy(), decimals))


def round_coordinates(geoms: np.ndarray, decimals: int) -> np.ndarray:
    """Snap coordinates to a 10^-decimals grid with GEOS's precision reducer: the same vertex
    lands on the same grid point in every geometry (shared borders stay shared) and the result
    is always valid (plain rounding can make a ring cross itself)."""
    present = ~pd.isna(geoms)
    out = geoms.copy()
    out[present] = shapely.set_precision(geoms[present].astype(object), 10.0 ** -decimals)
    return out


def union_by(simple: gpd.GeoDataFrame, groups: pd.Series, decimals: int) -> gpd.GeoSeries:
    """Union of simplified communes per group label (a commune may be in several groups, joined by ';')."""
    exploded = simple.assign(_g=groups.str.split(";")).explode("_g")
    exploded = exploded[exploded["_g"].notna() & (exploded["_g"] != "") & exploded.geometry.notna()]
    merged = exploded.dissolve("_g", sort=True).geometry
    return gpd.GeoSeries(round_coordinates(merged.to_numpy(), decimals), index=merged.index, crs=WGS84)


def collection(frame: gpd.GeoDataFrame, properties: list[str]) -> dict:
    """A GeoJSON FeatureCollection with only ``properties`` (strings) and valid geometries."""
    features = []
    for row, geom in zip(frame[properties].itertuples(index=False), frame.geometry):
        if geom is None or geom.is_empty:
            continue
        props = {k: ("" if pd.isna(v) else str(v)) for k, v in zip(properties, row)}
        features.append({"type": "Feature", "properties": props, "geometry": json.loads(shapely.to_geojson(geom))})
    return {"type": "FeatureCollection", "features": features}


@dataclass
class MapData:
    """Everything one map shows, already simplified, in WGS84, with French display columns."""

    communes: gpd.GeoDataFrame     # statut, densité, tooltips
    cpts: gpd.GeoDataFrame         # existing CPTS by tier
    white_zones: gpd.GeoDataFrame  # patches
    overlaps: gpd.GeoDataFrame     # communes claimed by several CPTS
    territories: gpd.GeoDataFrame  # candidates and extensions
    example: bool
    indicator_label: str


def _density_classes(values: pd.Series) -> tuple[np.ndarray, list[float]]:
    finite = values[np.isfinite(values)]
    edges = list(np.unique(np.quantile(finite, np.linspace(0, 1, len(DENSITY_COLOURS) + 1)))) if len(finite) else [0, 1]
    classes = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(DENSITY_COLOURS) - 1)
    return classes, edges


def _compact_json() -> None:
    """Write the embedded GeoJSON without spaces (folium's templates share one jinja environment;
    its ``tojson`` filter reads this policy): about 10 % smaller maps."""
    folium.GeoJson._template.environment.policies["json.dumps_kwargs"] = {"sort_keys": True,
                                                                          "separators": (",", ":")}


def build_map(data: MapData, *, title: str, leaflet: tuple[str, str]) -> folium.Map:
    """A folium map with the five layers, tooltips, legend, layer control and a commune search."""
    _compact_json()
    bounds = data.communes.total_bounds
    fmap = folium.Map(tiles=None, control_scale=True, prefer_canvas=False, zoom_snap=0.25)
    fmap.default_js, fmap.default_css = [], []  # no CDN: Leaflet is inlined below
    js, css = leaflet
    fmap.get_root().header.add_child(folium.Element(f"<style>{css}</style><script>{js}</script>"
                                                    f"<style>{PAGE_CSS}</style>"))
    folium.TileLayer("OpenStreetMap", name="Fond OpenStreetMap (en ligne, facultatif)", show=False,
                     overlay=True, control=True).add_to(fmap)

    communes = data.communes.copy()
    classes, edges = _density_classes(communes["indicateur"].astype(float))
    communes["_colour"] = [DENSITY_COLOURS[c] for c in classes]
    suffix = " (EXEMPLE)" if data.example else ""
    layers = [
        (f"Indicateur : {data.indicator_label}", communes, False,
         {"nom": "Commune", "code_commune": "Code INSEE", "population_txt": "Population", "statut_txt": "Statut",
          "cpts_txt": "CPTS", "indicateur_txt": data.indicator_label},
         lambda f: {"fillColor": f["properties"]["_colour"], "color": "#777", "weight": 0.3, "fillOpacity": 0.75}),
        (f"CPTS existantes par palier ACI{suffix}", data.cpts, True,
         {"nom": "CPTS", "population_txt": "Population", "tier": "Palier ACI",
          "envelope_txt": "Enveloppe annuelle max.", "n_communes": "Communes", "indicateur_txt": data.indicator_label},
         lambda f: {"fillColor": TIER_COLOURS.get(f["properties"]["tier"], "#999"), "color": "#08306b", "weight": 1,
                    "fillOpacity": 0.55}),
        ("Zones blanches (aucune CPTS)", data.white_zones, True,
         {"patch_id": "Zone blanche", "population_txt": "Population", "n_communes": "Communes",
          "cpts_limitrophes_txt": "CPTS limitrophes"},
         lambda f: {"fillColor": WHITE_ZONE, "color": WHITE_ZONE, "weight": 1.5, "fillOpacity": 0.45}),
        ("Chevauchements (communes revendiquées par plusieurs CPTS)", data.overlaps, True,
         {"nom": "Commune", "population_txt": "Population", "cpts_txt": "CPTS concernées",
          "proposition_txt": "Proposition"},
         lambda f: {"fillColor": OVERLAP, "color": OVERLAP, "weight": 1.5, "fillOpacity": 0.6}),
        ("Territoires proposés (candidats et extensions)", data.territories, True,
         {"territory_id": "Territoire", "nom": "Nom", "kind_txt": "Type", "population_txt": "Population",
          "tier": "Palier ACI", "envelope_txt": "Enveloppe annuelle max.", "motif": "Remarque"},
         lambda f: {"fillColor": f["properties"]["_colour"], "color": f["properties"]["_colour"], "weight": 2.5,
                    "dashArray": "6 4", "fillOpacity": 0.15}),
    ]
    added = {}
    for name, frame, show, fields, style in layers:
        extra = ["_colour"] if "_colour" in frame.columns else []
        features = collection(frame, list(fields) + extra)
        if not features["features"]:
            continue  # nothing of this kind on this map: no empty layer
        added[name] = folium.GeoJson(
            features, name=name, show=show, style_function=style,
            highlight_function=lambda f: {"weight": 3, "fillOpacity": 0.7},
            tooltip=folium.GeoJsonTooltip(list(fields), aliases=list(fields.values()))).add_to(fmap)
    layer_communes = added[layers[0][0]]
    folium.LayerControl(collapsed=False).add_to(fmap)
    fmap.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])
    _number_ids(fmap.get_root())
    # plain elements added after the numbering: their own ids are never written to the page
    root = fmap.get_root()
    root.html.add_child(folium.Element(_legend(title, data, edges)))
    root.html.add_child(folium.Element(_search_box(communes)))
    root.script.add_child(folium.Element(_search_script(fmap.get_name(), layer_communes.get_name())))
    return fmap


def _number_ids(element, counter=None) -> None:
    """Replace folium's random element ids by a counter: same data, same HTML bytes."""
    counter = counter if counter is not None else [0]
    element._id = f"{counter[0]:06d}"
    counter[0] += 1
    children = list(element._children.values())
    for child in children:
        _number_ids(child, counter)
    element._children = {child.get_name(): child for child in children}
    if hasattr(element, "header"):
        for part in (element.header, element.html, element.script):
            _number_ids(part, counter)


PAGE_CSS = """
.cpts-panel{position:fixed;z-index:1000;background:rgba(255,255,255,.95);padding:8px 10px;border-radius:4px;
 box-shadow:0 1px 4px rgba(0,0,0,.35);font:12px/1.35 system-ui,sans-serif;color:#222}
.cpts-legend{bottom:28px;right:10px;max-width:300px;max-height:60vh;overflow:auto}
.cpts-search{top:10px;left:54px}
.cpts-legend h4{margin:0 0 4px;font-size:13px}
.cpts-legend i{display:inline-block;width:14px;height:12px;margin-right:5px;vertical-align:middle;border:1px solid #555}
.cpts-example{color:#b00;font-weight:bold}
"""


def _legend(title: str, data: MapData, edges: list[float]) -> str:
    rows = "".join(f'<div><i style="background:{c}"></i>{t}</div>' for t, c in TIER_COLOURS.items())
    dens = "".join(f'<div><i style="background:{c}"></i>{edges[k]:,.0f} – {edges[k + 1]:,.0f}</div>'.replace(",", " ")
                   for k, c in enumerate(DENSITY_COLOURS[: len(edges) - 1]))
    warning = ('<div class="cpts-example">EXEMPLE : périmètres CPTS fictifs construits à partir des EPCI, '
               'pas des CPTS réelles.</div>' if data.example else "")
    return f"""<div class="cpts-panel cpts-legend" id="cpts-legend"><h4>{html.escape(title)}</h4>{warning}
<div><b>CPTS existantes – palier ACI</b></div>{rows}
<div><i style="background:{WHITE_ZONE}"></i>Zone blanche (aucune CPTS)</div>
<div><i style="background:{OVERLAP}"></i>Chevauchement (plusieurs CPTS)</div>
<div><i style="background:#fff;border:2px dashed {CANDIDATE}"></i>Territoire candidat</div>
<div><i style="background:#fff;border:2px dashed {EXTENSION}"></i>Extension d'une CPTS existante</div>
<div style="margin-top:4px"><b>{html.escape(data.indicator_label)}</b> (couche « Indicateur »)</div>{dens}</div>"""


def _search_box(communes: gpd.GeoDataFrame) -> str:
    options = "".join(f'<option value="{html.escape(n)} ({c})"></option>'
                      for n, c in sorted(zip(communes["nom"], communes["code_commune"])))
    return (f'<div class="cpts-panel cpts-search"><label for="cpts-find">Trouver une commune : </label>'
            f'<input id="cpts-find" list="cpts-communes" size="28" placeholder="nom ou code INSEE">'
            f'<datalist id="cpts-communes">{options}</datalist></div>')


def _search_script(map_name: str, layer_name: str) -> str:
    return f"""document.addEventListener("DOMContentLoaded", function () {{
  var input = document.getElementById("cpts-find");
  input.addEventListener("change", function () {{
    var m = /\\(([0-9AB]{{5}})\\)$/.exec(input.value.trim()) || [null, input.value.trim()];
    {layer_name}.eachLayer(function (layer) {{
      if (layer.feature.properties.code_commune === m[1]) {{
        {map_name}.fitBounds(layer.getBounds(), {{maxZoom: 12}});
        layer.openTooltip(layer.getBounds().getCenter());
      }}
    }});
  }});
}});"""


def map_data(coverage: gpd.GeoDataFrame, cpts: gpd.GeoDataFrame, white_zones: gpd.GeoDataFrame,
             overlaps: pd.DataFrame, territories: gpd.GeoDataFrame, members: pd.DataFrame, *,
             tolerance_m: float, decimals: int,
             indicator: pd.Series, indicator_label: str, example: bool) -> MapData:
    """Prepare the layers of a map from the stage outputs (pure)."""
    simple = simplify_communes(coverage, tolerance_m=tolerance_m, decimals=decimals)
    names = dict(zip(cpts["cpts_id"], cpts["cpts_nom"]))
    status_fr = {"couverte": "couverte", "zone_blanche": "zone blanche", "chevauchement": "chevauchement"}
    communes = simple.assign(
        population_txt=simple["population"].map(people), statut_txt=simple["statut"].map(status_fr),
        cpts_txt=simple["cpts_ids"].map(lambda s: " ; ".join(names.get(c, c) for c in s.split(";") if c)),
        indicateur=indicator.to_numpy(), indicateur_txt=[f"{v:,.1f}".replace(",", " ") if np.isfinite(v) else
                                                          "indisponible" for v in indicator.to_numpy()])
    cpts_shapes = union_by(simple, simple["cpts_ids"], decimals)
    cpts_layer = gpd.GeoDataFrame(cpts.drop(columns="geometry"), geometry=cpts["cpts_id"].map(cpts_shapes).to_numpy(),
                                  crs=WGS84)
    cpts_layer = cpts_layer.assign(population_txt=cpts_layer["population"].map(people),
                                   envelope_txt=cpts_layer["envelope_eur"].map(euros),
                                   indicateur_txt=cpts_layer["indicateur_txt"] if "indicateur_txt" in cpts_layer
                                   else "indisponible",
                                   nom=cpts_layer["cpts_nom"])
    patch_shapes = union_by(simple, simple["patch_id"].fillna(""), decimals)
    zones = gpd.GeoDataFrame(white_zones.drop(columns="geometry"),
                             geometry=white_zones["patch_id"].map(patch_shapes).to_numpy(), crs=WGS84)
    zones = zones.assign(population_txt=zones["population"].map(people),
                         cpts_limitrophes_txt=zones["cpts_limitrophes"].map(
                             lambda s: " ; ".join(names.get(c, c) for c in s.split(";") if c) or "aucune"))
    proposals = overlaps.groupby("code_commune")["proposition"].agg(lambda s: " ; ".join(sorted({names.get(c, c) for c in s})))
    over = communes[communes["statut"] == "chevauchement"].copy()
    over["proposition_txt"] = over["code_commune"].map(proposals).fillna("")
    terr = territories[territories["kind"] != "cpts_existante"]
    shapes = union_by(simple, territory_groups(coverage, territories, members), decimals)
    own = gpd.GeoSeries(terr.geometry.to_numpy(), crs=territories.crs).to_crs(WGS84)  # IRIS-based parts
    geometry = [shapes.get(tid, g) for tid, g in zip(terr["territory_id"], round_coordinates(own.to_numpy(), decimals))]
    terr = gpd.GeoDataFrame(terr.drop(columns="geometry"), geometry=geometry, crs=WGS84)
    terr = terr.assign(population_txt=terr["population"].map(people), envelope_txt=terr["envelope_eur"].map(euros),
                       kind_txt=terr["kind"].map({"candidate": "candidat", "extension": "extension de CPTS"}),
                       _colour=terr["kind"].map({"candidate": CANDIDATE, "extension": EXTENSION}))
    return MapData(communes, cpts_layer, zones, over, terr, example, indicator_label)


def territory_groups(coverage: pd.DataFrame, territories: pd.DataFrame, members: pd.DataFrame) -> pd.Series:
    """For each commune, the proposed territories (candidates, extensions; ``;``-joined) that contain
    it, from :func:`pipeline.territories.territory_communes`. IRIS parts are drawn from their own
    geometry."""
    from .territories import territory_communes

    proposed = set(territories.loc[territories["kind"] != "cpts_existante", "territory_id"])
    rows = territory_communes(coverage, territories, members)
    rows = rows[rows["territory_id"].isin(proposed)]
    joined = rows.groupby("code_commune")["territory_id"].agg(lambda s: ";".join(sorted(s)))
    return coverage["code_commune"].map(joined).fillna("").set_axis(coverage.index)
