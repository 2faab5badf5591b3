"""The map's territory composer in headless Chromium (every request blocked), on real data: the
figures it shows against the pipeline's own computation, and the round trip of its CSV through the
pipeline as the perimeter file.
"""

from __future__ import annotations

import re
import time

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from pipeline import stages
from pipeline.aci import envelopes
from pipeline.analysis.adjacency import components
from pipeline.analysis.perimeters import read_perimeter_table
from pipeline.config import load_settings
from pipeline.outputs.composer import encode_sorted

from .conftest import REPO, set_input_files, write_config
from .test_export import decode_ints, map_data

ARTIFACTS = REPO / "tests" / "artifacts"


@pytest.fixture(scope="module")
def run(tmp_path_factory, raw):
    """The whole pipeline on Hérault and Bouches-du-Rhône (Marseille's arrondissements), with the
    EXAMPLE perimeters; the run's units in WGS84, its adjacency and its ACI settings."""
    settings = load_settings(
        write_config(tmp_path_factory.mktemp("composer"), scope="departements:13,34")
    )
    stages.run_until(settings, "export")
    coverage = gpd.read_parquet(stages.coverage_paths(settings)["coverage"])
    adjacency = stages.adjacency_of(settings, stages.read_communes(settings))
    return settings, coverage, adjacency


def induced_path(coverage, adjacency, start: str, length: int, among) -> list[str]:
    """``length`` units from ``start``, each adjacent to the previous one only (so that removing
    a middle one splits the path), among the units whose codes satisfy ``among``."""
    codes = coverage["code_commune"].to_numpy()
    neighbours = adjacency.neighbours()
    position = {c: k for k, c in enumerate(codes)}

    def extend(path):
        if len(path) == length:
            return path
        for nxt in sorted(neighbours[path[-1]], key=lambda k: codes[k]):
            ok = among(codes[nxt]) and nxt not in path
            if ok and not any(nxt in neighbours[p] for p in path[:-1]):
                found = extend(path + [int(nxt)])
                if found:
                    return found
        return None

    found = extend([position[start]])
    assert found, f"no induced path of {length} units from {start}"
    return [codes[k] for k in found]


def pieces(coverage, adjacency, codes) -> int:
    mask = coverage["code_commune"].isin(codes).to_numpy()
    return int(components(adjacency, mask).max() + 1)


def expected(coverage, codes, settings) -> dict:
    """The pipeline's own population, tier, envelope and supplement of the units ``codes``."""
    population = int(coverage.loc[coverage["code_commune"].isin(codes), "population"].sum())
    money = envelopes([population], settings.section("aci")).iloc[0]
    return {
        "population": population,
        "palier": money["palier"],
        "enveloppe_eur": int(money["enveloppe_eur"]),
        "supplement_snp_eur": int(money["supplement_snp_eur"]),
    }


def digits(text: str) -> int:
    return int(re.sub(r"\D", "", text.split("hab.")[0].split("€")[0]))


def shown(browser) -> dict:
    """The figures the panel shows, as a reader sees them."""

    def text(key):
        return browser.find_element("id", f"cc-{key}").text

    return {
        "n": digits(text("n")),
        "population": digits(text("pop")),
        "palier": text("tier"),
        "enveloppe_eur": digits(text("env")),
        "supplement_snp_eur": digits(text("supp")),
        "contiguite": text("contig"),
        "table": text("table"),
        "supply": text("supply"),
    }


def open_map(browser, path):
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(path.as_uri())
    WebDriverWait(browser, 30).until(
        lambda d: d.execute_script("return !!window.cptsComposer && !!window.cptsMap")
    )


def click_units(browser, coverage, codes, shot: str) -> None:
    """Real mouse clicks on the map, at a point well inside each unit, the units in view beside
    the panels."""
    from selenium.webdriver.common.action_chains import ActionChains

    units = coverage.set_index("code_commune").loc[codes].to_crs(4326)
    south, west, north, east = (
        units.total_bounds[1],
        units.total_bounds[0],
        units.total_bounds[3],
        units.total_bounds[2],
    )
    browser.execute_script(
        "window.cptsMap.fitBounds([[arguments[0], arguments[1]], [arguments[2], arguments[3]]],"
        " {paddingTopLeft: [400, 60], paddingBottomRight: [360, 40], animate: false})",
        south,
        west,
        north,
        east,
    )
    element = browser.find_element("id", "map")
    width, height = element.size["width"], element.size["height"]
    for geom in units.geometry:
        part = max(getattr(geom, "geoms", [geom]), key=lambda g: g.area)
        inside = shapely.ops.polylabel(part, tolerance=1e-5)
        x, y = browser.execute_script(
            "var p = window.cptsMap.latLngToContainerPoint([arguments[0], arguments[1]]);"
            " return [p.x, p.y];",
            inside.y,
            inside.x,
        )
        ActionChains(browser).move_to_element_with_offset(
            element, int(x - width / 2), int(y - height / 2)
        ).click().perform()
        time.sleep(0.05)
    browser.save_screenshot(str(ARTIFACTS / shot))


