"""Self-contained interactive maps (Leaflet), in French.

Every map embeds Leaflet's script and style (from the npm package, see
:mod:`pipeline.sources.vendor`): it draws with no network; base tiles are optional decoration.
Geometries are simplified once per run and per kind of map, at commune level, with a coverage
simplification that keeps shared borders; every other layer (CPTS, white zones, candidates,
département borders) is the union of simplified communes — no gap or sliver between neighbours —
computed once per run; each map takes its slice.

Coordinates are written as integers on a 10^-decimals degree grid, each point as the difference to
the previous one, in a compact variable-length text code (5 bits per character, like Google's
encoded polylines, with the URL-safe base-64 alphabet) that a few lines of JavaScript in the page
decode; properties are stored per column, repeated values once. The page is built from a fixed
template: same data, same bytes.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import shapely

from ..geo import WGS84, polygonal, union_groups
from ..io import script_json

TIER_COLOURS = {"T1": "#9ecae1", "T2": "#4292c6", "T3": "#2171b5", "T4": "#08306b"}
WHITE_ZONE = "#e31a1c"
OVERLAP = "#6a3d9a"
CANDIDATE = "#ff7f00"
EXTENSION = "#33a02c"
REFERENCE = "#555"
DENSITY_COLOURS = ["#ffffd4", "#fee391", "#fec44f", "#fe9929", "#d95f0e", "#993404"]
ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def euros(value) -> str:
    return f"{int(value):,} €".replace(",", " ") if pd.notna(value) else "—"


def people(value) -> str:
    return f"{int(value):,}".replace(",", " ") if pd.notna(value) else "—"


# --------------------------------------------------------------------------- geometry, once per run


def simplify_coverage(geoms: np.ndarray, tolerance_m: float) -> np.ndarray:
    """``shapely.coverage_simplify`` of projected polygons (shared borders stay shared); missing
    geometries stay missing.
    """
    present = ~pd.isna(geoms)
    out = np.array(geoms, dtype=object)
    out[present] = shapely.coverage_simplify(out[present], tolerance_m)
    return out


def union(geoms: np.ndarray):
    """Union of polygons that (nearly) form a coverage, with GEOS's fast coverage union.

    The source's borders do not always match exactly: where the coverage union comes out invalid
    (near-coincident edges), it is repaired with ``make_valid`` (the difference to a full union is
    a few sliver square metres per département, far below a pixel); where two communes overlap
    (the coverage union refuses them), the general, slower union is used.
    """
    geoms = geoms[~pd.isna(geoms)]
    if len(geoms) == 0:
        return None
    if len(geoms) == 1:
        return geoms[0]
    try:
        merged = shapely.coverage_union_all(geoms)
    except shapely.errors.GEOSException:  # overlapping inputs
        return shapely.union_all(geoms)
    return (
        merged
        if shapely.is_valid(merged)
        else shapely.make_valid(merged, method="structure", keep_collapsed=False)
    )


def dissolve(geoms: np.ndarray, rows: np.ndarray, keys: np.ndarray) -> dict:
    """Union of ``geoms[rows]`` per key (string ``keys`` parallel to ``rows``), in key order."""
    rows = np.asarray(rows, dtype=np.int64)
    keys, unions = union_groups(np.asarray(geoms, dtype=object)[rows], keys, union=union)
    return dict(zip(keys.tolist(), unions))


def to_wgs84(geoms: np.ndarray, epsg: int) -> np.ndarray:
    """Projected geometries (EPSG ``epsg``) in WGS84 longitude/latitude."""
    from pyproj import Transformer

    if epsg == WGS84:
        return np.asarray(geoms, dtype=object)
    transformer = Transformer.from_crs(epsg, WGS84, always_xy=True)
    return shapely.transform(
        np.asarray(geoms, dtype=object),
        lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])),
    )


# --------------------------------------------------------------------------- compact encoding


def polygons_only(geoms: np.ndarray) -> np.ndarray:
    """The geometries as Polygons or MultiPolygons (other kinds keep only their polygonal parts)."""
    geoms = np.asarray(geoms, dtype=object)
    other = ~np.isin(shapely.get_type_id(geoms), [3, 6])
    if other.any():
        geoms = geoms.copy()
        geoms[other] = polygonal(geoms[other])
    return geoms


def encode_ints(values) -> str:
    """Signed integers as text: zigzag, then 5 bits per character, low bits first, a 6th bit set on
    every character but a number's last (URL-safe base-64 alphabet; decoded by ``ints`` in the
    page).
    """
    v = np.asarray(values, dtype=np.int64)
    if v.size == 0:
        return ""
    z = ((v << 1) ^ (v >> 63)).astype(np.uint64)
    count = np.ones(len(z), np.int64)
    rest = z >> np.uint64(5)
    while rest.any():
        count += rest > 0
        rest >>= np.uint64(5)
    k = np.arange(int(count.max()))
    chunks = ((z[:, None] >> (np.uint64(5) * k.astype(np.uint64))[None, :]) & np.uint64(31)).astype(
        np.uint8
    )
    chunks |= (k[None, :] < count[:, None] - 1).astype(np.uint8) << 5
    return (
        np.frombuffer(ALPHABET, np.uint8)[chunks[k[None, :] < count[:, None]]]
        .tobytes()
        .decode("ascii")
    )


def encode_geometries(geoms: np.ndarray, decimals: int) -> dict:
    """(Multi)polygons in WGS84 as integer coordinate differences on a 10^-decimals grid.

    Rings lose their closing point and the points that rounding made repeat; ``c`` holds the
    latitude/longitude differences, ``r`` the points per ring, ``p`` the rings per polygon and
    ``f`` the polygons per feature.
    """
    if len(geoms) == 0:
        return {"d": decimals, "c": "", "r": "", "p": "", "f": ""}
    kind, coords, offsets = shapely.to_ragged_array(np.asarray(geoms, dtype=object))
    if kind == shapely.GeometryType.POLYGON:
        ring_off, poly_off = offsets
        per_feature = np.ones(len(geoms), np.int64)
    else:
        ring_off, poly_off, geom_off = offsets
        per_feature = np.diff(geom_off)
    q = np.round(coords * 10.0**decimals).astype(np.int64)
    ring = np.repeat(np.arange(len(ring_off) - 1), np.diff(ring_off))
    closing = np.zeros(len(q), bool)
    closing[ring_off[1:] - 1] = True
    repeated = np.r_[False, (q[1:] == q[:-1]).all(axis=1) & (ring[1:] == ring[:-1])]
    keep = ~closing & ~repeated
    q, ring = q[keep], ring[keep]
    steps = np.diff(q[:, ::-1], axis=0, prepend=np.zeros((1, 2), np.int64))
    return {
        "d": decimals,
        "c": encode_ints(steps.ravel()),
        "r": encode_ints(np.bincount(ring, minlength=len(ring_off) - 1)),
        "p": encode_ints(np.diff(poly_off)),
        "f": encode_ints(per_feature),
    }


def encode_column(values) -> list | dict:
    """A column of strings: as is, or its distinct values once and an index per row when shorter."""
    values = ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in values]
    codes, uniques = pd.factorize(pd.Series(values, dtype=object), sort=False)
    if 2 * len(uniques) < len(values):
        return {"v": list(uniques), "i": encode_ints(codes)}
    return values


# --------------------------------------------------------------------------- what a map shows


@dataclass
class Layer:
    """One switchable layer of polygons with a tooltip.

    ``style`` values starting with ``=`` name the property that holds the value (e.g. a colour).
    """

    code: str
    name: str
    geometry: np.ndarray  # WGS84 (multi)polygons, one per row of ``properties``
    properties: pd.DataFrame  # display strings
    fields: dict[str, str]  # tooltip: property -> label
    style: dict
    show: bool = True


@dataclass
class Reference:
    """A light, non-interactive layer of borders with optional labels (département names)."""

    name: str
    geometry: np.ndarray
    style: dict
    labels: list = field(default_factory=list)  # [lat, lon, text]


@dataclass
class MapPage:
    """Everything one map page shows."""

    title: str
    layers: list[Layer]
    reference: list[Reference]
    views: list[
        tuple[str, tuple[float, float, float, float]]
    ]  # (label, (south, west, north, east)); first = opening
    communes: pd.DataFrame  # nom, code_commune (search box)
    indicator_label: str
    indicator_edges: list[float]
    example: bool
    decimals: int
    label_zoom: float = 0.0  # département names hidden below this zoom
    vintage: str = ""  # the population's vintage, said in the legend
    # extra panels: (key of their data in DATA, data, HTML with their script, run after the map's)
    addons: list[tuple[str, dict, str]] = field(default_factory=list)


def density_classes(values: pd.Series) -> tuple[np.ndarray, list[float]]:
    """Quantile class (0…5) of each value and the class edges."""
    values = np.asarray(values, dtype=float)
    finite = values[np.isfinite(values)]
    edges = (
        list(np.unique(np.quantile(finite, np.linspace(0, 1, len(DENSITY_COLOURS) + 1))))
        if len(finite)
        else [0, 1]
    )
    classes = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(DENSITY_COLOURS) - 1)
    return classes, edges


def bounds_of(geoms: np.ndarray) -> tuple[float, float, float, float]:
    """(south, west, north, east) of WGS84 geometries."""
    minx, miny, maxx, maxy = shapely.total_bounds(np.asarray(geoms, dtype=object))
    return (
        round(float(miny), 5),
        round(float(minx), 5),
        round(float(maxy), 5),
        round(float(maxx), 5),
    )


def drawn(geoms: np.ndarray) -> np.ndarray:
    """Which geometries a layer draws (the others are left out of the page)."""
    return np.array([g is not None and not shapely.is_empty(g) for g in geoms], dtype=bool)


def render_page(page: MapPage, *, leaflet: tuple[str, str]) -> str:
    """The HTML of a map: Leaflet inlined, the data, the legend, the search and go-to boxes."""
    data = {
        "layers": [],
        "reference": [],
        "views": [[label, list(b)] for label, b in page.views],
        "labelZoom": page.label_zoom,
        "osm": "Fond OpenStreetMap (en ligne, facultatif)",
    }
    for layer in page.layers:
        keep = drawn(layer.geometry)
        if not keep.any():
            continue  # nothing of this kind on this map: no empty layer
        props = layer.properties[keep]
        data["layers"].append(
            {
                "code": layer.code,
                "name": layer.name,
                "show": layer.show,
                "style": layer.style,
                "fields": [[k, v] for k, v in layer.fields.items()],
                "props": {c: encode_column(props[c].tolist()) for c in props.columns},
                "geometry": encode_geometries(polygons_only(layer.geometry[keep]), page.decimals),
            }
        )
    for ref in page.reference:
        geoms = polygons_only(ref.geometry[~pd.isna(ref.geometry)])
        data["reference"].append(
            {
                "name": ref.name,
                "style": ref.style,
                "labels": ref.labels,
                "geometry": encode_geometries(geoms, page.decimals),
            }
        )
    for key, value, _ in page.addons:
        data[key] = value
    payload = script_json(data)
    js, css = leaflet
    goto = ""
    if len(page.views) > 1:
        options = "".join(
            f'<option value="{k}">{html.escape(label)}</option>'
            for k, (label, _) in enumerate(page.views)
        )
        goto = (
            f'<div class="cpts-panel cpts-goto"><label for="cpts-goto">Aller à : </label>'
            f'<select id="cpts-goto">{options}</select></div>'
        )
    return (
        f'<!DOCTYPE html>\n<html lang="fr"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(page.title)}</title><style>{css}</style><script>{js}</script>"
        f'<style>{PAGE_CSS}</style></head>\n<body><div id="map"></div>'
        f"{_legend(page)}{_search_box(page.communes)}"
        f"{goto}\n<script>var DATA = {payload};</script>\n<script>{APP_JS}</script>"
        + "".join(addon for _, _, addon in page.addons)
        + "</body></html>\n"
    )


PAGE_CSS = """
html,body{height:100%;margin:0}#map{position:absolute;top:0;bottom:0;left:0;right:0}
.cpts-panel{position:fixed;z-index:1000;background:rgba(255,255,255,.95);padding:8px 10px;\
border-radius:4px;
 box-shadow:0 1px 4px rgba(0,0,0,.35);font:12px/1.35 system-ui,sans-serif;color:#222}
.cpts-legend{bottom:28px;right:10px;max-width:300px;max-height:60vh;overflow:auto}
.cpts-search{top:10px;left:54px}.cpts-goto{top:50px;left:54px}
.cpts-legend h4{margin:0 0 4px;font-size:13px}
.cpts-legend i{display:inline-block;width:14px;height:12px;margin-right:5px;vertical-align:middle;\
border:1px solid #555}
.cpts-example{color:#b00;font-weight:bold}
.leaflet-tooltip table{border-collapse:collapse}\
.leaflet-tooltip th{text-align:left;padding-right:6px}
.cpts-label span{position:absolute;transform:translate(-50%,-50%);white-space:nowrap;\
font:11px system-ui,sans-serif;
 color:#333;text-shadow:0 0 3px #fff,0 0 3px #fff}
.cpts-far .cpts-label{display:none}
"""

APP_JS = r"""(function () {
  var A = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", V = {};
  for (var n = 0; n < 64; n++) V[A.charCodeAt(n)] = n;
  function ints(s) {
    var out = [], v = 0, m = 1;
    for (var k = 0; k < s.length; k++) {
      var c = V[s.charCodeAt(k)];
      v += (c & 31) * m;
      if (c & 32) { m *= 32; } else { out.push(v % 2 ? -(v + 1) / 2 : v / 2); v = 0; m = 1; }
    }
    return out;
  }
  function shapes(g) {
    var c = ints(g.c), r = ints(g.r), p = ints(g.p), f = ints(g.f), s = Math.pow(10, g.d);
    var lat = 0, lon = 0, k = 0, ri = 0, pi = 0, out = [];
    for (var i = 0; i < f.length; i++) {
      var polys = [];
      for (var a = 0; a < f[i]; a++, pi++) {
        var rings = [];
        for (var b = 0; b < p[pi]; b++, ri++) {
          var ring = [];
          for (var t = 0; t < r[ri]; t++) { lat += c[k++]; lon += c[k++]; ring.push([lat / s, lon / s]); }
          rings.push(ring);
        }
        polys.push(rings);
      }
      out.push(polys);
    }
    return out;
  }
  function column(col) {
    return Array.isArray(col) ? col : ints(col.i).map(function (j) { return col.v[j]; });
  }
  function esc(t) {
    return String(t).replace(/[&<>"]/g, function (ch) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;"}[ch];
    });
  }
  var map = window.cptsMap = L.map("map", {zoomSnap: 0.25});
  L.control.scale().addTo(map);
  map.createPane("reference");
  map.getPane("reference").style.zIndex = 450;
  map.getPane("reference").style.pointerEvents = "none";
  var overlays = {}, layers = {};
  overlays[DATA.osm] = L.tileLayer("https://tile.openstreetmap.org/{z}/{x}/{y}.png",
    {maxZoom: 19, attribution: "&copy; OpenStreetMap"});
  DATA.layers.forEach(function (spec) {
    var cols = {}, group = L.featureGroup();
    for (var key in spec.props) cols[key] = column(spec.props[key]);
    shapes(spec.geometry).forEach(function (latlngs, i) {
      var props = {}, style = {};
      for (var key in cols) props[key] = cols[key][i];
      for (var name in spec.style) {
        var val = spec.style[name];
        style[name] = (typeof val === "string" && val.charAt(0) === "=") ? props[val.slice(1)] : val;
      }
      var shape = L.polygon(latlngs, style);
      shape.feature = {properties: props};
      shape.bindTooltip("<table>" + spec.fields.map(function (f) {
        return "<tr><th>" + esc(f[1]) + "</th><td>" + esc(props[f[0]]) + "</td></tr>";
      }).join("") + "</table>", {sticky: true});
      shape.on("mouseover", function () { shape.setStyle({weight: 3, fillOpacity: 0.7}); });
      shape.on("mouseout", function () { shape.setStyle(style); });
      group.addLayer(shape);
    });
    layers[spec.code] = group;
    overlays[spec.name] = group;
    if (spec.show) group.addTo(map);
  });
  DATA.reference.forEach(function (ref) {
    var group = L.layerGroup(), style = {pane: "reference", interactive: false, fill: false};
    for (var name in ref.style) style[name] = ref.style[name];
    shapes(ref.geometry).forEach(function (latlngs) { group.addLayer(L.polygon(latlngs, style)); });
    ref.labels.forEach(function (l) {
      group.addLayer(L.marker([l[0], l[1]], {pane: "reference", interactive: false, keyboard: false,
        icon: L.divIcon({className: "cpts-label", html: "<span>" + esc(l[2]) + "</span>", iconSize: null})}));
    });
    overlays[ref.name] = group;
    group.addTo(map);
  });
  L.control.layers(null, overlays, {collapsed: false}).addTo(map);
  map.cptsApi = {layers: layers, ints: ints, column: column, esc: esc};  // for the extra panels
  function go(b) { map.fitBounds([[b[0], b[1]], [b[2], b[3]]]); }
  go(DATA.views[0][1]);
  function labels() { map.getContainer().classList.toggle("cpts-far", map.getZoom() < DATA.labelZoom); }
  map.on("zoomend", labels);
  labels();
  var select = document.getElementById("cpts-goto");
  if (select) select.addEventListener("change", function () { go(DATA.views[+select.value][1]); });
  var input = document.getElementById("cpts-find");
  input.addEventListener("change", function () {
    var m = /\(([0-9AB]{5})\)$/.exec(input.value.trim()) || [null, input.value.trim()];
    if (!layers.communes) return;
    layers.communes.eachLayer(function (layer) {
      if (layer.feature.properties.code_commune === m[1]) {
        map.fitBounds(layer.getBounds(), {maxZoom: 12});
        L.popup().setLatLng(layer.getBounds().getCenter()).setContent(layer.getTooltip().getContent()).openOn(map);
      }
    });
  });
})();"""  # noqa: E501 (embedded JavaScript, four lines of 101-110 characters)


def _legend(page: MapPage) -> str:
    edges = page.indicator_edges
    rows = "".join(f'<div><i style="background:{c}"></i>{t}</div>' for t, c in TIER_COLOURS.items())
    dens = "".join(
        f'<div><i style="background:{c}"></i>{edges[k]:,.0f} – {edges[k + 1]:,.0f}</div>'.replace(
            ",", " "
        )
        for k, c in enumerate(DENSITY_COLOURS[: len(edges) - 1])
    )
    warning = (
        '<div class="cpts-example">EXEMPLE : périmètres CPTS fictifs construits à partir des EPCI, '
        "pas des CPTS réelles.</div>"
        if page.example
        else ""
    )
    vintage = html.escape(page.vintage or "millésime non précisé")
    return f"""<div class="cpts-panel cpts-legend" id="cpts-legend">\
<h4>{html.escape(page.title)}</h4>{warning}
<div><b>CPTS existantes – palier ACI</b></div>{rows}
<div><i style="background:{WHITE_ZONE}"></i>Zone blanche (aucune CPTS)</div>
<div><i style="background:{OVERLAP}"></i>Chevauchement (plusieurs CPTS)</div>
<div><i style="background:#fff;border:2px dashed {CANDIDATE}"></i>Territoire candidat</div>
<div><i style="background:#fff;border:2px dashed {EXTENSION}"></i>\
Extension d'une CPTS existante</div>
<div><i style="background:#fff;border:1px solid {REFERENCE}"></i>\
Limites départementales (repère)</div>
<div style="margin-top:4px"><b>{html.escape(page.indicator_label)}</b> \
(couche « Indicateur »)</div>{dens}
<div class="cpts-vintage" style="margin-top:4px">Population : {vintage}</div></div>"""


def _search_box(communes: pd.DataFrame) -> str:
    options = "".join(
        f'<option value="{html.escape(n)} ({c})"></option>'
        for n, c in sorted(zip(communes["nom"], communes["code_commune"]))
    )
    return (
        f'<div class="cpts-panel cpts-search"><label for="cpts-find">Trouver une commune : </label>'
        f'<input id="cpts-find" list="cpts-communes" size="28" placeholder="nom ou code INSEE">'
        f'<datalist id="cpts-communes">{options}</datalist></div>'
    )


def territory_groups(
    coverage: pd.DataFrame, territories: pd.DataFrame, members: pd.DataFrame
) -> pd.Series:
    """For each commune, the proposed territories (candidates, extensions; ``;``-joined) that
    contain it, from :func:`pipeline.analysis.territories.territory_communes`. IRIS parts are
    drawn from their own geometry.
    """
    from ..analysis.territories import territory_communes

    proposed = set(
        territories.loc[territories["type_territoire"] != "cpts_existante", "id_territoire"]
    )
    rows = territory_communes(coverage, territories, members)
    rows = rows[rows["id_territoire"].isin(proposed)]
    codes = rows["code_commune"].to_numpy(dtype=object)
    ids = rows["id_territoire"].to_numpy(dtype=object)
    several = pd.Series(codes).duplicated(keep=False).to_numpy()
    joined = dict(zip(codes[~several], ids[~several]))  # most communes: one territory
    for code, group in pd.Series(ids[several]).groupby(codes[several], sort=False):
        joined[code] = ";".join(sorted(group))
    return coverage["code_commune"].map(joined).fillna("").set_axis(coverage.index)
