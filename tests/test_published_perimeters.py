"""Perimeter files as ARS and CPTS publish them, on the real communes and the COG in force: title
rows, French headers, CPTS names without ids, several sheets, arrondissements of Paris/Lyon/
Marseille, codes of merged communes, CPTS across the scope's border, and the checks real files need.

Every table here is written by the test in the published shape; the CPTS are made up (no real file
is copied), the communes, codes and populations are the real ones.
"""

from __future__ import annotations

import openpyxl
import pandas as pd
import pytest

from pipeline.aci import assign_tier
from pipeline.analysis.adjacency import build_adjacency
from pipeline.analysis.communes import build_communes
from pipeline.analysis.coverage import commune_status, cpts_table, overlap_pairs
from pipeline.analysis.perimeters import ISSUES, check_members, read_perimeter_table
from pipeline.config import Scope
from pipeline.errors import PipelineError
from pipeline.sources.codes import code_lookup

from .conftest import CRS, import_table, set_input_files

MARSEILLE = [f"132{k:02d}" for k in range(1, 17)]


@pytest.fixture(scope="module")
def south(raw):
    """Hautes-Alpes and Bouches-du-Rhône, Marseille by arrondissement."""
    return build_communes(raw, Scope.parse("dep:05,13"), **CRS)[0]


def workbook(path, sheets):
    """An .xlsx as ARS circulate them: a title row and a blank row above the header, one sheet per
    département, plus a "Lisez-moi" sheet of notes."""
    book = openpyxl.Workbook()
    notes = book.active
    notes.title = "Lisez-moi"
    notes.append(["Correspondance communes – CPTS (exemple fabriqué pour les tests)"])
    notes.append(["Source : ARS, données fictives"])
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        sheet.append([f"Communes et CPTS – département {name}"])
        sheet.append([])
        sheet.append(["Département", "Code INSEE", "Libellé commune", "CPTS"])
        for row in rows:
            sheet.append(list(row))
    book.save(path)
    return path


def legal(raw, codes):
    return int(
        raw.cog[raw.cog["code"].isin(codes) & raw.cog["type"].isin(["COM", "ARM"])][
            "population"
        ].sum()
    )


