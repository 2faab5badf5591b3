"""Contiguous regionalization with a population floor and ceiling (spanning-tree bisection).

:func:`regionalize` takes communes (a GeoDataFrame), their adjacency and a mask of the communes to
group, and returns a region label per commune. Each connected part of the masked graph is split
recursively:

1. a minimum spanning tree is built over the part, edge weight = distance between centroids,
   multiplied by ``epci_penalty`` when the edge crosses an EPCI border (so EPCIs form subtrees and
   stay whole where possible);
2. removing one tree edge always leaves two *contiguous* sides; among the edges whose sides can each
   still be divided into regions within [floor, ceiling], the one leaving the least area-weighted
   inertia (a Ward-like compactness measure, O(1) per edge with subtree sums) is cut, with a
   penalty for cutting inside an EPCI;
3. a part is split while its population is above the ceiling, or while it is wider than
   ``max_diameter_km`` and a feasible cut exists; a single commune above the ceiling stays alone.

Regions left below the floor are merged into an adjacent region of the same part when the result
stays under the ceiling. Every region is contiguous by construction; regions outside the bounds
carry a reason. The result is deterministic (ties broken by row order).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import breadth_first_order, connected_components, minimum_spanning_tree

from .adjacency import Adjacency, components
from .geo import by_zone


@dataclass
class Regions:
    """Result of :func:`regionalize`.

    Attributes
    ----------
    labels : ndarray of int
        Region number per commune (``-1`` outside the mask), numbered by first commune.
    reasons : dict
        Region number → why it is outside [floor, ceiling] (French, shown to users).
    """

    labels: np.ndarray
    reasons: dict[int, str] = field(default_factory=dict)


def centroids_and_areas(frame: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Projected centroid coordinates (m) and areas (km²) of each row, zone by zone."""
    n = len(frame)
    x, y, area = np.zeros(n), np.zeros(n), np.zeros(n)
    for _epsg, part in by_zone(frame.assign(_row=np.arange(n))):
        rows = part["_row"].to_numpy()
        geoms = part.geometry.to_numpy()
        ok = ~(np.equal(geoms, None))
        pts = shapely.point_on_surface(geoms[ok])
        x[rows[ok]], y[rows[ok]] = shapely.get_x(pts), shapely.get_y(pts)
        area[rows[ok]] = shapely.area(geoms[ok]) / 1e6
    return x, y, area


def _feasible(pop: np.ndarray, floor: float, ceiling: float) -> np.ndarray:
    """Whether a population can be divided into regions each within [floor, ceiling]."""
    return (pop >= floor) & (np.ceil(pop / ceiling) <= np.floor(pop / floor))


def _diameter_km(x: np.ndarray, y: np.ndarray) -> float:
    """Largest distance between two centroids (km), over their convex hull."""
    if len(x) < 2:
        return 0.0
    hull = shapely.convex_hull(shapely.multipoints(np.c_[x, y]))
    pts = shapely.get_coordinates(hull)
    d = np.sqrt(((pts[:, None, :] - pts[None, :, :]) ** 2).sum(-1))
    return float(d.max()) / 1000.0


