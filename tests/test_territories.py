"""Territories stage on real communes: candidates, extensions, flags, IRIS split, outputs."""

from __future__ import annotations

import json
from dataclasses import replace

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from pipeline import stages
from pipeline.analysis.adjacency import build_adjacency
from pipeline.analysis.communes import build_communes
from pipeline.analysis.coverage import commune_status, cpts_table, white_zone_patches
from pipeline.analysis.territories import Bounds, candidate_territories
from pipeline.config import Scope, load_settings
from pipeline.errors import PipelineError
from pipeline.sources.iris import apportion, read_iris_contours, read_iris_population

from .conftest import CRS, FIXTURES

BOUNDS = Bounds(20_000, 200_000, 60.0, 3.0, True)


def coverage_of(communes, members):
    adjacency = build_adjacency(communes)
    status = commune_status(communes, members)
    patch_of, _ = white_zone_patches(communes, status, adjacency)
    table = communes.merge(status, on="code_commune").assign(
        id_zone_blanche=patch_of, ile=adjacency.island
    )
    return table, adjacency


@pytest.fixture(scope="module")
def haute_garonne(raw):
    return build_communes(raw, Scope.parse("dep:31"), **CRS)[0]


def test_small_patch_becomes_extension_of_longest_border_cpts(haute_garonne, repo_settings):
    communes = haute_garonne
    adjacency = build_adjacency(communes)
    codes = communes["code_commune"].to_numpy()
    # every commune is covered by its EPCI's CPTS except one small commune and its small neighbour
    small = int(np.flatnonzero((communes["population"] < 800).to_numpy())[0])
    members = pd.DataFrame(
        {"cpts_id": communes["code_epci"], "cpts_nom": communes["nom_epci"], "code_commune": codes}
    )
    members = members[members["code_commune"] != codes[small]]
    coverage, adjacency = coverage_of(communes, members)
    cpts = cpts_table(communes, members, repo_settings.section("aci"), example=False)
    territories, out = candidate_territories(
        coverage, adjacency, cpts, repo_settings.section("aci"), BOUNDS
    )
    ext = territories[territories["type_territoire"] == "extension"]
    assert len(ext) == 1 and out["code_commune"].tolist() == [codes[small]]
    bordering = {communes["code_epci"].iloc[n] for n in adjacency.neighbours()[small]}
    assert ext["cpts_id"].iloc[0] in bordering
    base = cpts.set_index("cpts_id").loc[ext["cpts_id"].iloc[0]]
    assert ext["population"].iloc[0] == base["population"] + communes["population"].iloc[small]
    assert ext["n_communes"].iloc[0] == base["n_communes"] + 1
    assert ext["geometry"].iloc[0].area > base.geometry.area


def test_extension_goes_to_a_bordering_cpts_that_stays_near_its_reference(
    haute_garonne, repo_settings
):
    # A small commune left out of EPCI-based CPTS borders several of them. With no size to aim
    # at, it extends the CPTS sharing the longest border; when that CPTS would then exceed twice
    # the reference size and another bordering one would not, it extends the other one.
    communes = haute_garonne
    adjacency = build_adjacency(communes)
    codes = communes["code_commune"].to_numpy()
    epci = communes["code_epci"].to_numpy()
    pop = communes["population"].to_numpy()
    totals = communes.groupby("code_epci")["population"].sum()
    neighbours = adjacency.neighbours()
    case = None
    for k in np.argsort(pop, kind="stable"):
        around = {epci[n] for n in neighbours[k]} - {epci[k]}
        # the commune's own EPCI, without it, is one of the CPTS around it
        options = sorted({epci[k], *around} & set(totals.index), key=lambda e: totals[e])
        if pop[k] < 800 and len(options) >= 2 and totals[options[-1]] > 2 * totals[options[0]]:
            case = int(k)
            break
    assert case is not None
    members = pd.DataFrame({"cpts_id": epci, "cpts_nom": epci, "code_commune": codes})
    members = members[members["code_commune"] != codes[case]]
    coverage, adjacency = coverage_of(communes, members)
    cpts = cpts_table(communes, members, repo_settings.section("aci"), example=False)
    size = dict(zip(cpts["cpts_id"], cpts["population"]))

    def extended(bounds):
        territories, _ = candidate_territories(
            coverage, adjacency, cpts, repo_settings.section("aci"), bounds
        )
        ext = territories[territories["type_territoire"] == "extension"]
        assert len(ext) == 1
        return ext["cpts_id"].iloc[0], ext["motif"].iloc[0]

    free = Bounds(20_000, 1e9, 60.0, 3.0, True, reference_population=1e9)
    longest, _ = extended(free)
    bordering = {epci[n] for n in neighbours[case]} | {epci[case]}
    smaller = [c for c in bordering if c in size and size[c] < size[longest]]
    if not smaller:
        pytest.skip("the longest border is already with the smallest bordering CPTS")
    target = min(smaller, key=lambda c: size[c])
    # a reference under which the longest-border CPTS would be over twice it, the smallest not
    reference = (size[target] + pop[case]) / 2 + 1
    assert size[longest] + pop[case] > 2 * reference
    chosen, why = extended(replace(free, reference_population=reference))
    assert chosen != longest and size[chosen] + pop[case] <= 2 * reference
    assert why == "zone blanche sous le plancher : extension de la CPTS limitrophe"


