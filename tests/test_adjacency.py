"""Tolerant commune adjacency on the real communes: islands, missing geometry, arrondissements."""

from __future__ import annotations

import numpy as np

from pipeline.analysis.adjacency import build_adjacency, components
from pipeline.analysis.communes import build_communes
from pipeline.config import Scope

from .conftest import CRS


def test_adjacency_links_islands_and_skips_missing_geometry(raw):
    charente = build_communes(raw, Scope.parse("dep:17"), **CRS)[0]
    adjacency = build_adjacency(charente)
    islands = set(charente.loc[adjacency.island, "code_commune"])
    assert {"17004", "17093", "17369"} <= islands  # Île-d'Aix, Oléron, Ré
    assert components(adjacency).max() == 0, "islands are linked to the mainland"
    assert adjacency.island_link.sum() >= 3
    cantal = build_communes(raw, Scope.parse("dep:15"), **CRS)[0]
    adj = build_adjacency(cantal)
    no_geom = np.flatnonzero(cantal.geometry.isna().to_numpy())
    assert len(no_geom) == 4 and not np.isin(no_geom, np.r_[adj.i, adj.j]).any()


def test_arrondissements_are_neighbours_of_each_other_and_of_the_communes_around(raw):
    lyon = build_communes(raw, Scope.parse("dep:69"), **CRS)[0]
    adjacency = build_adjacency(lyon)
    codes = lyon["code_commune"].to_numpy()
    neighbours = adjacency.neighbours()
    first = int(np.flatnonzero(codes == "69381")[0])  # Lyon 1er
    around = set(codes[neighbours[first]])
    assert {"69382", "69384", "69385"} & around, "Lyon 1er borders other arrondissements"
    villeurbanne = int(np.flatnonzero(codes == "69266")[0])
    assert {"69383", "69386"} & set(codes[neighbours[villeurbanne]]), (
        "and Villeurbanne borders Lyon"
    )
    assert components(adjacency).max() == 0