def draft_units(browser) -> list[str]:
    return browser.execute_script(
        "var s = window.cptsComposer.state(); return s.drafts[s.cur].units.slice();"
    )


def download(browser, folder, kind: str = "csv"):
    """Click the CSV or GeoJSON button; the file Chromium saves (a Blob download, no network)."""
    folder.mkdir(parents=True, exist_ok=True)
    browser.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(folder)}
    )
    browser.find_element("id", f"cc-{kind}").click()
    target = folder / f"brouillons_cpts.{kind}"
    for _ in range(100):
        if target.exists() and target.stat().st_size:
            break
        time.sleep(0.1)
    return target


def with_perimeters(folder, path, scope: str):
    """Settings of a run with ``path`` as the perimeter file."""
    return load_settings(set_input_files(write_config(folder, scope=scope), file=path))


def test_composer_data_is_the_pipeline_adjacency(run):
    """The adjacency embedded in a département map, decoded independently, is the pipeline's own,
    restricted to the map's units."""
    settings, coverage, adjacency = run
    data = map_data(stages.export_paths(settings)["departements"] / "carte_34.html")
    layer = next(x for x in data["layers"] if x["code"] == "communes")
    codes = layer["props"]["code_commune"]
    codes = codes if isinstance(codes, list) else [codes["v"][i] for i in decode_ints(codes["i"])]
    counts, steps = (
        decode_ints(data["composer"]["adj"]["n"]),
        decode_ints(data["composer"]["adj"]["d"]),
    )
    embedded, k = set(), 0
    for u, m in enumerate(counts):
        j = u
        for _ in range(m):
            j += steps[k]
            k += 1
            embedded.add((codes[u], codes[j]))
    position = coverage["code_commune"].to_numpy()
    mine = set(codes)
    expected_edges = set()
    for a, b in zip(position[adjacency.i], position[adjacency.j]):
        if a in mine and b in mine:
            expected_edges.add(tuple(sorted((a, b), key=codes.index)))
    assert embedded == expected_edges and len(embedded) > len(codes)
    assert encode_sorted([]) == "" and decode_ints(encode_sorted([3, 4, 9])) == [3, 1, 5]


def test_composer_tiers_at_the_bounds(run, browser):
    """The page's tier and amounts equal :func:`pipeline.aci.envelopes` on each side of every bound
    of the configured table."""
    settings = run[0]
    aci = settings.section("aci")
    populations = sorted({max(0, b + d) for b in aci["bounds"] for d in (-1, 0, 1)} | {0, 10**6})
    open_map(browser, stages.export_paths(settings)["departements"] / "carte_34.html")
    page = browser.execute_script(
        "return arguments[0].map(function (p) { return window.cptsComposer.money(p); })",
        populations,
    )
    table = envelopes(populations, aci)
    assert [m["tier"] for m in page] == list(table["palier"])
    assert [m["total"] for m in page] == [int(v) for v in table["enveloppe_eur"]]
    assert [m["supplement"] for m in page] == [int(v) for v in table["supplement_snp_eur"]]
    assert len(set(table["palier"])) == len(aci["tiers"])


