"""Perimeter import on real communes: tables as people export them, polygons, old codes, errors."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from pipeline.analysis.communes import build_communes
from pipeline.analysis.perimeters import read_perimeter_polygons, read_perimeter_table
from pipeline.config import Scope
from pipeline.errors import PipelineError

from .conftest import CRS, import_table, set_input_files


@pytest.fixture(scope="module")
def aude(raw):
    return build_communes(raw, Scope.parse("dep:11"), **CRS)[0]


def resolve(ref, communes, path):
    result = import_table(ref, communes, path)
    return result["members"], result["issues"], result["how"]


def test_latin1_semicolon_file_with_excel_codes_duplicates_and_unknown_codes(ref, aude, tmp_path):
    text = (
        "Identifiant CPTS;Nom CPTS;Code INSEE;Date signature\n"
        "C1;CPTS du Lézignanais;11203;2021-03-01\n"
        "C1;CPTS du Lézignanais;11190;2021-03-01\n"
        "C1;CPTS du Lézignanais;11190;2021-03-01\n"  # duplicate row
        "C2;CPTS Carcassonne Agglo;11069;\n"
        "C2;CPTS Carcassonne Agglo;99999;\n"  # unknown code
        "C2;CPTS Carcassonne Agglo;34172;\n"  # Montpellier: outside the scope
        "C2;CPTS Carcassonne Agglo;;\n"
    )  # blank code
    path = tmp_path / "perimetres.csv"
    path.write_bytes(text.encode("latin-1"))
    members, issues, how = resolve(ref, aude, path)
    assert how == "latin-1, separator ';'"
    assert members[["cpts_id", "code_commune"]].values.tolist() == [
        ["C1", "11190"],
        ["C1", "11203"],
        ["C2", "11069"],
    ]
    assert set(members["cpts_nom"]) == {"CPTS du Lézignanais", "CPTS Carcassonne Agglo"}
    by_code = issues.set_index("code")
    unknown = by_code.loc[["code_inconnu"]].iloc[0]
    assert (unknown["niveau"], unknown["source_ligne"], unknown["code_publie"]) == (
        "erreur",
        6,
        "99999",
    )
    assert "ligne 6 : code commune 99999 inconnu" in unknown["message"]
    empty = by_code.loc[["ligne_incomplete"]].iloc[0]
    assert empty["source_ligne"] == 8 and "compléter ou supprimer la ligne" in empty["message"]
    outside = by_code.loc[["hors_champ"]].iloc[0]
    assert outside["cpts_id"] == "C2" and "34172" in outside["message"]
    assert "la CPTS C2 cite 1 commune(s) hors du périmètre" in outside["message"]
    twice = by_code.loc[["doublon"]].iloc[0]
    assert "citée deux fois" in twice["message"]
    # the code as published (the row's own text), not the commune it was mapped to
    assert set(issues["code_publie"]) <= set(text.replace(";", "\n").split()) | {""}


def test_old_vintage_code_is_mapped_to_its_merged_commune(raw, ref, tmp_path):
    aveyron = build_communes(raw, Scope.parse("dep:12"), **CRS)[0]
    com = raw.communes
    parent = com.loc[(com["code"] == "12218") & (com["type"] == "COM"), "id"].item()
    old_codes = sorted(set(com.loc[(com["commune_parent_id"] == parent), "code"]) - {"12218"})
    assert old_codes, "Conques-en-Rouergue has former communes in the data"
    path = tmp_path / "p.csv"
    path.write_text(
        "cpts_id,cpts_nom,code_commune\n" + "".join(f"X,CPTS X,{c}\n" for c in old_codes),
        encoding="utf-8",
    )
    members, issues, _ = resolve(ref, aveyron, path)
    assert members["code_commune"].tolist() == ["12218"]
    info = issues[issues["cpts_id"] == "X"]
    assert (
        len(info) == len(old_codes) - 1 + len(old_codes)
        and info["message"].str.contains("12218").all()
    )


def test_xlsx_with_codes_that_lost_their_leading_zero(raw, ref, tmp_path):
    ariege = build_communes(raw, Scope.parse("dep:09"), **CRS)[0]
    path = tmp_path / "p.xlsx"
    pd.DataFrame({"id": ["A", "A"], "nom": ["CPTS A", "CPTS A"], "insee": [9001, 9225]}).to_excel(
        path, index=False
    )
    members, issues, how = resolve(ref, ariege, path)
    assert members["code_commune"].tolist() == ["09001", "09225"] and how.startswith("xlsx")
    assert issues["niveau"].isin(["erreur", "avertissement"]).sum() == 0


@pytest.mark.parametrize(
    "content,message",
    [
        (b"", "file is empty"),
        (b"cpts_id,date\nA,11190\n", "no header row naming a CPTS column .* and a commune column"),
        (
            b"cpts_id,cpts_nom,date\nA,B,2021\n",
            "no header row naming a CPTS column .* and a commune column",
        ),
        (b"cpts_id,cpts_nom,code_commune\n", "header but no rows"),
    ],
)
def test_bad_tables_get_clear_errors(tmp_path, content, message):
    path = tmp_path / "p.csv"
    path.write_bytes(content)
    with pytest.raises(PipelineError, match=f"p.csv: .*{message}"):
        read_perimeter_table(path)


def polygons_file(tmp_path, geoms, crs, name="p.gpkg"):
    frame = gpd.GeoDataFrame(
        {
            "cpts_id": [f"P{k}" for k in range(len(geoms))],
            "cpts_nom": [f"CPTS P{k}" for k in range(len(geoms))],
        },
        geometry=geoms,
        crs=crs,
    )
    path = tmp_path / name
    frame.to_file(path)
    return path


def test_polygon_membership_by_area_share_in_another_crs(aude, tmp_path):
    g = aude.set_index("code_commune").geometry
    core = ["11069", "11190", "11203"]
    # the three communes, shrunk by 200 m, plus 30 % of a neighbour's area: only the three belong
    part = g["11262"].intersection(
        g["11262"].centroid.buffer((0.3 * g["11262"].area / 3.1416) ** 0.5)
    )
    assert 0 < part.area < 0.5 * g["11262"].area
    polygon = shapely.union_all([g[c].buffer(-200) for c in core] + [part])
    path = polygons_file(
        tmp_path, gpd.GeoSeries([polygon], crs=2154).to_crs(4326).to_numpy(), 4326, "p.geojson"
    )
    members, issues = read_perimeter_polygons(path, aude, min_area_share=0.5)
    assert members["code_commune"].tolist() == core and issues.empty
    assert members["correspondance"].str.startswith("polygone").all()


def test_invalid_polygon_is_repaired_and_reported(aude, tmp_path):
    x, y = aude.set_index("code_commune").geometry["11190"].centroid.coords[0]
    bowtie = shapely.Polygon(
        [(x - 3000, y - 3000), (x + 3000, y + 3000), (x + 3000, y - 3000), (x - 3000, y + 3000)]
    )
    members, issues = read_perimeter_polygons(
        polygons_file(tmp_path, [bowtie], 2154), aude, min_area_share=0.01
    )
    assert "11190" in set(members["code_commune"])
    repaired = issues[issues["code"] == "polygone_invalide"]
    assert repaired["message"].str.contains("polygone invalide .* réparé").all() and len(repaired)


def test_wrong_or_missing_crs(aude, tmp_path):
    polygon = aude.geometry.iloc[0]
    lonlat = gpd.GeoSeries([polygon], crs=2154).to_crs(4326).iloc[0]
    # lon/lat coordinates declared as Lambert-93 (a polygon a few metres wide near the origin):
    # refused
    with pytest.raises(
        PipelineError, match=r"p\.gpkg: every coordinate lies within .*look like longitude/latitude"
    ):
        read_perimeter_polygons(polygons_file(tmp_path, [lonlat], 2154), aude, min_area_share=0.5)
    nocrs = tmp_path / "nocrs.gpkg"
    with pytest.warns(UserWarning, match="'crs' was not provided"):
        gpd.GeoDataFrame({"cpts_id": ["A"], "cpts_nom": ["A"]}, geometry=[polygon]).to_file(nocrs)
    with pytest.raises(PipelineError, match="nocrs.gpkg: has no CRS"):
        read_perimeter_polygons(nocrs, aude, min_area_share=0.5)


def test_stage_reads_a_given_file_and_reports_unmatched_rows(config_factory, tmp_path):
    from pipeline import stages
    from pipeline.config import load_settings

    perimeter = tmp_path / "mes_cpts.csv"
    perimeter.write_text(
        "cpts_id;cpts_nom;code_commune\nA;CPTS A;11190\nA;CPTS A;11203\nA;CPTS A;11999\n",
        encoding="utf-8",
    )
    config = config_factory("dep:11")
    set_input_files(config, file=perimeter)
    settings = load_settings(config)
    stages.run_until(settings, "perimeters")
    paths = stages.perimeter_paths(settings)
    assert not paths["example"].exists()
    # read as written, whether by the machine writer or the French one (";", BOM)
    issues = pd.read_csv(
        paths["issues"], dtype=str, sep=None, engine="python", encoding="utf-8-sig"
    )
    assert issues.loc[issues["niveau"] == "erreur", "code_publie"].tolist() == ["11999"]
    assert issues.loc[issues["niveau"] == "erreur", "code"].tolist() == ["code_inconnu"]
    assert pd.read_csv(paths["members"], dtype=str)["code_commune"].tolist() == ["11190", "11203"]
    stages.run(settings, "coverage")
    cpts = gpd.read_parquet(stages.coverage_paths(settings)["cpts"])
    assert cpts["exemple"].tolist() == [False] and cpts["n_communes"].tolist() == [2]


def test_issues_as_a_french_spreadsheet_opens_them(ref, aude, tmp_path):
    """The one writer of the files people open: BOM, ';', CRLF, decimal comma; the issues of a real
    file come back unchanged, messages with their ';' and quotes intact."""
    from pipeline.io import write_csv_fr

    path = tmp_path / "p.csv"
    path.write_text(
        "cpts_id;cpts_nom;code_commune\nA;CPTS « A »;11069\nA;CPTS B;11069\nA;CPTS A;11999\n",
        encoding="utf-8",
    )
    _, issues, _ = resolve(ref, aude, path)
    target = write_csv_fr(tmp_path / "issues.csv", issues.assign(part=0.25))
    data = target.read_bytes()
    assert data.startswith(b"\xef\xbb\xbfniveau;code;cpts_id;") and b"\r\n" in data
    assert b"\n" not in data.replace(b"\r\n", b"")
    back = pd.read_csv(target, sep=";", encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert back["message"].tolist() == issues["message"].tolist()
    assert set(back["part"]) == {"0,25"}
    assert {"noms_multiples", "code_inconnu"} <= set(back["code"])
