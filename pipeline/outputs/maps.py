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

from ..analysis.indicators import indicator_text
from ..geo import WGS84, polygonal, union_groups
from ..io import script_json
from .palette import CANDIDATE as CANDIDATE
from .palette import (
    CHOROPLETHS,
    DENSITY,
    DRAFT_STYLE,
    GIVE_WAY,
    PANES,
    TIERS,
    legend_entries,
    line_swatch,
    svg_defs,
    swatch,
)
from .palette import EXTENSION as EXTENSION
from .palette import OVERLAP as OVERLAP
from .palette import REFERENCE as REFERENCE
from .palette import WHITE_ZONE as WHITE_ZONE

# the palette under the names the rest of the outputs use (one definition: palette.py)
TIER_COLOURS = TIERS
DENSITY_COLOURS = DENSITY
ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def decimal(value, decimals: int = 1) -> str:
    """A number in French ("12 345,6"; "—" when missing): the one formatter of the maps, whose
    twins in the page's script are ``num`` and ``dec``.

    Parameters
    ----------
    value : float or None
        The number.
    decimals : int
        Digits after the decimal comma.
    """
    return "—" if value is None or pd.isna(value) else indicator_text(value, decimals=decimals)


def euros(value) -> str:
    """An amount in whole euros, French style ("123 456 €"; "—" when missing)."""
    return f"{decimal(int(value), 0)} €" if pd.notna(value) else "—"


