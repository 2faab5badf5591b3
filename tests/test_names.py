"""Perimeters as people publish them: names, older codes through INSEE's events, parts of communes,
perimeters across départements — on the real communes of the data."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.analysis.communes import build_communes
from pipeline.analysis.coverage import commune_status, counted_population, cpts_table
from pipeline.analysis.perimeters import iris_part_population, reference
from pipeline.config import Scope
from pipeline.sources.codes import code_lookup
from pipeline.sources.names import (
    NameIndex,
    event_lookup,
    name_key,
    read_cog_events,
    split_published_list,
)

from .conftest import CRS, FIXTURES, import_table


@pytest.fixture(scope="module")
def index(raw):
    return NameIndex(raw.communes, raw.departements)


def resolve(raw, ref, scope, text, tmp_path):
    communes = build_communes(raw, Scope.parse(scope), **CRS)[0]
    path = tmp_path / "perimetre.csv"
    path.write_text(text, encoding="utf-8")
    result = import_table(ref, communes, path)
    return communes, result["members"], result["issues"], result["names"]


def published(name: str, k: int) -> str:
    """The ways a name is written on CPTS websites and in ARS documents."""
    if k % 5 == 0:
        return name_ascii_upper(name)
    if k % 5 == 1:
        return name.replace("Saint-", "St-").replace("Sainte-", "Ste-")
    if k % 5 == 2:
        for article in ("La ", "Le ", "Les "):
            if name.startswith(article):
                return f"{name[len(article) :]} ({article.strip()})"
        return name.lower()
    if k % 5 == 3:
        return name.replace("'", "’")
    return name


def name_ascii_upper(name: str) -> str:
    import unicodedata

    return (
        unicodedata.normalize("NFKD", name)
        .encode("ascii", "ignore")
        .decode()
        .upper()
        .replace("-", " ")
    )


def test_fifty_published_names_of_one_departement_resolve_without_error(raw, ref, tmp_path):
    aude = build_communes(raw, Scope.parse("dep:11"), **CRS)[0]
    picked = aude.iloc[::8].head(50)
    assert len(picked) == 50 and "11190" not in set(picked["code_commune"])
    text = "cpts_id;cpts_nom;commune\n" + "".join(
        f"C1;CPTS du Lézignanais;{published(n, k)}\n" for k, n in enumerate(picked["nom"])
    )
    # stored as "Redorte", type 3
    text += "C1;CPTS du Lézignanais;Redorte (La)\nC1;CPTS du Lézignanais;LA REDORTE\n"
    _, members, issues, names = resolve(raw, ref, "dep:11", text, tmp_path)
    assert (issues["niveau"] != "erreur").all(), issues["message"].tolist()
    assert sorted(members["code_commune"]) == sorted([*picked["code_commune"], "11190"])
    resolved = names.set_index("nom_publie")["code_commune"]
    assert resolved["Redorte (La)"] == resolved["LA REDORTE"] == "11190"
    assert (names["correspondance"] == "nom de commune").all() and len(names) == 52


def test_published_enumeration_is_split():
    text = "Lézignan-Corbières, Trèbes, Capendu et La Redorte ; Moux…"
    assert split_published_list(text) == [
        "Lézignan-Corbières",
        "Trèbes",
        "Capendu",
        "La Redorte",
        "Moux",
    ]
    assert name_key("L’Hospitalet") == name_key("l'hospitalet") == "hospitalet"


def test_deleguee_ambiguous_and_unknown_names(raw, ref, tmp_path):
    text = (
        "cpts_id,cpts_nom,commune,departement\n"
        "C1,CPTS A,Pradelles-en-Val,11\n"  # commune déléguée of Val-de-Dagne
        "C1,CPTS A,Saint-Hilaire,11;31\n"  # one in the Aude, one in the Haute-Garonne
        "C1,CPTS A,Carcasonne,11\n"
    )  # misspelt
    _, members, issues, names = resolve(raw, ref, "region:76", text, tmp_path)
    assert members["code_commune"].tolist() == ["11251"]
    assert "commune déléguée Pradelles-en-Val" in members["correspondance"].iloc[0]
    errors = issues.loc[issues["niveau"] == "erreur"].set_index("code")["message"]
    ambiguous = errors["nom_ambigu"]
    assert "« Saint-Hilaire » est ambigu" in ambiguous
    assert "11344" in ambiguous and "31486" in ambiguous
    assert "« Carcasonne » n'est pas une commune" in errors["nom_inconnu"]
    assert "Carcassonne (11069)" in errors["nom_inconnu"]
    assert names.set_index("nom_publie").loc["Saint-Hilaire", "correspondance"] == "ambigu"


def test_old_code_mapped_through_insee_events(raw, tmp_path):
    current = set(raw.communes.loc[raw.communes["type"] == "COM", "code"])
    events = event_lookup(read_cog_events(FIXTURES / "mvt_commune_extrait.csv"), current)
    assert events["11990"][0] == ["11069"] and "11991" in events
    assert "11190" not in events  # a name change keeps the code
    assert "11990" not in code_lookup(raw.communes, raw.cog), "the raw data alone cannot map it"
    text = "cpts_id,cpts_nom,code_commune\nC1,CPTS A,11990\n"
    with_events = reference(
        raw.communes,
        raw.departements,
        raw.cog,
        events=read_cog_events(FIXTURES / "mvt_commune_extrait.csv"),
    )
    _, members, issues, _ = resolve(raw, with_events, "dep:11", text, tmp_path)
    assert (
        members["code_commune"].tolist() == ["11069"]
        and "mouvements INSEE" in members["correspondance"].iloc[0]
    )
    _, members, issues, _ = resolve(
        raw, reference(raw.communes, raw.departements, raw.cog), "dep:11", text, tmp_path
    )
    assert members.empty and issues["code"].iloc[0] == "code_inconnu"
    assert "code commune 11990 inconnu" in issues["message"].iloc[0]


def test_cross_departement_perimeter_is_accepted_and_reported(raw, ref, tmp_path):
    text = "cpts_id,cpts_nom,code_commune\nC1,CPTS A,11069\nC1,CPTS A,34172\nC1,CPTS A,31555\n"
    _, members, issues, _ = resolve(raw, ref, "region:76", text, tmp_path)
    assert len(members) == 3
    across = issues.loc[issues["code"] == "plusieurs_departements"].iloc[0]
    assert across["cpts_id"] == "C1"
    assert (
        "1 CPTS s'étendent sur plusieurs départements (acceptées) : C1 (11, 31, 34)"
        in (across["message"])
    )


def test_partial_commune_counted_once_and_population_not_doubled(raw, ref, tmp_path, repo_settings):
    text = (
        "cpts_id;cpts_nom;commune;partie\n"
        "A;CPTS du Pays de l'Or;Mauguio;\n"
        "B;CPTS du Littoral;Mauguio;Carnon\n"
        "B;CPTS du Littoral;La Grande-Motte;\n"
    )
    communes, members, issues, _ = resolve(raw, ref, "dep:34", text, tmp_path)
    status = commune_status(communes, members).set_index("code_commune")
    assert status.loc["34154", "statut"] == "couverte" and status.loc["34154", "partiel"]
    cpts = cpts_table(communes, members, repo_settings.section("aci"), example=False).set_index(
        "cpts_id"
    )
    pop = communes.set_index("code_commune")["population"]
    assert cpts.loc["A", "population"] == pop["34154"]
    assert cpts.loc["B", "population"] == pop["34344"]  # La Grande-Motte only: Mauguio counted in A
    # with the part given at IRIS level, the part's inhabitants move from A to B, none counted twice
    iris_pop = pd.DataFrame(
        {
            "code_iris": ["341540101", "341540102", "341540103"],
            "code_commune": "34154",
            "population_iris": [6000.5, 5000.25, 3000.0],
        }
    )
    members.loc[members["cpts_id"] == "B", "code_iris"] = (
        members.loc[members["cpts_id"] == "B", "code_commune"]
        .map({"34154": "341540103"})
        .fillna("")
    )
    members, more = iris_part_population(members, communes, iris_pop, source="perimetre.csv")
    assert more == []
    counted = counted_population(members, communes)
    by_cpts = counted.groupby(members["cpts_id"]).sum()
    assert by_cpts["A"] + by_cpts["B"] == pop["34154"] + pop["34344"]
    assert 0 < by_cpts["B"] - pop["34344"] < pop["34154"]


def test_events_file_also_maps_practitioner_codes(config_factory, raw):
    from pipeline import stages
    from pipeline.config import load_settings

    config = config_factory("dep:11")
    config.write_text(
        config.read_text().replace(
            'cog_events = ""', f'cog_events = "{(FIXTURES / "mvt_commune_extrait.csv").as_posix()}"'
        )
    )
    lookup = stages.perimeter_reference(load_settings(config), raw.communes, raw.cog).lookup
    assert lookup["11990"].codes == ("11069",) and "mouvements INSEE" in lookup["11990"].label
    assert lookup["11298"] == code_lookup(raw.communes, raw.cog)["11298"], (
        "the embedded sources' links are kept"
    )
    assert {"11990", "11991"} <= set(lookup) - set(code_lookup(raw.communes, raw.cog))


def test_former_commune_names_resolve_with_the_events_file(raw, tmp_path):
    events = read_cog_events(FIXTURES / "mvt_commune_extrait.csv")
    text = (
        "cpts_id,cpts_nom,commune,departement\n"
        "C1,CPTS A,Ancienne-Commune-A,11\nC1,CPTS A,La Redorte,11\n"
    )
    with_events = reference(raw.communes, raw.departements, raw.cog, events=events)
    _, members, issues, names = resolve(raw, with_events, "dep:11", text, tmp_path)
    assert sorted(members["code_commune"]) == ["11069", "11190"]
    found = names.set_index("nom_publie")
    assert (
        "ancien nom Ancienne-Commune-A (11990)" in found.loc["Ancienne-Commune-A", "correspondance"]
    )
    assert found.loc["La Redorte", "correspondance"] == "nom de commune", (
        "a current name wins over a former one"
    )
    without = reference(raw.communes, raw.departements, raw.cog)
    _, members, issues, _ = resolve(raw, without, "dep:11", text, tmp_path)
    assert members["code_commune"].tolist() == ["11190"]
    assert issues["message"].str.contains("« Ancienne-Commune-A » n'est pas une commune du").any()
