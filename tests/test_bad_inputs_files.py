"""Bad inputs, part 4 (issue 22): workbooks and GIS files as people save them, on real communes.

Merged cells, hidden sheets and dates as day numbers are read (and said); formulas without saved
values, a password, a damaged sheet, a workbook inflating to gigabytes, mixed separators and an
empty layer are refused with one line saying what to do; a GeoJSON mixing polygons with points,
lines and collections keeps its polygons and reports the rest; malformed IRIS codes are errors;
arrondissements are resolved as CPTS publish them.
"""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import openpyxl
import pytest
import shapely

from pipeline.sources import rawdata
from tests.conftest import CRS, import_table
from tests.test_bad_inputs import (
    Context,
    assert_one_clear_line,
    build_good_run,
    case,
    check_case,
    output_hashes,
    perimeter_table,
    run_bad,
    set_input,
)

HEADER = ["cpts_id", "cpts_nom", "code_commune", "date_signature"]
MENDE = [("A", "CPTS Cœur de Lozère", "48095"), ("A", None, "48017"), ("A", None, "48061")]


@pytest.fixture(scope="module")
def good_run(tmp_path_factory, raw):
    """The good run of this module (:func:`tests.test_bad_inputs.build_good_run`)."""
    return build_good_run(tmp_path_factory)