class _Splitter:
    def __init__(self, graph: sp.csr_matrix, pop, x, y, area, epci, *, floor, ceiling, max_diameter_km,
                 epci_penalty):
        self.graph, self.pop, self.x, self.y = graph, pop, x, y
        self.w = np.maximum(area, 1e-6)
        self.epci = epci
        self.floor, self.ceiling = floor, ceiling
        self.max_diameter_km, self.epci_penalty = max_diameter_km, epci_penalty

    def needs_split(self, nodes: np.ndarray) -> bool:
        total = self.pop[nodes].sum()
        if len(nodes) < 2:
            return False
        if total > self.ceiling:
            return True
        return total >= 2 * self.floor and _diameter_km(self.x[nodes], self.y[nodes]) > self.max_diameter_km

    def split(self, nodes: np.ndarray) -> list[np.ndarray]:
        """Recursively bisect a connected set of nodes."""
        stack, done = [np.sort(nodes)], []
        while stack:
            part = stack.pop()
            if not self.needs_split(part):
                done.append(part)
                continue
            sides = self.best_cut(part)
            if sides is None:
                done.append(part)
            else:
                stack.extend(sides)
        return done

    def best_cut(self, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        sub = self.graph[nodes][:, nodes].tocoo()
        keep = sub.row < sub.col
        r, c = sub.row[keep], sub.col[keep]
        dist = np.hypot(self.x[nodes[r]] - self.x[nodes[c]], self.y[nodes[r]] - self.y[nodes[c]])
        weight = (dist + 1.0) * np.where(self.epci[nodes[r]] != self.epci[nodes[c]], self.epci_penalty, 1.0)
        m = len(nodes)
        tree = minimum_spanning_tree(sp.csr_matrix((weight, (r, c)), shape=(m, m)))
        tree = (tree + tree.T).tocsr()
        order, parent = breadth_first_order(tree, 0, directed=False, return_predecessors=True)
        if len(order) != m:  # not connected: should not happen, parts are components
            return None
        pop, w = self.pop[nodes].astype(float), self.w[nodes]
        x, y = self.x[nodes], self.y[nodes]
        sums = np.c_[pop, w, w * x, w * y, w * (x * x + y * y)]
        for v in order[:0:-1]:  # children before parents
            sums[parent[v]] += sums[v]
        total = sums[0]
        child = order[1:]
        inside, outside = sums[child], total - sums[child]

        def inertia(s):
            return s[:, 4] - (s[:, 2] ** 2 + s[:, 3] ** 2) / np.maximum(s[:, 1], 1e-12)

        whole = max(inertia(total[None, :])[0], 1e-9)
        score = (inertia(inside) + inertia(outside)) / whole
        same_epci = self.epci[nodes[child]] == self.epci[nodes[parent[child]]]
        score = score + 0.25 * same_epci
        feasible = _feasible(inside[:, 0], self.floor, self.ceiling) & _feasible(outside[:, 0], self.floor, self.ceiling)
        if not feasible.any():
            if total[0] <= self.ceiling:
                return None  # only split for width when both sides are feasible
            shortfall = np.maximum(0, self.floor - inside[:, 0]) + np.maximum(0, self.floor - outside[:, 0])
            excess = (np.maximum(0, inside[:, 0] - self.ceiling) + np.maximum(0, outside[:, 0] - self.ceiling))
            key = np.lexsort((score, shortfall + 0.5 * excess))
            best = key[0]
        else:
            candidates = np.flatnonzero(feasible)
            best = candidates[np.argmin(score[candidates])]
        cut_child = child[best]
        # nodes of the subtree under cut_child
        mask = np.zeros(m, bool)
        mask[cut_child] = True
        for v in order:
            if v != cut_child and parent[v] >= 0 and mask[parent[v]]:
                mask[v] = True
        return nodes[mask], nodes[~mask]


def regionalize(frame: gpd.GeoDataFrame, adjacency: Adjacency, mask: np.ndarray, *, floor: float = 20_000,
                ceiling: float = 200_000, max_diameter_km: float = 60.0, epci_penalty: float = 3.0,
                population: str = "population", epci: str = "code_epci",
                same_departement: bool = False) -> Regions:
    """Group the masked communes into contiguous regions sized within [floor, ceiling].

    Parameters
    ----------
    frame : GeoDataFrame
        Communes (any CRS, with an ``epsg`` column; measured in each zone's projected CRS).
    adjacency : Adjacency
        Graph of ``frame``'s rows.
    mask : array of bool
        Communes to group (e.g. white-zone communes).
    floor, ceiling : float
        Population bounds of a region.
    max_diameter_km : float
        A region wider than this (between commune centroids) is split further when both halves can
        stay within the bounds.
    epci_penalty : float
        Cost factor of spanning-tree edges crossing an EPCI border (>= 1; 1 ignores EPCIs).
    population, epci : str
        Column names.
    same_departement : bool
        Never put communes of two départements in one region.

    Returns
    -------
    Regions
    """
    mask = np.asarray(mask, bool)
    n = len(frame)
    pop = frame[population].fillna(0).to_numpy(dtype=float)
    epci_codes = frame[epci].fillna("").astype(str).to_numpy()
    x, y, area = centroids_and_areas(frame)
    keep = mask[adjacency.i] & mask[adjacency.j]
    if same_departement:
        dep = frame["code_departement"].to_numpy()
        keep &= dep[adjacency.i] == dep[adjacency.j]
    i, j = adjacency.i[keep], adjacency.j[keep]
    graph = sp.csr_matrix((np.ones(2 * len(i)), (np.r_[i, j], np.r_[j, i])), shape=(n, n))
    part_of = components(Adjacency(n, i, j, np.zeros(len(i), bool), adjacency.island), mask)
    splitter = _Splitter(graph, pop, x, y, area, epci_codes, floor=floor, ceiling=ceiling,
                         max_diameter_km=max_diameter_km, epci_penalty=epci_penalty)
    labels = np.full(n, -1, dtype=np.int64)
    next_label = 0
    for part in range(part_of.max() + 1):
        nodes = np.flatnonzero(part_of == part)
        pieces = _merge_small(splitter.split(nodes), graph, pop, floor=floor, ceiling=ceiling)
        for piece in pieces:
            labels[piece] = next_label
            next_label += 1
    labels = _renumber(labels)
    return Regions(labels, _reasons(labels, pop, part_of, floor=floor, ceiling=ceiling))


def _merge_small(pieces: list[np.ndarray], graph: sp.csr_matrix, pop: np.ndarray, *, floor: float,
                 ceiling: float) -> list[np.ndarray]:
    """Merge pieces below ``floor`` into the adjacent piece giving the smallest total under ``ceiling``."""
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
            touching = {owner[u] for v in pieces[k] for u in graph.indices[graph.indptr[v]:graph.indptr[v + 1]]
                        if u in owner and owner[u] != k}
            options = sorted((sizes[t] + sizes[k], min(pieces[t]), t) for t in touching if sizes[t] + sizes[k] <= ceiling)
            if options:
                t = options[0][2]
                pieces[t] = np.sort(np.r_[pieces[t], pieces[k]])
                del pieces[k]
                merged = True
                break
        if not merged:
            return pieces


def _renumber(labels: np.ndarray) -> np.ndarray:
    out = np.full_like(labels, -1)
    seen: dict[int, int] = {}
    for k in np.flatnonzero(labels >= 0):
        out[k] = seen.setdefault(int(labels[k]), len(seen))
    return out


def _reasons(labels, pop, part_of, *, floor, ceiling) -> dict[int, str]:
    reasons = {}
    for label in range(labels.max() + 1):
        members = labels == label
        total = pop[members].sum()
        part_total = pop[part_of == part_of[np.flatnonzero(members)[0]]].sum()
        if total < floor and part_total < floor:
            reasons[label] = (f"zone blanche entière sous le plancher ({int(part_total):,} < {int(floor):,} hab.)"
                              .replace(",", " "))
        elif total < floor:
            reasons[label] = (f"sous le plancher ({int(total):,} hab.) : aucune région voisine ne peut l'absorber "
                              f"sans dépasser le plafond").replace(",", " ")
        elif total > ceiling and members.sum() == 1:
            reasons[label] = (f"commune seule au-dessus du plafond ({int(total):,} hab.) : découpage par IRIS "
                              "possible si les données IRIS sont fournies").replace(",", " ")
        elif total > ceiling:
            reasons[label] = (f"au-dessus du plafond ({int(total):,} hab.) : aucune coupe contiguë ne respecte "
                              "les bornes").replace(",", " ")
    return reasons
