"""Health profile: INSEE population by age, zonage médecin and FINESS loaders on fixtures in the
published layouts (and their malformed variants), and the comparisons commune / group vs
département vs région vs France, checked against hand computations."""

from __future__ import annotations

import math

import numpy as np
import openpyxl
import pandas as pd
import pytest

from pipeline.analysis.communes import build_communes
from pipeline.analysis.profile import (
    SOURCES_FR,
    commune_profile,
    compare,
    comparison_table,
    group_profile,
    missing_sources,
    ratios,
)
from pipeline.config import Scope
from pipeline.errors import PipelineError
from pipeline.sources.ald import ald_context, read_ald
from pipeline.sources.codes import code_lookup, single_unit
from pipeline.sources.finess import counts_by_commune, cpts_seats, insee_code, read_finess
from pipeline.sources.population_age import (
    ages_by_commune,
    arrondissement_parent,
    read_commune_ages,
    read_iris_ages,
)
from pipeline.sources.zonage import NATIONAL_COLUMNS, Zonage, read_zonage, zonage_by_commune

from .conftest import FIXTURES

AGES = FIXTURES / "base-cc-evol-struct-pop-2021-extrait.CSV"
IRIS_AGES = FIXTURES / "base-ic-evol-struct-pop-2021-extrait.CSV"
FINESS = FIXTURES / "etalab-cs1100507-stock-20241001-0400-extrait.csv"
# The fixture's communes: 11 and 34 in région 76, 13 in région 93; populations are the fixture's.
COMMUNES = pd.DataFrame(
    {
        "code_commune": ["11069", "11190", "13004", "13055", "34172"],
        "code_departement": ["11", "11", "13", "13", "34"],
        "code_region": ["76", "76", "93", "93", "76"],
        "population": [1000, 500, 1000, 1000, 2000],
    }
)
NATIONAL_ROWS = [  # code, commune, national qualification, arrêté (made-up categories)
    ("11069", "Carcassonne", "02_Vivier ZAC", "ZAC"),
    ("11190", "La Redorte", "01_Sélection nationale", "ZIP"),
    ("13004", "Arles", "01_Sélection nationale", "ZIP"),
    ("13055", "Marseille", "ZZ_Hors vivier", "Zone de vigilance"),
    ("34172", "Montpellier", "ZZ_Hors vivier", "Hors vivier"),
]