def test_ars_workbook_with_title_rows_sheets_names_only_arrondissements_and_merged_codes(
    raw, ref, south, tmp_path, repo_settings
):
    # 8 CPTS over the 16 arrondissements, given by code or by name as people write them
    marseille = {
        "CPTS Marseille Centre": ["13201", "Marseille 2e", "13203"],
        "CPTS Marseille Est": ["13204", "Marseille 5ème"],
        "CPTS Marseille Sud": ["13206", "Marseille 7e arrondissement", "13208"],
        "CPTS Marseille Huveaune": ["13209", "13210"],
        "CPTS Marseille Vallée": ["13211", "13212"],
        "CPTS Marseille Nord-Est": ["13213", "MARSEILLE 14EME ARRONDISSEMENT"],
        "CPTS Marseille Nord": ["13215"],
        "CPTS Marseille Littoral Nord": [
            "13216",
            "Marseille 1er",
        ],  # 1er is listed twice: see below
    }
    rows13 = [
        ("13", c if c.isdigit() else "", "" if c.isdigit() else c, cpts)
        for cpts, communes in marseille.items()
        for c in communes
    ]
    rows05 = [
        ("05", "05043", "Les Costes", "CPTS du Champsaur"),  # merged into 05039 Aubessagne
        ("05", "05141", "Saint-Eusèbe-en-Champsaur", "CPTS du Champsaur"),
        ("05", "05088", "Montmorin", "CPTS des Baronnies"),  # → 05024 Valdoule
        ("05", "05150", "Sainte-Marie", "CPTS des Baronnies"),
        ("05", "05175", "Vallouise", "CPTS du Pays des Écrins"),  # → 05101 Vallouise-Pelvoux
        ("05", "", "Gap", "CPTS du Gapençais"),
    ]
    path = workbook(tmp_path / "correspondance_cpts_paca.xlsx", {"13": rows13, "05": rows05})
    result = import_table(ref, south, path)
    members, issues = result["members"], result["issues"]
    assert "2 sheets (13, 05)" in result["how"]
    notes = issues.loc[issues["niveau"] == "info"].set_index("code")["message"]
    assert "feuille « Lisez-moi » : pas d'en-tête de périmètre" in notes["feuille_ignoree"]
    assert "pas de colonne d'identifiant CPTS" in notes["id_depuis_nom"]
    assert issues.loc[issues["niveau"] == "erreur"].empty, issues["message"].tolist()
    by_cpts = members.groupby("cpts_id")["code_commune"].apply(sorted).to_dict()
    assert by_cpts["cpts-du-champsaur"] == ["05039"] and by_cpts["cpts-des-baronnies"] == ["05024"]
    assert by_cpts["cpts-du-pays-des-ecrins"] == ["05101"]
    assert (
        "13201" in by_cpts["cpts-marseille-centre"]
        and "13201" in by_cpts["cpts-marseille-littoral-nord"]
    )
    assert by_cpts["cpts-marseille-sud"] == ["13206", "13207", "13208"]
    assert (members["source_feuille"].isin(["13", "05"])).all()
    # 13214 (14e) is named in capitals with "EME ARRONDISSEMENT"; 13205 as "5ème"
    assert (
        "13214" in by_cpts["cpts-marseille-nord-est"] and "13205" in by_cpts["cpts-marseille-est"]
    )

    status = commune_status(south, members).set_index("code_commune")
    assert (status.loc[[c for c in MARSEILLE if c != "13201"], "statut"] == "couverte").all()
    assert (
        status.loc["13201", "statut"] == "chevauchement"
    )  # the one arrondissement listed by two CPTS
    adjacency = build_adjacency(south, tolerance_m=20.0, island_link_max_km=40.0)
    overlaps = overlap_pairs(
        south, commune_status(south, members), members, adjacency, tolerance_m=20.0
    )
    assert overlaps["code_commune"].tolist() == ["13201"]
    cpts = cpts_table(south, members, repo_settings.section("aci"), example=False).set_index(
        "cpts_id"
    )
    aci = repo_settings.section("aci")
    for name in marseille:
        codes = sorted(set(members.loc[members["cpts_nom"] == name, "code_commune"]))
        row = cpts.loc[members.loc[members["cpts_nom"] == name, "cpts_id"].iloc[0]]
        assert row["population"] == legal(raw, codes), name  # the sum of its arrondissements
        assert (
            row["palier"]
            == assign_tier(
                [legal(raw, codes)],
                tiers=aci["tiers"],
                bounds=aci["bounds"],
                bound_goes_up=aci["bound_goes_up"],
            )[0]
        )
    assert cpts["population"].max() < legal(raw, ["13055"]), (
        "no CPTS counted with the whole of Marseille"
    )


def test_paris_lyon_marseille_by_arrondissement_zero_overlap_and_covered(
    raw, ref, tmp_path, repo_settings
):
    cities = build_communes(raw, Scope.parse("dep:13,69,75"), **CRS)[0]
    arm = cities[cities["type_unite"] == "arrondissement"]
    rows = ["cpts_id;cpts_nom;code_insee"]
    for parent, group in arm.groupby("code_commune_parent"):
        for k, code in enumerate(group["code_commune"]):
            rows.append(f"{parent}-{k % 3};CPTS {parent} {k % 3};{code}")
    path = tmp_path / "plm.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    members = import_table(ref, cities, path)["members"]
    status = commune_status(cities, members).set_index("code_commune")
    assert (status.loc[arm["code_commune"], "statut"] == "couverte").all()
    adjacency = build_adjacency(cities, tolerance_m=20.0, island_link_max_km=40.0)
    assert overlap_pairs(
        cities, commune_status(cities, members), members, adjacency, tolerance_m=20.0
    ).empty
    cpts = cpts_table(cities, members, repo_settings.section("aci"), example=False)
    for rec in cpts.itertuples():
        codes = members.loc[members["cpts_id"] == rec.cpts_id, "code_commune"]
        assert rec.population == legal(raw, codes)
    assert cpts["population"].sum() == legal(raw, ["13055", "69123", "75056"])


