"""Spanning trees of the commune graph, and the greedy cut of a forest of them.

:func:`spanning_tree_order` (one minimum spanning tree as a depth-first preorder),
:func:`spanning_forest` (many trees of many node sets at once, level by level) and
:func:`greedy_forest_cut` (closing a region as soon as it reaches the floor, walking each tree up
from its leaves), used by :mod:`pipeline.analysis.regionalize`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import (
    breadth_first_order,
    depth_first_order,
    minimum_spanning_tree,
)

SMALL_PART = 300  # below this many nodes, spanning trees by Kruskal in Python (no sparse overhead)


def spanning_tree_order(
    m: int, r: np.ndarray, c: np.ndarray, weight: np.ndarray, *, root: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Minimum spanning tree of a graph on ``m`` nodes, as a depth-first preorder from ``root`` and
    the parent of each node (negative for the root). In a preorder every subtree is a contiguous
    run, which lets :meth:`_Splitter._cut_on_tree` evaluate all cuts with one cumulative sum.

    Small graphs use Kruskal with a union-find (no sparse-matrix overhead); large ones scipy.
    """
    if m > SMALL_PART:
        tree = minimum_spanning_tree(sp.csr_matrix((weight, (r, c)), shape=(m, m)))
        return depth_first_order(tree, root, directed=False, return_predecessors=True)
    up = list(range(m))

    def find(a):
        while up[a] != a:
            up[a] = up[up[a]]
            a = up[a]
        return a

    links: list[list[int]] = [[] for _ in range(m)]
    joined = 0
    rl, cl = r.tolist(), c.tolist()
    for e in np.argsort(weight, kind="stable").tolist():
        a, b = rl[e], cl[e]
        fa, fb = find(a), find(b)
        if fa != fb:
            up[fa] = fb
            links[a].append(b)
            links[b].append(a)
            joined += 1
            if joined == m - 1:
                break
    parent = [-9999] * m
    seen = [False] * m
    order, stack = [], [root]
    while stack:
        v = stack.pop()
        if seen[v]:
            continue
        seen[v] = True
        order.append(v)
        for u in reversed(links[v]):
            if not seen[u]:
                parent[u] = v
                stack.append(u)
    return np.asarray(order, dtype=np.int64), np.asarray(parent, dtype=np.int64)


