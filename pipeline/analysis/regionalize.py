"""Contiguous regionalization with a population floor and ceiling (cuts of spanning trees).

:func:`regionalize` takes communes (a GeoDataFrame), their adjacency and a mask of the communes to
group, and returns a region label per commune. A region is always a subtree of a spanning tree of
the masked graph, hence contiguous. Tree edges weigh the distance between centroids, multiplied by
``epci_penalty`` across an EPCI border (EPCIs form subtrees). Default (``method="trees"``):

0. a commune whose population reaches the floor is a region on its own (a commune above the
   ceiling too: it cannot be split); the greedy cut below works on the rest;
1. *greedy cut* (:func:`greedy_forest_cut`): walking a rooted tree up from the leaves, a region is
   closed as soon as it reaches the floor — on that tree, the most regions >= floor; each connected
   part is cut on ``trees`` trees (MST, randomly perturbed weights and roots, from one random
   stream seeded by the input) of three kinds in turn (``KINDS``): plain, keeping the EPCIs below
   the floor whole, and block trees (every EPCI a subtree) keeping the EPCIs below two floors
   whole; the best cut is kept: most regions within [floor, ceiling], then most EPCIs whole, then
   least area-weighted inertia (Ward-like compactness). Every tree of every part is cut at once
   (:func:`spanning_forest`, vectorised level by level);
2. a region above the ceiling (or wider than ``max_diameter_km``, or that could hold two) is
   bisected when both halves stay within the bounds (below);
3. local search (:meth:`_Splitter.recombine`): each region with its neighbours is cut again when
   their population could hold one more region, kept when it has more within the bounds, or as
   many and more EPCIs whole;
4. EPCI re-cuts (:meth:`_Splitter.gather_epcis`): for each EPCI split between regions, of at
   most two floors and contiguous, three tries cut at once: the EPCI as a region of its own with
   the rest of its regions and their neighbours cut again, and its regions (alone, then with
   their neighbours) cut again with the EPCI never cut inside; a try is kept when it has as many
   regions within the bounds and more EPCIs whole (two rounds, the second next to the changes);
   then :meth:`_Splitter.keep_epcis_whole` moves the communes of a split EPCI to the region
   holding most of it when every region involved stays within the bounds and contiguous.

The effort (``trees``, ``LOCAL_TREES``, ``SPLIT_TREES``, ``LOCAL_ROUNDS``, ``GATHER_ROUNDS``) is
set so that a département takes about 5-30 ms (more rounds above ``LARGE_AREA`` communes, fewer
trees per try above ``LOCAL_BUDGET`` nodes: all of France in about 3.5 s); ``make bench``
measures counts, compactness, EPCIs kept whole and times against spopt's MaxPHeuristic and this
previous algorithm:

``method="bisection"`` (the previous algorithm, always used when ``target_population`` > 0):
recursive bisection, cutting the tree edge whose sides can each still be divided within the
bounds, keeping the most potential regions (⌊p/floor⌋ per side) then the least inertia (O(1) per
edge with subtree sums), over several trees; a part is split while above the ceiling, above
``target_population`` or wider than ``max_diameter_km``; a recombination pass merges a region that
could hold two with a neighbour and splits the union again.

Either way, regions left below the floor join an adjacent region when the result stays under the
ceiling; a single commune above the ceiling stays alone; regions outside the bounds carry a reason.
The result is deterministic.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from .adjacency import Adjacency, components
from .bisection import Bisector, group_inertia
from .regions import (
    Reason,
    Regions,
    centroids_and_areas,
    masked_graph,
    merge_small,
    region_reasons,
    renumber,
)
from .spanning import (
    Forest,
    greedy_forest_cut,
    heaviest_of_triangles,
    runs,
    spanning_forest,
)

__all__ = ["Reason", "Regions", "centroids_and_areas", "merge_small", "regionalize"]


KINDS = ((False, 0.0), (False, 1.0), (True, 2.0))
LOCAL_TREES = 4  # trees per group in the local re-partitions
# the EPCI re-cuts (:meth:`_Splitter.gather_epcis`): EPCIs of at most this many floors, rounds,
# trees per try and fewest trees per try (when the tries hold over ``LOCAL_BUDGET`` nodes: all of
# France); their kind: block trees keeping only the EPCI tried whole
GATHER_MAX, GATHER_ROUNDS, GATHER_TREES, GATHER_MIN_TREES = 2.0, 2, 4, 2
GATHER_KINDS = ((True, 0.0),)
SPLIT_TREES = 4  # trees per bisection of a region after the greedy cut
LOCAL_ROUNDS = 1  # rounds of local re-partitions (a département: about 3 ms a round)
LARGE_AREA, LARGE_ROUNDS = 5_000, 3  # more rounds above this many communes (France: +2 %, +1 s)
LOCAL_BUDGET = 150_000  # forest nodes per call beyond which fewer trees are drawn (bounded work)


class _Splitter(Bisector):
    """The greedy cuts of many spanning trees and the local searches after them (the default
    ``trees`` method), over the recursive bisection of :class:`Bisector`.
    """

    def forest(self, sets: list[np.ndarray], *, trees: int, blocks=False) -> Forest:
        """``trees`` spanning trees of each connected set of nodes, all in one forest: the MST and
        trees of randomly perturbed weights (factors in [0.5, 1.5]), random roots, from one random
        stream seeded by the sets (deterministic). On the trees where ``blocks`` (a bool per tree)
        is set, every edge inside an EPCI weighs less than any edge across EPCIs, so that each EPCI
        (each of its connected pieces in the set) is a subtree.
        """
        m = np.array([len(q) for q in sets])
        nodes = np.concatenate(sets)
        owner = np.repeat(np.arange(len(sets)), m)
        local = np.arange(len(nodes)) - np.repeat(np.cumsum(m) - m, m)
        a, b = self.set_edges(nodes, owner)
        blocks = np.broadcast_to(np.asarray(blocks, bool), (trees,))
        weight = self.edge_weight(nodes, a, b)
        if blocks.any():
            weight = np.where(
                blocks[:, None], self.edge_weight(nodes, a, b, blocks=True), weight[None, :]
            )
        rng = np.random.default_rng(  # one stream per call, seeded by the sets: deterministic
            [len(sets), len(nodes), int(nodes[0]), int(nodes[-1]), int(nodes.sum())]
        )
        factors = np.ones((trees, len(a)))
        factors[1:] = rng.uniform(0.5, 1.5, (trees - 1, len(a)))
        roots = (rng.random((len(sets), trees)) * m[:, None]).astype(np.int64)
        base = (
            np.cumsum(trees * m) - trees * m
        )  # forest node of (set, tree, local) = base + tree * m + local
        size = int(trees * m.sum())
        # forest nodes run set by set, then tree by tree; the edges (sorted by a, b) are taken in
        # the same order, so the forest's edge list comes sorted (its CSR form without a sort)
        per_copy = np.repeat(m, trees)
        entry = runs(np.repeat(np.cumsum(m) - m, trees), per_copy)
        copy = np.repeat(np.arange(len(sets) * trees), per_copy)
        counts = np.bincount(owner[a], minlength=len(sets))  # edges of each set
        edge = runs(np.repeat(np.cumsum(counts) - counts, trees), np.repeat(counts, trees))
        tree_of = np.repeat(np.tile(np.arange(trees), len(sets)), np.repeat(counts, trees))
        weight = weight * factors
        useful = ~heaviest_of_triangles(a, b, weight)[tree_of, edge]  # others: never in the MST
        edge, tree_of = edge[useful], tree_of[useful]
        shift = base[owner[a[edge]]] + tree_of * m[owner[a[edge]]]
        parent, depth = spanning_forest(
            size,
            shift + local[a[edge]],
            shift + local[b[edge]],
            weight[tree_of, edge],
            (base + np.arange(trees)[:, None] * m + roots.T).ravel(),
        )
        return Forest(nodes, owner, local, m, base, trees, entry, copy, parent, depth)

    def greedy(
        self,
        sets: list[np.ndarray],
        *,
        trees: int,
        kinds: tuple[tuple[bool, float], ...] = KINDS,
        force: np.ndarray | None = None,
    ) -> list[list[np.ndarray]]:
        """Partition each connected set of nodes by :func:`greedy_forest_cut` on ``trees`` spanning
        trees (:meth:`forest`) of the ``kinds`` in turn (by default ``KINDS``: plain trees cut
        anywhere, trees that keep the EPCIs below the floor whole, block trees that keep the EPCIs
        below two floors whole); ``force`` gives per set an EPCI id never cut inside (-1: none).
        For each set, keep the cut with the most regions within the bounds, then the fewest
        outside, the most EPCIs whole, the least area-weighted inertia (the first tree among
        equals).
        """
        if not sets:
            return []
        kinds = [kinds[t % len(kinds)] for t in range(trees)]
        f = self.forest(sets, trees=trees, blocks=[k[0] for k in kinds])
        nodes, owner = f.nodes, f.owner
        entry, copy, parent, depth = f.entry, f.copy, f.parent, f.depth
        pop = self.pop[nodes]
        group = owner * (self.epci_id.max() + 1) + self.epci_id[nodes]
        keep = np.array([k[1] for k in kinds])[copy % trees] * self.floor
        above = entry[np.maximum(parent, 0)]
        kept = np.bincount(group, weights=pop)[group[entry]] < keep
        if force is not None:
            kept |= self.epci_id[nodes[entry]] == np.asarray(force)[owner[entry]]
        closable = ~(kept & (group[entry] == group[above]) & (parent >= 0))
        label = greedy_forest_cut(pop[entry], parent, depth, self.floor, closable=closable)
        best = self.best_copies(nodes, owner, entry, copy, label, trees)
        return _groups(nodes, owner, label[f.of_tree(best)], len(sets))

    def parts(self, sets: list[np.ndarray]) -> list[list[np.ndarray]]:
        """The connected parts of each set of nodes (sorted), all sets at once (one
        block-diagonal graph), as sorted node arrays.
        """
        nodes = np.concatenate(sets)
        of_set = np.repeat(np.arange(len(sets)), [len(q) for q in sets])
        ra, rb = self.set_edges(nodes, of_set)
        _k, label = connected_components(
            sp.csr_matrix((np.ones(len(ra)), (ra, rb)), shape=(len(nodes), len(nodes))),
            directed=False,
        )
        return _groups(nodes, of_set, label, len(sets))

    def set_edges(self, nodes: np.ndarray, owner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Graph edges inside each set, for sets concatenated in ``nodes`` (each sorted; ``owner``
        the set of each entry, non-decreasing): pairs of entry positions ``a < b``.
        """
        g = self.graph
        deg = g.indptr[nodes + 1] - g.indptr[nodes]
        row = np.repeat(np.arange(len(nodes)), deg)
        nbr = g.indices[runs(g.indptr[nodes], deg)]
        keys = owner * len(self.pop) + nodes
        wanted = owner[row] * len(self.pop) + nbr
        pos = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
        hit = (keys[pos] == wanted) & (row < pos)
        return row[hit], pos[hit]

    def best_copies(self, nodes, owner, entry, copy, label, trees) -> np.ndarray:
        """Index of the best tree of each set (see :meth:`greedy`)."""
        sets = int(owner.max()) + 1
        copies = sets * trees
        mean = np.stack(
            [
                np.bincount(owner, weights=v) / np.bincount(owner)
                for v in (self.x[nodes], self.y[nodes])
            ]
        )
        moments = self.moments(nodes, centre=mean[:, owner].T)[entry]
        sums = np.stack(
            [np.bincount(label, weights=col, minlength=len(label)) for col in moments.T], axis=1
        )
        parts = np.flatnonzero(sums[:, 1] > 0)
        part_copy = copy[parts]
        pop = np.round(sums[parts, 0])
        ok = (pop >= self.floor) & (pop <= self.ceiling)
        within = np.bincount(part_copy, weights=ok, minlength=copies)
        outside = np.bincount(part_copy, weights=~ok, minlength=copies)
        inertia = np.bincount(part_copy, weights=group_inertia(sums[parts]), minlength=copies)
        ne = int(self.epci_id.max()) + 1
        pairs = np.unique(label * ne + self.epci_id[nodes[entry]])
        spread, count = np.unique(copy[pairs // ne] * ne + pairs % ne, return_counts=True)
        whole = np.bincount(spread[count == 1] // ne, minlength=copies)
        index = np.arange(copies)
        order = np.lexsort((index, inertia, -whole, outside, -within, index // trees))
        first = order[np.r_[True, (order[1:] // trees) != (order[:-1] // trees)]]
        return first % trees

    def owner(self, pieces: list[np.ndarray]) -> np.ndarray:
        """The number of the piece holding each node (-1 outside every piece)."""
        owner = np.full(len(self.pop), -1, dtype=np.int64)
        if pieces:
            owner[np.concatenate(pieces)] = np.repeat(
                np.arange(len(pieces)), [len(p) for p in pieces]
            )
        return owner

    def piece_graph(self, pieces: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Pairs of neighbouring pieces ``(a, b)``, both ways, sorted by ``a`` then ``b``."""
        count = len(pieces)
        if not count:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        owner = self.owner(pieces)
        a, b = owner[self.rows], owner[self.cols]
        keep = (a >= 0) & (b >= 0) & (a != b)
        pairs = np.unique(a[keep] * count + b[keep])
        return pairs // count, pairs % count

    def whole_epcis(self, groups: list[list[np.ndarray]]) -> np.ndarray:
        """Per group of pieces, the number of EPCIs whose communes to group all lie in one of its
        pieces (one sort for all groups).
        """
        pieces = [p for g in groups for p in g]
        if not pieces:
            return np.zeros(len(groups), dtype=np.int64)
        group_of = np.repeat(np.arange(len(groups)), [len(g) for g in groups])
        ne = len(self.epci_members)
        key = (
            np.repeat(np.arange(len(pieces)), [len(p) for p in pieces]) * ne
            + self.epci_id[np.concatenate(pieces)]
        )
        pairs, counts = np.unique(key, return_counts=True)
        whole = counts == self.epci_members[pairs % ne]
        return np.bincount(group_of[pairs // ne], weights=whole, minlength=len(groups)).astype(
            np.int64
        )

    def recombine(self, pieces: list[np.ndarray], *, trees: int, rounds: int) -> list[np.ndarray]:
        """Local search by re-partitioning each piece with its neighbours (:meth:`greedy`, all
        groups at once, the largest pieces first; contiguous by construction), only where the
        group's population could hold one more region within the bounds. A result is kept when it
        touches no piece already changed in the round, has no more regions outside the bounds and
        more within them; then, among the groups left untouched, when it has as many within the
        bounds and more EPCIs whole. After the first round, only groups with a piece changed by
        the previous round are tried again; at most ``rounds`` rounds, ``trees`` trees per group
        (fewer when the groups hold many communes: bounded work).
        """
        fresh = np.ones(len(pieces), bool)
        for _ in range(rounds):
            sizes = self.sizes(pieces)
            ok = (sizes >= self.floor) & (sizes <= self.ceiling)
            groups = self._groups_to_try(pieces, sizes, ok, fresh)
            if not groups:
                break
            unions = [np.sort(np.concatenate([pieces[t] for t in g])) for g in groups]
            found = self.greedy(unions, trees=_budget(trees, unions, least=3))
            within, outside = self.bound_counts([[pieces[t] for t in g] for g in groups])
            new_within, new_outside = self.bound_counts(found)
            allowed = new_outside <= outside
            replaced: dict[int, list[np.ndarray]] = {}
            for g in np.flatnonzero(allowed & (new_within > within)).tolist():
                _claim(replaced, groups[g], found[g])
            # as many regions within the bounds: kept when more EPCIs whole
            tied = np.flatnonzero(allowed & (new_within == within))
            gain = self.epci_gains(pieces, [groups[g] for g in tied], [found[g] for g in tied])
            for g, more in zip(tied.tolist(), gain.tolist()):
                if more > 0:
                    _claim(replaced, groups[g], found[g])
            if not replaced:
                break
            pieces, fresh = _replace(pieces, replaced)
        return pieces

    def bound_counts(self, groups: list[list[np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        """Per group of pieces, how many are within [floor, ceiling] and how many outside."""
        sizes = self.sizes([p for g in groups for p in g])
        ok = (sizes >= self.floor) & (sizes <= self.ceiling)
        of = np.repeat(np.arange(len(groups)), [len(g) for g in groups])
        within = np.bincount(of, weights=ok, minlength=len(groups))
        return within, np.bincount(of, minlength=len(groups)) - within

    def epci_gains(
        self, pieces: list[np.ndarray], groups: list[np.ndarray], news: list[list[np.ndarray]]
    ) -> np.ndarray:
        """Per try, how many more EPCIs are whole in the new pieces ``news[k]`` than in the
        pieces numbered ``groups[k]`` they replace.
        """
        if not groups:
            return np.zeros(0, dtype=np.int64)
        return self.whole_epcis(news) - self.whole_epcis([[pieces[t] for t in g] for g in groups])

    def sizes(self, pieces: list[np.ndarray]) -> np.ndarray:
        """Population of each piece."""
        if not pieces:
            return np.zeros(0)
        lengths = [len(p) for p in pieces]
        return np.bincount(
            np.repeat(np.arange(len(pieces)), lengths),
            weights=self.pop[np.concatenate(pieces)],
            minlength=len(pieces),
        )

    def _groups_to_try(
        self, pieces: list[np.ndarray], sizes: np.ndarray, ok: np.ndarray, fresh: np.ndarray
    ) -> list[np.ndarray]:
        """The groups a round of :meth:`recombine` re-partitions: each piece with its neighbours,
        the largest pieces first, when the group holds a ``fresh`` piece and its population could
        hold more regions within the bounds than ``ok`` counts.
        """
        count = len(pieces)
        a, b = self.piece_graph(pieces)

        def over_neighbours(values):
            return values + np.bincount(a, weights=values[b], minlength=count)

        wanted = (
            (np.bincount(a, minlength=count) > 0)
            & (over_neighbours(fresh.astype(float)) > 0)
            & (np.floor(over_neighbours(sizes) / self.floor) > over_neighbours(ok.astype(float)))
        )
        cuts = np.searchsorted(a, np.arange(count + 1))
        firsts = np.array([p[0] for p in pieces])
        return [
            np.concatenate(([k], b[cuts[k] : cuts[k + 1]]))
            for k in np.lexsort((firsts, -sizes))
            if wanted[k]
        ]

    def connected(self, nodes: np.ndarray) -> bool:
        """Whether ``nodes`` (sorted, non-empty) form one connected set of the graph."""
        a, b = self.set_edges(nodes, np.zeros(len(nodes), dtype=np.int64))
        up = list(range(len(nodes)))

        def find(v):
            while up[v] != v:
                up[v] = up[up[v]]
                v = up[v]
            return v

        groups = len(nodes)
        for u, v in zip(a.tolist(), b.tolist()):
            fu, fv = find(u), find(v)
            if fu != fv:
                up[fu] = fv
                groups -= 1
        return groups == 1

    def keep_epcis_whole(self, pieces: list[np.ndarray]) -> list[np.ndarray]:
        """Local search for whole EPCIs: the communes of an EPCI split between regions all move to
        the region holding most of its population when every region involved stays within the
        bounds and contiguous (so the number of regions within the bounds never drops).
        """
        pieces = [np.sort(p) for p in pieces]
        owner = self.owner(pieces)
        nodes = np.flatnonzero(owner >= 0)
        ids, inverse = np.unique(self.epci_id[nodes], return_inverse=True)  # in code order
        sizes = self.sizes(pieces)
        within = (sizes >= self.floor) & (sizes <= self.ceiling)
        # only the communes of the EPCI at hand ever move: which EPCIs are split between regions
        # all within the bounds is known beforehand (one sort instead of a test per EPCI)
        count = len(pieces)
        pairs = np.unique(inverse * count + owner[nodes])
        spread = np.bincount(pairs // count, minlength=len(ids))
        outside = np.bincount(pairs // count, weights=~within[pairs % count], minlength=len(ids))
        named = self.epci[nodes[np.unique(inverse, return_index=True)[1]]] != ""
        candidate = (spread >= 2) & (outside == 0) & named
        order = np.argsort(-np.bincount(inverse, minlength=len(ids)), kind="stable")
        for e in order[candidate[order]]:
            members = nodes[inverse == e]
            regions = np.unique(owner[members])
            share = np.bincount(
                np.searchsorted(regions, owner[members]), weights=self.pop[members]
            )  # population of the EPCI in each region
            # bounds first (all targets at once), cheaper than contiguity
            grown_size, left = sizes[regions] + share.sum() - share, sizes[regions] - share
            left_ok = (left >= self.floor) & (left <= self.ceiling)
            fits = (self.floor <= grown_size) & (grown_size <= self.ceiling)
            fits &= left_ok.sum() - left_ok == len(regions) - 1  # every other region stays within
            for k in np.argsort(-share, kind="stable"):
                if not fits[k]:
                    continue
                t, others = regions[k], np.delete(regions, k)
                moved = members[owner[members] != t]
                grown = np.union1d(pieces[t], moved)
                rest = {int(s): np.setdiff1d(pieces[s], moved) for s in others}
                if self.connected(grown) and all(self.connected(q) for q in rest.values()):
                    pieces[t], sizes[t] = grown, self.pop[grown].sum()
                    owner[moved] = t
                    for s_, q in rest.items():
                        pieces[s_], sizes[s_] = q, self.pop[q].sum()
                    break
        return pieces

    def split_epcis(self, pieces: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The EPCIs split between regions that could be kept whole: (owner of each node (-1
        outside the pieces), EPCI ids, their populations) for the EPCIs held by two regions or
        more, with all their communes to group among the pieces and contiguous on their own.
        """
        count = len(pieces)
        owner = self.owner(pieces)
        inside = np.flatnonzero(owner >= 0)
        ids = self.epci_id[inside]
        ne = len(self.epci_members)
        total = np.bincount(ids, weights=self.pop[inside], minlength=ne)
        holders = np.bincount(np.unique(ids * count + owner[inside]) // count, minlength=ne)
        rows, cols = self.rows, self.cols
        same = (owner[rows] >= 0) & (owner[cols] >= 0) & (self.epci_id[rows] == self.epci_id[cols])
        n = len(self.pop)
        _k, part = connected_components(
            sp.csr_matrix((np.ones(same.sum()), (rows[same], cols[same])), shape=(n, n)),
            directed=False,
        )
        parts_of = np.bincount(np.unique(ids * n + part[inside]) // n, minlength=ne)
        wanted = np.flatnonzero(
            (holders > 1)
            & (parts_of == 1)
            & (np.bincount(ids, minlength=ne) == self.epci_members)
            & self.epci_named
        )
        return owner, wanted, total[wanted]

    def gather_epcis(self, pieces: list[np.ndarray], *, trees: int) -> list[np.ndarray]:
        """Local search for whole EPCIs: ``GATHER_ROUNDS`` rounds of :meth:`gather_round`, the
        rounds after the first trying only the EPCIs next to a region the previous one changed.
        """
        fresh = None
        for _ in range(GATHER_ROUNDS):
            pieces, fresh = self.gather_round(pieces, trees=trees, fresh=fresh)
            if not fresh.any():
                break
        return pieces

    def gather_round(
        self, pieces: list[np.ndarray], *, trees: int, fresh: np.ndarray | None
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """One round of :meth:`gather_epcis`. For each split EPCI of at most ``GATHER_MAX`` floors
        (:meth:`split_epcis`) whose regions and their neighbours hold a ``fresh`` region (any
        when None), three tries, all cut in one :meth:`greedy` forest of ``trees`` trees per
        set (``GATHER_KINDS``).

        - the EPCI as a region of its own (when it reaches the floor), the rest of the regions
          holding it and of their neighbours cut again (each connected part);
        - the regions holding it, cut again with the EPCI never cut inside;
        - the same with their neighbours.

        A try is kept when its regions have as many within the bounds, no more outside and more
        EPCIs whole; the largest gains first, each region changed once. Contiguous by
        construction (each region is a subtree of a spanning tree, or the contiguous EPCI).
        Returns the regions and whether each was changed.
        """
        owner, wanted, total = self.split_epcis(pieces)
        small = total <= GATHER_MAX * self.floor
        wanted, total = wanted[small], total[small]
        if not len(wanted):
            return pieces, np.zeros(len(pieces), bool)
        count = len(pieces)
        a, b = self.piece_graph(pieces)
        cuts = np.searchsorted(a, np.arange(count + 1))
        inside = np.flatnonzero(owner >= 0)
        by_epci = inside[np.argsort(self.epci_id[inside], kind="stable")]
        starts = np.searchsorted(self.epci_id[by_epci], wanted)
        groups, fixed, sets, force = [], [], [], []
        for e, pop, start in zip(wanted.tolist(), total.tolist(), starts.tolist()):
            members = by_epci[start : start + self.epci_members[e]]
            held = np.unique(owner[members])
            ring = np.unique(np.concatenate([held] + [b[cuts[k] : cuts[k + 1]] for k in held]))
            if fresh is not None and not fresh[ring].any():
                continue
            union = np.concatenate([pieces[t] for t in ring])
            rest = np.sort(union[self.epci_id[union] != e])
            if pop >= self.floor and len(rest):
                groups.append(ring)
                fixed.append([members])
                sets.append(rest)
                force.append(-1)
            for group in (held, ring):
                groups.append(group)
                fixed.append([])
                sets.append(np.sort(np.concatenate([pieces[t] for t in group])))
                force.append(e)
        if not sets:
            return pieces, np.zeros(len(pieces), bool)
        # the rests may fall apart: cut each connected part (the other sets are connected: the
        # regions holding a contiguous EPCI, with or without neighbours)
        rests = [g for g, e in enumerate(force) if e < 0]
        split = [[q] for q in sets]
        for g, parts in zip(rests, self.parts([sets[g] for g in rests]) if rests else []):
            split[g] = parts
        flat = [q for parts in split for q in parts]
        found = self.greedy(
            flat,
            trees=_budget(trees, flat, least=GATHER_MIN_TREES),
            kinds=GATHER_KINDS,
            force=np.repeat(force, [len(parts) for parts in split]),
        )
        news, k = [], 0
        for extra, parts in zip(fixed, split):
            news.append(extra + [p for cut in found[k : k + len(parts)] for p in cut])
            k += len(parts)
        within, outside = self.bound_counts([[pieces[t] for t in g] for g in groups])
        new_within, new_outside = self.bound_counts(news)
        keep = np.flatnonzero((new_within >= within) & (new_outside <= outside))
        gain = self.epci_gains(pieces, [groups[g] for g in keep], [news[g] for g in keep])
        replaced: dict[int, list[np.ndarray]] = {}
        for i in np.lexsort((keep, -gain)).tolist():  # the largest gains first
            if gain[i] > 0:
                _claim(replaced, groups[keep[i]], news[keep[i]])
        return _replace(pieces, replaced)

    def feasible_count(self, pieces: list[np.ndarray]) -> tuple[int, int]:
        within, outside = self.bound_counts([pieces])
        return int(within[0]), int(outside[0])

    def improve(self, pieces: list[np.ndarray], *, rounds: int = 4) -> list[np.ndarray]:
        """Recombination: merge a region that could hold two (population >= 2 x floor) with a
        neighbouring region and split the union again; keep the result when it has more regions
        within the bounds and no more outside them.
        """
        pieces = [np.sort(p) for p in pieces]
        for _ in range(rounds):
            owner = self.owner(pieces)
            sizes = self.sizes(pieces)
            replaced: dict[int, list[np.ndarray]] = {}
            used: set[int] = set()
            for k in sorted(
                np.flatnonzero(sizes >= 2 * self.floor),
                key=lambda k: (-sizes[k], int(pieces[k][0])),
            ):
                if k in used:
                    continue
                touching = np.unique(
                    owner[
                        np.concatenate(
                            [
                                self.graph.indices[self.graph.indptr[v] : self.graph.indptr[v + 1]]
                                for v in pieces[k]
                            ]
                        )
                    ]
                )
                for t in sorted(
                    (t for t in touching if t >= 0 and t != k and t not in used),
                    key=lambda t: (sizes[t], int(pieces[t][0])),
                ):
                    union = np.sort(np.r_[pieces[k], pieces[t]])
                    before = self.feasible_count([pieces[k], pieces[t]])
                    if np.floor(self.pop[union].sum() / self.floor) <= before[0]:
                        continue
                    after_pieces = self.split(union)
                    after = self.feasible_count(after_pieces)
                    if after[0] > before[0] and after[1] <= before[1]:
                        replaced[k], replaced[t] = after_pieces, []
                        used.update((k, t))
                        break
            if not replaced:
                break
            pieces = [q for k, p in enumerate(pieces) for q in replaced.get(k, [p])]
        return pieces


def regionalize(
    frame: gpd.GeoDataFrame,
    adjacency: Adjacency,
    mask: np.ndarray,
    *,
    floor: float = 20_000,
    ceiling: float = 200_000,
    target_population: float = 0.0,
    max_diameter_km: float = 60.0,
    epci_penalty: float = 3.0,
    trees: int = 12,
    population: str = "population",
    epci: str = "code_epci",
    same_departement: bool = False,
    method: str = "trees",
    centres: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> Regions:
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
    target_population : float
        0 (default): as many regions as possible (the max-p objective). Above 0: fewer, larger
        regions; the recursive bisection is used and a region above this is split further when both
        halves stay within the bounds.
    max_diameter_km : float
        A region wider than this (between commune centroids) is split further when both halves can
        stay within the bounds.
    epci_penalty : float
        Cost factor of spanning-tree edges crossing an EPCI border (>= 1; 1 ignores EPCIs).
    trees : int
        Spanning trees of the first greedy cut of each part (the MST, then trees of randomly
        perturbed weights with a seed derived from the input, so results stay deterministic), and
        of each bisection of the "bisection" method; the local search and the bisections after the
        greedy cut draw ``LOCAL_TREES`` and ``SPLIT_TREES``.
    population, epci : str
        Column names.
    same_departement : bool
        Never put communes of two départements in one region.
    centres : (x, y, area), optional
        :func:`pipeline.analysis.regions.centroids_and_areas` of ``frame``, when already known.
    method : {"trees", "bisection"}
        "trees": greedy cuts of many spanning trees followed by the local searches (see the module
        docstring); "bisection": the recursive bisection alone (the algorithm used before, and
        always when ``target_population`` > 0).

    Returns
    -------
    Regions
    """
    if method not in ("trees", "bisection"):
        raise ValueError(f"regionalize: method must be 'trees' or 'bisection', not {method!r}")
    mask = np.asarray(mask, bool)
    n = len(frame)
    pop = frame[population].fillna(0).to_numpy(dtype=float)
    codes = frame[epci]
    epci_codes = (  # the codes as str, "" when missing (an Arrow string column read directly)
        codes.to_numpy(dtype=object, na_value="")
        if isinstance(codes.dtype, pd.StringDtype)
        else codes.fillna("").astype(str).to_numpy()
    )
    x, y, area = centroids_and_areas(frame) if centres is None else centres
    graph, kept = masked_graph(frame, adjacency, mask, same_departement=same_departement)
    part_of = components(kept, mask)
    splitter = _Splitter(
        graph,
        pop,
        x,
        y,
        area,
        epci_codes,
        mask,
        floor=floor,
        ceiling=ceiling,
        max_diameter_km=max_diameter_km,
        epci_penalty=epci_penalty,
        target_population=target_population,
        trees=trees,
    )
    parts = [np.flatnonzero(part_of == part) for part in range(part_of.max() + 1)]
    if target_population > 0 or method == "bisection":
        pieces = [q for nodes in parts for q in splitter.improve(splitter.split(nodes))]
    else:  # every part at once: the parts never touch
        # a unit reaching the floor is a region on its own; the greedy cuts the rest
        alone = mask & (pop >= floor)
        rest = components(kept, mask & ~alone)
        sets = [np.flatnonzero(rest == k) for k in range(rest.max() + 1)]
        pieces = [np.array([v]) for v in np.flatnonzero(alone)] + [
            q
            for cut in splitter.greedy(sets, trees=trees)
            for p in cut
            for q in splitter.split(p, trees=SPLIT_TREES)
        ]
        rounds = LARGE_ROUNDS if mask.sum() > LARGE_AREA else LOCAL_ROUNDS
        pieces = splitter.recombine(pieces, trees=LOCAL_TREES, rounds=rounds)
        pieces = splitter.gather_epcis(pieces, trees=GATHER_TREES)
        pieces = splitter.keep_epcis_whole(pieces)
    labels = np.full(n, -1, dtype=np.int64)
    for k, piece in enumerate(merge_small(pieces, graph, pop, floor=floor, ceiling=ceiling)):
        labels[piece] = k
    labels = renumber(labels)
    return Regions(labels, *region_reasons(labels, pop, part_of, floor=floor, ceiling=ceiling))


def _groups(nodes: np.ndarray, owner: np.ndarray, label: np.ndarray, sets: int) -> list[list]:
    """The nodes of each set (``owner``) grouped by ``label``, each group sorted."""
    if not len(nodes):
        return [[] for _ in range(sets)]
    order = np.lexsort((nodes, label, owner))
    cuts = np.flatnonzero(
        np.r_[
            True,
            (label[order][1:] != label[order][:-1]) | (owner[order][1:] != owner[order][:-1]),
        ]
    )
    out: list[list[np.ndarray]] = [[] for _ in range(sets)]
    sorted_nodes, sorted_owner = nodes[order], owner[order].tolist()
    for a, b in zip(cuts.tolist(), np.r_[cuts[1:], len(order)].tolist()):
        out[sorted_owner[a]].append(sorted_nodes[a:b])
    return out


def _budget(trees: int, sets: list[np.ndarray], *, least: int) -> int:
    """Trees per set for a forest of ``sets``: ``trees``, fewer (not below ``least``) when the
    sets hold over ``LOCAL_BUDGET`` nodes in all (bounded work).
    """
    return max(least, min(trees, LOCAL_BUDGET // sum(len(q) for q in sets)))


def _claim(replaced: dict[int, list[np.ndarray]], group: np.ndarray, new: list[np.ndarray]) -> None:
    """Record ``new`` as the pieces replacing the pieces numbered in ``group`` (the first holds
    them, the others are dropped), unless one of those is already replaced.
    """
    if not any(int(t) in replaced for t in group):
        replaced.update({int(t): [] for t in group})
        replaced[int(group[0])] = new


def _replace(
    pieces: list[np.ndarray], replaced: dict[int, list[np.ndarray]]
) -> tuple[list[np.ndarray], np.ndarray]:
    """The pieces with the replacements of :func:`_claim` made, and whether each is new."""
    out = [(q, k in replaced) for k, p in enumerate(pieces) for q in replaced.get(k, [p])]
    return [q for q, _new in out], np.array([new for _q, new in out], bool)
