"""The realistic objective: candidate territories sized like the CPTS around them, built the way
CPTS are built — from whole EPCIs where possible.

Each commune carries a *weight*: its population over the reference size of a territory around it
(:func:`pipeline.analysis.reference.reference_sizes`), so that a territory of weight 1 has the
size of the comparable CPTS. Then, in each connected part of the white zones:

1. :func:`epci_parts`: the communes of each EPCI (each of its connected pieces in the part, and
   each département's share of an EPCI across a border: the ACI is signed with the CPAM of a
   département) form a block;
2. :func:`split_block`: a block above the ceiling, above :data:`SPLIT_FACTOR` reference sizes or
   wider than ``max_diameter_km`` is cut into about as many pieces as it holds reference sizes, by
   recursive bisection of its spanning trees (each cut balances the weights of the two sides, then
   keeps them compact; each side is then meant for as many pieces as its own weight asks, so that
   a city too populous to share does not take the share of its neighbours); other EPCIs stay
   whole;
3. :func:`gather_blocks`: neighbouring blocks are grouped, the pair whose grouping brings the
   territories closest to their reference size first (cost ``log(weight)²`` per territory, a
   territory of twice the reference as far from it as one of half), while the group stays under the
   ceiling and within ``max_diameter_km``;
4. groups left below the floor join their least populous neighbour
   (:func:`pipeline.analysis.regions.merge_small`), however wide: the floor is a hard bound.

A territory ends wider than ``max_diameter_km`` only when grouped to leave tier 1 (up to
:data:`RESCUE_DIAMETER` times it), merged to reach the floor, or made of a block no cut narrows;
:func:`width_causes` tells which of the first two, and the territories stage says so in the
candidate's remark.

Every territory is a union of adjacent blocks, each connected: contiguous by construction. The
result is deterministic (spanning trees perturbed from a stream seeded by the nodes).
"""

from __future__ import annotations

import heapq

import geopandas as gpd
import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from .adjacency import Adjacency, components
from .bisection import group_inertia
from .regions import (
    Regions,
    Width,
    centroids_and_areas,
    diameter_km,
    masked_graph,
    merge_small,
    region_reasons,
    renumber,
)
from .spanning import spanning_tree_order

SPLIT_FACTOR = 2.0  # an EPCI is cut only when it holds more than this many reference sizes,
# and then into pieces of at least this many inhabitants (below the ceiling): the FCPTS finds
# territories under 40,000 inhabitants (ACI tier 1) hard to fund
SPLIT_LEAST = 40_000.0
# A territory under SPLIT_LEAST where comparable CPTS are larger (reference size above it) may
# reach this many times max_diameter_km to join a neighbour: funding over the hour's drive
RESCUE_DIAMETER = 1.25
BLOCK = 1e9  # added to spanning-tree edges between blocks kept whole (blocks become subtrees)
TREES = 8  # spanning trees tried per bisection (the MST and perturbed ones)
COMPACTNESS = 0.2  # weight of the inertia ratio against the weight imbalance of a cut


def _cost(weight: np.ndarray | float) -> np.ndarray | float:
    """Distance of territories of these weights from their reference size: ``log(w)²``."""
    return np.log(np.maximum(weight, 1e-9)) ** 2


def epci_parts(graph: sp.csr_matrix, epci: np.ndarray, mask: np.ndarray) -> list[np.ndarray]:
    """The connected pieces of each EPCI among the masked communes of ``graph`` (communes without
    an EPCI: pieces of their own kind), each sorted, ordered by first commune.
    """
    coo = graph.tocoo()
    same = epci[coo.row] == epci[coo.col]
    sub = sp.csr_matrix((coo.data[same], (coo.row[same], coo.col[same])), shape=graph.shape)
    _, label = connected_components(sub, directed=False)
    nodes = np.flatnonzero(mask)
    order = np.lexsort((nodes, label[nodes]))
    nodes, labels = nodes[order], label[nodes[order]]
    cuts = np.flatnonzero(np.diff(labels)) + 1
    return sorted(np.split(nodes, cuts), key=lambda p: int(p[0]))


