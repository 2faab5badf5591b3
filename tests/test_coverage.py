"""Coverage on real communes: statuses, white-zone patches, overlaps, rates, the stage's outputs."""

from __future__ import annotations

import json

import geopandas as gpd
import pandas as pd
import pytest

from pipeline import stages
from pipeline.analysis.adjacency import build_adjacency, components
from pipeline.analysis.communes import build_communes
from pipeline.analysis.coverage import (
    check_statuses,
    commune_status,
    coverage_rates,
    overlap_pairs,
    white_zone_patches,
)
from pipeline.config import Scope, load_settings
from pipeline.errors import PipelineError

from .conftest import CRS


@pytest.fixture(scope="module")
def aude(raw):
    communes = build_communes(raw, Scope.parse("dep:11"), **CRS)[0]
    return communes, build_adjacency(communes)


def epci_members(communes, skip=()):
    keep = communes[~communes["code_epci"].isin(skip)]
    return pd.DataFrame(
        {
            "cpts_id": keep["code_epci"],
            "cpts_nom": keep["nom_epci"],
            "code_commune": keep["code_commune"],
        }
    )


def test_each_commune_one_status_and_population_conserved(aude):
    communes, _ = aude
    members = epci_members(communes, skip=[sorted(communes["code_epci"].unique())[0]])
    members = pd.concat([members, members.iloc[:5].assign(cpts_id="DUP", cpts_nom="DUP")])
    status = commune_status(communes, members)
    check_statuses(communes, status)
    counts = status["statut"].value_counts()
    assert counts["chevauchement"] == 5 and counts["zone_blanche"] > 0
    pop = communes["population"].astype(int)
    assert (
        sum(pop[status["statut"] == s].sum() for s in ("couverte", "zone_blanche", "chevauchement"))
        == pop.sum()
    )
    broken = status.copy()
    broken.loc[0, "statut"] = "autre"
    with pytest.raises(PipelineError, match="exactly one status"):
        check_statuses(communes, broken)


def test_patch_next_to_two_cpts_lists_both(aude):
    communes, adjacency = aude
    # one EPCI left uncovered; its bordering CPTS are the EPCIs whose communes touch it
    epcis = communes.dissolve("code_epci").geometry
    target = max(epcis.index, key=lambda e: (epcis.buffer(20).intersects(epcis[e]).sum(), e))
    neighbours = sorted(
        e for e in epcis.index if e != target and epcis[e].distance(epcis[target]) <= 20
    )
    assert len(neighbours) >= 2
    status = commune_status(communes, epci_members(communes, skip=[target]))
    patch_of, patches = white_zone_patches(communes, status, adjacency)
    inside = communes["code_epci"].to_numpy() == target
    assert (
        set(patch_of[inside]) == set(patches["id_zone_blanche"]) and (patch_of[~inside] == "").all()
    )
    bordering = set(";".join(patches["cpts_limitrophes"]).split(";"))
    assert bordering == set(neighbours)
    assert patches["population"].sum() == communes.loc[inside, "population"].sum()
    assert patches["id_zone_blanche"].str.match(r"ZB-11-\d{3}$").all()
    for pid in patches["id_zone_blanche"]:  # every patch is contiguous
        mask = patch_of == pid
        assert components(adjacency, mask).max() == 0


def test_overlap_pair_and_resolution_by_longest_border(aude):
    communes, adjacency = aude
    members = epci_members(communes)
    codes = communes["code_commune"].to_numpy()
    epci = communes["code_epci"].to_numpy()
    a, b = next((x, y) for x, y in zip(adjacency.i, adjacency.j) if epci[x] != epci[y])
    # commune b (of EPCI B) is also claimed by EPCI A
    members = pd.concat(
        [
            members,
            pd.DataFrame({"cpts_id": [epci[a]], "cpts_nom": ["A"], "code_commune": [codes[b]]}),
        ]
    )
    status = commune_status(communes, members)
    overlaps = overlap_pairs(communes, status, members, adjacency, tolerance_m=20)
    assert len(overlaps) == 1
    row = overlaps.iloc[0]
    assert {row["cpts_a"], row["cpts_b"]} == {epci[a], epci[b]} and row["code_commune"] == codes[b]
    assert row["population"] == communes["population"].iloc[b]
    border = {row["cpts_a"]: row["frontiere_a_m"], row["cpts_b"]: row["frontiere_b_m"]}
    assert border[epci[a]] > 0 and border[epci[b]] > 0
    assert row["proposition"] == max(border, key=border.get)


def test_coverage_rates_per_level(aude):
    communes, _ = aude
    status = commune_status(
        communes, epci_members(communes, skip=[sorted(communes["code_epci"].unique())[0]])
    )
    rates = coverage_rates(communes, status).set_index("niveau")
    scope = rates.loc["perimetre"]
    covered = communes.loc[(status["statut"] != "zone_blanche").to_numpy(), "population"].sum()
    assert scope["population_couverte"] == covered
    assert scope["taux_couverture_population"] == round(
        100 * covered / communes["population"].sum(), 2
    )
    assert rates.loc["departement", "code"] == "11" and rates.loc["region", "code"] == "76"


def test_coverage_stage_with_example_perimeters(config_factory):
    settings = load_settings(config_factory("dep:11,34"))
    stages.run_until(settings, "indicators")
    assert stages.run(settings, "perimeters") and stages.run(settings, "coverage")
    out = stages.coverage_paths(settings)
    example = pd.read_csv(stages.perimeter_paths(settings)["example"], dtype=str)
    assert (
        example["cpts_id"].str.startswith("EXEMPLE-").all()
        and example["cpts_nom"].str.contains("EXEMPLE").all()
    )
    coverage = gpd.read_parquet(out["coverage"])
    communes = stages.read_communes(settings)
    assert len(coverage) == len(communes) and coverage["code_commune"].is_unique
    assert coverage.groupby("statut")["population"].sum().sum() == communes["population"].sum()
    assert (coverage["statut"] == "chevauchement").sum() >= 1  # the deliberate overlap
    cpts = gpd.read_parquet(out["cpts"])
    assert cpts["exemple"].all() and set(cpts["palier"]) <= {"T1", "T2", "T3", "T4"}
    summary = json.loads(out["summary"].read_text())
    assert summary["perimetres"]["exemple"] is True
    assert sum(summary["population_par_statut"].values()) == summary["population"]
    assert stages.run(settings, "perimeters") is False and stages.run(settings, "coverage") is False
