"""The one palette of the maps: every colour, line and hatching a map draws, and its legend.

The layers (:mod:`pipeline.outputs.export` builds them, :mod:`pipeline.outputs.maps` draws them)
and the legend both read this module, so the legend shows exactly the colours the map paints:

* the "aplats" (fills) are opaque and never stacked: the CPTS by ACI tier and the white zones in
  the default view, or one optional choropleth ("Indicateur", "Profil") instead of them — the CPTS
  and white zones then keep their outlines only, drawn above it;
* what overlays them (overlaps, candidate territories, extensions, the composer's draft) is drawn
  with outlines and hatching (SVG patterns with crisp edges: stripes of one colour and transparent
  gaps), never with translucent fills, so that no overlay creates a colour the legend does not
  show.

The tier scale is ColorBrewer's single-hue sequential "Blues" (9 classes, every other step: clearly
separated in lightness, safe for every colour-vision deficiency); the categories take Okabe and
Ito's colour-blind-safe set (candidates in yellow: they mostly lie over the vermillion white
zones); the density choropleth is a neutral grey scale, so that the hatching over it stays
readable; the composer's draft is magenta, outside every palette here.
"""

from __future__ import annotations

import html

TIERS = {"T1": "#c6dbef", "T2": "#6baed6", "T3": "#2171b5", "T4": "#08306b"}
UNKNOWN_TIER = "#bdbdbd"
WHITE_ZONE = "#d55e00"  # vermillion
OVERLAP = "#7b3294"  # purple hatching
CANDIDATE = "#f0e442"  # yellow hatching (it mostly lies over the vermillion white zones)
EXTENSION = "#009e73"  # bluish green hatching
CPTS_LINE = "#1a1a1a"
REFERENCE = "#555555"
REGION_LINE = "#222222"
DENSITY = ["#f7f7f7", "#d9d9d9", "#bdbdbd", "#969696", "#737373", "#525252"]
PROFILE = "#cab2d6"  # light violet: under the yellow and green hatching (a zone without rank)
# the "Profil" layer by the white zone's priority rank, in quarters of the ranked zones: the
# most urgent quarter darkest (ColorBrewer's sequential "Purples", every other step from the 4th)
PRIORITY = ["#54278f", "#807dba", "#bcbddc", "#efedf5"]
PRIORITY_LABELS = [
    "Zone blanche du 1er quart des priorités (la plus urgente)",
    "Zone blanche du 2e quart des priorités",
    "Zone blanche du 3e quart des priorités",
    "Zone blanche du dernier quart des priorités",
]
DRAFT = "#ff00ff"
DRAFT_LINE = "#000000"
TERRITORY_KINDS = {"candidate": CANDIDATE, "extension": EXTENSION}

# the SVG patterns of the hatching: id -> (colour, angle in degrees, crossed)
HATCHES = {
    "cpts-hatch-overlap": (OVERLAP, 45, True),
    "cpts-hatch-candidate": (CANDIDATE, 45, False),
    "cpts-hatch-extension": (EXTENSION, -45, False),
    "cpts-hatch-draft": (DRAFT, 45, True),
}
HATCH_SPACING = 8  # pixels between stripes
HATCH_WIDTH = 3  # pixels of each stripe


def hatch(colour: str) -> str:
    """The SVG fill (``url(#…)``) that hatches with ``colour`` (one of :data:`HATCHES`).

    Parameters
    ----------
    colour : str
        A colour of :data:`HATCHES`.

    Returns
    -------
    str
        ``url(#<pattern id>)``, usable as Leaflet's ``fillColor`` or as an SVG ``fill``.
    """
    return next(f"url(#{key})" for key, (c, _a, _x) in HATCHES.items() if c == colour)


def svg_defs() -> str:
    """The hidden SVG holding the hatching patterns, once per page (before the map).

    Each stripe is a staircase of whole pixels (no rotated shape, hence no anti-aliased edge that
    would blend the stripe's colour with the fill below it).

    Returns
    -------
    str
        An inline ``<svg>`` of zero size (not ``display:none``: Chromium would not paint patterns
        defined there) with one ``<pattern>`` per entry of :data:`HATCHES`.
    """
    s, w = HATCH_SPACING, HATCH_WIDTH
    patterns = []
    for key, (colour, angle, crossed) in HATCHES.items():
        slopes = [angle, -angle] if crossed else [angle]
        cells = sorted(
            {
                ((k if a > 0 else s - 1 - k) + j) % s * s + k
                for a in slopes
                for k in range(s)
                for j in range(w)
            }
        )
        stripes = "".join(f'<rect x="{c // s}" y="{c % s}" width="1" height="1"/>' for c in cells)
        patterns.append(
            f'<pattern id="{key}" patternUnits="userSpaceOnUse" width="{s}" height="{s}">'
            f'<g fill="{colour}" shape-rendering="crispEdges">{stripes}</g></pattern>'
        )
    return (
        '<svg aria-hidden="true" width="0" height="0" style="position:absolute">'
        f"<defs>{''.join(patterns)}</defs></svg>"
    )


# --------------------------------------------------------------------------- layer styles

# the pane of each kind of layer, bottom to top (z-index in the page)
PANES = {"cpts-choropleth": 405, "cpts-fills": 410, "cpts-hatches": 430}


def style(code: str) -> dict:
    """The Leaflet style of the layer ``code`` in the default view (tiers and white zones).

    Parameters
    ----------
    code : str
        ``cpts``, ``zones``, ``overlaps``, ``territories``, ``communes`` (the indicator
        choropleth) or ``profile``.

    Returns
    -------
    dict
        Leaflet path options; a value starting with ``=`` names the feature property that holds
        it (the tier colour of each CPTS, the hatching of each territory).
    """
    return dict(STYLES[code])


