"""The white-zone reports of the default run (région 76, EXAMPLE perimeters) as task forces print
them: Chromium's print to A4 PDF, page counts, PNGs of the pages in tests/artifacts/."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess

import geopandas as gpd
import pytest

from pipeline import stages
from pipeline.config import load_settings

from .conftest import REPO, write_config

ARTIFACTS = REPO / "tests" / "artifacts"


@pytest.fixture(scope="module")
def default_run(tmp_path_factory, raw):
    """The default run (pipeline.toml's scope, région 76) up to the export."""
    settings = load_settings(write_config(tmp_path_factory.mktemp("print")))
    stages.run_until(settings, "export")
    return settings


def print_pdf(browser, page) -> bytes:
    """The page printed by Chromium to an A4 PDF."""
    from selenium.webdriver.common.print_page_options import PrintOptions

    browser.get(page.as_uri())
    options = PrintOptions()
    options.page_width, options.page_height = 21.0, 29.7
    return base64.b64decode(browser.print_page(options))


def page_count(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page\b", pdf))


def pictures(pdf: bytes, name: str) -> None:
    """PNGs of the PDF's pages in tests/artifacts/ (when poppler's pdftoppm is installed)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    target = ARTIFACTS / f"{name}.pdf"
    target.write_bytes(pdf)
    if shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-png", "-r", "70", str(target), str(ARTIFACTS / name)])


def test_the_index_prints_on_two_a4_pages_with_the_summary(default_run, browser):
    paths = stages.export_paths(default_run)
    zones = gpd.read_parquet(stages.coverage_paths(default_run)["white_zones"])
    index = paths["index"].read_text(encoding="utf-8")
    pdf = print_pdf(browser, paths["index"])
    pictures(pdf, "index_print")
    assert len(zones) == 22 and page_count(pdf) <= 2
    # the coverage rate, the per-département summary and the provenance at the top
    assert "Population couverte par une CPTS : <b>85,6 %</b>" in index
    assert "Haute-Garonne" in index and "exemple_perimetres_cpts.csv" in index
    # the columns no zone has (no profile file in this run) are one note, not 22 "indisponible"
    assert "indisponible" not in index.split("<tbody>")[2].split("</tbody>")[0]
    assert "Non disponibles pour toutes les zones blanches" in index
    assert "Part des 75 ans et plus (%)" in index.split("Non disponibles")[1]


def test_zone_pages_print_in_few_pages_in_french(default_run, browser):
    paths = stages.export_paths(default_run)
    zones = gpd.read_parquet(stages.coverage_paths(default_run)["white_zones"])
    largest = zones.sort_values("n_communes").iloc[-1]["id_zone_blanche"]
    counts = {}
    for zone in zones["id_zone_blanche"]:
        page = paths["zones"] / f"{zone}.html"
        text = page.read_text(encoding="utf-8")
        assert "Population couverte par une CPTS" in text
        assert not re.search(r"<td[^>]*>\d+\.\d+</td>", text), "French decimals in every cell"
        if zone == largest or zone == zones["id_zone_blanche"].iloc[0]:
            pdf = print_pdf(browser, page)
            counts[zone] = page_count(pdf)
            pictures(pdf, f"zone_print_{zone}")
    # the largest zone (119 communes, one row each) on 4 pages, a small one on 2 at most
    assert counts[largest] <= 4 and min(counts.values()) <= 2, counts
