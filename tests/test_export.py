"""Export on real data: offline maps in headless Chromium, white-zone reports, GeoPackage,
notebook.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time

import geopandas as gpd
import nbformat
import pandas as pd
import pyogrio
import pytest
import shapely
from nbclient import NotebookClient

from pipeline import stages
from pipeline.config import load_settings
from pipeline.outputs.browser import count_polygons
from pipeline.progress import timing_table

from .conftest import REPO, write_config

ARTIFACTS = REPO / "tests" / "artifacts"


@pytest.fixture(scope="session")
def exported(tmp_path_factory, raw):
    """The whole pipeline on two real départements with the EXAMPLE perimeters."""
    settings = load_settings(write_config(tmp_path_factory.mktemp("export"), scope="dep:11,34"))
    stages.run_until(settings, "export")
    return settings


def output_hashes(settings) -> dict:
    """sha256 of every file the export writes (maps, reports, GeoPackage)."""
    paths = stages.export_paths(settings)
    files = [
        paths["map"],
        paths["gpkg"],
        paths["index"],
        *paths["departements"].iterdir(),
        *paths["zones"].iterdir(),
    ]
    return {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def test_maps_are_self_contained_and_deterministic(exported):
    paths = stages.export_paths(exported)
    page = paths["map"].read_text(encoding="utf-8")
    loads = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', page)
    assert loads == [], f"the map loads external resources: {loads}"
    assert "L.map(" in page and "EXEMPLE" in page and "Trouver une commune" in page
    vintage = "Population : population légale en vigueur en 2026 (INSEE, COG)"
    assert vintage in page and vintage in paths["index"].read_text(encoding="utf-8")
    assert all(vintage in p.read_text(encoding="utf-8") for p in paths["zones"].glob("*.html"))
    assert sorted(p.name for p in paths["departements"].iterdir()) == [
        "carte_11.html",
        "carte_34.html",
    ]
    first = output_hashes(exported)
    assert len(first) > 10
    time.sleep(1.1)  # anything stamping the time to the second would show
    stages.run(exported, "export", force=True)
    assert output_hashes(exported) == first


# ------------------------------------------------------------------ map data, decoded independently

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def decode_ints(text: str) -> list[int]:
    """The maps' number code (README): 5 bits per character, low bits first, bit 6 = more to come;
    zigzag sign."""
    out, value, shift = [], 0, 0
    for char in text:
        digit = ALPHABET.index(char)
        value |= (digit & 31) << shift
        shift += 5
        if not digit & 32:
            out.append(-(value + 1) // 2 if value & 1 else value // 2)
            value, shift = 0, 0
    return out


def decode_layer(geometry: dict) -> list:
    """Shapely (multi)polygons, one per feature, from a layer's encoded geometry."""
    steps, rings, polys, feats = (decode_ints(geometry[k]) for k in "crpf")
    scale, lat, lon, k, r, p, out = 10 ** geometry["d"], 0, 0, 0, 0, 0, []
    for n_polys in feats:
        polygons = []
        for _ in range(n_polys):
            shells = []
            for _ in range(polys[p]):
                ring = []
                for _ in range(rings[r]):
                    lat, lon = lat + steps[k], lon + steps[k + 1]
                    k += 2
                    ring.append((lon / scale, lat / scale))
                shells.append(ring)
                r += 1
            p += 1
            polygons.append(shapely.Polygon(shells[0], shells[1:]))
        out.append(shapely.MultiPolygon(polygons))
    assert k == len(steps), "every coordinate belongs to a ring"
    return out


def map_data(path) -> dict:
    text = path.read_text(encoding="utf-8")
    return json.loads(
        re.search(r"<script>var DATA = (.*?);</script>", text, re.S).group(1).replace("<\\/", "</")
    )