def test_composer_in_headless_chromium(run, browser, tmp_path):
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    settings, coverage, adjacency = run
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    folder = stages.export_paths(settings)["departements"]
    open_map(browser, folder / "carte_34.html")
    browser.execute_script("localStorage.clear()")
    open_map(browser, folder / "carte_34.html")
    browser.find_element("id", "cc-toggle").click()

    # five units clicked one by one: the pipeline's population, tier and envelope
    in_34 = set(coverage.loc[coverage["code_departement"] == "34", "code_commune"])
    path = induced_path(coverage, adjacency, "34032", 5, lambda c: c in in_34)
    click_units(browser, coverage, path, "composer_1_five_units.png")
    assert sorted(draft_units(browser)) == sorted(path)
    drawn = "return document.querySelectorAll('.leaflet-composer-pane path').length"
    assert browser.execute_script(drawn) == 5, "the draft is drawn on top, one shape per unit"
    figures, want = shown(browser), expected(coverage, path, settings)
    assert figures["n"] == 5 and figures["contiguite"] == "contigu"
    for key in ("population", "palier", "enveloppe_eur", "supplement_snp_eur"):
        assert figures[key] == want[key], key
    aci = settings.section("aci")
    assert aci["funding"][aci["vintage"]]["source"] in figures["table"]
    assert "avenant 2" in figures["table"]
    assert figures["supply"].startswith("indisponible")

    # the middle unit clicked again: the draft splits in two
    click_units(browser, coverage, [path[2]], "composer_2_split.png")
    rest = [c for c in path if c != path[2]]
    assert pieces(coverage, adjacency, rest) == 2
    assert shown(browser)["contiguite"] == "non contigu (2 morceaux)"
    assert shown(browser)["population"] == expected(coverage, rest, settings)["population"]
    browser.find_element("id", "cc-undo").click()
    assert shown(browser)["contiguite"] == "contigu" and sorted(draft_units(browser)) == sorted(
        path
    )
    browser.find_element("id", "cc-redo").click()
    assert shown(browser)["contiguite"].startswith("non contigu")
    browser.find_element("id", "cc-undo").click()

    # an existing CPTS of the département, as the starting point: cpts.parquet's figures
    cpts = gpd.read_parquet(stages.coverage_paths(settings)["cpts"])
    members = coverage.assign(cpts_id=coverage["cpts_ids"].str.split(";")).explode("cpts_id")
    clear = set(members.loc[members["code_commune"].isin(path), "cpts_id"])
    row = (
        cpts[(cpts["departements"] == "34") & ~cpts["cpts_id"].isin(clear)]
        .sort_values(["population", "cpts_id"], ascending=[False, True])
        .iloc[0]
    )
    Select(browser.find_element("id", "cc-from")).select_by_value(row["cpts_id"])
    browser.find_element("id", "cc-start").click()
    figures = shown(browser)
    browser.save_screenshot(str(ARTIFACTS / "composer_3_existing_cpts.png"))
    assert figures["n"] == row["n_communes"] and figures["population"] == row["population"]
    assert figures["palier"] == row["palier"] and figures["enveloppe_eur"] == row["enveloppe_eur"]
    assert figures["contiguite"] == "contigu"
    overlapped = browser.find_element("id", "cc-over").text
    assert row["cpts_nom"] not in overlapped, "the starting CPTS is not its own overlap"

    # keyboard: a new draft, a commune found with the search box, Enter adds it; then deleted
    browser.find_element("id", "cc-new").click()
    search = browser.find_element("id", "cpts-find")
    search.send_keys("Montpellier (34172)", Keys.ENTER)
    assert draft_units(browser) == ["34172"]
    assert shown(browser)["population"] == expected(coverage, ["34172"], settings)["population"]
    search.clear()
    search.send_keys("lattes", Keys.ENTER)  # a name met once in the map, without its code
    assert draft_units(browser) == ["34129", "34172"]
    browser.save_screenshot(str(ARTIFACTS / "composer_4_keyboard.png"))
    browser.find_element("id", "cc-delete").click()

    # a reload loses nothing
    before = browser.execute_script("return window.cptsComposer.state()")
    open_map(browser, folder / "carte_34.html")
    assert browser.execute_script("return window.cptsComposer.state()") == before
    assert [d["units"] for d in before["drafts"]][0] == sorted(path)

    csv_34 = download(browser, tmp_path / "downloads_34").read_text(encoding="utf-8-sig")
    geojson = download(browser, tmp_path / "downloads_34", "geojson")
    drafts = gpd.read_file(geojson).set_index("cpts_id")
    assert drafts.loc["brouillon-1", "code_communes"].split(";") == sorted(path)
    assert drafts.loc["brouillon-1", "population"] == want["population"]

    # Marseille: three arrondissements clicked
    open_map(browser, folder / "carte_13.html")
    browser.execute_script("localStorage.clear()")
    open_map(browser, folder / "carte_13.html")
    browser.find_element("id", "cc-toggle").click()
    arrondissements = induced_path(coverage, adjacency, "13201", 3, lambda c: c.startswith("132"))
    click_units(browser, coverage, arrondissements, "composer_5_marseille.png")
    assert sorted(draft_units(browser)) == sorted(arrondissements)
    figures, want_13 = shown(browser), expected(coverage, arrondissements, settings)
    for key in ("population", "palier", "enveloppe_eur", "supplement_snp_eur"):
        assert figures[key] == want_13[key], key
    assert figures["contiguite"] == "contigu"
    browser.find_element("id", "cc-rename").click()
    prompt = browser.switch_to.alert
    prompt.send_keys("Marseille centre")
    prompt.accept()
    csv_13 = download(browser, tmp_path / "downloads_13").read_text(encoding="utf-8-sig")

    # the two downloads merged, read back as a perimeter table and run through the pipeline
    merged = tmp_path / "perimetres.csv"
    merged.write_text(csv_34 + "".join(csv_13.splitlines(True)[1:]), encoding="utf-8")
    table, _how, _notes = read_perimeter_table(merged)
    assert set(arrondissements) <= set(table["code_publie"])
    assert set(path) <= set(table["code_publie"])
    again = with_perimeters(tmp_path / "round_trip", merged, "departements:13,34")
    stages.run_until(again, "coverage")
    result = pd.read_parquet(stages.coverage_paths(again)["cpts"]).set_index("cpts_id")
    assert len(result) == 3
    for cpts_id, want_row in (("brouillon-1", want), ("marseille-centre", want_13)):
        assert result.loc[cpts_id, "population"] == want_row["population"], cpts_id
        assert result.loc[cpts_id, "palier"] == want_row["palier"], cpts_id
    modified = result[result["cpts_nom"] == f"{row['cpts_nom']} (modifié)"].iloc[0]
    assert modified["population"] == row["population"] and modified["palier"] == row["palier"]

    # the GeoJSON as a polygon perimeter file: each unit is inside its draft's polygons
    polygons = with_perimeters(tmp_path / "round_trip_geojson", geojson, "departements:34")
    stages.run_until(polygons, "coverage")
    result = pd.read_parquet(stages.coverage_paths(polygons)["cpts"]).set_index("cpts_id")
    assert result.loc["brouillon-1", "population"] == want["population"]
    assert result.loc["brouillon-1", "n_communes"] == len(path)