# the optional choropleths: each feature's fill from its ``_colour``, thin white borders
CHOROPLETH = {
    "pane": "cpts-choropleth",
    "fillColor": "=_colour",
    "fillOpacity": 1,
    "color": "#ffffff",
    "weight": 0.3,
    "opacity": 1,
}
STYLES = {
    "cpts": {
        "pane": "cpts-fills",
        "fillColor": "=_colour",
        "fillOpacity": 1,
        "color": CPTS_LINE,
        "weight": 0.8,
        "opacity": 1,
    },
    "zones": {
        "pane": "cpts-fills",
        "fillColor": WHITE_ZONE,
        "fillOpacity": 1,
        "color": WHITE_ZONE,
        "weight": 1.5,
        "opacity": 1,
    },
    "overlaps": {
        "pane": "cpts-hatches",
        "fillColor": hatch(OVERLAP),
        "fillOpacity": 1,
        "color": OVERLAP,
        "weight": 2,
        "opacity": 1,
    },
    "territories": {
        "pane": "cpts-hatches",
        "fillColor": "=_fill",
        "fillOpacity": 1,
        "color": "=_colour",
        "weight": 2.5,
        "opacity": 1,
        "dashArray": "6 4",
    },
    "communes": CHOROPLETH,  # the indicator
    "profile": CHOROPLETH,  # the white zones by priority
}

# the layers that are optional choropleths (one at a time, instead of the tiers' fills)
CHOROPLETHS = ("communes", "profile")
# the layers whose fill gives way to a choropleth (they keep their outline)
GIVE_WAY = ("cpts", "zones")
REFERENCE_STYLE = {"color": REFERENCE, "weight": 1, "opacity": 1}
REGION_STYLE = {"color": REGION_LINE, "weight": 2, "opacity": 1}
DRAFT_STYLE = {"color": DRAFT_LINE, "weight": 2.5, "opacity": 1, "fillColor": hatch(DRAFT)}


def priority_colour(rank, count: int) -> str:
    """The "Profil" fill of a white zone ranked ``rank`` (1: the most urgent) among ``count``: the
    quarter of the ranking it falls in (:data:`PRIORITY`), :data:`PROFILE` without a rank.
    """
    if rank is None or rank != rank or count <= 0:  # None or NaN
        return PROFILE
    quarter = min(len(PRIORITY) - 1, int((int(rank) - 1) * len(PRIORITY) // count))
    return PRIORITY[quarter]


def territory_fill(kinds) -> list[str]:
    """The hatching of each proposed territory, by ``type_territoire`` code."""
    return [hatch(TERRITORY_KINDS[k]) for k in kinds]


# --------------------------------------------------------------------------- legend


def swatch(fill: str = "none", line: str = "none", *, width: float = 1, dash: str = "") -> str:
    """A legend swatch: an SVG rectangle painted as the map paints (same fill, same hatching).

    Parameters
    ----------
    fill : str
        A colour, ``url(#…)`` of a hatching, or ``none``.
    line : str
        The outline's colour, or ``none``.
    width : float
        The outline's width in pixels.
    dash : str
        An SVG ``stroke-dasharray`` (dashed outlines), or empty.
    """
    dashed = f' stroke-dasharray="{dash}"' if dash else ""
    return (
        '<svg class="cpts-swatch" width="22" height="14" aria-hidden="true">'
        f'<rect x="1" y="1" width="20" height="12" fill="{html.escape(fill)}" stroke="{line}" '
        f'stroke-width="{width}"{dashed} shape-rendering="crispEdges"/></svg>'
    )


def line_swatch(colour: str, width: float, dash: str = "") -> str:
    """A legend swatch of a border line (no fill)."""
    return swatch("none", colour, width=width, dash=dash)


def legend_entries(code: str, present: set) -> list[tuple[str, str, str]]:
    """The legend entries of the layer ``code``: (when, swatch HTML, French label).

    Parameters
    ----------
    code : str
        A layer code of :data:`STYLES`.
    present : set
        The layer's ``_colour`` values drawn on this map (which tiers, which kinds of territory):
        only those are listed.

    Returns
    -------
    list of tuple
        ``when`` is ``fills`` for entries shown while the tiers' fills are on, ``outline`` while a
        choropleth replaces them, ``always`` otherwise.
    """
    if code == "cpts":
        tiers = [
            ("fills", swatch(c, CPTS_LINE, width=0.8), f"CPTS existante – palier {t}")
            for t, c in TIERS.items()
            if c in present
        ]
        return tiers + [("outline", line_swatch(CPTS_LINE, 1.5), "Contour de CPTS existante")]
    if code == "zones":
        return [
            ("fills", swatch(WHITE_ZONE, WHITE_ZONE), "Zone blanche (aucune CPTS)"),
            ("outline", line_swatch(WHITE_ZONE, 2), "Contour de zone blanche (aucune CPTS)"),
        ]
    if code == "overlaps":
        label = "Chevauchement (plusieurs CPTS)"
        return [("always", swatch(hatch(OVERLAP), OVERLAP, width=2), label)]
    if code == "territories":
        labels = {"candidate": "Territoire candidat", "extension": "Extension d'une CPTS existante"}
        return [
            ("always", swatch(hatch(c), c, width=2, dash="4 2"), labels[k])
            for k, c in TERRITORY_KINDS.items()
            if c in present
        ]
    if code == "profile":
        ranked = [
            ("always", swatch(c, "#ffffff"), label)
            for c, label in zip(PRIORITY, PRIORITY_LABELS)
            if c in present
        ]
        unranked = "Commune en zone blanche sans rang de priorité (profil au survol)"
        if PROFILE in present:
            ranked.append(("always", swatch(PROFILE, "#ffffff"), unranked))
        return ranked
    return []