def one_line(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def zonage_workbook(
    path, *, rows=NATIONAL_ROWS, columns=NATIONAL_COLUMNS, title_rows=0, sheet="Zonage_communes"
):
    """The DREES Zonage_medecin workbook: sheets Zonage_communes, Zonage_TVS, Zonage_QPV; the
    communes sheet with the published columns in order (values made up)."""
    book = openpyxl.Workbook()
    book.active.title = sheet
    data = book[sheet]
    for k in range(title_rows):
        data.cell(row=k + 1, column=1, value=f"Zonage médecins — ligne de titre {k + 1}")
    for k, name in enumerate(columns, start=1):
        data.cell(row=title_rows + 1, column=k, value=name)
    for r, (code, name, national, arrete) in enumerate(rows, start=title_rows + 2):
        values = {
            "Identifiant unique": f"{r:05d}",
            "Code de la région": "76" if code[:2] != "13" else "93",
            "Libellé de la région": "Région",
            "Code du territoire de vie-santé": code[:4] + "_",
            "Libellé du territoire de vie-santé": name,
            "Code de la commune": code,
            "Libellé de la commune": name,
            "Qualification nationale issue de la concertation de 2017": national,
            "Qualification attribuée par l'arrêté régional": arrete,
            "Population totale (2016)": 1000,
            "Zonage 2025": arrete,
        }
        for k, column in enumerate(columns, start=1):
            data.cell(row=r, column=k, value=values[column])
    for other in ("Zonage_TVS", "Zonage_QPV"):
        book.create_sheet(other)["A1"] = "Code du territoire de vie-santé"
    book.save(path)
    return path


@pytest.fixture(scope="module")
def fixture_profile(tmp_path_factory):
    ages, _year = read_commune_ages(AGES)
    zonage, _ = read_zonage(
        zonage_workbook(tmp_path_factory.mktemp("zonage") / "Zonage_medecin_20230101.xlsx")
    )
    finess, _ = read_finess(FINESS)
    return commune_profile(
        COMMUNES,
        ages=ages_by_commune(ages),
        zonage=zonage_by_commune(zonage)[0],
        finess=counts_by_commune(finess),
    )


# ---------------------------------------- INSEE population by age


def test_commune_ages_latest_year_75_plus_and_arrondissements():
    ages, year = read_commune_ages(AGES)
    assert year == 2021  # P21_ read, not P15_/P10_ (whose 75+ columns are zero in the fixture)
    row = ages.set_index("code_commune").loc["11069"]
    assert row["pop_75p"] == pytest.approx(79.52 + 20.48) and row["population_age"] == 1000
    arm = ages.set_index("code_commune").loc[["13201", "13202"]]
    assert arm["arrondissement"].all() and set(arm["code_commune_parent"]) == {"13055"}
    by_commune = ages_by_commune(ages)
    assert "13201" not in by_commune.index
    assert (
        by_commune.loc["13055", "population_age"] == 1000
        and by_commune.loc["13055", "pop_75p"] == 100
    )


def test_commune_row_is_not_doubled_by_its_arrondissements():
    ages, _ = read_commune_ages(AGES)
    paris = ages.iloc[[0]].assign(
        code_commune="13055",
        arrondissement=False,
        code_commune_parent="13055",
        population_age=990.0,
    )
    by_commune = ages_by_commune(pd.concat([ages, paris]))
    assert by_commune.loc["13055", "population_age"] == 990.0


def test_arrondissement_codes_match_the_real_table(raw):
    table = raw.communes
    arm = table[table["type"] == "ARM"]
    parent_code = arm["commune_parent_id"].map(
        dict(
            zip(table.loc[table["type"] == "COM", "id"], table.loc[table["type"] == "COM", "code"])
        )
    )
    assert len(arm) == 45
    assert [arrondissement_parent(c) for c in arm["code"]] == list(parent_code)
    com = table.loc[table["type"] == "COM", "code"]
    assert not any(arrondissement_parent(c) for c in com)


def test_iris_ages_read_the_75p_column():
    iris, year = read_iris_ages(IRIS_AGES)
    assert year == 2021 and list(iris["code_iris"]) == ["110690101", "110690102", "111900000"]
    carcassonne = iris[iris["code_commune"] == "11069"]
    assert carcassonne["pop_75p"].sum() == pytest.approx(100.0)  # 44,25 + 55,75 (decimal commas)
    assert carcassonne["population_age"].sum() == pytest.approx(1000.0)


@pytest.mark.parametrize(
    "mangle, expected",
    [
        (lambda t: t.replace(";P21_POP90P", ";P21_XXX90P"), "P21_POP90P"),
        (lambda t: t.replace(";", ","), "not ';'-separated (it looks ','-separated)"),
        (lambda t: t.split("\n")[0] + "\n", "no rows"),
        (lambda t: "", "empty"),
        (lambda t: t.replace("11190;500;80", "11190;500;n.d."), "line 3, column P21_POP0014"),
        (
            lambda t: t.replace("11190;500;80;60", "11190;500;80;600"),
            "line 3: the age bands add up to 1040.00",
        ),
        (
            lambda t: t.replace("11190;500;80;60", "11190;500;80;;60"),
            "Expected 73 fields in line 3, saw 74",
        ),
    ],
)
def test_commune_ages_malformed(tmp_path, mangle, expected):
    path = tmp_path / "base-cc-evol-struct-pop-2021.CSV"
    path.write_text(mangle(AGES.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(PipelineError) as excinfo:
        read_commune_ages(path)
    assert expected in one_line(excinfo) and str(path) in str(excinfo.value)


def test_commune_ages_wrong_encoding_and_zip(tmp_path):
    utf16 = tmp_path / "utf16.CSV"  # Excel's "Unicode text": read as the same table
    utf16.write_bytes(AGES.read_text(encoding="utf-8").encode("utf-16"))
    assert read_commune_ages(utf16)[0].equals(read_commune_ages(AGES)[0])
    undecodable = tmp_path / "undecodable.CSV"
    undecodable.write_bytes(AGES.read_bytes().replace(b"11190", b"11\x81\x8d0"))
    with pytest.raises(PipelineError) as excinfo:
        read_commune_ages(undecodable)
    assert "neither UTF-8 nor Windows-1252" in one_line(excinfo)
    import zipfile

    archive = tmp_path / "base-cc-evol-struct-pop-2021_csv.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(AGES, AGES.name)
    with pytest.raises(PipelineError) as excinfo:
        read_commune_ages(archive)
    assert "zip archive" in one_line(excinfo)


def test_iris_file_without_age_columns_is_refused():
    with pytest.raises(PipelineError) as excinfo:
        read_iris_ages(FIXTURES / "base-ic-evol-struct-pop-2020-extrait.CSV")  # first columns only
    assert "missing column(s) P20_POP0014" in one_line(excinfo)


def test_iris_ages_missing_75p(tmp_path):
    path = tmp_path / "iris.CSV"
    path.write_text(
        IRIS_AGES.read_text(encoding="utf-8").replace("P21_POP75P", "P21_POP7599"), encoding="utf-8"
    )
    with pytest.raises(PipelineError) as excinfo:
        read_iris_ages(path)
    assert "P21_POP75P" in one_line(excinfo)


# ---------------------------------------- zonage médecin


def test_national_zonage_workbook(tmp_path):
    zonage, report = read_zonage(zonage_workbook(tmp_path / "Zonage_medecin_20230101.xlsx"))
    got = dict(zip(zonage["code_commune"], zonage["categorie"]))
    assert got == {
        "11069": Zonage.ZAC,
        "11190": Zonage.ZIP,
        "13004": Zonage.ZIP,
        "13055": Zonage.ZV,
        "34172": Zonage.HV,
    }
    assert (
        report["colonne"] == "Qualification attribuée par l'arrêté régional"
        and report["sans_categorie"] == 0
    )


def test_regional_2025_categories_below_title_rows(tmp_path):
    rows = [
        ("11069", "Carcassonne", "", "ZAR"),
        ("11190", "La Redorte", "", "ZIP"),
        ("34172", "Montpellier", "", "ZV"),
        ("13055", "Marseille", "", "Hors zonage"),
        ("13004", "Arles", "", "ZAC"),
    ]
    path = zonage_workbook(
        tmp_path / "zonage_2025.xlsx",
        rows=rows,
        title_rows=3,
        columns=["Code de la commune", "Libellé de la commune", "Zonage 2025"],
    )
    zonage, report = read_zonage(path)
    assert list(zonage["categorie"]) == [Zonage.ZAR, Zonage.ZIP, Zonage.ZAC, Zonage.HZ, Zonage.ZV]
    assert report["colonne"] == "Zonage 2025"


def test_zonage_merged_category_cells_take_their_first_value(tmp_path):
    # a regional table where one category cell was merged over two communes in a row
    rows = [
        ("11069", "Carcassonne", "", "ZAR"),
        ("11190", "La Redorte", "", "ZIP"),
        ("34172", "Montpellier", "", ""),
    ]
    columns = ["Code de la commune", "Libellé de la commune", "Zonage 2025"]
    path = zonage_workbook(tmp_path / "zonage_2025.xlsx", rows=rows, columns=columns)
    book = openpyxl.load_workbook(path)
    book["Zonage_communes"].merge_cells("C3:C4")
    book.save(path)
    zonage, _ = read_zonage(path)
    got = dict(zip(zonage["code_commune"], zonage["categorie"]))
    assert got == {"11069": Zonage.ZAR, "11190": Zonage.ZIP, "34172": Zonage.ZIP}


def test_zonage_keeps_arrondissements_as_units_of_coverage(tmp_path, raw):
    rows = [
        ("13201", "Marseille 1er", "", "ZAC"),
        ("13202", "Marseille 2e", "", "ZIP"),
        ("11190", "La Redorte", "", "ZAC"),
    ]
    zonage, _ = read_zonage(zonage_workbook(tmp_path / "z.xlsx", rows=rows))
    by_commune, unknown = zonage_by_commune(zonage, single_unit(code_lookup(raw.communes, raw.cog)))
    assert (
        by_commune.to_dict() == {"11190": Zonage.ZAC, "13201": Zonage.ZAC, "13202": Zonage.ZIP}
        and unknown == []
    )


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda p: zonage_workbook(p, sheet="Feuil1"), "no sheet 'Zonage_communes'"),
        (
            lambda p: zonage_workbook(
                p, columns=[c for c in NATIONAL_COLUMNS if c != "Libellé de la commune"]
            ),
            "missing column(s) Libellé de la commune",
        ),
        (
            lambda p: zonage_workbook(
                p, columns=[c for c in NATIONAL_COLUMNS if c != "Code de la commune"]
            ),
            "no header cell 'Code de la commune'",
        ),
        (
            lambda p: zonage_workbook(
                p, rows=NATIONAL_ROWS + [("11203", "Lézignan", "", "Zone blanche")]
            ),
            "row 7: unknown category 'Zone blanche'",
        ),
        (lambda p: zonage_workbook(p, rows=[]), "no commune row"),
        (
            lambda p: (p.write_text("Code de la commune;Zonage\n11069;ZIP\n", encoding="utf-8"), p)[
                1
            ],
            "not a readable xlsx workbook",
        ),
    ],
)
def test_zonage_malformed(tmp_path, make, expected):
    path = make(tmp_path / "Zonage_medecin_20230101.xlsx")
    with pytest.raises(PipelineError) as excinfo:
        read_zonage(path)
    assert expected in one_line(excinfo)