def test_map_geometry_matches_the_communes_without_gaps(exported):
    """The département map's communes, decoded with an independent decoder, match the real communes
    (the simplification moves borders by tens of metres, never whole communes), and the white-zone
    layer covers exactly the white-zone communes drawn: no gap, no sliver between neighbours."""
    data = map_data(stages.export_paths(exported)["departements"] / "carte_11.html")
    layers = {layer["code"]: layer for layer in data["layers"]}
    communes = layers["communes"]
    shapes = gpd.GeoSeries(decode_layer(communes["geometry"]), crs=4326).to_crs(2154)
    coverage = gpd.read_parquet(stages.coverage_paths(exported)["coverage"]).to_crs(2154)
    real = coverage[coverage["code_departement"] == "11"].set_index("code_commune")
    codes = communes["props"]["code_commune"]
    codes = codes if isinstance(codes, list) else [codes["v"][i] for i in decode_ints(codes["i"])]
    assert sorted(codes) == sorted(real.index)
    area = real.geometry.area.loc[codes].to_numpy()
    assert abs(shapes.area.to_numpy() - area).max() < 0.05 * area.max()
    assert abs(shapes.area.sum() / area.sum() - 1) < 1e-3
    zones = gpd.GeoSeries(decode_layer(layers["zones"]["geometry"]), crs=4326).to_crs(2154)
    white = shapes[(real.loc[codes, "statut"] == "zone_blanche").to_numpy()]
    assert abs(zones.area.sum() / white.area.sum() - 1) < 1e-4
    assert zones.union_all().symmetric_difference(white.union_all()).area < 1e-4 * white.area.sum()


def test_national_map_opens_on_metropolitan_france(tmp_path, raw):
    """A scope with a DROM opens on metropolitan France, the DROM in the go-to menu; département
    borders and names, and région borders, are drawn as a reference."""
    settings = load_settings(write_config(tmp_path, scope="dep:34,972"))
    stages.run_until(settings, "export")
    page = stages.export_paths(settings)["map"]
    data = map_data(page)
    label, (south, west, north, east) = data["views"][0]
    assert label == "France métropolitaine"
    assert 42 < south < north < 44.5 and 2 < west < east < 5  # Hérault, not the Atlantic
    assert [v[0] for v in data["views"][1:]] == ["Martinique (972)", "Hérault (34)"]
    assert 'id="cpts-goto"' in page.read_text(encoding="utf-8")
    departements, regions = data["reference"]  # two régions: their borders too
    assert sorted(label for _, _, label in departements["labels"]) == [
        "Hérault (34)",
        "Martinique (972)",
    ]
    assert (
        len(decode_layer(departements["geometry"])) == 2
        and len(decode_layer(regions["geometry"])) == 2
    )
    assert "stage times:" in timing_table() and "export" in timing_table()


def test_reports_index_pages_csv_xlsx(exported):
    paths = stages.export_paths(exported)
    zones = gpd.read_parquet(stages.coverage_paths(exported)["white_zones"])
    index = paths["index"].read_text(encoding="utf-8")
    for zone in zones["id_zone_blanche"]:
        assert f'href="zones_blanches/{zone}.html"' in index
        page = (paths["zones"] / f"{zone}.html").read_text(encoding="utf-8")
        assert "Action recommandée" in page and "<svg" in page and "EXEMPLE" in page
        assert "@media print" in page
        # as a French Excel opens it: ';', UTF-8 with BOM, French headers with units
        raw_csv = (paths["zones"] / f"{zone}.csv").read_bytes()
        assert raw_csv.startswith(b"\xef\xbb\xbfZone blanche;Code commune (INSEE);Nom;")
        table = pd.read_csv(
            paths["zones"] / f"{zone}.csv", dtype=str, sep=";", encoding="utf-8-sig"
        )
        assert int(table["Population (hab.)"].astype(int).sum()) == int(
            zones.set_index("id_zone_blanche").loc[zone, "population"]
        )
        sheets = pd.read_excel(paths["zones"] / f"{zone}.xlsx", sheet_name=None)
        assert list(sheets) == [
            "Communes",
            "CPTS limitrophes",
            "Territoires proposés",
            "Profil de la zone",
            "Priorité",
        ]
        assert len(sheets["Communes"]) == len(table)
        assert list(sheets["Communes"].columns) == list(table.columns)
        assert "Enveloppe annuelle max. (€)" in sheets["Territoires proposés"].columns
        # no practitioner file in this run: supply columns empty (not zero), pages say
        # "indisponible"
        assert table["Médecins généralistes (nombre)"].isna().all()
        assert (
            table["Accessibilité E2SFCA aux médecins généralistes (pour 10 000 hab.)"].isna().all()
        )
        assert "indisponible (aucun fichier de praticiens fourni)" in page
        # no profile file either: blank, never zero; the page names the files
        assert table["Part des 75 ans et plus (%)"].isna().all()
        assert table["Maisons de santé (nombre, FINESS)"].isna().all()
        assert "Ces données compléteraient la page" in page and "Rang" in page


