"""The ``profile`` stage end to end on the real communes of the Aude: with the fixture files of
every published layout (values made up, see tests/fixtures/README.md) the white-zone pages show the
profile compared with the département, the région and France (computed by hand below) and the
priority with its criteria; without any optional file the pages say which files would complete
them and the ranking uses only the criteria it has.

The perimeter file is written here from three real EPCIs of the Aude, named as test CPTS (not real
CPTS): one holds Carcassonne, whose FINESS fixture CPTS has another name; La Redorte, seat of the
fixture's "CPTS DU MINERVOIS", stays in a white zone.
"""

from __future__ import annotations

import hashlib
import re

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest

from pipeline import stages
from pipeline.analysis.communes import RawTables, unit_table
from pipeline.analysis.priority import priority
from pipeline.analysis.profile import compare, scope_and_reference
from pipeline.config import load_settings
from pipeline.outputs.palette import PRIORITY, PRIORITY_LABELS
from pipeline.outputs.profile_report import number_text
from pipeline.sources.finess import counts_by_commune, place_in_units, read_finess

from .conftest import FIXTURES, set_input_files, write_config
from .test_export import decode_ints, map_data
from .test_profile import zonage_workbook

SCOPE = "departements:11"
FILES = {
    "population_age": FIXTURES / "base-cc-evol-struct-pop-2021-extrait.CSV",
    "finess": FIXTURES / "etalab-cs1100507-stock-20241001-0400-extrait.csv",
    "ald": FIXTURES / "patients-longueduree-annuelle-extrait.csv",
}


def write_perimeters(raw, folder):
    """Three EPCIs of the Aude as test CPTS: Carcassonne's without La Redorte (11190), and the two
    largest others."""
    communes = raw.communes
    dep = raw.departements.loc[raw.departements["code"] == "11", "id"].iloc[0]
    aude = communes[(communes["type"] == "COM") & (communes["departement_id"] == dep)]
    epci_of = dict(zip(aude["code"], aude["epci_id"]))
    sizes = aude.groupby("epci_id").size().sort_values(ascending=False, kind="stable")
    others = [e for e in sizes.index if e != epci_of["11069"]][:2]
    rows = []
    for k, epci in enumerate([epci_of["11069"], *others]):
        name = "CPTS du Lézignanais" if k == 0 else f"CPTS test {k}"
        codes = sorted(set(aude.loc[aude["epci_id"] == epci, "code"]) - {"11190"})
        rows += [(f"CPTS-T{k}", name, c) for c in codes]
    path = folder / "cpts.csv"
    pd.DataFrame(rows, columns=["cpts_id", "cpts_nom", "code_commune"]).to_csv(path, index=False)
    return path


def configure(folder, perimeters, files: dict):
    config = set_input_files(write_config(folder, scope=SCOPE), file=perimeters, **files)
    return load_settings(config)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, raw):
    base = tmp_path_factory.mktemp("profile_stage")
    perimeters = write_perimeters(raw, base)
    zonage = zonage_workbook(base / "Zonage_medecin_20230101.xlsx")
    out = {}
    for name, files in (("with", FILES | {"zonage": zonage}), ("without", {})):
        settings = configure(base / name, perimeters, files)
        stages.run_until(settings, "export")
        out[name] = settings
    return out


def zone_of(settings, code: str) -> str:
    coverage = pd.read_parquet(stages.coverage_paths(settings)["coverage"])
    return coverage.set_index("code_commune").loc[code, "id_zone_blanche"]


def text_of(page: str) -> str:
    """The visible text of an HTML page, cells separated by ``|``."""
    page = re.sub(r"<script.*?</script>|<style.*?</style>", "", page, flags=re.S)
    page = re.sub(r"</t[dh]>", " | ", page)
    page = re.sub(r"</(tr|p|h1|h2|li|div)>", "\n", page)
    return re.sub(r"<[^>]+>", "", page).replace("&#x27;", "'").replace("&amp;", "&")