def test_whole_commune_and_arrondissement_rows_are_reported_never_double_counted(
    raw, ref, tmp_path, repo_settings
):
    cities = build_communes(raw, Scope.parse("dep:69"), **CRS)[0]
    path = tmp_path / "lyon.csv"
    path.write_text(
        "cpts_id;cpts_nom;commune\nA;CPTS Lyon;Lyon\nB;CPTS Lyon 3;Lyon 3ème\n", encoding="utf-8"
    )
    result = import_table(ref, cities, path)
    members, issues = result["members"], result["issues"]
    assert members.loc[members["cpts_id"] == "B", "code_commune"].tolist() == ["69383"]
    assert sorted(members.loc[members["cpts_id"] == "A", "code_commune"]) == [
        f"6938{k}" for k in (1, 2, 4, 5, 6, 7, 8, 9)
    ]
    elsewhere = issues[issues["code"] == "arrondissement_ailleurs"]
    assert elsewhere["message"].str.contains("l'arrondissement 69383 est cité par la CPTS B").any()
    assert set(elsewhere["code_publie"]) == {"Lyon"}  # as published, not the arrondissement
    cpts = cpts_table(cities, members, repo_settings.section("aci"), example=False).set_index(
        "cpts_id"
    )
    assert cpts.loc["A", "population"] + cpts.loc["B", "population"] == legal(raw, ["69123"])


def test_every_former_code_of_the_cog_resolves_to_its_current_commune(raw):
    lookup = code_lookup(raw.communes, raw.cog)
    com = raw.cog[raw.cog["type"] == "COM"]
    arms = (
        raw.cog[raw.cog["type"] == "ARM"]
        .groupby("parent")["code"]
        .apply(lambda s: tuple(sorted(s)))
        .to_dict()
    )
    pairs = [
        (old, code)
        for code, olds in zip(com["code"], com["anciens_codes"])
        for old in olds.split(";")
        if old
    ]
    assert len(pairs) == 4240
    for old, current in pairs:
        assert lookup[old].codes == arms.get(current, (current,)), old
    for old, current in {
        "05043": "05039",
        "05141": "05039",
        "05088": "05024",
        "05150": "05024",
        "05175": "05101",
    }.items():
        assert lookup[old].codes == (current,)


def test_cpts_across_the_scope_border_is_tiered_on_its_whole_population(
    raw, ref, tmp_path, repo_settings
):
    aude = build_communes(raw, Scope.parse("dep:11"), **CRS)[0]
    path = tmp_path / "x.csv"
    path.write_text(
        "cpts_id,cpts_nom,code_commune\nX,CPTS X,11069\nX,CPTS X,34032\nX,CPTS X,34172\n",
        encoding="utf-8",
    )
    result = import_table(ref, aude, path)
    assert result["members"]["code_commune"].tolist() == ["11069"]
    assert sorted(result["outside"]["code_commune"]) == ["34032", "34172"]
    outside = result["issues"].set_index("code").loc[["hors_champ"], "message"]
    assert outside.str.contains("la CPTS X cite 2 commune\\(s\\) hors du périmètre").all()
    cpts = cpts_table(
        aude,
        result["members"],
        repo_settings.section("aci"),
        example=False,
        outside=result["outside"],
    ).iloc[0]
    assert cpts["population"] == legal(raw, ["11069", "34032", "34172"]) and cpts["palier"] == "T4"
    assert (
        cpts["population_hors_champ"] == legal(raw, ["34032", "34172"])
        and cpts["n_communes_hors_champ"] == 2
    )


def test_short_forms_and_typos_are_asked_back_with_the_right_commune_first(raw, ref, tmp_path):
    herault = build_communes(raw, Scope.parse("dep:34"), **CRS)[0]
    path = tmp_path / "h.csv"
    path.write_text(
        "cpts_id;cpts_nom;commune\nT;CPTS Thau;Vic\nT;CPTS Thau;Balaruc-Levieux\n"
        "T;CPTS Thau;Sète\n",
        encoding="utf-8",
    )
    result = import_table(ref, herault, path)
    assert result["members"]["code_commune"].tolist() == ["34301"]
    names = result["names"].set_index("nom_publie")
    assert names.loc["Vic", "candidats"].startswith("Vic-la-Gardiole (34333)")
    assert names.loc["Balaruc-Levieux", "candidats"].startswith("Balaruc-le-Vieux (34024)")
    assert (
        names.loc["Vic", "code_commune"] == ""
        and names.loc["Balaruc-Levieux", "code_commune"] == ""
    )