def test_xlsx_widths_formats_and_headers_people_read(exported):
    import openpyxl

    paths = stages.export_paths(exported)
    territories = gpd.read_parquet(stages.territory_paths(exported)["territories"])
    widest = {}
    for xlsx in sorted(paths["zones"].glob("*.xlsx")):
        book = openpyxl.load_workbook(xlsx)
        proposals = book["Territoires proposés"]
        headers = {c.value: c.column_letter for c in proposals[1]}
        assert "Population (hab.)" in headers and "Compacité (Polsby-Popper, 1 = disque)" in headers
        names = [c.value for c in proposals[headers["Nom"]][1:]]
        if names:
            # as wide as its longest name (up to the cap), not Excel's 8.43
            width = proposals.column_dimensions[headers["Nom"]].width
            assert width >= min(max(map(len, names)), 60), (xlsx.name, width, names)
            widest[xlsx.name] = width
        population = proposals[headers["Population (hab.)"]][1:]
        assert all(c.number_format == "#,##0" for c in population)
        assert all(
            c.number_format == "#,##0 €"
            for c in proposals[headers["Enveloppe annuelle max. (€)"]][1:]
        )
        compactness = proposals[headers["Compacité (Polsby-Popper, 1 = disque)"]][1:]
        assert all(c.number_format == "0.00" for c in compactness)
        communes = book["Communes"]
        first = {c.value: c.column_letter for c in communes[1]}
        assert communes[f"{first['Population (hab.)']}2"].number_format == "#,##0"
        # the profile and priority sheets start with the labels people read, codes last
        profile, priority = book["Profil de la zone"], book["Priorité"]
        assert profile["A1"].value == "Indicateur" and priority["A1"].value == "Indicateur"
        assert profile.cell(1, profile.max_column).value == "Code de l'indicateur"
        notes = [c for c in priority["C"][1:] if c.value is not None]
        assert priority["C1"].value == "Note (0 à 1)" and all(
            c.number_format == "0.000" for c in notes
        )
    assert widest and max(widest.values()) > 20
    assert max(territories["nom"].str.len()) > 20


def test_geopackage_has_every_layer(exported):
    gpkg = stages.export_paths(exported)["gpkg"]
    layers = set(pyogrio.list_layers(gpkg)[:, 0]) - {"layer_styles"}  # QGIS's style table
    assert layers == {
        "communes_statut",
        "zones_blanches",
        "cpts",
        "chevauchements",
        "territoires",
    }
    territories = gpd.read_file(gpkg, layer="territoires")
    parquet = gpd.read_parquet(stages.territory_paths(exported)["territories"])
    assert territories["id_territoire"].tolist() == parquet["id_territoire"].tolist()
    for layer in layers:  # metropolitan: Lambert-93, every geometry valid
        frame = gpd.read_file(gpkg, layer=layer)
        assert frame.crs.to_epsg() == 2154, layer
        assert shapely.is_valid(frame.geometry.dropna().to_numpy()).all(), layer
    assert set(territories["type_territoire_libelle"]) >= {"CPTS existante", "candidat"}
    assert "cpts_existante" in set(territories["type_territoire"]) and "candidate" in set(
        territories["type_territoire"]
    )