class _Cutter:
    """Weight-balanced recursive bisection of blocks on their spanning trees."""

    def __init__(self, graph, pop, weight, x, y, area, *, floor, ceiling, max_diameter_km):
        """Keep the masked graph, the commune arrays and the bounds."""
        self.graph, self.pop, self.weight = graph, pop, weight
        self.x, self.y, self.area = x, y, np.maximum(area, 1e-6)
        self.floor, self.ceiling, self.max_diameter_km = floor, ceiling, max_diameter_km

    def pieces_wanted(self, nodes: np.ndarray, *, whole: bool = True) -> int:
        """How many territories a block should become (1: kept whole); ``whole=False`` for a
        piece of a block already being cut (no longer held whole below :data:`SPLIT_FACTOR`).
        """
        total, weight = self.pop[nodes].sum(), self.weight[nodes].sum()
        most = int(total // self.floor)
        if len(nodes) < 2 or most < 2:
            return 1
        least = int(np.ceil(total / self.ceiling))
        wide = diameter_km(self.x[nodes], self.y[nodes]) > self.max_diameter_km
        if total <= self.ceiling and not wide:
            if whole and weight <= SPLIT_FACTOR:
                return 1
            most = min(most, int(total // SPLIT_LEAST))
        return int(max(1, min(most, max(least, 2 if wide else 1, round(weight)))))

    def split_block(self, nodes: np.ndarray) -> list[np.ndarray]:
        """The block as :meth:`pieces_wanted` pieces, each connected; a block only too wide loses
        its farthest communes instead (:meth:`trim`), which then join their neighbours. After
        each cut, each side is meant for as many territories as its own weight asks (a commune
        too populous to share, such as a city, holds one territory whatever its weight).
        """
        stack, done = [(np.sort(nodes), self.pieces_wanted(nodes), True)], []
        while stack:
            part, k, whole = stack.pop()
            if k < 2:
                done.append(part)
                continue
            if self.only_wide(part, whole=whole):
                trimmed = self.trim(part)
                if trimmed is not None:
                    keep, rest = trimmed
                    done.append(keep)
                    stack.append((rest, self.pieces_wanted(rest), True))
                    continue
            cut = self.best_cut(part, k)
            if cut is None:
                done.append(part)
                continue
            (one, _), (two, _) = cut
            stack += [(side, self.pieces_wanted(side, whole=False), False) for side in (two, one)]
        return done

    def only_wide(self, nodes: np.ndarray, *, whole: bool = True) -> bool:
        """Whether a block (``whole``) or a piece of one is to be cut only for being wider than
        ``max_diameter_km``: it would be kept as one territory if it were not.
        """
        if diameter_km(self.x[nodes], self.y[nodes]) <= self.max_diameter_km:
            return False
        total, weight = self.pop[nodes].sum(), self.weight[nodes].sum()
        held = weight <= SPLIT_FACTOR if whole else round(weight) < 2
        return bool(total <= self.ceiling and (held or total < 2 * SPLIT_LEAST))

    def trim(self, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The most populous connected part of ``nodes`` within ``max_diameter_km`` that one cut
        of its minimum spanning tree leaves (the rest: the farthest communes), or None.
        """
        r, c = self.local_edges(nodes)
        dist = np.hypot(self.x[nodes[r]] - self.x[nodes[c]], self.y[nodes[r]] - self.y[nodes[c]])
        order, parent = spanning_tree_order(len(nodes), r, c, dist + 1.0)
        if len(order) != len(nodes):
            return None
        position = np.empty(len(nodes), dtype=np.int64)
        position[order] = np.arange(len(nodes))
        best, best_pop = None, -1.0
        for child in order[1:].tolist():
            side = np.zeros(len(nodes), bool)
            side[_subtree(order, parent, child, int(position[child]))] = True
            for keep in (side, ~side):
                pop = float(self.pop[nodes[keep]].sum())
                if pop <= best_pop or pop < self.floor:
                    continue
                if diameter_km(self.x[nodes[keep]], self.y[nodes[keep]]) <= self.max_diameter_km:
                    best, best_pop = keep, pop
        if best is None:
            return None
        return nodes[best], nodes[~best]

    def local_edges(self, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Edges (local indices, r < c) of the subgraph induced by ``nodes``."""
        sub = self.graph[nodes][:, nodes].tocoo()
        keep = sub.row < sub.col
        return sub.row[keep], sub.col[keep]

    def best_cut(self, nodes: np.ndarray, k: int, *, blocks: np.ndarray | None = None):
        """The cut of a spanning tree of ``nodes`` into two sides meant for ``k1`` and ``k - k1``
        territories whose weights are closest to that split (then the most compact), over
        :data:`TREES` trees; both sides keep at least the floor per territory. With ``blocks``
        (a label per node of ``nodes``), every block is a subtree and only edges between blocks
        are cut: the blocks stay whole. None if no edge qualifies.
        """
        r, c = self.local_edges(nodes)
        if not len(r):
            return None
        dist = np.hypot(self.x[nodes[r]] - self.x[nodes[c]], self.y[nodes[r]] - self.y[nodes[c]])
        if blocks is not None:
            dist = dist + BLOCK * (blocks[r] != blocks[c])
        rng = np.random.default_rng([len(nodes), int(nodes[0]), int(nodes[-1]), k])
        x, y = (
            (self.x[nodes] - self.x[nodes].mean()) / 1e3,
            (self.y[nodes] - self.y[nodes].mean()) / 1e3,
        )
        a = self.area[nodes]
        values = np.c_[self.pop[nodes], self.weight[nodes], a, a * x, a * y, a * (x * x + y * y)]
        shares = np.array([k // 2, k - k // 2]) / k
        best = None
        for attempt in range(TREES):
            factor = 1.0 if attempt == 0 else rng.uniform(0.5, 1.5, len(dist))
            order, parent = spanning_tree_order(len(nodes), r, c, dist * factor + 1.0)
            if len(order) != len(nodes):
                return None
            inside = values[order].copy()
            position = np.empty(len(nodes), dtype=np.int64)
            position[order] = np.arange(len(nodes))
            for v in order[:0:-1].tolist():  # children before parents: subtree sums
                inside[position[parent[v]]] += inside[position[v]]
            total = inside[0]
            sub, rest = inside[1:], total - inside[1:]
            share = sub[:, 1] / max(total[1], 1e-12)
            gap = np.abs(share[:, None] - shares[None, :])
            pick_share = gap.argmin(axis=1)
            k_sub = np.where(pick_share == 0, k // 2, k - k // 2)
            ok = (sub[:, 0] >= self.floor * k_sub) & (rest[:, 0] >= self.floor * (k - k_sub))
            if blocks is not None:
                ok &= blocks[order[1:]] != blocks[parent[order[1:]]]
            if not ok.any():
                continue
            spread = (group_inertia(sub[:, 1:]) + group_inertia(rest[:, 1:])) / max(
                group_inertia(total[None, 1:])[0], 1e-9
            )  # the sums without the weight column: (pop, area, a·x, a·y, a·r²)
            score = np.where(ok, gap.min(axis=1) + COMPACTNESS * spread, np.inf)
            e = int(score.argmin())
            if best is None or score[e] < best[0]:
                child = order[1:][e]
                side = np.zeros(len(nodes), bool)
                start = position[child]
                # the subtree of ``child`` is the run of the preorder from it while deeper
                side[_subtree(order, parent, child, start)] = True
                best = (float(score[e]), side, int(k_sub[e]))
        if best is None:
            return None
        _, side, k_side = best
        return (nodes[side], k_side), (nodes[~side], k - k_side)


def numbering(parts: list[np.ndarray], n: int) -> np.ndarray:
    """The number (position in ``parts``) of the part holding each of ``n`` nodes (-1: none)."""
    owner = np.full(n, -1, dtype=np.int64)
    for k, part in enumerate(parts):
        owner[part] = k
    return owner


def _subtree(order: np.ndarray, parent: np.ndarray, child: int, start: int) -> np.ndarray:
    """Local nodes of the subtree of ``child`` in a depth-first preorder (a contiguous run)."""
    inside = {child}
    end = start + 1
    par = parent.tolist()
    while end < len(order) and par[int(order[end])] in inside:
        inside.add(int(order[end]))
        end += 1
    return order[start:end]


def gather_blocks(
    blocks: list[np.ndarray],
    graph: sp.csr_matrix,
    pop: np.ndarray,
    weight: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    *,
    ceiling: float,
    max_diameter_km: float,
    below: float = np.inf,
) -> list[np.ndarray]:
    """Group adjacent blocks while it brings the territories closer to their reference size
    (largest gain of ``Σ log(weight)²`` first; ties: the closest centres), under the ceiling and
    within ``max_diameter_km``; with ``below``, only pairs one of which has fewer inhabitants
    while its reference size (population / weight) is above that.
    Returns the groups, each sorted, ordered by first commune.
    """
    owner = numbering(blocks, graph.shape[0])
    coo = graph.tocoo()
    a, b = owner[coo.row], owner[coo.col]
    touching = (a >= 0) & (b >= 0) & (a < b)
    pairs, counts = np.unique(np.c_[a[touching], b[touching]], axis=0, return_counts=True)
    members = {k: block for k, block in enumerate(blocks)}
    size = {k: float(pop[block].sum()) for k, block in enumerate(blocks)}
    load = {k: float(weight[block].sum()) for k, block in enumerate(blocks)}
    centre = {
        k: (
            float(np.average(x[block], weights=pop[block] + 1.0)),
            float(np.average(y[block], weights=pop[block] + 1.0)),
        )
        for k, block in enumerate(blocks)
    }
    pole = {k: int(block[np.argmax(pop[block])]) for k, block in enumerate(blocks)}
    border = {(int(p), int(q)): int(n) for (p, q), n in zip(pairs, counts)}
    out_a = (a >= 0) & (b != a)
    edges = dict(zip(*np.unique(a[out_a], return_counts=True)))
    edges = {int(k): int(v) for k, v in edges.items()}
    near: dict[int, set[int]] = {k: set() for k in members}
    for p, q in pairs.tolist():
        near[p].add(q)
        near[q].add(p)
    heap: list = []

    def push(p: int, q: int) -> None:
        if size[p] + size[q] > ceiling:
            return
        small = p if size[p] <= size[q] else q
        if below < np.inf and (size[small] >= below or size[small] < below * load[small]):
            return  # only small territories whose reference size is above ``below``
        gain = _cost(load[p]) + _cost(load[q]) - _cost(load[p] + load[q])
        if gain <= 0:
            return
        small, big = (p, q) if load[p] <= load[q] else (q, p)
        gap = max(np.hypot(centre[small][0] - x[pole[big]], centre[small][1] - y[pole[big]]), 1e3)
        key = gain * border[(min(p, q), max(p, q))] / max(1, min(edges[p], edges[q]))
        heapq.heappush(heap, (-round(key, 12), round(gap, 3), min(p, q), max(p, q)))

    for p, q in pairs.tolist():
        push(p, q)
    fresh = len(blocks)
    while heap:
        _, _, p, q = heapq.heappop(heap)
        if p not in members or q not in members:
            continue
        union = np.sort(np.r_[members[p], members[q]])
        if diameter_km(x[union], y[union]) > max_diameter_km:
            continue
        k = fresh
        fresh += 1
        members[k], size[k], load[k] = union, size[p] + size[q], load[p] + load[q]
        w = pop[union] + 1.0
        centre[k] = (float(np.average(x[union], weights=w)), float(np.average(y[union], weights=w)))
        pole[k] = pole[p] if pop[pole[p]] >= pop[pole[q]] else pole[q]
        near[k] = (near.pop(p) | near.pop(q)) - {p, q}
        edges[k] = edges.get(p, 0) + edges.get(q, 0) - 2 * border.get((min(p, q), max(p, q)), 0)
        for t in near[k]:
            near[t] -= {p, q}
            near[t].add(k)
            border[(t, k)] = border.pop((min(t, p), max(t, p)), 0) + border.pop(
                (min(t, q), max(t, q)), 0
            )
        for gone in (p, q):
            del members[gone], size[gone], load[gone], centre[gone], pole[gone]
        for t in sorted(near[k]):
            push(t, k)
    return sorted(members.values(), key=lambda g: int(g[0]))


def rebalance(
    groups: list[np.ndarray], cutter: _Cutter, block_of: np.ndarray, *, rounds: int = 3
) -> list[np.ndarray]:
    """Cut again, with a neighbour, each territory under :data:`SPLIT_LEAST` inhabitants and below
    its reference size (a tier-1 territory that cannot grow without getting too wide): the two
    are bisected anew (balanced by weight, moving whole blocks: ``block_of`` numbers the block of
    each node), kept when both pieces reach :data:`SPLIT_LEAST`, stay
    within ``max_diameter_km`` and get closer to their reference sizes. Neighbours sharing the
    longest border are tried first.
    """
    graph, pop, weight, x, y = cutter.graph, cutter.pop, cutter.weight, cutter.x, cutter.y
    groups = [np.sort(g) for g in groups]
    for _ in range(rounds):
        owner = numbering(groups, graph.shape[0])
        sizes = np.array([pop[g].sum() for g in groups])
        loads = np.array([weight[g].sum() for g in groups])
        used: set[int] = set()
        replaced: dict[int, list[np.ndarray]] = {}
        small = [k for k in np.argsort(sizes, kind="stable").tolist() if sizes[k] < SPLIT_LEAST]
        for k in small:
            if k in used or loads[k] >= 1.0:
                continue
            nodes = groups[k]
            around = owner[
                graph.indices[
                    np.concatenate([np.arange(graph.indptr[v], graph.indptr[v + 1]) for v in nodes])
                ]
            ]
            around = around[(around >= 0) & (around != k)]
            if not len(around):
                continue
            ids, shared = np.unique(around, return_counts=True)
            for t in ids[np.lexsort((ids, -shared))].tolist():
                if t in used or sizes[k] + sizes[t] < 2 * SPLIT_LEAST:
                    continue
                union = np.sort(np.r_[nodes, groups[t]])
                cut = cutter.best_cut(union, 2, blocks=block_of[union])
                if cut is None:
                    continue
                sides = [cut[0][0], cut[1][0]]
                before = _cost(loads[k]) + _cost(loads[t])
                after = sum(_cost(weight[s].sum()) for s in sides)
                if (
                    after < before
                    and all(pop[s].sum() >= SPLIT_LEAST for s in sides)
                    and all(diameter_km(x[s], y[s]) <= cutter.max_diameter_km for s in sides)
                ):
                    replaced[k], replaced[t] = [np.sort(s) for s in sides], []
                    used.update((k, t))
                    break
        if not replaced:
            break
        groups = [q for k, g in enumerate(groups) for q in replaced.get(k, [g])]
    return sorted(groups, key=lambda g: int(g[0]))


def realistic_regions(
    frame: gpd.GeoDataFrame,
    adjacency: Adjacency,
    mask: np.ndarray,
    reference: np.ndarray,
    *,
    floor: float = 10_000,
    ceiling: float = 200_000,
    max_diameter_km: float = 60.0,
    same_departement: bool = False,
    population: str = "population",
    epci: str = "code_epci",
    departement: str = "code_departement",
    centres: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> Regions:
    """Group the masked communes into contiguous territories sized like the reference (see the
    module docstring).

    Parameters
    ----------
    frame : GeoDataFrame
        Communes (with an ``epsg`` column; measured in each zone's projected CRS).
    adjacency : Adjacency
        Graph of ``frame``'s rows.
    mask : array of bool
        Communes to group (the white zones).
    reference : array of float
        Reference size of a territory around each commune (inhabitants).
    floor, ceiling : float
        Hard population bounds of a territory.
    max_diameter_km : float
        Largest distance between two commune centres of a territory (blocks wider than this are
        cut; groups never grow wider).
    same_departement : bool
        Never put communes of two départements in one territory.
    population, epci, departement : str
        Column names.
    centres : (x, y, area), optional
        :func:`pipeline.analysis.regions.centroids_and_areas` of ``frame``, when already known.

    Returns
    -------
    Regions
    """
    mask = np.asarray(mask, bool)
    pop = frame[population].fillna(0).to_numpy(dtype=float)
    codes = frame[epci].astype(object).where(frame[epci].notna(), "").astype(str).to_numpy()
    # an EPCI across a département border is one block per département: CPTS sign their ACI
    # contract with the CPAM of a département, and mostly stay within one
    codes = np.char.add(np.char.add(codes, "|"), frame[departement].astype(str).to_numpy())
    x, y, area = centroids_and_areas(frame) if centres is None else centres
    graph, kept = masked_graph(frame, adjacency, mask, same_departement=same_departement)
    part_of = components(kept, mask)
    weight = pop / np.maximum(np.asarray(reference, dtype=float), 1.0)
    cutter = _Cutter(
        graph,
        pop,
        weight,
        x,
        y,
        area,
        floor=floor,
        ceiling=ceiling,
        max_diameter_km=max_diameter_km,
    )
    blocks = [
        piece for block in epci_parts(graph, codes, mask) for piece in cutter.split_block(block)
    ]
    groups = gather_blocks(
        blocks, graph, pop, weight, x, y, ceiling=ceiling, max_diameter_km=max_diameter_km
    )
    groups = gather_blocks(  # tier-1 territories that comparable CPTS say should be larger
        groups,
        graph,
        pop,
        weight,
        x,
        y,
        ceiling=ceiling,
        max_diameter_km=RESCUE_DIAMETER * max_diameter_km,
        below=SPLIT_LEAST,
    )
    block_of = numbering(blocks, len(frame))
    groups = rebalance(groups, cutter, block_of)
    labels = np.full(len(frame), -1, dtype=np.int64)
    for k, group in enumerate(merge_small(groups, graph, pop, floor=floor, ceiling=ceiling)):
        labels[group] = k
    labels = renumber(labels)
    reason_codes, reasons = region_reasons(labels, pop, part_of, floor=floor, ceiling=ceiling)
    wide = width_causes(labels, blocks, block_of, groups, x, y, max_diameter_km=max_diameter_km)
    return Regions(labels, reason_codes, reasons, wide)


def width_causes(
    labels: np.ndarray,
    blocks: list[np.ndarray],
    block_of: np.ndarray,
    groups: list[np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    *,
    max_diameter_km: float,
) -> dict[int, Width]:
    """Why each territory of ``labels`` wider than ``max_diameter_km`` is so, when this objective
    made it so: grouped past that width to leave tier 1 (a group of ``groups``, the territories
    before the floor's merge, already that wide, none of its ``blocks`` being so; ``block_of``:
    :func:`numbering` of the blocks), or merged past it to reach the floor (no group that wide
    inside). A block too wide to cut has no cause given here.
    """
    group_of = numbering(groups, len(labels))

    def any_wide(parts: list[np.ndarray], owner: np.ndarray, nodes: np.ndarray) -> bool:
        return any(
            diameter_km(x[parts[k]], y[parts[k]]) > max_diameter_km
            for k in np.unique(owner[nodes]).tolist()
        )

    causes = {}
    order = np.argsort(labels, kind="stable")
    inside = order[labels[order] >= 0]
    cuts = np.flatnonzero(np.diff(labels[inside])) + 1
    for nodes in np.split(inside, cuts) if len(inside) else []:
        if diameter_km(x[nodes], y[nodes]) <= max_diameter_km:
            continue
        if any_wide(blocks, block_of, nodes):
            continue
        wide = any_wide(groups, group_of, nodes)
        causes[int(labels[nodes[0]])] = Width.FOR_TIER if wide else Width.FOR_FLOOR
    return causes
