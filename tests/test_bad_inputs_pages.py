"""Bad inputs, part 2 (issue 22): user text inside the pages and files people share.

A perimeter file on real Lozère communes whose CPTS carry hostile names (HTML that would end the
map's data script, open a comment or run a handler; spreadsheet formulas) goes through a whole
run. The maps and reports are then loaded in headless Chromium (offline): every map still draws,
the names read back are the names given, and nothing executes. The CSVs people open carry each
formula-like text with a leading ``'``; the pipeline reads its own files back unmarked.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from pipeline import cli, stages
from pipeline.config import load_settings, write_settings_copy
from pipeline.io import read_csv, script_json, spreadsheet_safe, write_csv, write_csv_fr

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "tests" / "artifacts"
PWN = "window.__pwned = (window.__pwned || 0) + 1"
HOSTILE = {
    "comment": "CPTS <!--<script>",
    "end_script": f"</script><img src=x onerror={PWN.replace(' ', '')}>",
    "separators": "CPTS ligne\u2028paragraphe\u2029& <b>gras</b>",
}
FORMULAS = {
    "equals": '=HYPERLINK("http://exemple.invalid","clic")',
    "plus": "+33 CPTS",
    "minus": "-2+3",
    "at": "@SUM(A1)",
}


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory, raw):
    """A Lozère run whose first CPTS (of the EXAMPLE perimeters, real communes) carry the hostile
    names and formula-like ids and names."""
    folder = tmp_path_factory.mktemp("hostile")
    config = write_settings_copy(REPO / "pipeline.toml", folder, scope="departements:48")
    assert cli.main(["--config", str(config), "perimeters"]) == 0
    settings = load_settings(config)
    example = pd.read_csv(stages.perimeter_paths(settings)["example"], dtype=str)
    ids = list(dict.fromkeys(example["cpts_id"]))
    names = list(HOSTILE.values()) + list(FORMULAS.values())
    assert len(ids) >= len(names)
    rename = dict(zip(ids, names))
    example["cpts_nom"] = example["cpts_id"].map(rename).fillna(example["cpts_nom"])
    example["cpts_id"] = example["cpts_id"].map(
        {ids[-1]: "=1+1", **{i: i for i in ids[:-1]}}
    )  # a formula as an id too
    given = folder / "perimetres_hostiles.csv"
    example.to_csv(given, sep=";", index=False)
    text = config.read_text(encoding="utf-8").replace(
        'file = ""', f'file = "{given.as_posix()}"', 1
    )
    config.write_text(text, encoding="utf-8")
    assert cli.main(["--config", str(config), "diagnose"]) == 0
    return load_settings(config)


# ---------------------------------------- the helpers themselves


def test_script_json_escapes_every_script_state_character_and_keeps_the_value():
    data = {"nom": "</script><!--<script>&\u2028\u2029", "n": -3}
    text = script_json(data)
    assert not set("<>&\u2028\u2029") & set(text)
    assert "\\u003c/script\\u003e\\u003c!--\\u003cscript\\u003e\\u0026\\u2028\\u2029" in text
    assert json.loads(text) == data


def test_spreadsheet_safe_marks_text_cells_only():
    frame = pd.DataFrame(
        {
            "nom": ["=1+1", "+33 CPTS", "-2+3", "@SUM(A1)", "\tx", "\rx", "CPTS", "-3", "+2,5"],
            "population": [-3, 1, 2, 3, 4, 5, 6, 7, 8],
        }
    )
    safe = spreadsheet_safe(frame)
    assert safe["nom"].tolist() == [
        "'=1+1",
        "'+33 CPTS",
        "'-2+3",
        "'@SUM(A1)",
        "'\tx",
        "'\rx",
        "CPTS",
        "-3",
        "+2,5",
    ]
    assert safe["population"].tolist() == frame["population"].tolist(), "numbers stay numbers"
    assert frame["nom"].iloc[0] == "=1+1", "the caller's frame is not changed"


def test_both_csv_writers_neutralise_formulas_and_the_pipeline_reads_its_own_back(tmp_path):
    frame = pd.DataFrame({"cpts_nom": list(FORMULAS.values()) + ["'=déjà"], "n": [1, -2, 3, 4, 5]})
    write_csv(tmp_path / "a.csv", frame)
    write_csv_fr(tmp_path / "b.csv", frame)
    plain = list(csv.reader((tmp_path / "a.csv").open(encoding="utf-8")))
    french = list(csv.reader((tmp_path / "b.csv").open(encoding="utf-8-sig"), delimiter=";"))
    for rows in (plain, french):
        cells = [r[0] for r in rows[1:]]
        assert cells[:4] == ["'" + v for v in FORMULAS.values()]
        assert cells[4] == "''=déjà", "marked again: read back, it loses one mark only"
        assert [r[1] for r in rows[1:]] == ["1", "-2", "3", "4", "5"]
    assert read_csv(tmp_path / "a.csv")["cpts_nom"].tolist() == frame["cpts_nom"].tolist()


# ---------------------------------------- a whole run


def test_the_csvs_people_open_carry_no_live_formula(hostile_run):
    per = stages.perimeter_paths(hostile_run)
    checked = 0
    for path in [per["members"], per["names"], per["issues"]] + sorted(
        (hostile_run.reports_dir / "zones_blanches").glob("*.csv")
    ):
        text = path.read_text(encoding="utf-8-sig")
        delimiter = ";" if path.parent.name == "zones_blanches" else ","
        for row in csv.reader(text.splitlines(), delimiter=delimiter):
            for cell in row:
                assert not (cell[:1] in ("=", "+", "@") or re.match(r"-\D", cell)), (path, cell)
        checked += 1
    members = per["members"].read_text(encoding="utf-8")
    assert "'=1+1," in members and "\"'=HYPERLINK(" in members and "'@SUM(A1)" in members
    assert checked > 3


def test_names_read_back_unmarked_in_the_pipeline(hostile_run):
    cpts = pd.read_parquet(
        stages.coverage_paths(hostile_run)["cpts"], columns=["cpts_id", "cpts_nom"]
    )
    assert set(HOSTILE.values()) | set(FORMULAS.values()) <= set(cpts["cpts_nom"])
    assert "=1+1" in set(cpts["cpts_id"])


def test_no_page_holds_the_hostile_markup_raw(hostile_run):
    pages = sorted(hostile_run.maps_dir.rglob("*.html")) + sorted(
        hostile_run.reports_dir.rglob("*.html")
    )
    assert len(pages) > 3
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert "<img src=x" not in text and "<!--<script>" not in text, page
        scripts = re.findall(r"<script>(.*?)</script>", text, flags=re.S)
        assert text.count("<script") == len(scripts) == text.count("</script>"), page
        for script in scripts:  # nothing in a script can switch the parser's state
            assert not re.search("<!--|<script|\u2028|\u2029", script, flags=re.I), page


def test_maps_draw_and_nothing_executes_in_chromium(hostile_run, browser):
    from selenium.webdriver.support.ui import WebDriverWait

    from pipeline.outputs.browser import count_polygons

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    paths = stages.export_paths(hostile_run)
    pages = [paths["map"], *sorted(paths["departements"].glob("*.html"))]
    for page in pages:
        browser.get(page.as_uri())
        WebDriverWait(browser, 30).until(lambda d: count_polygons(d) > 0)
        names = browser.execute_script(
            "var s = DATA.layers.filter(function (l) { return l.code === 'cpts'; })[0];"
            "return window.cptsMap.cptsApi.column(s.props.nom);"
        )
        assert set(HOSTILE.values()) | set(FORMULAS.values()) <= set(names), page
        # the tooltips (the page's esc()) show each hostile name as text
        shown = browser.execute_script(
            "var out = [];"
            "window.cptsMap.cptsApi.layers.cpts.eachLayer(function (shape) {"
            "  shape.openTooltip(shape.getBounds().getCenter());"
            "  var el = shape.getTooltip().getElement();"
            "  out.push([el.textContent, el.querySelectorAll('img,script,b').length]);"
            "  shape.closeTooltip(); });"
            "return out;"
        )
        texts = " ".join(t for t, _ in shown)
        assert all(name in texts for name in HOSTILE.values()), page
        assert sum(n for _, n in shown) == 0, "a name became markup"
        # the composer's "start from" menu (its esc()) lists them as text too
        options = browser.execute_script(
            "return Array.from(document.querySelectorAll('#cc-from option'))"
            ".map(function (o) { return o.textContent; });"
        )
        assert all(any(name in o for o in options) for name in HOSTILE.values()), page
        browser.save_screenshot(str(ARTIFACTS / f"hostile_{page.stem}.png"))
        assert browser.execute_script("return window.__pwned === undefined"), page


def test_reports_show_the_names_as_text_in_chromium(hostile_run, browser):
    pages = [
        p
        for p in sorted(hostile_run.reports_dir.rglob("*.html"))
        if "&lt;/script&gt;" in p.read_text(encoding="utf-8")
    ]
    assert pages, "a white-zone report names a hostile CPTS"
    for page in pages[:3]:
        browser.get(page.as_uri())
        body = browser.execute_script("return document.body.textContent")
        assert HOSTILE["end_script"] in body
        assert browser.execute_script("return document.querySelectorAll('img').length") == 0
        assert browser.execute_script("return window.__pwned === undefined"), page


def test_the_composer_csv_carries_no_live_formula(hostile_run, browser, tmp_path):
    """Started from the CPTS named like a formula, the composer's CSV marks the name with a
    leading ', and the pipeline reads that CSV back (as a perimeter file) with the name given."""
    from selenium.webdriver.support.ui import Select

    from pipeline.analysis.perimeters import read_perimeter_table
    from tests.test_composer import open_map

    cpts = pd.read_parquet(stages.coverage_paths(hostile_run)["cpts"])
    target = cpts.loc[cpts["cpts_nom"] == FORMULAS["equals"], "cpts_id"].iloc[0]
    open_map(browser, stages.export_paths(hostile_run)["map"])
    browser.execute_script("localStorage.clear(); window.cptsComposer.open(true)")
    Select(browser.find_element("id", "cc-from")).select_by_value(target)
    browser.find_element("id", "cc-start").click()
    text = browser.execute_script("return window.cptsComposer.csv()")
    rows = list(csv.reader(text.splitlines(), delimiter=";"))
    drafted = [r for r in rows[1:] if r[1].startswith("'=")]
    assert drafted and all(r[1] == f"'{FORMULAS['equals']} (modifié)" for r in drafted)
    assert not any(cell[:1] in ("=", "+", "@") for row in rows for cell in row)
    path = tmp_path / "brouillons_cpts.csv"
    path.write_text(text, encoding="utf-8")
    table, _how, _notes = read_perimeter_table(path)
    assert f"{FORMULAS['equals']} (modifié)" in set(table["cpts_nom"])
    assert browser.execute_script("return window.__pwned === undefined")