def test_isolated_small_patch_is_flagged_with_reason(raw, repo_settings):
    charente = build_communes(raw, Scope.parse("dep:17"), **CRS)[0]
    members = pd.DataFrame(
        {"cpts_id": "A", "cpts_nom": "A", "code_commune": charente["code_commune"]}
    )
    members = members[
        members["code_commune"] != "17004"
    ]  # Île-d'Aix left alone: linked only across water
    coverage, adjacency = coverage_of(charente, members)
    cpts = cpts_table(charente, members, repo_settings.section("aci"), example=False)
    territories, out = candidate_territories(
        coverage, adjacency, cpts, repo_settings.section("aci"), BOUNDS
    )
    row = out.set_index("code_commune").loc["17004"]
    # the island's only link is the water crossing to a commune of CPTS A, which would exceed the
    # ceiling
    assert row["type_territoire"] == "signalee" and "plafond" in row["signalement"]
    assert (territories["type_territoire"] != "candidate").all()


def iris_fixture(tmp_path, commune, *, cell=2500):
    """A CONTOURS-IRIS GeoPackage (published attribute names) cutting a real commune into cells,
    and an INSEE population file in the published layout. Made-up values, real boundary."""
    geom = commune.geometry
    x0, y0, x1, y1 = geom.bounds
    cells = [
        shapely.box(x, y, x + cell, y + cell)
        for x in np.arange(x0, x1, cell)
        for y in np.arange(y0, y1, cell)
    ]
    parts = [p for p in shapely.intersection(cells, geom) if p.area > 1e4]
    code = commune["code_commune"]
    iris_codes = [f"{code}{k + 1:04d}" for k in range(len(parts))]
    gpd.GeoDataFrame(
        {
            "code_insee": code,
            "nom_commune": commune["nom"],
            "iris": [c[5:] for c in iris_codes],
            "code_iris": iris_codes,
            "nom_iris": [f"Quartier {k + 1}" for k in range(len(parts))],
            "type_iris": "H",
        },
        geometry=parts,
        crs=2154,
    ).to_file(tmp_path / "CONTOURS-IRIS.gpkg")
    rng = np.random.default_rng(7)
    weights = rng.uniform(1000, 5000, len(parts))
    lines = [
        "IRIS;REG;DEP;UU2020;COM;LIBCOM;TRIRIS;GRD_QUART;LIBIRIS;TYP_IRIS;MODIF_IRIS;LAB_IRIS;P20_POP"
    ]
    lines += [
        f"{c};76;{code[:2]};00000;{code};{commune['nom']};ZZZZZZ;{c[:7]};Quartier;H;00;1;"
        f"{str(round(w, 4)).replace('.', ',')}"
        for c, w in zip(iris_codes, weights)
    ]
    (tmp_path / "base-ic-evol-struct-pop-2020.CSV").write_text(
        "\n".join(lines) + "\n", encoding="utf-8"
    )
    return tmp_path / "CONTOURS-IRIS.gpkg", tmp_path / "base-ic-evol-struct-pop-2020.CSV"


