"""Practitioner supply and accessibility: RPPS and APL fixtures in the published layouts, E2SFCA
against a hand computation, malformed files, and the indicators in the outputs."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pytest
import shapely

from pipeline import stages
from pipeline.analysis.accessibility import band_weights, e2sfca
from pipeline.analysis.communes import build_communes
from pipeline.config import Scope, load_settings
from pipeline.errors import PipelineError, ValidationError
from pipeline.sources.codes import code_lookup, single_unit
from pipeline.sources.cog import postal_lookup
from pipeline.sources.practitioners import apl_by_commune, count_practitioners, read_apl, read_rpps

from .conftest import CRS, FIXTURES, PROFESSIONS, set_input_files

RPPS = FIXTURES / "PS_LibreAcces_Personne_activite_202410010000-extrait.txt"


@pytest.fixture(scope="module")
def aude_counts(raw, repo_settings):
    postal = postal_lookup(raw.cog)
    aude = build_communes(raw, Scope.parse("dep:11"), **CRS)[0]
    rows, how = read_rpps(RPPS)
    assert how == "UTF-8"
    return count_practitioners(
        rows,
        professions=PROFESSIONS,
        gp_savoir_faire=["SM54", "SM53"],
        lookup=single_unit(code_lookup(raw.communes, raw.cog)),
        postal=postal,
        scope_codes=set(aude["code_commune"]),
    )


def test_each_professional_counted_once_per_commune(aude_counts):
    counts, unmatched, report = aude_counts
    gp = counts["medecin_generaliste"]
    # ALPHA: two sites in Carcassonne (once) and one in Lézignan; the cardiologist is not a GP
    assert gp["11069"] == 1 and gp["11203"] == 1 and gp["11190"] == 1
    assert gp["11145"] == 1, "cedex site placed by a postal code of a single commune"
    assert gp["11251"] == 1, "former commune 11298 (Pradelles-en-Val) mapped to 11251"
    assert gp.sum() == 5
    assert (
        counts.loc["11069", "infirmier"] == 2
        and counts.loc["11203", "masseur_kinesitherapeute"] == 1
    )
    assert (
        counts.loc["11069", "pharmacien"] == 1 and counts.loc["11190", "chirurgien_dentiste"] == 1
    )
    assert counts.loc["11069", "sage_femme"] == 1
    assert report["professionnels_comptes"] == 10
    reasons = dict(zip(unmatched["identification"], unmatched["motif"]))
    assert reasons == {
        "810000000004": "code postal partagé par plusieurs communes",
        "810000000005": "hors de France",
        "810000000014": "code commune inconnu",
    }


def test_e2sfca_against_hand_computation():
    # three communes on a line: A at 0 km, B at 5 km, C at 13 km; 2 GPs in A
    squares = [shapely.box(x - 100, -100, x + 100, 100) for x in (700_000, 705_000, 713_000)]
    frame = gpd.GeoDataFrame(
        {"population": [1000, 2000, 3000], "epsg": 2154}, geometry=squares, crs=2154
    )
    bands, weights = [7.0, 10.5, 14.0], [1.0, 0.6667, 0.3333]
    got = e2sfca(frame, np.array([2, 0, 0]), bands_km=bands, weights=weights)
    # step 1: R_A = 2 / (1*1000 + 1*2000 + w(13 km)*3000); step 2: A_i = w(d_iA) * R_A
    r_a = 2 / (1000 + 2000 + 0.3333 * 3000)
    expected = np.array([1.0 * r_a, 1.0 * r_a, 0.3333 * r_a]) * 10_000
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    assert list(band_weights(np.array([0, 7, 7.01, 10.5, 14, 14.01]), bands, weights)) == [
        1,
        1,
        0.6667,
        0.6667,
        0.3333,
        0,
    ]


def apl_workbook(path, *, header_suffix=" ", extra_rows=()):
    """A DREES APL workbook in the published layout: 'Lisez-moi', one sheet per vintage, title rows,
    header on row 9, units row, communes (made-up values)."""
    book = openpyxl.Workbook()
    book.active.title = "Lisez-moi"
    book["Lisez-moi"]["A1"] = (
        "Indicateur d'accessibilité potentielle localisée (APL) aux médecins généralistes"
    )
    for year, values in (
        ("2022", {"11069": 3.1}),
        (
            "2023",
            {"11069": 2.9, "11190": "2,1", "11203": 3.4, "75101": 4.0, "75102": 2.0, "99999": 1.0},
        ),
    ):
        sheet = book.create_sheet(f"APL {year}")
        sheet["A1"] = "Accessibilité potentielle localisée (APL) aux médecins généralistes"
        sheet["A3"] = f"Millésime {year}"
        sheet["A5"] = (
            "Sources : SNIIR-AM, EGB, CNAM ; populations Insee ; distancier Metric ; calculs DREES"
        )
        headers = [
            "Code commune INSEE",
            "Commune",
            "APL aux médecins généralistes" + header_suffix,
            "APL aux médecins généralistes de 65 ans ou moins",
            "APL aux médecins généralistes de 62 ans ou moins",
            "APL aux médecins généralistes de 60 ans ou moins",
            f"Population standardisée {year} pour la médecine générale",
            f"Population totale {year} ",
        ]
        for k, h in enumerate(headers, start=1):
            sheet.cell(row=9, column=k, value=h)
        sheet.cell(
            row=10, column=3, value="Consultations/visites accessibles par habitant standardisé"
        )
        for r, (code, value) in enumerate([*values.items(), *extra_rows], start=11):
            for k, v in enumerate(
                [
                    code,
                    f"Commune {code}",
                    value,
                    value,
                    value,
                    value,
                    1000,
                    2000 if code == "75101" else 1000,
                ],
                start=1,
            ):
                sheet.cell(row=r, column=k, value=v)
    book.save(path)
    return path


def test_apl_latest_sheet_header_units_and_decimal_comma(tmp_path, raw):
    table, sheet = read_apl(apl_workbook(tmp_path / "apl.xlsx"))
    assert sheet == "APL 2023"
    values = dict(zip(table["code_commune"], table["apl"]))
    assert values["11190"] == 2.1 and values["11069"] == 2.9 and len(table) == 6
    by_commune, unknown = apl_by_commune(table, single_unit(code_lookup(raw.communes, raw.cog)))
    assert unknown == ["99999"]
    # Paris is covered by arrondissement: each keeps its own APL
    assert by_commune["75101"] == 4.0 and by_commune["75102"] == 2.0 and "75056" not in by_commune
    older, _ = read_apl(tmp_path / "apl.xlsx", sheet="APL 2022")
    assert dict(zip(older["code_commune"], older["apl"])) == {"11069": 3.1}


def test_apl_bad_values_and_headers(tmp_path):
    with pytest.raises(ValidationError, match="row .*: APL value 'n.d.' is not a number"):
        read_apl(apl_workbook(tmp_path / "bad.xlsx", extra_rows=[("11001", "n.d.")]))
    book = openpyxl.Workbook()
    book.active["A1"] = "Code commune"
    book.save(tmp_path / "nohdr.xlsx")
    with pytest.raises(PipelineError, match="no data sheet|no header cell 'Code commune INSEE'"):
        read_apl(tmp_path / "nohdr.xlsx")


def test_apl_hidden_sheet_is_skipped_and_said_unless_named(tmp_path):
    # A workbook as people pass it on: a later vintage kept as a hidden draft sheet. The latest
    # visible vintage is read and the skipped sheet is said; naming it reads it.
    path = apl_workbook(tmp_path / "apl.xlsx")
    book = openpyxl.load_workbook(path)
    draft = book.copy_worksheet(book["APL 2023"])
    draft.title = "APL 2024 brouillon"
    draft["C11"] = 99.0
    draft.sheet_state = "hidden"
    book.save(path)
    notes = []
    table, sheet = read_apl(path, notes=notes)
    assert sheet == "APL 2023" and 99.0 not in set(table["apl"])
    assert [code for _, code, _ in notes] == ["feuille_masquee"]
    assert "APL 2024 brouillon" in notes[0][2]
    named, sheet = read_apl(path, sheet="APL 2024 brouillon")
    assert (
        sheet == "APL 2024 brouillon"
        and dict(zip(named["code_commune"], named["apl"]))["11069"] == 99.0
    )


def test_apl_bad_value_names_its_row_in_the_sheet(tmp_path):
    # communes start on row 11 under the title rows, the header (row 9) and the units row
    path = apl_workbook(tmp_path / "bad.xlsx", extra_rows=[("11001", "n.d.")])
    with pytest.raises(ValidationError, match=r"sheet 'APL 2023' row 17: APL value 'n.d.'"):
        read_apl(path)


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda t: t.replace("|", ";"), r"not '\|'-separated \(it looks ';'-separated\)"),
        (
            lambda t: t.replace("Code commune (coord. structure)", "Commune"),
            "missing column.*Code commune",
        ),
        (lambda t: "", "file is empty"),
        (lambda t: t.split("\n")[0] + "\n", "header but no rows"),
    ],
)
def test_malformed_rpps_files(tmp_path, mutate, message):
    path = tmp_path / "rpps.txt"
    path.write_text(mutate(RPPS.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(PipelineError, match=message):
        read_rpps(path)


def test_latin1_rpps_is_read_correctly(tmp_path):
    path = tmp_path / "rpps.txt"
    path.write_bytes(RPPS.read_text(encoding="utf-8").encode("cp1252"))
    rows, how = read_rpps(path)
    original, _ = read_rpps(RPPS)
    assert how == "latin-1 (converted)" and rows.equals(original)


def test_indicators_flow_into_territories_maps_and_reports(config_factory, tmp_path):
    config = config_factory("dep:11")
    apl = apl_workbook(tmp_path / "apl.xlsx")
    set_input_files(config, rpps=RPPS, apl=apl)
    settings = load_settings(config)
    stages.run_until(settings, "export")
    ind = pd.read_parquet(stages.indicator_paths(settings)["indicators"]).set_index("code_commune")
    assert (
        ind.loc["11069", "n_medecin_generaliste"] == 1 and ind["n_medecin_generaliste"].sum() == 5
    )
    assert ind.loc["11069", "densite_medecin_generaliste_10k"] == pytest.approx(
        1 / ind.loc["11069", "population"] * 1e4
    )
    assert (
        ind.loc["11190", "sous_dotee"] and not ind.loc["11203", "sous_dotee"]
    )  # APL 2.1 < 2.5 <= 3.4
    assert ind["e2sfca_mg_10k"].notna().all() and ind.loc["11069", "e2sfca_mg_10k"] > 0
    territories = gpd.read_parquet(stages.territory_paths(settings)["territories"])
    assert territories["n_medecin_generaliste"].notna().all()
    existing = territories[territories["type_territoire"] == "cpts_existante"]
    assert existing["n_medecin_generaliste"].sum() >= 1
    page = stages.export_paths(settings)["map"].read_text(encoding="utf-8")
    assert "Accessibilité aux médecins généralistes (E2SFCA" in page
    zone = sorted(stages.export_paths(settings)["zones"].glob("*.html"))[0].read_text(
        encoding="utf-8"
    )
    assert "Offre de soins" in zone and "indisponible (aucun fichier" not in zone
    summary = json.loads(stages.indicator_paths(settings)["summary"].read_text())
    assert summary["rpps"]["professionnels_comptes"] == 10 and summary["apl"]["codes_inconnus"] == [
        "99999"
    ]


def test_without_practitioner_file_indicators_are_missing_not_zero(config_factory):
    settings = load_settings(config_factory("dep:11"))
    stages.run(settings, "communes")
    stages.run(settings, "indicators")
    ind = pd.read_parquet(stages.indicator_paths(settings)["indicators"])
    assert ind["n_medecin_generaliste"].isna().all() and ind["e2sfca_mg_10k"].isna().all()
    assert ind["sous_dotee"].isna().all()