# ---------------------------------------- FINESS


def test_finess_stock_windows_1252_both_record_kinds_and_dom_codes():
    table, report = read_finess(FINESS)
    assert (
        report["encodage"] == "Windows-1252"
        and report["structureet"] == 16
        and report["geolocalisation"] == 4
    )
    assert (
        report["ligne_1"] == {"annonce": "16", "date": "2024-10-01"}
        and report["code_commune_invalide"] == []
    )
    rows = table.set_index("nofinesset")
    assert rows.loc["110001001", "rs"] == "MAISON DE SANTÉ DU MINERVOIS"  # é read from Windows-1252
    assert rows.loc["970101001", "code_commune"] == "97101"
    assert rows.loc["970101001", "source_coordonnees"].startswith("EPSG:5490")
    assert rows.loc["110001002", "coordx"] == ""  # no geolocalisation record
    counts = counts_by_commune(table)
    assert counts.loc["11069"].to_dict() == {
        "n_msp": 1,
        "n_centre_sante": 1,
        "n_pharmacie": 2,
        "n_cpts_finess": 1,
    }
    assert counts.loc["34172", "n_pharmacie"] == 3 and counts.loc["97101", "n_pharmacie"] == 1
    assert counts["n_pharmacie"].sum() == 7  # the laboratory (611) is not counted
    seats = cpts_seats(table)
    assert dict(zip(seats["rs"], seats["code_commune"])) == {
        "CPTS DU MINERVOIS": "11190",
        "CPTS CARCASSONNE AGGLO": "11069",
        "CPTS MONTPELLIER NORD": "34172",
    }