def test_city_above_ceiling_is_split_into_contiguous_iris_territories(
    haute_garonne, repo_settings, tmp_path
):
    communes = haute_garonne
    members = pd.DataFrame(
        {
            "cpts_id": communes["code_epci"],
            "cpts_nom": communes["nom_epci"],
            "code_commune": communes["code_commune"],
        }
    )
    members = members[members["code_commune"] != "31555"]  # Toulouse left uncovered
    coverage, adjacency = coverage_of(communes, members)
    cpts = cpts_table(communes, members, repo_settings.section("aci"), example=False)
    contours_path, pop_path = iris_fixture(
        tmp_path, communes.set_index("code_commune", drop=False).loc["31555"]
    )
    iris = (read_iris_contours(contours_path), read_iris_population(pop_path))
    territories, out = candidate_territories(
        coverage, adjacency, cpts, repo_settings.section("aci"), BOUNDS, iris=iris
    )
    cand = territories[territories["type_territoire"] == "candidate"]
    toulouse_pop = int(communes.set_index("code_commune").loc["31555", "population"])
    assert len(cand) >= 3 and cand["dans_les_bornes"].all()
    assert cand["population"].sum() == toulouse_pop == out["population"].sum()
    assert set(out["code_iris"]) == set(iris[0]["code_iris"]) and out["code_iris"].is_unique
    for tid, grp in out.groupby("id_territoire"):
        geoms = iris[0].set_index("code_iris").loc[grp["code_iris"]].geometry
        assert shapely.union_all(geoms.buffer(1).to_numpy()).geom_type == "Polygon", (
            f"{tid} not contiguous"
        )


def test_iris_population_fixture_in_published_layout():
    frame = read_iris_population(FIXTURES / "base-ic-evol-struct-pop-2020-extrait.CSV")
    assert frame["code_iris"].tolist() == ["110690101", "110690102", "111900000"]
    assert frame["population_iris"].tolist() == [
        2345.6871,
        3120.0034,
        1187.0,
    ]  # decimal commas read


def test_iris_loader_errors(tmp_path):
    bad = tmp_path / "pop.csv"
    bad.write_text("IRIS;COM;LIBIRIS\n110690101;11069;X\n", encoding="utf-8")
    with pytest.raises(PipelineError, match="no population column P<yy>_POP"):
        read_iris_population(bad)
    bad.write_text("IRIS;COM;P20_POP\n110690101;11069;n/a\n", encoding="utf-8")
    with pytest.raises(PipelineError, match="line 2: P20_POP = 'n/a' is not a number"):
        read_iris_population(bad)
    gpkg = tmp_path / "iris.gpkg"
    gpd.GeoDataFrame(
        {"code_insee": ["11069"], "nom_iris": ["X"]},  # a 100 m square in Lambert-93 range
        geometry=[shapely.box(650000, 6200000, 650100, 6200100)],
        crs=2154,
    ).to_file(gpkg)
    with pytest.raises(PipelineError, match="missing attribute.*code_iris"):
        read_iris_contours(gpkg)


@pytest.mark.parametrize(
    "weights,total", [([0.5, 0.5, 0.5], 10), ([2345.6871, 3120.0034, 1.2], 7001), ([0, 0], 3)]
)
def test_apportion_conserves_total(weights, total):
    out = apportion(np.array(weights), total)
    assert out.sum() == total and (out >= 0).all()


def test_territories_stage_outputs(config_factory):
    settings = load_settings(config_factory("dep:11,34"))
    stages.run_until(settings, "coverage")
    assert stages.run(settings, "territories") is True
    paths = stages.territory_paths(settings)
    territories = gpd.read_parquet(paths["territories"])
    members = pd.read_csv(
        paths["members"], dtype={"code_commune": str, "code_iris": str}, keep_default_na=False
    )
    coverage = gpd.read_parquet(stages.coverage_paths(settings)["coverage"])
    white = coverage.loc[coverage["statut"] == "zone_blanche", "code_commune"]
    assert sorted(members["code_commune"]) == sorted(white)
    assert set(territories["type_territoire"]) <= {"cpts_existante", "candidate", "extension"}
    assert territories["id_territoire"].is_unique and territories["palier"].notna().all()
    cand = territories[territories["type_territoire"] == "candidate"]
    assert (cand["dans_les_bornes"] | (cand["motif"] != "")).all()
    summary = json.loads(paths["summary"].read_text())
    assert summary["candidats"] == len(cand)
    before = paths["territories"].read_bytes()
    assert stages.run(settings, "territories") is False
    stages.run(settings, "territories", force=True)
    assert paths["territories"].read_bytes() == before