def test_zone_page_shows_profile_and_priority_by_hand(runs, raw):
    settings = runs["with"]
    zone = zone_of(settings, "11190")
    assert zone  # La Redorte is in a white zone, Carcassonne (11069) is covered
    assert zone_of(settings, "11069") == ""
    page = text_of((stages.export_paths(settings)["zones"] / f"{zone}.html").read_text("utf-8"))
    # 75+: the zone knows only La Redorte (75 of 500); Aude 11069 + 11190 = 175 of 1,500; région 76
    # adds Montpellier (120 of 2,000); France adds Arles (200 of 1,000) and Marseille's two
    # arrondissements (100 of 1,000): 595 of 5,500.
    assert "Part des 75 ans et plus (%) | 15,0 | 11,7 | 8,4 | 10,8 |" in page
    # Zonage (real legal populations, as every share of the zonage): La Redorte ZIP, Carcassonne
    # ZAC; région 76 adds Montpellier (hors vivier); France adds Arles (ZIP) and Marseille's
    # arrondissements (vigilance, given for the whole commune).
    people = unit_table(RawTables(raw.communes, raw.epci, raw.departements, raw.regions, raw.cog))
    pop = people.set_index("code_commune")["population"]
    marseille = people.loc[people["code_commune_parent"] == "13055", "population"].sum()
    aude, region = pop["11069"] + pop["11190"], pop["11069"] + pop["11190"] + pop["34172"]
    france = region + pop["13004"] + marseille
    shares = [100.0, pop["11190"] / aude * 100, pop["11190"] / region * 100]
    shares.append((pop["11190"] + pop["13004"]) / france * 100)
    assert "Population en ZIP (%) | " + " | ".join(number_text(v) for v in shares) + " |" in page
    # ALD, département level only (2023): Aude 4.2, Occitanie 3.4, France 3.1.
    assert (
        "Patients en ALD sans médecin traitant (%, donnée départementale) | "
        "non publié à cette échelle | 4,2 | 3,4 | 3,1 |" in page
    )
    assert "Zone d'intervention prioritaire (ZIP) : 1 commune(s)" in page
    assert re.search(r"population par âge connue pour 1 commune\(s\) sur \d+", page)
    # Priority with every criterion: APL not given, the others known for this zone.
    assert re.search(r"Rang \d+ sur \d+ zone\(s\) blanche\(s\)", page)
    assert "Part des 75 ans et plus (%) | 15,0 |" in page
    assert "Aucune maison de santé (1 = aucune) | non |" in page  # the MSP of La Redorte
    assert "Critères laissés de côté faute de données : Population sous le seuil d'APL" in page
    table = pd.read_csv(
        stages.export_paths(settings)["zones"] / f"{zone}.csv",
        sep=";",
        encoding="utf-8-sig",
        dtype={"Code commune (INSEE)": str},
    ).set_index("Code commune (INSEE)")
    assert list(table.columns).count("Maisons de santé (nombre, FINESS)") == 1
    redorte = table.loc["11190"]
    assert redorte["Maisons de santé (nombre, FINESS)"] == 1
    assert redorte["Zonage médecin"] == "Zone d'intervention prioritaire (ZIP)"
    assert redorte["Part des 75 ans et plus (%)"] == "15,0"
    complete = page.split("Ces données compléteraient la page : ")[1].split("\n")[0]
    assert "[indicators] rpps" in complete and "[indicators] apl" in complete
    assert "[profile]" not in complete


