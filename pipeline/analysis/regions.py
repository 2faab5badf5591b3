"""What every regionalization returns, and the steps they share.

:class:`Regions` (a label per commune and, for a region outside [floor, ceiling], a
:class:`Reason` code and its French text); the projected centres and areas of communes
(:func:`centroids_and_areas`); the merge of regions left below the floor into a neighbour
(:func:`merge_small`); the numbering of labels in the order of their first commune
(:func:`renumber`), the reasons of the regions outside the bounds (:func:`region_reasons`) and
the graph of the communes to group (:func:`masked_graph`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely

from ..geo import zone_geometries
from .adjacency import Adjacency
from .indicators import indicator_text


@dataclass
class Regions:
    """Result of :func:`regionalize`.

    Attributes
    ----------
    labels : ndarray of int
        Region number per commune (``-1`` outside the mask), numbered by first commune.
    codes : dict
        Region number → why it is outside [floor, ceiling], a :class:`Reason` (for logic).
    reasons : dict
        Region number → the same in French, shown to users.
    wide : dict
        Region number → why it is wider than ``max_diameter_km``, a :class:`Width`, when the
        method knows (the width itself is measured by the territories stage).
    """

    labels: np.ndarray
    codes: dict[int, Reason] = field(default_factory=dict)
    reasons: dict[int, str] = field(default_factory=dict)
    wide: dict[int, Width] = field(default_factory=dict)


def centroids_and_areas(frame: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Projected centroid coordinates (m) and areas (km²) of each row, zone by zone."""
    n = len(frame)
    x, y, area = np.zeros(n), np.zeros(n), np.zeros(n)
    for _epsg, rows, geoms in zone_geometries(frame):
        ok = ~(np.equal(geoms, None))
        pts = shapely.point_on_surface(geoms[ok])
        x[rows[ok]], y[rows[ok]] = shapely.get_x(pts), shapely.get_y(pts)
        area[rows[ok]] = shapely.area(geoms[ok]) / 1e6
    return x, y, area


def diameter_km(x: np.ndarray, y: np.ndarray) -> float:
    """Largest distance between two centroids (km), over their convex hull."""
    if len(x) < 2:
        return 0.0
    hull = shapely.convex_hull(shapely.multipoints(np.c_[x, y]))
    pts = shapely.get_coordinates(hull)
    d = np.sqrt(((pts[:, None, :] - pts[None, :, :]) ** 2).sum(-1))
    return float(d.max()) / 1000.0


def merge_small(
    pieces: list[np.ndarray], graph: sp.csr_matrix, pop: np.ndarray, *, floor: float, ceiling: float
) -> list[np.ndarray]:
    """Merge pieces below ``floor`` into the adjacent piece giving the smallest total under
    ``ceiling``.
    """
    pieces = [np.sort(p) for p in pieces]
    while True:
        sizes = [pop[p].sum() for p in pieces]
        owner = {}
        for k, p in enumerate(pieces):
            for v in p:
                owner[v] = k
        small = sorted((s, min(p), k) for k, (p, s) in enumerate(zip(pieces, sizes)) if s < floor)
        merged = False
        for _s, _first, k in small:
            touching = {
                owner[u]
                for v in pieces[k]
                for u in graph.indices[graph.indptr[v] : graph.indptr[v + 1]]
                if u in owner and owner[u] != k
            }
            options = sorted(
                (sizes[t] + sizes[k], min(pieces[t]), t)
                for t in touching
                if sizes[t] + sizes[k] <= ceiling
            )
            if options:
                t = options[0][2]
                pieces[t] = np.sort(np.r_[pieces[t], pieces[k]])
                del pieces[k]
                merged = True
                break
        if not merged:
            return pieces


def renumber(labels: np.ndarray) -> np.ndarray:
    """Labels numbered in the order of each label's first row (-1 kept)."""
    out = np.full_like(labels, -1)
    inside = labels >= 0
    values, first, inverse = np.unique(labels[inside], return_index=True, return_inverse=True)
    rank = np.empty(len(values), dtype=labels.dtype)
    rank[np.argsort(first)] = np.arange(len(values))
    out[inside] = rank[inverse]
    return out


class Reason(str, Enum):
    """Why a region is outside [floor, ceiling] (logic branches on these codes; the French text
    shown to people is :func:`reason_text`).
    """

    WHOLE_PATCH_BELOW_FLOOR = "zone_entiere_sous_plancher"
    BELOW_FLOOR = "sous_plancher"
    SINGLE_UNIT_ABOVE_CEILING = "commune_seule_au_dessus_plafond"
    ABOVE_CEILING = "au_dessus_plafond"