def people(value) -> str:
    """A count of inhabitants, French style ("12 345"; "—" when missing)."""
    return decimal(int(value), 0) if pd.notna(value) else "—"


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

    Parameters
    ----------
    code : str
        What the layer shows (a key of :data:`pipeline.outputs.palette.STYLES`): its pane, its
        legend entries and whether it is an optional choropleth follow from it.
    name : str
        Its French name in the layers control.
    geometry : ndarray
        WGS84 (multi)polygons, one per row of ``properties``.
    properties : DataFrame
        Display strings (``_colour``, ``_fill``: per-feature style values).
    fields : dict
        Tooltip: property -> French label.
    style : dict
        Leaflet path options (:func:`pipeline.outputs.palette.style`); values starting with ``=``
        name the property that holds the value (e.g. a colour).
    show : bool
        Drawn when the page opens (choropleths never are: the reader picks one).
    """

    code: str
    name: str
    geometry: np.ndarray
    properties: pd.DataFrame
    fields: dict[str, str]
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
    """Everything one map page shows.

    ``views`` are ``(label, (south, west, north, east))``, the first one the opening view;
    ``communes`` (``nom``, ``code_commune``) feed the search box; ``covered`` is the population
    covered by a CPTS and the total, said in the summary box unless ``summary_html`` (a
    summary and provenance fragment, :mod:`pipeline.outputs.summary`) replaces it; ``addons`` are
    extra panels: (key of their data in ``DATA``, data, HTML with their script, run after the
    map's).
    """

    title: str
    layers: list[Layer]
    reference: list[Reference]
    views: list[tuple[str, tuple[float, float, float, float]]]
    communes: pd.DataFrame
    indicator_label: str
    indicator_edges: list[float]
    example: bool
    decimals: int
    label_zoom: float = 0.0  # département names hidden below this zoom
    vintage: str = ""  # the population's vintage, said in the legend
    addons: list[tuple[str, dict, str]] = field(default_factory=list)
    covered: tuple[int, int] = (0, 0)
    summary_html: str = ""


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


def label_points(geoms: np.ndarray, decimals: int) -> str:
    """A point inside each polygon (where its label goes), as latitude/longitude differences on
    the page's grid (decoded like the coordinates).
    """
    points = shapely.point_on_surface(np.asarray(geoms, dtype=object))
    q = np.round(shapely.get_coordinates(points)[:, ::-1] * 10.0**decimals).astype(np.int64)
    return encode_ints(np.diff(q, axis=0, prepend=np.zeros((1, 2), np.int64)).ravel())


def render_page(page: MapPage, *, leaflet: tuple[str, str]) -> str:
    """The HTML of a map: Leaflet inlined, the data, the legend, the search and go-to boxes.

    Parameters
    ----------
    page : MapPage
        What the map shows.
    leaflet : tuple of str
        Leaflet's script and style sheet, inlined.

    Returns
    -------
    str
        A self-contained page (no network needed); same page, same bytes.
    """
    data = {
        "layers": [],
        "reference": [],
        "views": [[label, list(b)] for label, b in page.views],
        "labelZoom": page.label_zoom,
        "osm": "Fond OpenStreetMap (en ligne, facultatif)",
        "panes": PANES,
        "choropleths": list(CHOROPLETHS),
        "giveWay": list(GIVE_WAY),
        "outline": OUTLINE,
        "themeNames": THEME_NAMES,
        "draft": DRAFT_STYLE,
    }
    kept = []
    for layer in page.layers:
        keep = drawn(layer.geometry)
        if not keep.any():
            continue  # nothing of this kind on this map: no empty layer, no legend entry
        kept.append(layer)
        props = layer.properties[keep]
        geoms = polygons_only(layer.geometry[keep])
        spec = {
            "code": layer.code,
            "name": layer.name,
            "show": layer.show,
            "style": layer.style,
            "fields": [[k, v] for k, v in layer.fields.items()],
            "props": {c: encode_column(props[c].tolist()) for c in props.columns},
            "geometry": encode_geometries(geoms, page.decimals),
        }
        if layer.code == "communes":
            spec["labels"] = label_points(geoms, page.decimals)
        data["layers"].append(spec)
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
    js, css = leaflet
    goto = ""
    if len(page.views) > 1:
        options = "".join(
            f'<option value="{k}">{html.escape(label)}</option>'
            for k, (label, _) in enumerate(page.views)
        )
        goto = (
            f'<div class="cpts-goto"><label for="cpts-goto">Aller à : </label>'
            f'<select id="cpts-goto">{options}</select></div>'
        )
    return (
        f'<!DOCTYPE html>\n<html lang="fr"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(page.title)}</title><style>{css}</style><script>{js}</script>"
        f"<style>{PAGE_CSS}</style></head>\n<body>{svg_defs()}"
        f'<h1 class="cpts-head">{html.escape(page.title)}</h1><div id="map"></div>'
        f'<div class="cpts-side cpts-left" id="cpts-left"><div class="cpts-panel cpts-tools">'
        f"{_search_box(page.communes)}{goto}"
        '<div><button id="cpts-print" type="button">Imprimer</button></div></div></div>'
        f'<div class="cpts-side cpts-right" id="cpts-right">{_summary(page)}'
        f"{_legend(page, kept)}</div>{_footer(page)}"
        f"\n<script>var DATA = {script_json(data)};</script>\n<script>{APP_JS}</script>"
        + "".join(addon for _, _, addon in page.addons)
        + "</body></html>\n"
    )


# the choropleths' fills give way to... nothing: the CPTS and white zones keep these outlines
OUTLINE = {"cpts": {"weight": 1.5}, "zones": {"weight": 2}}
THEME_NAMES = {
    "fills": "Aplats : CPTS par palier ACI et zones blanches",
    "none": "Aplats : aucun (contours seuls)",
}

PAGE_CSS = """
html,body{height:100%;margin:0}#map{position:absolute;top:0;bottom:0;left:0;right:0}
.cpts-head,.cpts-foot{display:none}
.cpts-side{position:fixed;z-index:1000;display:flex;flex-direction:column;gap:6px;\
font:12px/1.35 system-ui,sans-serif;color:#222}
.cpts-left{top:10px;left:54px;width:330px;max-height:calc(100vh - 50px)}
.cpts-right{bottom:28px;right:10px;width:250px;max-height:calc(100vh - 80px)}
.cpts-panel{background:rgba(255,255,255,.96);padding:6px 9px;border-radius:4px;\
box-shadow:0 1px 4px rgba(0,0,0,.35);min-height:0}
.cpts-tools{flex:0 0 auto}.cpts-tools>div{margin:2px 0}.cpts-tools button{font:inherit}
.cpts-legend{overflow:auto;flex:0 1 auto}.cpts-summary{flex:0 0 auto}
.cpts-side summary{cursor:pointer;font-weight:bold;font-size:13px}
.cpts-legend h4{margin:6px 0 2px;font-size:12px}
.cpts-leg{display:flex;align-items:center;gap:5px;margin:1px 0}
.cpts-swatch{flex:0 0 auto}.cpts-hidden{display:none}.cpts-nb{white-space:nowrap}
.cpts-example{color:#b00;font-weight:bold}
#cpts-find-msg:empty{display:none}#cpts-find-msg ul{margin:2px 0;padding-left:16px;\
max-height:160px;overflow:auto}
#cpts-find-msg button{font:inherit;padding:0;border:0;background:none;color:#06c;\
text-decoration:underline;cursor:pointer;text-align:left}
.leaflet-tooltip table{border-collapse:collapse;width:max-content;max-width:32em}\
.leaflet-tooltip th{text-align:left;padding-right:6px;white-space:nowrap;vertical-align:top}\
.leaflet-tooltip td{white-space:normal}
.cpts-label span,.cpts-unit-label span{position:absolute;transform:translate(-50%,-50%);\
white-space:nowrap;font:11px system-ui,sans-serif;color:#111;\
text-shadow:0 0 2px #fff,0 0 2px #fff,0 0 3px #fff}
.cpts-unit-label span{font-size:10px;color:#222}
.cpts-far .cpts-label{display:none}
.leaflet-control-layers-list{font:12px/1.35 system-ui,sans-serif}
@page{size:A4 landscape;margin:8mm}
body.cpts-print .cpts-head,body.cpts-print .cpts-foot{display:block}
body.cpts-print{width:281mm;height:194mm;overflow:hidden;position:relative}
body.cpts-print .cpts-head{position:absolute;top:0;left:0;width:281mm;margin:0;\
font:bold 17px/1.2 system-ui,sans-serif}
body.cpts-print #map{top:9mm;left:0;width:203mm;height:176mm;bottom:auto;right:auto;\
outline:1px solid #888}
body.cpts-print .cpts-right{position:absolute;top:9mm;left:206mm;right:auto;bottom:auto;\
width:75mm;max-height:178mm;gap:3px}
body.cpts-print .cpts-panel{box-shadow:none;border:1px solid #bbb;padding:3px 6px}
body.cpts-print .cpts-legend{overflow:hidden}
body.cpts-print .cpts-side summary{list-style:none}
body.cpts-print .cpts-summary>summary{display:none}
body.cpts-print .cpts-foot{position:absolute;top:187mm;left:0;width:281mm;\
font:10px/1.3 system-ui,sans-serif;color:#333}
body.cpts-print .cpts-left,body.cpts-print .leaflet-control-zoom,\
body.cpts-print .leaflet-control-layers,body.cpts-print .leaflet-popup-pane,\
body.cpts-print .leaflet-tooltip-pane,body.cpts-print .cpts-more{display:none}
@media print{*{-webkit-print-color-adjust:exact;print-color-adjust:exact}
.cpts-left,.leaflet-control-zoom,.leaflet-control-layers,.leaflet-popup-pane,\
.leaflet-tooltip-pane,.cpts-more{display:none}}
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
  // French numbers, the twin of maps.people and maps.decimal: "12 345", "85,56"
  function num(v) { return String(Math.round(v)).replace(/\B(?=(\d{3})+(?!\d))/g, " "); }
  function dec(v, d) { var t = Math.abs(v).toFixed(d).split("."); return (v < 0 ? "-" : "") + num(+t[0]) + (t[1] ? "," + t[1] : ""); }
  function $(id) { return document.getElementById(id); }
  var map = window.cptsMap = L.map("map", {zoomSnap: 0.25, zoomControl: false});
  L.control.zoom({zoomInTitle: "Zoom avant", zoomOutTitle: "Zoom arrière"}).addTo(map);
  L.control.scale({imperial: false}).addTo(map);
  map.attributionControl.setPrefix("<a href=\"https://leafletjs.com\" title=\"Bibliothèque de cartes Leaflet\">Leaflet</a>");
  for (var pane in DATA.panes) { map.createPane(pane); map.getPane(pane).style.zIndex = DATA.panes[pane]; }
  ["reference", "cpts-labels"].forEach(function (name, i) {
    map.createPane(name); map.getPane(name).style.zIndex = 450 + 5 * i; map.getPane(name).style.pointerEvents = "none";
  });
  // an SVG renderer that stays on whole pixels once a zoom is over: Leaflet leaves it shifted by a
  // fraction of a pixel, which blurs the hatching's stripes into colours the legend does not show
  var Crisp = L.SVG.extend({_updateTransform: function (center, zoom) {
    var scale = this._map.getZoomScale(zoom, this._zoom);
    if (Math.abs(scale - 1) > 1e-9) return L.SVG.prototype._updateTransform.call(this, center, zoom);
    var half = this._map.getSize().multiplyBy(0.5 + this.options.padding);
    L.DomUtil.setPosition(this._container, this._map.project(this._center, zoom).subtract(half)
      .subtract(this._map._getNewPixelOrigin(center, zoom)).round());
  }}), renderers = {};
  function renderer(pane) { return renderers[pane] = renderers[pane] || new Crisp({pane: pane}); }
  // polygons whose vertices are projected once (Web Mercator at scale 1, kept per ring): a zoom
  // step only scales and rounds them, as Leaflet's latLngToLayerPoint would, without its trigonometry
  var crs = L.CRS.EPSG3857, tr = crs.transformation;
  var Fast = L.Polygon.extend({_projectLatlngs: function (latlngs, result, bounds) {
    if (!(latlngs[0] instanceof L.LatLng)) {
      for (var i = 0; i < latlngs.length; i++) this._projectLatlngs(latlngs[i], result, bounds);
      return;
    }
    var m = latlngs.cptsM, n = latlngs.length, ring = new Array(n);
    if (!m) {
      m = latlngs.cptsM = new Float64Array(2 * n);
      for (var k = 0; k < n; k++) {
        var p = crs.projection.project(latlngs[k]);
        m[2 * k] = tr._a * p.x + tr._b; m[2 * k + 1] = tr._c * p.y + tr._d;
      }
    }
    var s = crs.scale(this._map.getZoom()), o = this._map.getPixelOrigin();
    for (var j = 0; j < n; j++) {
      ring[j] = new L.Point(Math.round(s * m[2 * j]) - o.x, Math.round(s * m[2 * j + 1]) - o.y);
      bounds.extend(ring[j]);
    }
    result.push(ring);
  }});
  var theme = "fills", themes = {}, overlays = {}, layers = {}, specs = {}, refs = [];
  function styleOf(spec, props) {
    var style = {renderer: renderer(spec.style.pane)};
    for (var name in spec.style) {
      var val = spec.style[name];
      style[name] = (typeof val === "string" && val.charAt(0) === "=") ? props[val.slice(1)] : val;
    }
    if (theme !== "fills" && DATA.giveWay.indexOf(spec.code) >= 0) {
      style.fill = false;
      for (var o in DATA.outline[spec.code]) style[o] = DATA.outline[spec.code][o];
    } else style.fill = true;
    return style;
  }
  function tip(spec) {
    return function (shape) {
      var props = shape.feature.properties;
      return "<table>" + spec.fields.map(function (f) {
        return "<tr><th>" + esc(f[1]) + "</th><td>" + esc(props[f[0]]) + "</td></tr>";
      }).join("") + "</table>";
    };
  }
  var units = {codes: [], names: [], shapes: [], rings: [], labels: []};
  DATA.layers.forEach(function (spec) {
    var cols = {}, group = L.featureGroup(), content = tip(spec), geoms = shapes(spec.geometry);
    for (var key in spec.props) cols[key] = column(spec.props[key]);
    geoms.forEach(function (latlngs, i) {
      var props = {};
      for (var key in cols) props[key] = cols[key][i];
      var shape = new Fast(latlngs, styleOf(spec, props));
      shape.feature = {properties: props};
      shape.bindTooltip(content, {sticky: true});
      shape.on("mouseover", function () { shape.setStyle({weight: shape.options.weight + 2}); });
      shape.on("mouseout", function () { shape.setStyle(styleOf(spec, props)); });
      group.addLayer(shape);
      if (spec.code === "communes") units.shapes.push(shape);
    });
    if (spec.code === "communes") {
      units.codes = cols.code_commune; units.names = cols.nom; units.rings = geoms;
      var p = ints(spec.labels), s = Math.pow(10, spec.geometry.d), lat = 0, lon = 0;
      for (var k = 0; k < p.length; k += 2) { lat += p[k]; lon += p[k + 1]; units.labels.push([lat / s, lon / s]); }
    }
    layers[spec.code] = group; specs[spec.code] = spec;
    if (DATA.choropleths.indexOf(spec.code) >= 0) { themes[spec.name] = group; group.cptsTheme = spec.code; }
    else { overlays[spec.name] = group; if (spec.show) group.addTo(map); }
  });
  var base = {};
  base[DATA.themeNames.fills] = L.layerGroup(); base[DATA.themeNames.fills].cptsTheme = "fills";
  for (var t in themes) base[t] = themes[t];
  base[DATA.themeNames.none] = L.layerGroup(); base[DATA.themeNames.none].cptsTheme = "none";
  base[DATA.themeNames.fills].addTo(map);
  overlays[DATA.osm] = L.tileLayer("https://tile.openstreetmap.org/{z}/{x}/{y}.png",
    {maxZoom: 19, attribution: "&copy; OpenStreetMap"});
  DATA.reference.forEach(function (ref, r) {
    var group = L.layerGroup(), style = {pane: "reference", interactive: false, fill: false};
    for (var name in ref.style) style[name] = ref.style[name];
    shapes(ref.geometry).forEach(function (latlngs) { group.addLayer(new Fast(latlngs, style)); });
    ref.labels.forEach(function (l) {
      group.addLayer(L.marker([l[0], l[1]], {pane: "reference", interactive: false, keyboard: false,
        icon: L.divIcon({className: "cpts-label", html: "<span>" + esc(l[2]) + "</span>", iconSize: null})}));
    });
    overlays[ref.name] = group; refs.push(group);
    group.addTo(map);
  });
  var control = L.control.layers(base, overlays, {collapsed: true}).addTo(map);
  var toggle = control.getContainer().querySelector(".leaflet-control-layers-toggle");
  toggle.title = "Couches"; toggle.setAttribute("aria-label", "Couches et aplats");
  function legend() {  // each entry shown when its layer is on the map (and in the right state)
    var rows = document.querySelectorAll("[data-layer]");
    for (var i = 0; i < rows.length; i++) {
      var el = rows[i], code = el.getAttribute("data-layer"), when = el.getAttribute("data-when");
      var group = code.charAt(0) === "#" ? refs[+code.slice(1)] : layers[code];
      var on = !!group && map.hasLayer(group) && (when === "always" || (when === "fills") === (theme === "fills"));
      el.classList.toggle("cpts-hidden", !on);
    }
  }
  map.on("baselayerchange", function (e) {
    theme = e.layer.cptsTheme;
    DATA.giveWay.forEach(function (code) {
      if (layers[code]) layers[code].eachLayer(function (l) { l.setStyle(styleOf(specs[code], l.feature.properties)); });
    });
    legend();
  });
  map.on("overlayadd overlayremove", legend);
  // ---- units: where a point falls, labels where they fit
  var grid = null, G = 64;
  function inRing(ring, y, x) {
    for (var i = 0, j = ring.length - 1, inside = false; i < ring.length; j = i++) {
      var a = ring[i], b = ring[j];
      if ((a[0] > y) !== (b[0] > y) && x < (b[1] - a[1]) * (y - a[0]) / (b[0] - a[0]) + a[1]) inside = !inside;
    }
    return inside;
  }
  function unitGrid() {
    var box = units.shapes.map(function (s) { return s.getBounds(); }), all = L.latLngBounds(box);
    var g = {s: all.getSouth(), w: all.getWest(), dy: (all.getNorth() - all.getSouth()) / G || 1, dx: (all.getEast() - all.getWest()) / G || 1, cells: {}, box: box};
    box.forEach(function (b, u) {
      for (var y = cell(g, b.getSouth(), 0); y <= cell(g, b.getNorth(), 0); y++)
        for (var x = cell(g, b.getWest(), 1); x <= cell(g, b.getEast(), 1); x++) (g.cells[y * G + x] = g.cells[y * G + x] || []).push(u);
    });
    return g;
  }
  function cell(g, v, lon) { return Math.max(0, Math.min(G - 1, Math.floor((v - (lon ? g.w : g.s)) / (lon ? g.dx : g.dy)))); }
  function unitAt(ll) {
    grid = grid || unitGrid();
    var found = -1;
    (grid.cells[cell(grid, ll.lat, 0) * G + cell(grid, ll.lng, 1)] || []).some(function (u) {
      if (!grid.box[u].contains(ll)) return false;
      var hit = units.rings[u].some(function (poly) {
        return inRing(poly[0], ll.lat, ll.lng) && !poly.slice(1).some(function (h) { return inRing(h, ll.lat, ll.lng); });
      });
      if (hit) found = u;
      return hit;
    });
    return found;
  }
  var names = L.layerGroup().addTo(map), fits = null;
  function unitLabels() {  // a commune's name from the zoom where it fits inside the commune
    names.clearLayers();
    if (!units.labels.length) return;
    grid = grid || unitGrid();
    fits = fits || grid.box.map(function (b, u) {
      var w = (b.getEast() - b.getWest()) * 256 / 360, h = (b.getNorth() - b.getSouth()) * 256 / 360 / Math.cos(b.getCenter().lat * Math.PI / 180);
      var text = 6 * units.names[u].length + 6;
      return Math.max(Math.log2(text / Math.max(w, 1e-9)), Math.log2(16 / Math.max(h, 1e-9)));
    });
    var z = map.getZoom(), view = map.getBounds().pad(0.1), shown = 0;
    for (var u = 0; u < fits.length && shown < 600; u++) {
      if (fits[u] > z || !view.contains(units.labels[u])) continue;
      names.addLayer(L.marker(units.labels[u], {pane: "cpts-labels", interactive: false, keyboard: false,
        icon: L.divIcon({className: "cpts-unit-label", html: "<span>" + esc(units.names[u]) + "</span>", iconSize: null})}));
      shown++;
    }
  }
  map.on("moveend", unitLabels);
  map.cptsApi = {layers: layers, ints: ints, column: column, esc: esc, num: num, dec: dec, units: units, unitAt: unitAt,
    renderer: renderer};
  function side() { var r = $("cpts-right"); return r && !document.body.classList.contains("cpts-print") ? r.offsetWidth + 20 : 0; }
  function go(b) { map.fitBounds([[b[0], b[1]], [b[2], b[3]]], {paddingTopLeft: [10, 10], paddingBottomRight: [side(), 10], animate: false}); }
  go(DATA.views[0][1]);
  function far() { map.getContainer().classList.toggle("cpts-far", map.getZoom() < DATA.labelZoom); }
  map.on("zoomend", far);
  far(); legend();
  var select = $("cpts-goto");
  if (select) select.addEventListener("change", function () { go(DATA.views[+select.value][1]); });
  // ---- "Trouver une commune": a code, a name (homonyms listed) or the start of a name
  function norm(t) { return t.normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase().replace(/[\s'’-]+/g, " ").trim(); }
  var byCode = {}, byName = {};
  units.codes.forEach(function (c, u) { byCode[c] = u; var k = norm(units.names[u]); (byName[k] = byName[k] || []).push(u); });
  function lookup(q) {
    var m = /\(([0-9AB]{5})\)$/i.exec(q), code = (m ? m[1] : q).toUpperCase();
    if (byCode[code] !== undefined) return [byCode[code]];
    var k = norm(q.replace(/\s*\([^)]*\)$/, ""));
    if (!k) return [];
    if (byName[k]) return byName[k];
    var out = [];
    for (var key in byName) if (key.indexOf(k) === 0) out = out.concat(byName[key]);
    return out.sort(function (a, b) { return units.names[a].localeCompare(units.names[b], "fr") || (units.codes[a] < units.codes[b] ? -1 : 1); });
  }
  var input = $("cpts-find"), msg = $("cpts-find-msg"), found = null, last = null;
  function show(u, enter) {
    var shape = units.shapes[u];
    map.fitBounds(shape.getBounds(), {maxZoom: 12, paddingBottomRight: [side(), 0], animate: false});
    if (found) map.removeLayer(found);
    found = L.polygon(shape.getLatLngs(), {pane: "reference", interactive: false, fill: false, color: "#000", weight: 3, dashArray: "5 3"}).addTo(map);
    L.popup().setLatLng(units.labels[u] || shape.getBounds().getCenter()).setContent(tip(specs.communes)(shape)).openOn(map);
    msg.textContent = "";
    document.dispatchEvent(new CustomEvent("cpts-found", {detail: {code: units.codes[u], enter: !!enter}}));
  }
  function find(enter) {
    var q = input.value.trim();
    last = input.value;
    if (!q) { msg.textContent = ""; return; }
    var hits = lookup(q);
    if (hits.length === 1) return show(hits[0], enter);
    if (!hits.length) { msg.textContent = "Aucune commune « " + q + " » sur cette carte."; return; }
    msg.innerHTML = num(hits.length) + " communes « " + esc(q) + " » : choisir<ul>" + hits.slice(0, 30).map(function (u) {
      return "<li><button type=\"button\" data-unit=\"" + u + "\">" + esc(units.names[u]) + " (" + units.codes[u] + ")</button></li>";
    }).join("") + (hits.length > 30 ? "<li>… et " + num(hits.length - 30) + " autres : préciser le nom</li>" : "") + "</ul>";
  }
  input.addEventListener("keydown", function (e) { if (e.key === "Enter") { e.preventDefault(); find(true); } });
  input.addEventListener("change", function () { if (input.value !== last) find(false); });
  msg.addEventListener("click", function (e) { var u = e.target.getAttribute("data-unit"); if (u !== null) show(+u, true); });
  // ---- print: one landscape page (title, map, legend, scale, sources and date), no controls
  var printing = null;
  function before() {
    if (printing) return;
    var boxes = document.querySelectorAll(".cpts-right details.cpts-panel");
    var size = map.getSize(), seen = L.latLngBounds(map.containerPointToLatLng([0, 0]),
      map.containerPointToLatLng([Math.max(size.x / 2, size.x - side()), size.y]));  // the part beside the legend
    var b = DATA.views[0][1], all = L.latLngBounds([b[0], b[1]], [b[2], b[3]]);
    if (seen.intersects(all)) seen = L.latLngBounds(  // no empty margin around the map's data
      [Math.max(seen.getSouth(), all.getSouth()), Math.max(seen.getWest(), all.getWest())],
      [Math.min(seen.getNorth(), all.getNorth()), Math.min(seen.getEast(), all.getEast())]);
    printing = {center: map.getCenter(), zoom: map.getZoom(), bounds: seen, open: []};
    for (var i = 0; i < boxes.length; i++) { printing.open.push(boxes[i].open); boxes[i].open = true; }
    $("cpts-print-date").textContent = "Carte imprimée le " + new Date().toLocaleDateString("fr-FR", {day: "numeric", month: "long", year: "numeric"}) + ".";
    document.body.classList.add("cpts-print");
    map.invalidateSize({pan: false});
    map.fitBounds(printing.bounds, {animate: false});
  }
  function after() {
    if (!printing) return;
    var boxes = document.querySelectorAll(".cpts-right details.cpts-panel");
    for (var i = 0; i < boxes.length; i++) boxes[i].open = printing.open[i];
    document.body.classList.remove("cpts-print");
    map.invalidateSize({pan: false});
    map.setView(printing.center, printing.zoom, {animate: false});
    printing = null;
  }
  window.addEventListener("beforeprint", before);
  window.addEventListener("afterprint", after);
  $("cpts-print").addEventListener("click", function () { before(); setTimeout(function () { window.print(); }, 100); });
  window.cptsPrint = {before: before, after: after};
})();"""  # noqa: E501 (embedded JavaScript)


def _summary(page: MapPage) -> str:
    """The collapsible box at the top of the map's side: its title, the EXAMPLE warning, the
    population covered and, folded under it, the run's summary fragment when one is given.
    """
    warning = (
        '<div class="cpts-example">EXEMPLE : périmètres CPTS fictifs construits à partir des EPCI, '
        "pas des CPTS réelles.</div>"
        if page.example
        else ""
    )
    covered, total = page.covered
    body = (
        f'<div id="cpts-covered">Population couverte par une CPTS : <b class="cpts-nb">'
        f'{people(covered)}</b> sur <span class="cpts-nb">{people(total)} hab.</span> '
        f'(<span class="cpts-nb">{decimal(100 * covered / total if total else float("nan"), 2)} %'
        "</span>)</div>"
    )
    if page.summary_html:  # the run at a glance: one click away, so the legend keeps its room
        body += (
            '<details class="cpts-more"><summary>Par département, sources et date</summary>'
            f"{page.summary_html}</details>"
        )
    return (
        f'<details class="cpts-panel cpts-summary" id="cpts-summary" open>'
        f"<summary>{html.escape(page.title)}</summary>{warning}{body}</details>"
    )


def _legend(page: MapPage, layers: list[Layer]) -> str:
    """The legend, from the layers drawn on this map only: their palette entries, each shown while
    its layer is on (the page's script hides the others).
    """
    rows = []
    for layer in layers:
        if layer.code == "communes":
            edges = page.indicator_edges
            rows.append(
                f'<h4 data-layer="communes" data-when="always">{html.escape(page.indicator_label)}'
                "</h4>"
            )
            rows += [
                f'<div class="cpts-leg" data-layer="communes" data-when="always">'
                f"{swatch(c, '#ffffff')}{decimal(edges[k], 0)} – {decimal(edges[k + 1], 0)}</div>"
                for k, c in enumerate(DENSITY_COLOURS[: len(edges) - 1])
            ]
            continue
        present = set(layer.properties.get("_colour", pd.Series(dtype=object)).dropna())
        rows += [
            f'<div class="cpts-leg" data-layer="{layer.code}" data-when="{when}">{sw}'
            f"{html.escape(label)}</div>"
            for when, sw, label in legend_entries(layer.code, present)
        ]
    for k, ref in enumerate(page.reference):
        rows.append(
            f'<div class="cpts-leg" data-layer="#{k}" data-when="always">'
            f"{line_swatch(ref.style['color'], ref.style['weight'])}{html.escape(ref.name)}</div>"
        )
    vintage = html.escape(page.vintage or "millésime non précisé")
    return (
        '<details class="cpts-panel cpts-legend" id="cpts-legend" open><summary>Légende</summary>'
        f'{"".join(rows)}<div class="cpts-vintage" style="margin-top:4px">Population : {vintage}'
        "</div></details>"
    )


def _footer(page: MapPage) -> str:
    """The printed page's last line: sources and date (the date is the printing's, set by the
    page's script, so that the file itself stays the same from run to run).
    """
    vintage = html.escape(page.vintage or "millésime non précisé")
    example = " Périmètres d'EXEMPLE (construits à partir des EPCI)." if page.example else ""
    return (
        f'<div class="cpts-foot">Sources : {vintage} ; découpage communal et périmètres '
        f"CPTS du diagnostic.{example} Fond : communes simplifiées (pas de fond en ligne). "
        '<span id="cpts-print-date"></span></div>'
    )


def _search_box(communes: pd.DataFrame) -> str:
    """The "Trouver une commune" box: a name or code, suggestions, and its answer below."""
    options = "".join(
        f'<option value="{html.escape(n)} ({c})"></option>'
        for n, c in sorted(zip(communes["nom"], communes["code_commune"]))
    )
    return (
        f'<div class="cpts-search"><label for="cpts-find">Trouver une commune : </label>'
        f'<input id="cpts-find" list="cpts-communes" size="24" placeholder="nom ou code INSEE" '
        f'autocomplete="off"><datalist id="cpts-communes">{options}</datalist>'
        f'<div id="cpts-find-msg" role="status" aria-live="polite"></div></div>'
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