def test_checks_pieces_near_duplicate_names_and_communes_no_row_mentions(raw, ref, tmp_path):
    region = build_communes(raw, Scope.parse("dep:11,34"), **CRS)[0]
    adjacency = build_adjacency(region, tolerance_m=20.0, island_link_max_km=40.0)
    codes = region["code_commune"].tolist()
    neighbour = codes[adjacency.neighbours()[codes.index("11203")][0]]
    path = tmp_path / "c.csv"
    path.write_text(
        "cpts_id;cpts_nom;code_insee\n"
        f"A;CPTS du Lézignanais;11203\nA;CPTS du Lézignanais;{neighbour}\n"
        "A;CPTS du Lézignanais;34172\n"  # Montpellier: far from the rest, a wrong pick
        "B;CPTS Gapençais;11069\nC;CPTS du gapencais;11262\n",
        encoding="utf-8",
    )
    members = import_table(ref, region, path)["members"]
    issues = pd.DataFrame(
        check_members(members, region, adjacency, source="c.csv"),
        columns=ISSUES,
    )
    pieces = issues.loc[issues["code"] == "morceaux"].iloc[0]
    assert pieces["cpts_id"] == "A" and "la CPTS A est en 2 morceaux" in pieces["message"]
    assert "Montpellier" in pieces["message"] and " hab.)" in pieces["message"]
    near = issues.loc[issues["code"] == "noms_proches"].iloc[0]
    assert near["cpts_id"] == "B;C"
    assert "B (« CPTS Gapençais »), C (« CPTS du gapencais ») ne diffèrent" in near["message"]
    missing = issues.loc[issues["code"] == "communes_non_citees", "message"]
    dep11 = missing[missing.str.contains("département 11 :")].iloc[0]
    n11 = (region["code_departement"] == "11").sum()
    assert f"{n11 - 4} commune(s) sur {n11}" in dep11


@pytest.mark.parametrize(
    "text,message",
    [
        (
            "cpts_id,cpts_nom,code_commune\nCPTS-01,CPTS Narbonne, Littoral,11262\n",
            r"line 2: 4 fields where the header has 3 .*put the value in quotes",
        ),
        (
            "cpts_id;cpts_nom;code_commune\nA;CPTS A;11262;extra\nB;CPTS B;11069\n"
            "C;CPTS C;11190;x;y\n",
            r"2 problems:.*line 2: 4 fields.*line 4: 5 fields",
        ),
        ('cpts_id,cpts_nom,code_commune\nA,"CPTS A,11262\n', r"line 2: .*close the quote"),
    ],
)
def test_ragged_rows_are_refused_with_their_line_never_shifted(tmp_path, text, message):
    path = tmp_path / "p.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PipelineError, match=f"(?s)p.csv.*{message}"):
        read_perimeter_table(path)


def test_quoted_separator_and_title_rows_in_a_csv(ref, raw, tmp_path):
    aude = build_communes(raw, Scope.parse("dep:11"), **CRS)[0]
    path = tmp_path / "p.csv"
    path.write_text(
        "Liste des CPTS signées;;\n;;\nIdentifiant CPTS;Nom de la CPTS;Code commune INSEE\n"
        'N1;"CPTS Narbonne; Littoral";11262\n',
        encoding="utf-8",
    )
    result = import_table(ref, aude, path)
    assert result["members"][["cpts_id", "cpts_nom", "code_commune"]].values.tolist() == [
        ["N1", "CPTS Narbonne; Littoral", "11262"]
    ]
    assert result["issues"]["message"].str.contains("en-tête trouvé ligne 3").any()