def test_insee_code_rules():
    assert insee_code("9A", "101") == "97101" and insee_code("9F", "611") == "97611"
    assert insee_code("2A", "004") == "2A004" and insee_code("1", "1") == "01001"


def _finess_text() -> str:
    return FINESS.read_bytes().decode("cp1252")


@pytest.mark.parametrize(
    "mangle, expected",
    [
        (lambda t: t.split("\r\n", 1)[1], "line 1 is 'structureet;"),
        (lambda t: t.replace(";", ","), "line 1 is not ';'-separated (it looks ','-separated)"),
        (lambda t: t.split("\r\n", 1)[0] + "\r\n", "no 'structureet' record"),
        (lambda t: "", "empty"),
        (
            lambda t: t.replace(";AUDE;", ";", 1),
            "line 2: structureet record with 31 fields, expected 32",
        ),
        (
            lambda t: t.replace(";2024-09-30;\r\n", ";\r\n", 1),
            "line 2: structureet record with 31 fields",
        ),
        (
            lambda t: t.replace("geolocalisation;110001001", "geoloc;110001001"),
            "unknown record kind 'geoloc'",
        ),
    ],
)
def test_finess_malformed(tmp_path, mangle, expected):
    path = tmp_path / "etalab-cs1100507-stock.csv"
    path.write_bytes(mangle(_finess_text()).encode("cp1252"))
    with pytest.raises(PipelineError) as excinfo:
        read_finess(path)
    assert expected in one_line(excinfo)