def test_index_sorted_by_priority_with_method_and_finess_check(runs):
    settings = runs["with"]
    index = (stages.export_paths(settings)["index"]).read_text("utf-8")
    ranked = pd.read_csv(stages.profile_paths(settings)["priority"], dtype={"id_zone_blanche": str})
    links = re.findall(r'href="zones_blanches/([^"]+)\.html"', index)
    assert links == list(ranked["id_zone_blanche"]) and list(ranked["rang"]) == list(
        range(1, len(ranked) + 1)
    )
    text = text_of(index)
    assert "Méthode de la priorité" in text and "jamais compté comme zéro" in text
    assert (
        "Le fichier de périmètres omet peut-être la CPTS « CPTS DU MINERVOIS » (FINESS 110001007) "
        ": son siège (La Redorte) est en zone blanche." in text
    )
    assert (
        "« CPTS CARCASSONNE AGGLO » (FINESS 110001008) : son siège (Carcassonne) est dans le "
        "périmètre de « CPTS du Lézignanais »" in text
    )
    summary = stages.profile_paths(settings)["summary"].read_text("utf-8")
    assert '"annee": 2021' in summary and '"date": "2024-10-01"' in summary
    assert '"sources_absentes": [\n    "rpps",\n    "apl"\n  ]' in summary


def test_without_optional_files_the_page_names_them_and_ranks_on_what_it_has(runs):
    settings = runs["without"]
    zone = zone_of(settings, "11190")
    page = text_of((stages.export_paths(settings)["zones"] / f"{zone}.html").read_text("utf-8"))
    assert "Aucun indicateur du profil disponible (indisponible)" in page
    complete = page.split("Ces données compléteraient la page : ")[1]
    for key in ("population_age", "zonage", "finess", "ald"):
        assert f"[profile] {key}" in complete
    bare = pd.read_csv(stages.profile_paths(settings)["priority"], dtype={"id_zone_blanche": str})
    assert (bare["criteres_absents"] == "part_75p;part_sous_dotee;part_zip;sans_msp").all()
    assert bare[["part_75p", "part_zip", "sans_msp", "note_part_75p"]].isna().all().all()
    # The same zones ranked with every criterion but the two it has weighted 0: the same order,
    # the same scores — a missing criterion acts only by its absence.
    full = pd.read_csv(
        stages.profile_paths(runs["with"])["priority"], dtype={"id_zone_blanche": str}
    ).set_index("id_zone_blanche")
    zero = {c: 0.0 for c in ("part_75p", "part_sous_dotee", "part_zip", "sans_msp")}
    again = priority(full[["population", "distance_cpts_km", "part_75p", "part_zip"]], weights=zero)
    assert list(again.index) == list(bare["id_zone_blanche"])
    assert again["score"].tolist() == pytest.approx(bare["score"].tolist(), abs=0.01)