def workbook(path: Path, rows, *, merge=(), hidden: list | None = None) -> Path:
    """An .xlsx perimeter table as openpyxl (like many tools) writes it."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "CPTS"
    sheet.append(HEADER)
    for row in rows:
        sheet.append(list(row))
    for cells in merge:
        sheet.merge_cells(cells)
    if hidden:
        old = book.create_sheet("Ancien périmètre")
        old.append(HEADER)
        for row in hidden:
            old.append(list(row))
        old.sheet_state = "hidden"
    book.save(path)
    return path


def members_of(raw, ref, path, scope="departements:48"):
    from pipeline.analysis.communes import build_communes
    from pipeline.config import Scope

    communes = build_communes(raw, Scope.parse(scope), **CRS)[0]
    return import_table(ref, communes, path)


# ---------------------------------------- read, and said


def test_merged_cells_are_filled_down_and_said(raw, ref, tmp_path):
    path = workbook(tmp_path / "cpts.xlsx", MENDE, merge=["B2:B4"])
    result = members_of(raw, ref, path)
    members = result["members"]
    assert sorted(members["code_commune"]) == ["48017", "48061", "48095"], "no row lost"
    assert set(members["cpts_nom"]) == {"CPTS Cœur de Lozère"}
    notes = result["issues"]["message"].tolist()
    assert (
        "cpts.xlsx, feuille « CPTS » : 1 plage(s) de cellules fusionnées (B2:B4) remplie(s) avec "
        "leur première valeur" in notes
    )


def test_hidden_sheets_are_skipped_and_said(raw, ref, tmp_path):
    path = workbook(
        tmp_path / "cpts.xlsx", [("A", "CPTS A", "48095")], hidden=[("B", "CPTS B", "48017")]
    )
    result = members_of(raw, ref, path)
    assert result["members"]["code_commune"].tolist() == ["48095"]
    assert (
        "cpts.xlsx : feuille masquée « Ancien périmètre » ignorée (la nommer dans les réglages "
        "pour la lire)" in result["issues"]["message"].tolist()
    )
    sheets = rawdata.read_workbook_rows(
        path, what="perimeter file", setting="[perimeters] file", include=("Ancien périmètre",)
    )
    assert [name for name, _ in sheets] == ["CPTS", "Ancien périmètre"], "read when named"


def test_dates_saved_as_day_numbers_are_dates(raw, ref, tmp_path):
    path = workbook(tmp_path / "cpts.xlsx", [("A", "CPTS A", "48095", 44927)])
    members = members_of(raw, ref, path)["members"]
    assert members["date_signature"].tolist() == ["2023-01-01"]
    assert rawdata.excel_date("12") == "12" and rawdata.excel_date("2023-01-01") == "2023-01-01"


def geojson_mixed(ctx: Context) -> Path:
    """Two real Lozère EPCIs as CPTS: one a polygon, one a collection of its polygon with a point
    and a line; plus a point and a line feature."""
    import geopandas as gpd

    from pipeline import stages
    from pipeline.config import load_settings

    communes = gpd.read_parquet(stages.communes_path(load_settings(ctx.good))).to_crs(4326)
    groups = communes.dissolve("code_epci").reset_index().head(2).geometry.to_numpy()
    point, line = shapely.Point(3.5, 44.5), shapely.LineString([(3.4, 44.4), (3.6, 44.6)])
    geoms = [groups[0], shapely.GeometryCollection([groups[1], point, line]), point, line]
    features = [
        {
            "type": "Feature",
            "properties": {"cpts_id": cid, "cpts_nom": f"CPTS {cid}"},
            "geometry": shapely.geometry.mapping(g),
        }
        for cid, g in zip(["A", "B", "P", "L"], geoms)
    ]
    path = ctx.folder / "perimetres.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def test_geojson_mixing_geometries_keeps_the_polygons(good_run, tmp_path, capsys):
    from pipeline import io, stages
    from pipeline.config import load_settings, write_settings_copy

    config = write_settings_copy(good_run, tmp_path / "own", scope="departements:48")
    ctx = Context(tmp_path, good_run)
    config.write_text(set_input("file", geojson_mixed)(config.read_text(encoding="utf-8"), ctx))
    status, printed = run_bad(config, ["diagnose"], capsys)
    assert status == 0, printed
    paths = stages.perimeter_paths(load_settings(config))
    members = io.read_csv(paths["members"])
    assert set(members["cpts_id"]) == {"A", "B"}
    issues = io.read_csv(paths["issues"])
    messages = dict(zip(issues["message"], issues["niveau"]))
    kept = " : ses polygones sont gardés, ses points et lignes laissés de côté"
    refused = ", pas un polygone ; dessiner le périmètre comme une surface ou supprimer l'objet"
    found = {(m, n) for m, n in messages.items()}
    assert (
        f"perimetres.geojson, objet 2 : un objet GeometryCollection{kept}",
        "avertissement",
    ) in found
    assert (f"perimetres.geojson, objet 3 : un objet Point{refused}", "erreur") in found
    assert (f"perimetres.geojson, objet 4 : un objet LineString{refused}", "erreur") in found
    codes = dict(zip(issues["source_ligne"].astype(str), issues["code"]))
    assert codes["2"] == "polygones_gardes" and codes["3"] == codes["4"] == "pas_un_polygone"


def test_malformed_iris_codes_are_errors(raw, ref, tmp_path):
    path = tmp_path / "cpts.csv"
    path.write_text(
        "cpts_id;cpts_nom;code_commune;code_iris\n"
        "A;CPTS A;48095;480950101\n"
        'A;CPTS A;48061;"4806101 480170101"\n',
        encoding="utf-8",
    )
    result = members_of(raw, ref, path)
    errors = result["issues"].query("niveau == 'erreur'")["message"].tolist()
    assert errors == [
        "cpts.csv, ligne 3 : code(s) IRIS 480170101, 4806101 mal formé(s) ou d'une autre commune "
        "que 48061 : un code IRIS est le code de la commune suivi de 4 chiffres (p. ex. "
        "480610101) ; corriger le ou les codes ou vider la cellule"
    ]
    assert result["issues"].query("niveau == 'erreur'")["code"].tolist() == ["iris_mal_forme"]
    iris = dict(zip(result["members"]["code_commune"], result["members"]["code_iris"]))
    assert iris == {"48095": "480950101", "48061": ""}


@pytest.mark.parametrize(
    "published, code",
    [
        ("13e arrondissement de Paris", "75113"),
        ("3ᵉ arrondissement de Lyon", "69383"),
        ("5ème arrondissement de Lyon", "69385"),
        ("1er arrondissement de Marseille", "13201"),
    ],
)
def test_arrondissements_as_cpts_publish_them(raw, ref, tmp_path, published, code):
    path = tmp_path / "cpts.csv"
    path.write_text(f"cpts_id;cpts_nom;commune\nA;CPTS A;{published}\n", encoding="utf-8")
    scope = {"75": "departements:75", "69": "departements:69", "13": "departements:13"}[code[:2]]
    result = members_of(raw, ref, path, scope=scope)
    assert result["members"]["code_commune"].tolist() == [code]
    assert result["issues"].query("niveau == 'erreur'").empty


# ---------------------------------------- refused with one line


def formulas_without_values(ctx: Context) -> Path:
    return workbook(ctx.folder / "cpts.xlsx", [("A", "CPTS A", '="48"&"095"')])


def encrypted_workbook(ctx: Context) -> Path:
    """The container Excel writes for a password-protected workbook: an OLE2 compound file
    holding the streams EncryptionInfo and EncryptedPackage (the encrypted .xlsx)."""
    header = bytearray(512)
    header[:8] = bytes.fromhex("d0cf11e0a1b11ae1")
    struct.pack_into("<HHH", header, 24, 0x3E, 3, 0xFFFE)  # version 3, little-endian
    struct.pack_into("<H", header, 30, 9)  # 512-byte sectors
    directory = bytearray()
    for name, kind in (("Root Entry", 5), ("EncryptionInfo", 2), ("EncryptedPackage", 2)):
        entry = bytearray(128)
        encoded = (name + "\0").encode("utf-16-le")
        entry[: len(encoded)] = encoded
        struct.pack_into("<HB", entry, 64, len(encoded), kind)
        directory += entry
    path = ctx.folder / "cpts.xlsx"
    path.write_bytes(bytes(header) + bytes(directory) + bytes(512 - len(directory) % 512))
    return path


def damaged_sheet(ctx: Context) -> Path:
    good = workbook(ctx.folder / "source.xlsx", [("A", "CPTS A", "48095")])
    path = ctx.folder / "cpts.xlsx"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(path, "w") as out:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = data[: len(data) // 2]  # cut in the middle, as a failed copy does
            out.writestr(info, data)
    return path


def empty_collection(ctx: Context) -> Path:
    path = ctx.folder / "perimetres.geojson"
    path.write_text('{"type": "FeatureCollection", "features": []}', encoding="utf-8")
    return path


CASES = [
    case(
        "formulas without saved values",
        set_input("file", formulas_without_values),
        r"cpts\.xlsx sheet 'CPTS': cell C2 holds the formula '=\"48\"&\"095\"' without its saved "
        "value .*; open and save the file in Excel or LibreOffice, then run again",
    ),
    case(
        "password-protected workbook",
        set_input("file", encrypted_workbook),
        r"cpts\.xlsx: this workbook is password-protected \(encrypted\); open it in Excel or "
        "LibreOffice, remove the password",
    ),
    case(
        "damaged sheet",
        set_input("file", damaged_sheet),
        r"cpts\.xlsx: a part of this workbook is damaged \(.*\); open and save the file in Excel",
    ),
    case(
        "mixed separators",
        set_input(
            "file",
            perimeter_table("cpts_id;cpts_nom,code_commune\nA;CPTS A,48095\nA;CPTS A;48061\n"),
        ),
        r"cpts\.csv: no header row .*\(first row, 2 cell\(s\): 'cpts_id;cpts_nom' \| "
        r"'code_commune'; its cells hold ';' too: the file mixes separators",
    ),
    case(
        "empty FeatureCollection",
        set_input("file", empty_collection),
        r"perimetres\.geojson: the layer read \(the file's first\) holds no feature \(an empty "
        r"FeatureCollection or layer\)",
    ),
]


@pytest.mark.parametrize("edit, code, pattern", CASES)
def test_bad_file_one_line_and_outputs_intact(good_run, tmp_path, capsys, edit, code, pattern):
    check_case(good_run, tmp_path, capsys, edit, code, pattern)


def test_a_workbook_inflating_too_far_is_refused_before_parsing(
    good_run, tmp_path, capsys, monkeypatch
):
    """A sheet padded with empty formatted rows (here 8 MB of them, the limit lowered to 4 MB)
    is refused from the zip's declared sizes, before openpyxl reads anything."""
    path = workbook(tmp_path / "cpts.xlsx", [("A", "CPTS A", "48095")])
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as book:
        book.writestr("xl/media/padding.bin", bytes(8 * 1024 * 1024))
    monkeypatch.setattr(rawdata, "MAX_UNPACKED", 4 * 1024 * 1024)
    monkeypatch.setattr(openpyxl, "load_workbook", lambda *a, **k: pytest.fail("parsed"))
    before = output_hashes(good_run)
    config = tmp_path / "pipeline.toml"
    config.write_text(
        good_run.read_text(encoding="utf-8").replace('file = ""', f'file = "{path}"', 1)
    )
    status, printed = run_bad(config, ["diagnose"], capsys)
    assert status == 2, printed
    assert_one_clear_line(
        printed,
        r"cpts\.xlsx: declares 8\.4 MB once unpacked \(0\.0 MB on disk\), far more than any table "
        "of communes: refused before opening it",
    )
    assert output_hashes(good_run) == before