def test_finess_utf16_and_utf8_read_like_the_published_windows_1252(tmp_path):
    path = tmp_path / "utf16.csv"
    path.write_bytes(_finess_text().encode("utf-16"))
    assert read_finess(path)[0].equals(read_finess(FINESS)[0])
    path.write_bytes(_finess_text().encode("utf-8"))
    table, report = read_finess(path)
    assert report["encodage"] == "UTF-8" and "MAISON DE SANTÉ DU MINERVOIS" in set(table["rs"])


# ---------------------------------------- ALD without médecin traitant


def test_ald_rates_by_departement_region_france():
    table = read_ald(FIXTURES / "patients-longueduree-annuelle-extrait.csv")
    assert ald_context(table, "11", "76") == {
        "annee": 2023,
        "departement": 4.2,
        "region": 3.4,
        "france": 3.1,
    }
    assert ald_context(table, "11", "76", year=2022) == {
        "annee": 2022,
        "departement": 3.9,
        "region": 3.2,
        "france": 2.9,
    }
    lozere = ald_context(table, "48", "76")
    assert math.isnan(lozere["departement"]) and lozere["region"] == 3.4  # NC: masked, not zero
    assert math.isnan(ald_context(table, "13", "93")["region"])  # no région row for 93 in the file


@pytest.mark.parametrize(
    "mangle, expected",
    [
        (lambda t: t.replace(";", ","), "not ';'-separated"),
        (
            lambda t: t.replace("taux_patients_ald_sans_mt;", "taux;"),
            "missing column(s) taux_patients_ald_sans_mt",
        ),
        (
            lambda t: t.replace(";4.2;", ";n.d.;"),
            "line 7, column taux_patients_ald_sans_mt: 'n.d.'",
        ),
    ],
)
def test_ald_malformed(tmp_path, mangle, expected):
    path = tmp_path / "patients-longueduree-annuelle.csv"
    path.write_text(
        mangle(
            (FIXTURES / "patients-longueduree-annuelle-extrait.csv").read_text(encoding="utf-8-sig")
        ),
        encoding="utf-8",
    )
    with pytest.raises(PipelineError) as excinfo:
        read_ald(path)
    assert expected in one_line(excinfo)


# ---------------------------------------- comparisons by hand