def test_composer_supply_with_a_practitioner_file(config_factory, browser):
    """With the RPPS extract of the Aude, the draft's practitioners per profession and per 10,000
    inhabitants are those of indicators.parquet for its communes."""
    from selenium.webdriver.support.ui import Select

    from pipeline.analysis.indicators import PROFESSIONS_FR

    from .test_indicators import RPPS

    config = set_input_files(config_factory("dep:11"), rpps=RPPS)
    settings = load_settings(config)
    stages.run_until(settings, "export")
    indicators = pd.read_parquet(stages.indicator_paths(settings)["indicators"])
    professions = list(settings.section("indicators")["professions"])
    served = indicators[indicators[[f"n_{p}" for p in professions]].sum(axis=1) > 0]
    codes = sorted(served["code_commune"])[:4]
    assert codes, "the RPPS fixture counts practitioners in the Aude"
    open_map(browser, stages.export_paths(settings)["departements"] / "carte_11.html")
    browser.execute_script("localStorage.clear(); window.cptsComposer.open(true)")
    for code in codes:
        browser.execute_script("window.cptsComposer.toggle(arguments[0])", code)
    lines = browser.find_element("id", "cc-supply").text.splitlines()
    mine = indicators[indicators["code_commune"].isin(codes)]
    population = int(mine["population"].sum())
    expected_lines = []
    for p in professions:
        count = int(mine[f"n_{p}"].sum())
        per_10k = f"{count / population * 1e4:.1f}".replace(".", ",")
        expected_lines.append(f"{PROFESSIONS_FR[p]} : {count} ({per_10k} pour 10 000 hab.)")
    assert lines == expected_lines
    browser.save_screenshot(str(ARTIFACTS / "composer_6_supply.png"))

    # an extension of an existing CPTS as the starting point: territories.parquet's figures
    territories = gpd.read_parquet(stages.territory_paths(settings)["territories"])
    extension = territories[territories["type_territoire"] == "extension"].iloc[0]
    Select(browser.find_element("id", "cc-from")).select_by_value(extension["id_territoire"])
    browser.find_element("id", "cc-start").click()
    figures = shown(browser)
    assert figures["population"] == extension["population"]
    assert figures["palier"] == extension["palier"]


def test_overview_map_starts_from_every_kind_of_territory(run, browser):
    """On the scope's overview map, existing CPTS, a candidate (and an extension where the run has
    one) as starting points show the population and tier of cpts.parquet and territories.parquet."""
    settings = run[0]
    cpts = gpd.read_parquet(stages.coverage_paths(settings)["cpts"])
    territories = gpd.read_parquet(stages.territory_paths(settings)["territories"])
    picks = [(r.cpts_id, r.population, r.palier) for r in cpts.iloc[[0, -1]].itertuples()]
    proposed = territories[territories["type_territoire"] != "cpts_existante"]
    assert "candidate" in set(proposed["type_territoire"])
    for _kind, part in proposed.groupby("type_territoire"):  # extensions where the run has some
        r = part.iloc[0]
        picks.append((r["id_territoire"], r["population"], r["palier"]))
    open_map(browser, stages.export_paths(settings)["map"])
    browser.execute_script("localStorage.clear(); window.cptsComposer.open(true)")
    from selenium.webdriver.support.ui import Select

    for territory, population, tier in picks:
        Select(browser.find_element("id", "cc-from")).select_by_value(territory)
        browser.find_element("id", "cc-start").click()
        figures = shown(browser)
        assert (figures["population"], figures["palier"]) == (population, tier), territory