def test_map_and_geopackage_carry_the_profile(runs):
    settings = runs["with"]
    paths = stages.export_paths(settings)
    page = paths["map"].read_text("utf-8")
    assert '"name":"Profil des communes en zone blanche (âge, zonage, FINESS, priorité)"' in page
    layer = re.search(r'\{"code":"profile".*?"show":(true|false)', page)
    assert layer and layer.group(1) == "false"
    layers = dict(pyogrio.list_layers(paths["gpkg"]))
    assert "profil_communes" not in layers, "the profile joins communes_statut: no second copy"
    zones = gpd.read_file(paths["gpkg"], layer="zones_blanches")
    assert {"rang", "score", "part_75p", "part_75p_france"} <= set(zones.columns)
    communes = gpd.read_file(paths["gpkg"], layer="communes_statut")
    assert communes.set_index("code_commune").loc["11190", "zonage"] == "ZIP"
    # the layer is graded by the zone's priority: the quarter of the ranking its zone falls in,
    # darkest for the most urgent, each shade in the legend
    profile = next(x for x in map_data(paths["map"])["layers"] if x["code"] == "profile")
    props = {
        k: v if isinstance(v, list) else [v["v"][i] for i in decode_ints(v["i"])]
        for k, v in profile["props"].items()
    }
    ranks = pd.read_csv(stages.profile_paths(settings)["priority"], dtype={"id_zone_blanche": str})
    count = len(ranks)
    for text, colour in zip(props["zone_txt"], props["_colour"]):
        rank = int(re.search(r"rang (\d+) sur", text).group(1))
        assert colour == PRIORITY[min(3, (rank - 1) * 4 // count)], text
    assert props["_colour"].count(PRIORITY[0]) > 0 and len(set(props["_colour"])) >= 2
    entries = [part.split("</div>")[0] for part in page.split('data-layer="profile"')[1:]]
    for colour in set(props["_colour"]):
        label = PRIORITY_LABELS[PRIORITY.index(colour)]
        assert any(colour in entry and label in entry for entry in entries), label


def test_profile_outputs_are_deterministic(runs):
    settings = runs["with"]
    paths = stages.profile_paths(settings)

    def hashes():
        return {k: hashlib.sha256(p.read_bytes()).hexdigest() for k, p in paths.items()}

    before = hashes()
    stages.run(settings, "profile", force=True)
    assert hashes() == before


def test_marseille_establishments_known_by_the_commune_code_only(raw, repo_settings):
    """The FINESS fixture's Marseille pharmacy is coded 13055 (the commune): its arrondissement is
    unknown, so the arrondissements' counts are unavailable, while the département, région and
    France counts keep it."""
    national = unit_table(RawTables(raw.communes, raw.epci, raw.departements, raw.regions, raw.cog))
    assert len(national) == national["code_commune"].nunique()
    assert set(national.loc[national["code_commune_parent"] == "13055", "type_unite"]) == {
        "arrondissement"
    }
    from pipeline.sources.codes import code_lookup, single_unit

    placed = place_in_units(read_finess(FILES["finess"])[0], single_unit(code_lookup(raw.communes)))
    inside = placed["code_unite"] != ""
    whole = counts_by_commune(placed[~inside & (placed["code_commune"] == "13055")])
    units = national[national["code_departement"] == "13"]
    scope, reference = scope_and_reference(
        units,
        national,
        finess=counts_by_commune(
            placed[inside].assign(code_commune=placed.loc[inside, "code_unite"])
        ),
        finess_whole=whole,
    )
    compared = compare(scope.set_index("code_commune"), reference)
    marseille = compared.loc["13201"]
    bdr = float(units["population"].sum())
    assert pd.isna(marseille["pharmacies_10k"])
    assert marseille["pharmacies_10k_departement"] == pytest.approx(1 / bdr * 1e4)
    assert compared.loc["13004", "pharmacies_10k"] == 0.0  # Arles: listed, none


def test_supply_references_only_where_the_scope_holds_them_whole():
    """Practitioners are counted for the scope only: a scope of the Aude (made-up counts) compares
    its GP density with the Aude, not with a région or a France it did not count."""
    from pipeline.analysis.profile import limit_to_scope, supply_ratio_names

    from .test_profile import COMMUNES

    national = COMMUNES.assign(code_commune_parent=COMMUNES["code_commune"])
    aude = national[national["code_departement"] == "11"]
    indicators = pd.DataFrame(
        {
            "code_commune": aude["code_commune"],
            "population": aude["population"],
            "n_medecin_generaliste": pd.array([3, 1], dtype="Int64"),
            "apl_mg": [2.0, 4.0],
            "sous_dotee": pd.array([True, False], dtype="boolean"),
        }
    )
    scope, reference = scope_and_reference(
        aude, national, indicators=indicators, professions=["medecin_generaliste"]
    )
    compared = compare(scope.set_index("code_commune"), reference)
    names = supply_ratio_names(compared, ["medecin_generaliste"])
    assert set(names) == {"densite_medecin_generaliste_10k", "apl_mg", "part_sous_dotee"}
    limited = limit_to_scope(compared, supply=names, regions=set(), france=False)
    row = limited.loc["11190"]
    assert row["densite_medecin_generaliste_10k_departement"] == pytest.approx(4 / 1500 * 1e4)
    assert pd.isna(row["densite_medecin_generaliste_10k_region"])
    assert pd.isna(row["apl_mg_france"]) and pd.isna(row["part_sous_dotee_region"])
    whole = limit_to_scope(compared, supply=names, regions={"76"}, france=True)
    assert whole.loc["11190", "apl_mg_region"] == pytest.approx((2.0 * 1000 + 4.0 * 500) / 1500)