def spanning_forest(
    size: int, rows: np.ndarray, cols: np.ndarray, weights: np.ndarray, roots: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Minimum spanning forest of a graph made of several disconnected pieces, each rooted at one of
    ``roots``, computed in one pass: a virtual node linked to every root (those links are bridges,
    so always in the tree) holds the pieces together for one breadth-first walk.

    Parameters
    ----------
    size : int
        Number of nodes.
    rows, cols, weights : ndarray
        Edges and their positive weights; sorted by row then column (as :meth:`_Splitter.forest`
        gives them) they are used as given, otherwise sorted first (duplicates summed).
    roots : ndarray of int
        One root per piece.

    Returns
    -------
    (parent, depth)
        Parent of each node (-1 for a root or a node no root reaches) and its depth.
    """
    key = rows * (size + 1) + cols
    if len(key) > 1 and not (key[1:] > key[:-1]).all():  # not canonical: sort (sums duplicates)
        coo = sp.coo_matrix((weights, (rows, cols)), shape=(size, size)).tocsr().tocoo()
        rows, cols, weights = coo.row, coo.col, coo.data
    # the CSR arrays built directly (rows sorted, columns sorted within rows): what scipy's
    # COO conversion would give, without its copies and checks
    indptr = np.zeros(size + 2, dtype=np.int32)
    np.cumsum(np.bincount(rows, minlength=size), out=indptr[1 : size + 1])
    indptr[size + 1] = indptr[size] + len(roots)
    graph = sp.csr_matrix(
        (
            np.concatenate((weights, np.ones(len(roots)))),
            np.concatenate((cols, np.sort(roots))).astype(np.int32),
            indptr,
        ),
        shape=(size + 1, size + 1),
    )
    tree = minimum_spanning_tree(graph, overwrite=True)
    _order, parent = breadth_first_order(tree, size, directed=False, return_predecessors=True)
    parent = parent[:size].astype(np.int64)
    parent[(parent == size) | (parent < 0)] = -1
    # depth by pointer jumping: log2(depth) vectorised steps
    up = np.where(parent >= 0, parent, np.arange(size))
    depth = (parent >= 0).astype(np.int64)
    while True:
        further = up[up]
        if (further == up).all():
            return parent, depth
        depth = depth + np.where(further != up, depth[up], 0)
        up = further


def depth_levels(depth: np.ndarray) -> list[np.ndarray]:
    """Nodes of a forest grouped by depth, roots first."""
    by_depth = np.argsort(
        depth.astype(np.int16) if depth.max() < 2**15 else depth, kind="stable"
    )  # radix sort
    bounds = np.searchsorted(depth[by_depth], np.arange(depth.max() + 2))
    return [by_depth[bounds[d] : bounds[d + 1]] for d in range(len(bounds) - 1)]


def greedy_forest_cut(
    pop: np.ndarray,
    parent: np.ndarray,
    depth: np.ndarray,
    floor: float,
    *,
    closable: np.ndarray | None = None,
) -> np.ndarray:
    """Bottom-up greedy cut of each tree of a rooted forest into parts of population >= ``floor``.

    Walking up from the leaves, a part is closed at a node as soon as the population gathered in its
    subtree (minus the parts already closed below) reaches ``floor``; what is left at a root (below
    the floor) joins the smallest part hanging from it. On a given tree this yields the most parts
    of population >= floor (closing as early as possible leaves the least population to the
    parent). Vectorised level by level, so many trees are cut at once.

    Parameters
    ----------
    pop : array of float
        Population of each node.
    parent, depth : ndarray of int
        Parent (-1 for a root) and depth of each node, as from :func:`spanning_forest`.
    floor : float
        Population floor of a part.
    closable : array of bool, optional
        Per node, whether the edge to its parent may be cut (default: every edge); e.g. False
        inside a small EPCI keeps it whole.

    Returns
    -------
    ndarray of int
        For each node, the node where its part was closed (a part label).
    """
    n = len(pop)
    gathered = np.asarray(pop, dtype=float).copy()
    closed = parent < 0
    can = np.ones(n, bool) if closable is None else closable
    for level in depth_levels(depth)[:0:-1]:  # deepest first: a level's sums are then complete
        here = gathered[level]  # a part closed here passes nothing up (adding 0 changes no sum)
        np.add.at(gathered, parent[level], np.where((here >= floor) & can[level], 0.0, here))
    closed |= (gathered >= floor) & can
    # each node's part: its nearest closed ancestor or itself (pointer jumping)
    label = np.where(closed, np.arange(n), parent)
    while True:
        further = label[label]
        if (further == label).all():
            break
        label = further
    short = np.flatnonzero((parent < 0) & (gathered < floor))
    if len(short):
        leftover = np.zeros(n, bool)
        leftover[short] = True
        hanging = np.flatnonzero(closed & (parent >= 0))
        hanging = hanging[leftover[label[parent[hanging]]]]
        if len(hanging):
            home = label[parent[hanging]]
            pick = np.lexsort((hanging, gathered[hanging], home))
            first = np.r_[True, home[pick][1:] != home[pick][:-1]]
            target = np.arange(n)
            target[home[pick][first]] = hanging[pick][first]
            label = target[label]
    return label


def runs(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The ranges ``starts[k], ..., starts[k] + lengths[k] - 1`` concatenated (vectorised)."""
    return np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(lengths.sum())


def heaviest_of_triangles(a: np.ndarray, b: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Per tree (row of ``weight``) and edge (``a < b``, sorted by ``a`` then ``b``): whether the
    edge is the heaviest of a triangle, by weight then position (the order of scipy's Kruskal on the
    sorted edges). Such an edge is the heaviest of a cycle, so never in the minimum spanning tree:
    leaving it out gives the same tree for less sorting (about 45 % of a commune graph's edges).
    """
    out = np.zeros(weight.shape, bool)
    if not len(a):
        return out
    first = np.searchsorted(a, np.arange(b.max() + 2))  # first edge leaving each node
    # triangles x < y < z: the edge (x, y), each edge (y, z) leaving y, and (x, z) when an edge
    xy = np.repeat(np.arange(len(a)), first[b + 1] - first[b])
    yz = runs(first[b], first[b + 1] - first[b])
    key, wanted = a * len(first) + b, a[xy] * len(first) + b[yz]
    xz = np.minimum(np.searchsorted(key, wanted), len(key) - 1)
    hit = key[xz] == wanted
    xy, yz, xz = xy[hit], yz[hit], xz[hit]  # positions xy < xz < yz
    w_xy, w_yz, w_xz = weight[:, xy], weight[:, yz], weight[:, xz]
    heaviest = np.where((w_xy > w_xz) & (w_xy > w_yz), xy, np.where(w_xz > w_yz, xz, yz))
    out[np.arange(len(weight))[:, None], heaviest] = True
    return out


@dataclass
class Forest:
    """Spanning trees of several sets of nodes in one forest (:meth:`_Splitter.forest`): the node
    of set ``k``'s tree ``t`` for its ``i``-th entry is ``base[k] + t * m[k] + i``.
    """

    nodes: np.ndarray  # the sets concatenated
    owner: np.ndarray  # set of each entry
    local: np.ndarray  # position of each entry in its set
    m: np.ndarray  # size of each set
    base: np.ndarray  # first forest node of each set
    trees: int
    entry: np.ndarray  # per forest node: its entry
    copy: np.ndarray  # per forest node: set * trees + tree
    parent: np.ndarray  # per forest node (-1 for a root)
    depth: np.ndarray

    def of_tree(self, tree: np.ndarray) -> np.ndarray:
        """Forest node of each entry in the tree ``tree[set]`` of its set."""
        return self.base[self.owner] + tree[self.owner] * self.m[self.owner] + self.local