def test_commune_vs_departement_region_france_by_hand(fixture_profile):
    compared = compare(fixture_profile.set_index("code_commune"), fixture_profile).loc["11190"]
    # La Redorte: 75+ = 60 + 15 of 500; Aude (11069 + 11190) = 100 + 75 of 1,500; région 76 adds
    # Montpellier (120 of 2,000); France adds Arles (200 of 1,000) and Marseille (40 + 60 of 1,000).
    assert compared["part_75p"] == pytest.approx(15.0)
    assert compared["part_75p_departement"] == pytest.approx(175 / 1500 * 100)
    assert compared["part_75p_region"] == pytest.approx(295 / 3500 * 100)
    assert compared["part_75p_france"] == pytest.approx(595 / 5500 * 100)
    # Zonage: La Redorte ZIP, Carcassonne ZAC, Montpellier hors vivier, Arles ZIP, Marseille
    # vigilance.
    assert compared["part_zip_zac"] == 100.0 and compared["part_zip_zac_departement"] == 100.0
    assert compared["part_zip_zac_region"] == pytest.approx(1500 / 3500 * 100)
    assert compared["part_zip_france"] == pytest.approx(1500 / 5500 * 100)
    # FINESS: MSP at La Redorte and Carcassonne only; pharmacies 2 (Carcassonne) + 3 (Montpellier) +
    # 1 (Marseille); the Guadeloupe pharmacy lies outside the commune table.
    assert compared["msp_10k"] == pytest.approx(1 / 500 * 1e4)
    assert compared["msp_10k_departement"] == pytest.approx(2 / 1500 * 1e4)
    assert compared["msp_10k_region"] == pytest.approx(2 / 3500 * 1e4)
    assert compared["pharmacies_10k_region"] == pytest.approx(5 / 3500 * 1e4)
    assert compared["pharmacies_10k_france"] == pytest.approx(6 / 5500 * 1e4)
    assert compared["pharmacies_10k"] == 0.0  # the file is given and lists none: a real zero


def test_marseille_compared_with_bouches_du_rhone(fixture_profile):
    compared = compare(fixture_profile.set_index("code_commune"), fixture_profile).loc["13055"]
    assert compared["part_75p"] == pytest.approx(
        10.0
    )  # its two arrondissements: 40 + 60 of 400 + 600
    assert compared["part_75p_departement"] == pytest.approx(15.0) == compared["part_75p_region"]
    assert compared["part_zip_departement"] == pytest.approx(50.0)


def test_group_profile_and_its_references(fixture_profile):
    groups = pd.DataFrame(
        {
            "group": ["ZB-11-1", "ZB-11-1", "T-mixte", "T-mixte"],
            "code_commune": ["11069", "11190", "11190", "34172"],
        }
    )
    sums = group_profile(fixture_profile, groups)
    assert sums.loc["T-mixte", "code_departement"] == "34"  # 2,000 inhabitants in 34 vs 500 in 11
    assert sums.loc["T-mixte", "departements"] == "11;34" and sums.loc["ZB-11-1", "communes"] == 2
    compared = compare(sums, fixture_profile)
    assert compared.loc["ZB-11-1", "part_75p"] == pytest.approx(175 / 1500 * 100)
    assert compared.loc["T-mixte", "part_75p"] == pytest.approx((75 + 120) / 2500 * 100)
    assert compared.loc["T-mixte", "part_75p_departement"] == pytest.approx(6.0)
    assert compared.loc["T-mixte", "part_zip"] == pytest.approx(500 / 2500 * 100)
    assert compared.loc["ZB-11-1", "pharmacies_10k"] == pytest.approx(2 / 1500 * 1e4)
    table = comparison_table(compared.loc["T-mixte"])
    row = table.set_index("indicateur").loc["part_75p"]
    assert row["libelle"] == "Part des 75 ans et plus (%)" and row["departement"] == pytest.approx(
        6.0
    )


def test_missing_source_is_unavailable_never_zero(fixture_profile):
    ages, _ = read_commune_ages(AGES)
    profile = commune_profile(COMMUNES, ages=ages_by_commune(ages))  # no zonage, no FINESS
    compared = compare(profile.set_index("code_commune"), profile)
    for column in ("part_zip", "part_zip_zac_region", "msp_10k", "pharmacies_10k_france"):
        assert compared[column].isna().all(), column
    assert compared["part_75p"].notna().all()
    # A commune the zonage file does not list is unavailable itself, and left out of its références.
    partial = commune_profile(COMMUNES, zonage=pd.Series({"13055": Zonage.ZV, "11069": Zonage.ZIP}))
    compared = compare(partial.set_index("code_commune"), partial)
    assert math.isnan(compared.loc["13004", "part_zip"])
    assert compared.loc["13004", "part_zip_departement"] == 0.0  # Marseille alone: vigilance
    assert compared.loc["11190", "part_zip_departement"] == 100.0  # Carcassonne alone: ZIP