def test_stage_writes_the_population_vintage_and_the_outside_population(config_factory, tmp_path):
    import json

    import geopandas as gpd

    from pipeline import stages
    from pipeline.config import load_settings

    perimeter = tmp_path / "x.csv"
    perimeter.write_text(
        "cpts_id,cpts_nom,code_commune\nX,CPTS X,11069\nX,CPTS X,34032\nX,CPTS X,34172\n",
        encoding="utf-8",
    )
    config = config_factory("dep:11")
    set_input_files(config, file=perimeter)
    settings = load_settings(config)
    stages.run_until(settings, "coverage")
    folder = settings.processed_dir
    for name in ("communes_summary.json", "coverage_summary.json", "perimetres_source.json"):
        text = json.loads((folder / name).read_text(encoding="utf-8"))
        found = text.get("population_millesime") or text["perimetres"]["population_millesime"]
        assert found == "population légale en vigueur en 2026 (INSEE, COG)", name
    cpts = gpd.read_parquet(stages.coverage_paths(settings)["cpts"]).iloc[0]
    outside = pd.read_csv(stages.perimeter_paths(settings)["outside"], dtype={"code_commune": str})
    assert outside["code_commune"].tolist() == ["34032", "34172"]
    assert cpts["palier"] == "T4" and cpts["population_hors_champ"] == outside["population"].sum()


def test_a_code_contradicting_the_name_on_its_row_is_reported(ref, raw, tmp_path):
    herault = build_communes(raw, Scope.parse("dep:34"), **CRS)[0]
    path = tmp_path / "h.csv"
    path.write_text(
        "Nom CPTS;Code INSEE;Commune\nCPTS Thau;34301;Sète\nCPTS Thau;34 024;Vic-la-Gardiole\n"
        "CPTS Thau;34333;Vic-la-Gardiole\n",
        encoding="utf-8",
    )
    result = import_table(ref, herault, path)
    assert sorted(result["members"]["code_commune"]) == [
        "34024",
        "34301",
        "34333",
    ]  # "34 024": spaces dropped
    warnings = (
        result["issues"].loc[result["issues"]["niveau"] == "avertissement", "message"].tolist()
    )
    assert (
        len(warnings) == 1
        and "ligne 3 : le code 34024 n'est pas « Vic-la-Gardiole » (34333)" in warnings[0]
    )


def test_names_as_lists_write_them_with_departement_postal_code_or_footnote(ref, raw, tmp_path):
    region = build_communes(raw, Scope.parse("dep:11,30,34"), **CRS)[0]
    path = tmp_path / "liste.csv"  # Excel's "CSV UTF-8": BOM, ';', CRLF
    text = (
        "Nom de la CPTS;Commune\r\nCPTS Thau;Vic-la-Gardiole (34)\r\nCPTS Thau;34200 Sète\r\n"
        "CPTS Thau;Mèze*\r\nCPTS Thau;Saint-Hilaire (11)\r\n"
    )
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    result = import_table(ref, region, path)
    assert sorted(result["members"]["code_commune"]) == ["11344", "34157", "34301", "34333"]
    assert result["issues"].loc[result["issues"]["niveau"] == "erreur"].empty


def test_cpts_of_another_departement_are_one_warning_with_their_count_and_list(raw, ref, tmp_path):
    """A regional workbook run on one of its départements: the CPTS of the other département have
    no commune there; one warning says so for all of them (not one each), with no note per CPTS
    about its communes outside the scope."""
    bdr = build_communes(raw, Scope.parse("dep:13"), **CRS)[0]
    rows13 = [("13", "13001", "Aix-en-Provence", "CPTS du Pays d'Aix")]
    rows05 = [
        ("05", "05061", "Gap", "CPTS du Gapençais"),
        ("05", "05023", "Briançon", "CPTS du Briançonnais"),
        ("05", "05046", "Embrun", "CPTS de l'Embrunais"),
        ("05", "05046", "Embrun", "CPTS de l'Embrunais"),
    ]
    path = workbook(tmp_path / "paca.xlsx", {"13": rows13, "05": rows05})
    issues = import_table(ref, bdr, path)["issues"]
    warnings = issues[issues["niveau"] == "avertissement"]
    assert warnings["code"].tolist() == ["sans_commune"]
    line = warnings.iloc[0]
    ids = ["cpts-de-l-embrunais", "cpts-du-brianconnais", "cpts-du-gapencais"]
    assert line["cpts_id"] == ";".join(ids)
    assert "3 CPTS sans aucune commune dans le périmètre du diagnostic" in line["message"]
    assert f"{ids[0]} (2 ligne(s), 1 commune(s) hors périmètre)" in line["message"]
    assert (issues["code"] != "hors_champ").all()
    assert not issues["message"].str.contains(r"\b(?:the|has|lists|inh\.)\b").any()