class Width(str, Enum):
    """Why a region is wider than ``max_diameter_km`` (codes; French text: :func:`width_text`)."""

    FOR_TIER = "plus_large_pour_palier_2"  # grouped up to RESCUE_DIAMETER to leave tier 1
    FOR_FLOOR = "plus_large_pour_plancher"  # a part below the floor joined its least populous
    # neighbour (the floor is a hard bound; the width a preference)


def width_text(
    code: Width | None, *, km: float, limit: float, floor: float, tier: float, stretch: float
) -> str:
    """The French sentence of a region ``km`` wide (between its farthest commune centres) for a
    width setting of ``limit`` km, with its cause when known (``code``; ``tier``: the tier-2
    threshold and ``stretch`` the factor of ``limit`` a tier-1 region may reach to cross it).
    """
    text = (
        f"plus étendu que le diamètre maximal ({indicator_text(km)} km entre les centres de ses "
        f"communes les plus éloignées ; réglage max_diameter_km : "
        f"{indicator_text(limit, decimals=0 if float(limit).is_integer() else 1)} km)"
    )
    if code == Width.FOR_TIER:
        text += (
            f" : regroupé au-delà (jusqu'à {indicator_text(stretch, decimals=2)} fois) car ses "
            f"parties, sous {indicator_text(tier, decimals=0)} hab. (palier 1), étaient loin de "
            "la taille des CPTS comparables"
        )
    elif code == Width.FOR_FLOOR:
        text += (
            f" : une partie sous le plancher ({indicator_text(floor, decimals=0)} hab.) a "
            "rejoint sa voisine la moins peuplée"
        )
    return text


def reason_text(code: Reason, *, total: float, part_total: float, floor: float) -> str:
    """The French sentence shown for a :class:`Reason`."""
    total, part_total, floor = (indicator_text(v, decimals=0) for v in (total, part_total, floor))
    return {
        Reason.WHOLE_PATCH_BELOW_FLOOR: (
            f"zone blanche entière sous le plancher ({part_total} < {floor} hab.)"
        ),
        Reason.BELOW_FLOOR: (
            f"sous le plancher ({total} hab.) : "
            "aucune région voisine ne peut l'absorber sans dépasser le plafond"
        ),
        Reason.SINGLE_UNIT_ABOVE_CEILING: (
            f"commune seule au-dessus du plafond ({total} hab.) : "
            "découpage par IRIS possible si les données IRIS sont fournies"
        ),
        Reason.ABOVE_CEILING: (
            f"au-dessus du plafond ({total} hab.) : aucune coupe contiguë ne respecte les bornes"
        ),
    }[code]


def region_reasons(
    labels, pop, part_of, *, floor, ceiling
) -> tuple[dict[int, Reason], dict[int, str]]:
    """The :class:`Reason` code and French text of each region outside [floor, ceiling]
    (``part_of``: the connected part of each commune, to tell a whole part below the floor).
    """
    codes, texts = {}, {}
    inside = labels >= 0
    totals = np.bincount(labels[inside], weights=pop[inside])
    counts = np.bincount(labels[inside])
    part_totals = np.bincount(part_of[inside], weights=pop[inside])
    first = np.full(len(totals), -1)
    first[labels[inside][::-1]] = np.flatnonzero(inside)[::-1]
    for label in np.flatnonzero((totals < floor) | (totals > ceiling)).tolist():
        total, part_total, size = totals[label], part_totals[part_of[first[label]]], counts[label]
        if total < floor:
            code = Reason.WHOLE_PATCH_BELOW_FLOOR if part_total < floor else Reason.BELOW_FLOOR
        else:
            code = Reason.SINGLE_UNIT_ABOVE_CEILING if size == 1 else Reason.ABOVE_CEILING
        codes[label] = code
        texts[label] = reason_text(code, total=total, part_total=part_total, floor=floor)
    return codes, texts


def masked_graph(
    frame: pd.DataFrame, adjacency: Adjacency, mask: np.ndarray, *, same_departement: bool
) -> tuple[sp.csr_matrix, Adjacency]:
    """Symmetric CSR graph of the adjacency restricted to the masked communes (and to pairs of
    one département when asked), with the same edges as an :class:`Adjacency`.
    """
    n = len(frame)
    keep = mask[adjacency.i] & mask[adjacency.j]
    if same_departement:
        dep = frame["code_departement"].to_numpy()
        keep &= dep[adjacency.i] == dep[adjacency.j]
    i, j = adjacency.i[keep], adjacency.j[keep]
    graph = sp.csr_matrix((np.ones(2 * len(i)), (np.r_[i, j], np.r_[j, i])), shape=(n, n))
    return graph, Adjacency(n, i, j, np.zeros(len(i), bool), adjacency.island)
