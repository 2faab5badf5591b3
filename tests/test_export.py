"""Export on real data: offline maps in headless Chromium, white-zone reports, GeoPackage, notebook."""

from __future__ import annotations

import os
import re

import geopandas as gpd
import nbformat
import pandas as pd
import pyogrio
import pytest
from nbclient import NotebookClient

from pipeline import stages
from pipeline.browser import chromium_paths, count_polygons, offline_chromium
from pipeline.config import load_settings

from .conftest import REPO, write_config

ARTIFACTS = REPO / "tests" / "artifacts"


@pytest.fixture(scope="session")
def exported(tmp_path_factory, raw):
    """The whole pipeline on two real départements with the EXAMPLE perimeters."""
    settings = load_settings(write_config(tmp_path_factory.mktemp("export"), scope="dep:11,34"))
    stages.run_until(settings, "export")
    return settings


def test_maps_are_self_contained_and_deterministic(exported):
    paths = stages.export_paths(exported)
    page = paths["map"].read_text(encoding="utf-8")
    loads = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', page)
    assert loads == [], f"the map loads external resources: {loads}"
    assert "L.map(" in page and "EXEMPLE" in page and "Trouver une commune" in page
    assert sorted(p.name for p in paths["departements"].iterdir()) == ["carte_11.html", "carte_34.html"]
    first = page.encode()
    stages.run(exported, "export", force=True)
    assert paths["map"].read_bytes() == first


def test_reports_index_pages_csv_xlsx(exported):
    paths = stages.export_paths(exported)
    zones = gpd.read_parquet(stages.coverage_paths(exported)["white_zones"])
    index = paths["index"].read_text(encoding="utf-8")
    for zone in zones["patch_id"]:
        assert f'href="zones_blanches/{zone}.html"' in index
        page = (paths["zones"] / f"{zone}.html").read_text(encoding="utf-8")
        assert "Action recommandée" in page and "<svg" in page and "EXEMPLE" in page
        assert "@media print" in page
        table = pd.read_csv(paths["zones"] / f"{zone}.csv", dtype=str)
        assert int(table["population"].astype(int).sum()) == int(zones.set_index("patch_id").loc[zone, "population"])
        sheets = pd.read_excel(paths["zones"] / f"{zone}.xlsx", sheet_name=None)
        assert set(sheets) == {"communes", "cpts_limitrophes", "territoires_proposes"}
        assert len(sheets["communes"]) == len(table)
        # no practitioner file in this run: supply columns empty (not zero), pages say "indisponible"
        assert table["n_medecin_generaliste"].isna().all() and table["e2sfca_mg_10k"].isna().all()
        assert "indisponible (aucun fichier de praticiens fourni)" in page


def test_geopackage_has_every_layer(exported):
    gpkg = stages.export_paths(exported)["gpkg"]
    layers = set(pyogrio.list_layers(gpkg)[:, 0])
    assert layers == {"communes_statut", "zones_blanches", "cpts", "chevauchements", "territoires"}
    territories = gpd.read_file(gpkg, layer="territoires")
    parquet = gpd.read_parquet(stages.territory_paths(exported)["territories"])
    assert territories["territory_id"].tolist() == parquet["territory_id"].tolist()
    assert "cpts_existante" in set(territories["kind"]) and "candidate" in set(territories["kind"])


def test_notebook_runs_on_the_outputs(exported):
    notebook = nbformat.read(REPO / "notebooks" / "walkthrough.ipynb", as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), \
        "store the notebook without outputs"
    os.environ["CPTS_PROCESSED"] = str(exported.processed_dir)
    try:
        NotebookClient(notebook, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(REPO / "notebooks")}}).execute()
    finally:
        del os.environ["CPTS_PROCESSED"]
    assert (exported.processed_dir / "carte_statuts.png").stat().st_size > 10_000


# --------------------------------------------------------------------------- browser

@pytest.fixture(scope="module")
def browser():
    browser_path, driver_path = chromium_paths()
    if not browser_path or not driver_path:
        pytest.skip("no chromium/chromedriver on this machine (Debian packages chromium and chromium-driver; "
                    ".ci/run installs them)")
    driver = offline_chromium()
    yield driver
    driver.quit()


def test_map_in_headless_chromium_offline(exported, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

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
    tooltip = WebDriverWait(browser, 10).until(ec.visibility_of_element_located((By.CSS_SELECTOR, ".leaflet-tooltip")))
    assert tooltip.text.strip()
    browser.save_screenshot(str(ARTIFACTS / "map_tooltip.png"))

    # untick the white-zone layer: exactly its polygons disappear
    zones = gpd.read_parquet(stages.coverage_paths(exported)["white_zones"])
    label = next(el for el in browser.find_elements(By.CSS_SELECTOR, ".leaflet-control-layers-overlays label")
                 if "Zones blanches" in el.text)
    label.find_element(By.TAG_NAME, "input").click()
    WebDriverWait(browser, 10).until(lambda d: count_polygons(d) < before)
    assert count_polygons(browser) == before - len(zones)
    browser.save_screenshot(str(ARTIFACTS / "map_layer_off.png"))
    label.find_element(By.TAG_NAME, "input").click()
    WebDriverWait(browser, 10).until(lambda d: count_polygons(d) == before)


def test_xlsx_reports_are_byte_identical_across_runs(tmp_path):
    import time
    import zipfile

    from pipeline.reports import write_xlsx

    sheets = {"communes": pd.DataFrame({"code_commune": ["11190"], "population": [1187]})}
    write_xlsx(tmp_path / "a.xlsx", sheets)
    time.sleep(1.1)  # openpyxl stamps the save time to the second
    write_xlsx(tmp_path / "b.xlsx", sheets)
    assert (tmp_path / "a.xlsx").read_bytes() == (tmp_path / "b.xlsx").read_bytes()
    core = zipfile.ZipFile(tmp_path / "a.xlsx").read("docProps/core.xml").decode()
    assert core.count("2000-01-01T00:00:00Z") == 2
    assert pd.read_excel(tmp_path / "a.xlsx").to_dict("list") == {"code_commune": [11190], "population": [1187]}