def test_supply_indicators_are_compared_population_weighted():
    """``indicators.parquet`` columns (made-up values): APL 2.0 at Carcassonne (1,000 inh.) and 4.0
    at La Redorte (500), unknown elsewhere; Carcassonne under the threshold; 3 + 1 GPs in the Aude.
    """
    indicators = pd.DataFrame(
        {
            "code_commune": COMMUNES["code_commune"],
            "population": COMMUNES["population"],
            "n_medecin_generaliste": pd.array([3, 1, 2, 0, 10], dtype="Int64"),
            "apl_mg": [2.0, 4.0, np.nan, np.nan, np.nan],
            "sous_dotee": pd.array([True, False, pd.NA, pd.NA, pd.NA], dtype="boolean"),
        }
    )
    profile = commune_profile(COMMUNES, indicators=indicators, professions=["medecin_generaliste"])
    compared = compare(profile.set_index("code_commune"), profile)
    row = compared.loc["11190"]
    assert row["apl_mg_departement"] == pytest.approx((2.0 * 1000 + 4.0 * 500) / 1500)
    assert (
        row["apl_mg_france"] == row["apl_mg_departement"]
    )  # the other communes have no APL: left out
    assert row["part_sous_dotee_departement"] == pytest.approx(1000 / 1500 * 100)
    assert math.isnan(compared.loc["34172", "apl_mg"]) and math.isnan(
        compared.loc["34172", "part_sous_dotee"]
    )
    assert row["densite_medecin_generaliste_10k_departement"] == pytest.approx(4 / 1500 * 1e4)
    assert row["densite_medecin_generaliste_10k_france"] == pytest.approx(16 / 5500 * 1e4)
    table = comparison_table(row).set_index("indicateur")
    assert (
        table.loc["densite_medecin_generaliste_10k", "libelle"]
        == "Médecins généralistes pour 10 000 hab."
    )
    no_rpps = indicators.assign(n_medecin_generaliste=pd.array([pd.NA] * 5, dtype="Int64"))
    profile = commune_profile(COMMUNES, indicators=no_rpps, professions=["medecin_generaliste"])
    assert (
        compare(profile.set_index("code_commune"), profile)[
            "densite_medecin_generaliste_10k_france"
        ]
        .isna()
        .all()
    )


def test_missing_sources_are_named():
    assert missing_sources([]) == list(SOURCES_FR.values())
    assert missing_sources(["finess", "zonage", "population_age", "ald"]) == [
        SOURCES_FR["rpps"],
        SOURCES_FR["apl"],
    ]


def test_real_communes_of_occitanie(raw):
    """The real commune table of région 76: with no optional file every profile ratio is unavailable
    and group sums conserve the population to the inhabitant; with the FINESS fixture the Aude's
    pharmacy density is the fixture's two pharmacies over the Aude's real population."""
    communes = build_communes(raw, Scope.parse("region:76"), crs_metropole=2154, crs_drom={})[0]
    empty = commune_profile(communes)
    assert ratios(empty).isna().all().all()
    groups = pd.DataFrame(
        {"group": communes["code_epci"], "code_commune": communes["code_commune"]}
    )
    sums = group_profile(empty, groups)
    assert int(sums["population"].sum()) == int(communes["population"].sum())
    finess, _ = read_finess(FINESS)
    profile = commune_profile(communes, finess=counts_by_commune(finess))
    compared = compare(profile.set_index("code_commune"), profile)
    aude = int(communes.loc[communes["code_departement"] == "11", "population"].sum())
    assert compared.loc["11069", "pharmacies_10k_departement"] == pytest.approx(2 / aude * 1e4)
    region = int(communes["population"].sum())
    assert compared.loc["11069", "pharmacies_10k_france"] == pytest.approx(5 / region * 1e4)
    assert np.isfinite(compared["msp_10k"]).all()
