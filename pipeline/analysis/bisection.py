"""Recursive bisection of a connected set of communes on its spanning trees.

:class:`Bisector` cuts the spanning-tree edge whose two sides can each still be divided within
[floor, ceiling], keeping the most potential regions (⌊p / floor⌋ per side) then the least
area-weighted inertia (O(1) per edge with subtree sums, over the MST and perturbed trees); a
part is split while above the ceiling, above ``target_population`` or wider than
``max_diameter_km``. It is the ``"bisection"`` method of :func:`pipeline.analysis.regionalize.
regionalize` (used whenever ``target_population`` > 0) and the last step of its greedy cuts.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .regions import diameter_km
from .spanning import runs, spanning_tree_order

BLOCK = 1e9  # added to the weight of edges across EPCIs in block trees (EPCIs as subtrees)


def divisible(pop: np.ndarray, floor: float, ceiling: float) -> np.ndarray:
    """Whether a population can be divided into regions each within [floor, ceiling]."""
    return (pop >= floor) & (np.ceil(pop / ceiling) <= np.floor(pop / floor))


def group_inertia(sums: np.ndarray) -> np.ndarray:
    """Area-weighted inertia of groups from their :meth:`_Splitter.moments` sums (one row per
    group).
    """
    return sums[:, 4] - (sums[:, 2] ** 2 + sums[:, 3] ** 2) / np.maximum(sums[:, 1], 1e-12)


class Bisector:
    """Recursive bisection of the masked commune graph (see the module docstring).

    Parameters
    ----------
    graph : csr_matrix
        Symmetric adjacency of the masked communes (all rows of the frame).
    pop, x, y, area, epci : arrays
        Population, projected centre (m), area (km²) and EPCI code of every commune.
    mask : array of bool
        Communes to group.
    floor, ceiling, max_diameter_km, epci_penalty, target_population, trees
        As :func:`pipeline.analysis.regionalize.regionalize`.
    """

    def __init__(
        self,
        graph: sp.csr_matrix,
        pop,
        x,
        y,
        area,
        epci,
        mask,
        *,
        floor,
        ceiling,
        max_diameter_km,
        epci_penalty,
        target_population,
        trees,
    ):
        """Keep the graph, the commune arrays and the bounds (see the class docstring)."""
        self.graph, self.pop, self.x, self.y = graph, pop, x, y
        self.w = np.maximum(area, 1e-6)
        self.epci = epci
        codes, self.epci_id = np.unique(epci, return_inverse=True)
        self.epci_named = codes != ""  # per EPCI id: communes without an EPCI share the id of ""
        self.rows = np.repeat(np.arange(graph.shape[0]), np.diff(graph.indptr))  # graph.tocoo()
        self.cols = graph.indices
        self.epci_members = np.bincount(self.epci_id[mask], minlength=self.epci_id.max() + 1)
        self.floor, self.ceiling = floor, ceiling
        self.max_diameter_km, self.epci_penalty = max_diameter_km, epci_penalty
        self.target = target_population
        self.trees = trees
        self.position = np.full(len(pop), -1, dtype=np.int64)

    def edge_weight(
        self, nodes: np.ndarray, r: np.ndarray, c: np.ndarray, *, blocks: bool = False
    ) -> np.ndarray:
        """Spanning-tree weight of local edges: centroid distance (m, + 1), times ``epci_penalty``
        across EPCIs, or with ``blocks`` plus ``BLOCK`` across EPCIs (EPCIs as subtrees).
        """
        dist = np.hypot(self.x[nodes[r]] - self.x[nodes[c]], self.y[nodes[r]] - self.y[nodes[c]])
        across = self.epci_id[nodes[r]] != self.epci_id[nodes[c]]
        if blocks:
            return dist + 1.0 + BLOCK * across
        return (dist + 1.0) * np.where(across, self.epci_penalty, 1.0)

    def needs_split(self, nodes: np.ndarray) -> bool:
        """Whether a connected part is to be bisected again: above the ceiling, or (from two floors
        on) above ``target_population`` or wider than ``max_diameter_km``.
        """
        total = self.pop[nodes].sum()
        if len(nodes) < 2:
            return False
        if total > self.ceiling:
            return True
        if total < 2 * self.floor:
            return False
        return (
            total > self.target or diameter_km(self.x[nodes], self.y[nodes]) > self.max_diameter_km
        )

    def split(self, nodes: np.ndarray, *, trees: int | None = None) -> list[np.ndarray]:
        """Recursively bisect a connected set of nodes."""
        stack, done = [np.sort(nodes)], []
        while stack:
            part = stack.pop()
            if not self.needs_split(part):
                done.append(part)
                continue
            sides = self.best_cut(part, trees=trees or self.trees)
            if sides is None:
                done.append(part)
            else:
                stack.extend(sides)
        return done

    def local_edges(self, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Edges (local indices, r < c) of the subgraph induced by ``nodes``."""
        g = self.graph
        starts, ends = g.indptr[nodes], g.indptr[nodes + 1]
        counts = ends - starts
        rows = np.repeat(np.arange(len(nodes)), counts)
        flat = g.indices[runs(starts, counts)]
        self.position[nodes] = np.arange(len(nodes))
        cols = self.position[flat]
        self.position[nodes] = -1
        keep = (cols >= 0) & (rows < cols)
        return rows[keep], cols[keep]

    def moments(self, nodes: np.ndarray, *, centre: np.ndarray | None = None) -> np.ndarray:
        """Per node: population, weight (area) and the area-weighted first and second moments of its
        centroid (km, centred on the nodes' mean or on ``centre`` (m, one row per node)), the sums
        behind the inertia of any group.
        """
        w = self.w[nodes]
        x, y = self.x[nodes], self.y[nodes]
        if centre is None:
            x, y = x - x.mean(), y - y.mean()
        else:
            x, y = x - centre[:, 0], y - centre[:, 1]
        x, y = x / 1000.0, y / 1000.0  # km, centred: precise sums
        return np.c_[self.pop[nodes].astype(float), w, w * x, w * y, w * (x * x + y * y)]

    def tree_cuts(self, nodes, r, c, weight, *, root: int = 0):
        """Spanning tree of ``nodes`` (local edges ``r``, ``c``) with the sums of both sides of
        every edge cut, O(1) each from a preorder cumulative sum: (order, parent, start, size,
        child, inside, outside, total), ``child`` being the lower end of each tree edge; None when
        the nodes are not connected.
        """
        m = len(nodes)
        order, parent = spanning_tree_order(m, r, c, weight, root=root)
        if len(order) != m:
            return None
        size = [1] * m
        par = parent.tolist()
        for v in order[:0:-1].tolist():  # children before parents
            size[par[v]] += size[v]
        size = np.asarray(size)
        start = np.empty(m, dtype=np.int64)
        start[order] = np.arange(m)
        prefix = np.vstack([np.zeros((1, 5)), np.cumsum(self.moments(nodes)[order], axis=0)])
        total = prefix[m]
        child = order[1:]
        inside = prefix[start[child] + size[child]] - prefix[start[child]]
        return order, parent, start, size, child, inside, total - inside, total

    def best_cut(self, nodes: np.ndarray, *, trees: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Best single-edge cut over the MST and ``trees - 1`` perturbed spanning trees."""
        r, c = self.local_edges(nodes)
        weight = self.edge_weight(nodes, r, c)
        rng = np.random.default_rng(
            [len(nodes), int(nodes[0]), int(nodes[-1])]
        )  # deterministic per part
        best_key, best_side = None, None
        for attempt in range(trees):
            factor = 1.0 if attempt == 0 else rng.uniform(0.5, 1.5, len(weight))
            found = self._cut_on_tree(nodes, r, c, weight * factor)
            if found is not None and (best_key is None or found[0] < best_key):
                best_key, best_side = found
            if best_key is not None and best_key[0] == 0 and best_key[1] == 0:
                break  # feasible and no potential region lost: good enough
        if best_side is None:
            return None
        return nodes[best_side], nodes[~best_side]

    def _cut_on_tree(self, nodes, r, c, weight):
        """Best cut of one spanning tree: (sort key, mask of one side) or None."""
        tree = self.tree_cuts(nodes, r, c, weight)
        if tree is None:  # not connected: should not happen, parts are components
            return None
        order, parent, start, size, child, inside, outside, total = tree
        m = len(nodes)
        whole = max(group_inertia(total[None, :])[0], 1e-9)
        score = (group_inertia(inside) + group_inertia(outside)) / whole
        score = score + 0.25 * (self.epci[nodes[child]] == self.epci[nodes[parent[child]]])
        pop_in, pop_out = np.round(inside[:, 0]), np.round(outside[:, 0])
        feasible = divisible(pop_in, self.floor, self.ceiling) & divisible(
            pop_out, self.floor, self.ceiling
        )
        if feasible.any():
            # the cuts that keep the most potential regions (floor(p / floor) per side), then the
            # most compact
            capacity = np.floor(pop_in / self.floor) + np.floor(pop_out / self.floor)
            lost = np.floor(round(total[0]) / self.floor) - capacity
            candidates = np.flatnonzero(feasible)
            pick = candidates[np.lexsort((score[candidates], lost[candidates]))[0]]
            key = (0, float(lost[pick]), float(score[pick]))
        elif total[0] > self.ceiling:
            shortfall = np.maximum(0, self.floor - pop_in) + np.maximum(0, self.floor - pop_out)
            excess = np.maximum(0, pop_in - self.ceiling) + np.maximum(0, pop_out - self.ceiling)
            pick = np.lexsort((score, shortfall + 0.5 * excess))[0]
            key = (1, float(shortfall[pick] + 0.5 * excess[pick]), float(score[pick]))
        else:
            return None  # within the ceiling: only split when both sides are feasible
        v = child[pick]
        side = np.zeros(m, bool)
        side[order[start[v] : start[v] + size[v]]] = True
        return key, side