def test_notebook_runs_on_the_outputs(exported):
    notebook = nbformat.read(REPO / "notebooks" / "walkthrough.ipynb", as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), (
        "store the notebook without outputs"
    )
    os.environ["CPTS_PROCESSED"] = str(exported.processed_dir)
    try:
        NotebookClient(
            notebook,
            timeout=300,
            kernel_name="python3",
            resources={"metadata": {"path": str(REPO / "notebooks")}},
        ).execute()
    finally:
        del os.environ["CPTS_PROCESSED"]
    assert (exported.processed_dir / "carte_statuts.png").stat().st_size > 10_000


# --------------------------------------------------------------------------- browser


def test_map_in_headless_chromium_offline(exported, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = stages.export_paths(exported)["map"]
    browser.get(page.as_uri())
    WebDriverWait(browser, 30).until(lambda d: count_polygons(d) > 0)
    assert browser.execute_script("return typeof L") == "object", "Leaflet is embedded"
    before = count_polygons(browser)
    browser.save_screenshot(str(ARTIFACTS / "map_overview.png"))

    # hover a polygon: its tooltip appears
    path = browser.find_elements(By.CSS_SELECTOR, "path.leaflet-interactive")[-1]
    ActionChains(browser).move_to_element(path).perform()
    tooltip = WebDriverWait(browser, 10).until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, ".leaflet-tooltip"))
    )
    assert tooltip.text.strip()
    browser.save_screenshot(str(ARTIFACTS / "map_tooltip.png"))

    # untick the white-zone layer: exactly its polygons disappear (the layers control unfolds
    # under the pointer)
    zones = gpd.read_parquet(stages.coverage_paths(exported)["white_zones"])
    control = browser.find_element(By.CSS_SELECTOR, ".leaflet-control-layers")
    ActionChains(browser).move_to_element(control).perform()
    label = next(
        el
        for el in browser.find_elements(By.CSS_SELECTOR, ".leaflet-control-layers-overlays label")
        if "Zones blanches" in el.text
    )
    label.find_element(By.TAG_NAME, "input").click()
    WebDriverWait(browser, 10).until(lambda d: count_polygons(d) < before)
    assert count_polygons(browser) == before - len(zones)
    browser.save_screenshot(str(ARTIFACTS / "map_layer_off.png"))
    label.find_element(By.TAG_NAME, "input").click()
    WebDriverWait(browser, 10).until(lambda d: count_polygons(d) == before)

    # département names as a reference; the go-to menu moves the view to one département
    labels = [el.text for el in browser.find_elements(By.CSS_SELECTOR, ".cpts-label")]
    assert sorted(labels) == ["Aude (11)", "Hérault (34)"]
    Select(browser.find_element(By.ID, "cpts-goto")).select_by_visible_text("Hérault (34)")
    WebDriverWait(browser, 10).until(
        lambda d: d.execute_script("return window.cptsMap.getCenter().lng > 3.0")
    )
    browser.save_screenshot(str(ARTIFACTS / "map_goto.png"))


def test_xlsx_reports_are_byte_identical_across_runs(tmp_path):
    import time
    import zipfile

    from pipeline.outputs.workbook import write_xlsx

    sheets = {"communes": pd.DataFrame({"code_commune": ["11190"], "population": [1187]})}
    write_xlsx(tmp_path / "a.xlsx", sheets)
    time.sleep(1.1)  # openpyxl stamps the save time to the second
    write_xlsx(tmp_path / "b.xlsx", sheets)
    assert (tmp_path / "a.xlsx").read_bytes() == (tmp_path / "b.xlsx").read_bytes()
    core = zipfile.ZipFile(tmp_path / "a.xlsx").read("docProps/core.xml").decode()
    assert core.count("2000-01-01T00:00:00Z") == 2
    assert pd.read_excel(tmp_path / "a.xlsx").to_dict("list") == {
        "Code commune (INSEE)": [11190],
        "Population (hab.)": [1187],
    }
