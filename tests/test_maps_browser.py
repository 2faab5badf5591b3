"""The région 76 map in headless Chromium (every request blocked), as its readers see it: the
legend's colours sampled on the rendered map, the controls in French, the search box, the printed
page, the layout at 1366×768. Screenshots go to ``tests/artifacts/``.
"""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from pipeline import stages
from pipeline.config import load_settings
from pipeline.outputs import palette

from .conftest import REPO, write_config
from .test_export import map_data

ARTIFACTS = REPO / "tests" / "artifacts"
TOLERANCE = 6  # largest difference per channel (0-255) between a legend colour and a pixel


@pytest.fixture(scope="module")
def region(tmp_path_factory, raw):
    """The whole pipeline on région 76 (Occitanie) with the EXAMPLE perimeters."""
    settings = load_settings(write_config(tmp_path_factory.mktemp("region"), scope="region:76"))
    stages.run_until(settings, "export")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return settings


@pytest.fixture(scope="module")
def shapes(region):
    """The run's communes, CPTS, white zones and proposed territories (Lambert-93)."""
    cov, ter = stages.coverage_paths(region), stages.territory_paths(region)
    return {
        "communes": gpd.read_parquet(cov["coverage"]),
        "cpts": gpd.read_parquet(cov["cpts"]),
        "zones": gpd.read_parquet(cov["white_zones"]),
        "territories": gpd.read_parquet(ter["territories"]),
    }


def open_map(browser, path, width: int = 1366, height: int = 768):
    from selenium.webdriver.support.ui import WebDriverWait

    browser.set_window_size(width, height)
    browser.get(path.as_uri())
    browser.execute_script("localStorage.clear()")
    browser.get(path.as_uri())
    WebDriverWait(browser, 30).until(lambda d: d.execute_script("return !!window.cptsMap"))


def screenshot(browser) -> np.ndarray:
    from PIL import Image

    png = browser.get_screenshot_as_png()
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[k : k + 2], 16) for k in (1, 3, 5)])


def share(pixels: np.ndarray, colour: str) -> float:
    """The share of ``pixels`` (…, 3) within :data:`TOLERANCE` of ``colour``."""
    close = (np.abs(pixels.reshape(-1, 3) - rgb(colour)) <= TOLERANCE).all(axis=1)
    return float(close.mean())


def clear_point(geometry, avoid) -> tuple[shapely.Point, float]:
    """The point of ``geometry`` farthest from ``avoid`` and from its own border (Lambert-93),
    and that distance in metres."""
    part = geometry.difference(avoid) if avoid is not None else geometry
    if part.is_empty:
        return None, 0.0
    part = max(getattr(part, "geoms", [part]), key=lambda g: g.area)
    point = shapely.ops.polylabel(part, tolerance=20)
    return point, float(part.boundary.distance(point))


def in_view(browser, point: shapely.Point, radius_m: float) -> tuple[int, int, int]:
    """Centre the map on ``point`` (Lambert-93) at the zoom where ``radius_m`` is 40 pixels; its
    position in the screenshot and the radius in pixels."""
    here = gpd.GeoSeries([point, shapely.Point(point.x + radius_m, point.y)], crs=2154).to_crs(4326)
    return browser.execute_script(
        """var m = window.cptsMap, p = L.latLng(arguments[0], arguments[1]),
               q = L.latLng(arguments[2], arguments[3]);
        m.setView(p, 10, {animate: false});
        var r = m.latLngToContainerPoint(p).distanceTo(m.latLngToContainerPoint(q));
        m.setView(p, Math.min(18, 10 + Math.log2(40 / r)), {animate: false});
        var a = m.latLngToContainerPoint(p), b = m.latLngToContainerPoint(q),
            box = m.getContainer().getBoundingClientRect();
        return [Math.round(a.x + box.left), Math.round(a.y + box.top),
                Math.round(a.distanceTo(b))];""",
        here.iloc[0].y,
        here.iloc[0].x,
        here.iloc[1].y,
        here.iloc[1].x,
    )


def swatch_pixels(browser, image: np.ndarray, label: str) -> np.ndarray:
    """The pixels of the legend swatch of the entry ``label`` (inside its outline)."""
    rect = browser.execute_script(
        """var rows = document.querySelectorAll('.cpts-leg');
        for (var i = 0; i < rows.length; i++) if (rows[i].textContent.trim() === arguments[0]) {
          var r = rows[i].querySelector('svg').getBoundingClientRect();
          return rows[i].offsetParent === null ? null : [r.left, r.top, r.width, r.height];
        }
        return null;""",
        label,
    )
    assert rect is not None, f"the legend shows « {label} »"
    left, top, width, height = (int(round(v)) for v in rect)
    return image[top + 3 : top + height - 3, left + 3 : left + width - 3]


# (legend label, palette colour, whether the colour is a hatching over another fill)
ENTRIES = [
    *[(f"CPTS existante – palier {t}", c, False) for t, c in palette.TIERS.items()],
    ("Zone blanche (aucune CPTS)", palette.WHITE_ZONE, False),
    ("Chevauchement (plusieurs CPTS)", palette.OVERLAP, True),
    ("Territoire candidat", palette.CANDIDATE, True),
    ("Extension d'une CPTS existante", palette.EXTENSION, True),
]


def features(shapes) -> dict:
    """For each legend entry, a real feature of the run that shows it (Lambert-93) and what to
    keep away from (other layers drawn over it, département borders)."""
    communes, cpts, zones, territories = (
        shapes[k] for k in ("communes", "cpts", "zones", "territories")
    )
    proposed = territories[territories["type_territoire"] != "cpts_existante"]
    overlaps = communes[communes["statut"] == "chevauchement"]
    borders = communes.dissolve("code_departement").boundary.buffer(500).union_all()
    hatched = pd.concat([proposed.geometry, overlaps.geometry]).union_all().union(borders)
    out = {}
    for tier in palette.TIERS:
        rows = cpts[cpts["palier"] == tier]
        assert len(rows), f"région 76 has a CPTS of tier {tier}"
        # the CPTS of this tier with the most room away from any overlay
        picks = [clear_point(g, hatched) for g in rows.geometry]
        out[f"CPTS existante – palier {tier}"] = max(picks, key=lambda p: p[1])
    # the candidates and extensions cover every white zone of the run: its fill shows between the
    # stripes of their hatching
    picks = [clear_point(g, overlaps.geometry.union_all().union(borders)) for g in zones.geometry]
    out["Zone blanche (aucune CPTS)"] = max(picks, key=lambda p: p[1])
    out["Chevauchement (plusieurs CPTS)"] = max(
        (clear_point(g, borders) for g in overlaps.geometry), key=lambda p: p[1]
    )
    for kind, label in (
        ("candidate", "Territoire candidat"),
        ("extension", "Extension d'une CPTS existante"),
    ):
        rows = proposed[proposed["type_territoire"] == kind]
        # away from the outlines of the CPTS an extension extends
        others = (
            overlaps.geometry.union_all()
            .union(borders)
            .union(cpts.boundary.buffer(500).union_all())
        )
        out[label] = max((clear_point(g, others) for g in rows.geometry), key=lambda p: p[1])
    return out


def covered(shapes, point) -> bool:
    """Whether a proposed territory (hatched) is drawn over ``point``."""
    territories = shapes["territories"]
    proposed = territories[territories["type_territoire"] != "cpts_existante"]
    return bool(proposed.geometry.contains(point).any())


def test_legend_colours_are_the_rendered_colours(region, shapes, browser):
    """For T1–T4, white zone, overlap, candidate and extension: the colour of the legend entry is
    the colour its swatch shows and the colour drawn at a point well inside a real feature of
    that layer; and no pixel there has a colour the legend does not list (no translucent
    blend)."""
    open_map(browser, stages.export_paths(region)["map"])
    # labels are text, not layers: hidden while the colours are sampled
    browser.execute_script(
        "var s = document.createElement('style'); s.id = 'no-labels';"
        "s.textContent = '.cpts-label, .cpts-unit-label {display: none}';"
        "document.head.appendChild(s)"
    )
    legend_colours = [c for _, c, _ in ENTRIES]
    for label, (point, radius) in features(shapes).items():
        colour, hatched = next((c, h) for name, c, h in ENTRIES if name == label)
        assert radius > 300, f"{label}: a feature with room around its point"
        x, y, r = in_view(browser, point, radius)
        image = screenshot(browser)
        half = max(4, min(12, r // 2))
        window = image[y - half : y + half + 1, x - half : x + half + 1]
        legend = swatch_pixels(browser, image, label)
        if hatched:  # stripes of the hatching and, between them, the fill below
            assert share(window, colour) > 0.2, label
            assert share(legend, colour) > 0.2, label
        elif covered(shapes, point):  # a white zone under a candidate's hatching: between stripes
            assert share(window, colour) > 0.3, label
            assert share(legend, colour) > 0.95, label
        else:
            assert share(window, colour) > 0.95, label
            assert share(legend, colour) > 0.95, label
        foreign = ~np.any(
            [
                (np.abs(window.reshape(-1, 3) - rgb(c)) <= TOLERANCE).all(axis=1)
                for c in legend_colours
            ],
            axis=0,
        )
        assert foreign.mean() < 0.02, f"{label}: colours the legend does not show"
        if label.endswith("T2") or label == "Territoire candidat":
            browser.save_screenshot(
                str(ARTIFACTS / f"map_sample_{'t2' if 'T2' in label else 'candidate'}.png")
            )
    browser.execute_script("document.getElementById('no-labels').remove()")


def test_controls_titles_and_legend_in_french(region, browser):
    """Zoom and layer controls in French, a metric scale only, titles with names; the legend of a
    département map lists only the layers on that map, and the optional choropleth comes with its
    own legend while the tiers' fills give way."""
    from selenium.webdriver.common.action_chains import ActionChains

    paths = stages.export_paths(region)
    open_map(browser, paths["map"])
    titles = browser.execute_script(
        "return Array.from(document.querySelectorAll('.leaflet-control a')).map(a => a.title)"
    )
    assert {"Zoom avant", "Zoom arrière", "Couches"} <= set(titles)
    scales = browser.execute_script(
        "return Array.from(document.querySelectorAll('.leaflet-control-scale-line'))"
        ".map(e => e.textContent)"
    )
    assert len(scales) == 1 and re.fullmatch(r"\d+ k?m", scales[0]), scales
    assert browser.title == "Diagnostic CPTS – Occitanie"
    browser.save_screenshot(str(ARTIFACTS / "map_region.png"))
    legend = browser.find_element("id", "cpts-legend")
    legend.screenshot(str(ARTIFACTS / "map_legend.png"))
    assert "Zone blanche (aucune CPTS)" in legend.text and "Densité" not in legend.text

    # the density choropleth picked in the layers control: its classes in the legend, the CPTS
    # and white zones as outlines above it
    ActionChains(browser).move_to_element(
        browser.find_element("css selector", ".leaflet-control-layers")
    ).perform()
    base = browser.find_elements("css selector", ".leaflet-control-layers-base label")
    next(b for b in base if b.text.startswith("Indicateur")).find_element(
        "tag name", "input"
    ).click()
    ActionChains(browser).move_to_element(browser.find_element("id", "cpts-summary")).perform()
    assert "Densité de population (hab./km²)" in legend.text
    assert "Contour de CPTS existante" in legend.text and "palier T1" not in legend.text
    fills = browser.execute_script(
        "return Array.from(document.querySelectorAll('.leaflet-cpts-fills-pane path'))"
        ".map(p => p.getAttribute('fill')).filter(f => f !== 'none').length"
    )
    assert fills == 0, "no CPTS or white-zone fill over the choropleth"
    browser.save_screenshot(str(ARTIFACTS / "map_density.png"))

    # département maps: titles with the name, legends of their own layers only
    listed = {}
    for page in sorted(paths["departements"].glob("carte_*.html")):
        text = page.read_text(encoding="utf-8")
        codes = {layer["code"] for layer in map_data(page)["layers"]}
        listed[page.name] = set(re.findall(r'class="cpts-leg" data-layer="([a-z]+)"', text))
        assert listed[page.name] == codes & {
            "cpts",
            "zones",
            "overlaps",
            "territories",
            "communes",
            "profile",
        }
        name = re.search(r"<title>(.*?)</title>", text).group(1)
        assert re.fullmatch(r"Diagnostic CPTS – [^0-9]+ \(\d\d\)", name), name
    assert "overlaps" in listed["carte_48.html"] and "overlaps" not in listed["carte_34.html"]


def test_cpts_tooltips_say_the_density_communes_say(region, shapes):
    """With no practitioner file the indicator is the density: each CPTS's tooltip gives its
    density (population over area of its communes), not « indisponible »."""
    data = map_data(stages.export_paths(region)["map"])
    layer = next(x for x in data["layers"] if x["code"] == "cpts")
    props = {
        k: v if isinstance(v, list) else [v["v"][i] for i in decode(v["i"])]
        for k, v in layer["props"].items()
    }
    communes = shapes["communes"]
    rows = communes.assign(cpts_id=communes["cpts_ids"].str.split(";")).explode("cpts_id")
    rows = rows.assign(area=rows.geometry.area / 1e6)
    sums = rows.groupby("cpts_id")[["population", "area"]].sum()
    cpts = shapes["cpts"].set_index("cpts_nom")
    assert "indisponible" not in set(props["indicateur_txt"])
    for name, text in list(zip(props["nom"], props["indicateur_txt"]))[:20]:
        cpts_id = cpts.loc[name, "cpts_id"]
        want = sums.loc[cpts_id, "population"] / sums.loc[cpts_id, "area"]
        assert float(text.replace(" ", "").replace(",", ".")) == pytest.approx(want, abs=0.06), name


def decode(text: str) -> list[int]:
    from .test_export import decode_ints

    return decode_ints(text)


def search(browser, text: str) -> str:
    from selenium.webdriver.common.keys import Keys

    box = browser.find_element("id", "cpts-find")
    box.clear()
    box.send_keys(text, Keys.ENTER)
    return browser.find_element("id", "cpts-find-msg").text


def popup_text(browser) -> str:
    """The text of the open popup, once it has faded in (a closed one fades out: the last one
    is open)."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, 5).until(
        lambda d: d.find_elements("css selector", ".leaflet-popup-content")[-1].text
    )


def test_a_long_remark_wraps_in_its_tooltip(region, shapes, browser):
    """The territory with the longest remark (a candidate wider than max_diameter_km says why):
    hovered, its tooltip shows the whole remark in a box at most 32 em wide, inside the window
    (it was one line of about 1,600 px, cut by the window's edge)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import WebDriverWait

    territories = shapes["territories"]
    row = territories.loc[territories["motif"].fillna("").str.len().idxmax()]
    assert len(row["motif"]) > 150, "no long remark in the région run: a weak case"
    point, room = clear_point(row.geometry, None)
    open_map(browser, stages.export_paths(region)["map"])
    x, y, _ = in_view(browser, point, room)
    body = browser.find_element("tag name", "body")
    ActionChains(browser).move_to_element_with_offset(
        body, int(x - body.size["width"] / 2), int(y - body.size["height"] / 2)
    ).move_by_offset(2, 2).perform()
    tips = WebDriverWait(browser, 5).until(
        lambda d: [
            t
            for t in d.find_elements("css selector", ".leaflet-tooltip")
            if row["id_territoire"] in t.text
        ]
    )
    box = browser.execute_script(
        "var r = arguments[0].getBoundingClientRect(), f = parseFloat(getComputedStyle("
        "arguments[0].querySelector('table')).fontSize);"
        "return [r.left, r.right, r.width, f, window.innerWidth]",
        tips[-1],
    )
    left, right, width, font, window = box
    assert " ".join(row["motif"].split()) in " ".join(tips[-1].text.split())
    assert width <= 32 * font + 40 and 0 <= left and right <= window, box
    browser.save_screenshot(str(ARTIFACTS / "map_long_remark.png"))


def test_search_a_typed_name(region, shapes, browser):
    """A typed name and Enter: a unique commune is zoomed to and shown, homonyms are listed, an
    unknown name says so; the same with the composer open (which adds the unique match)."""
    communes = shapes["communes"].set_index("code_commune")
    homonyms = sorted(communes.index[communes["nom"] == "Saint-Martin"])
    assert len(homonyms) >= 2, "région 76 has several Saint-Martin"
    open_map(browser, stages.export_paths(region)["map"])
    where = communes.loc[["34172"]].to_crs(4326).geometry.iloc[0].representative_point()

    def check(composer: bool):
        assert search(browser, "montpellier") == ""
        assert browser.execute_script(
            "var m = window.cptsMap; return m.getZoom() >= 10"
            " && m.getBounds().contains([arguments[0], arguments[1]])",
            where.y,
            where.x,
        )
        popup = popup_text(browser)
        assert "34172" in popup and "Montpellier" in popup
        if not composer:
            browser.save_screenshot(str(ARTIFACTS / "map_search_montpellier.png"))
        listed = search(browser, "Saint-Martin")
        assert listed.startswith(f"{len(homonyms)} communes « Saint-Martin »")
        assert re.findall(r"\((\d{5})\)", listed) == homonyms
        if not composer:
            browser.save_screenshot(str(ARTIFACTS / "map_search_homonyms.png"))
        browser.find_element("css selector", "#cpts-find-msg button[data-unit]").click()
        popup = popup_text(browser)
        assert homonyms[0] in popup
        assert search(browser, "Zzyzx") == "Aucune commune « Zzyzx » sur cette carte."

    check(composer=False)
    browser.find_element("id", "cc-toggle").click()
    check(composer=True)
    units = browser.execute_script(
        "var s = window.cptsComposer.state(); return s.drafts[s.cur].units.slice();"
    )
    assert units == sorted(["34172", homonyms[0]])


def test_one_landscape_page_when_printed(region, browser):
    """« Imprimer », then Chromium's print to PDF: one landscape A4 page with the title, the map,
    the legend beside it (not over it), the scale and the sources; no control printed."""
    from selenium.webdriver.common.print_page_options import PrintOptions

    open_map(browser, stages.export_paths(region)["map"])
    browser.execute_script("window.print = function () {}")  # no dialog in a test
    browser.find_element("id", "cpts-print").click()
    rects = browser.execute_script(
        """function r(s) {
          var e = document.querySelector(s);
          if (!e || getComputedStyle(e).display === 'none') return null;
          var b = e.getBoundingClientRect();
          return b.width ? [b.left, b.top, b.right, b.bottom] : null;
        }
        return {map: r('#map'), legend: r('#cpts-legend'), head: r('.cpts-head'),
                foot: r('.cpts-foot'), scale: r('.leaflet-control-scale'),
                tools: r('#cpts-left'), zoom: r('.leaflet-control-zoom'),
                layers: r('.leaflet-control-layers')};"""
    )
    assert rects["tools"] is None and rects["zoom"] is None and rects["layers"] is None
    assert rects["legend"][0] >= rects["map"][2], "the legend is beside the map"
    assert rects["head"][3] <= rects["map"][1] and rects["foot"][1] >= rects["map"][3]
    assert "Sources :" in browser.find_element("css selector", ".cpts-foot").get_attribute(
        "textContent"
    )
    assert "Carte imprimée le" in browser.find_element("css selector", ".cpts-foot").get_attribute(
        "textContent"
    )
    options = PrintOptions()
    options.orientation = "landscape"
    options.page_width, options.page_height = 21.0, 29.7
    options.background = True
    pdf = base64.b64decode(browser.print_page(options))
    browser.execute_script("window.cptsPrint.after()")
    (ARTIFACTS / "map_print.pdf").write_bytes(pdf)
    assert len(re.findall(rb"/Type\s*/Page\b", pdf)) == 1, "one page"
    box = [float(v) for v in re.search(rb"/MediaBox\s*\[([^\]]+)\]", pdf).group(1).split()]
    assert box[2] - box[0] > box[3] - box[1], "landscape"
    if not shutil.which("pdftoppm"):
        pytest.skip("pdftoppm (Debian package poppler-utils) is needed to look at the page")
    subprocess.run(
        [
            "pdftoppm",
            "-png",
            "-r",
            "96",
            "-singlefile",
            str(ARTIFACTS / "map_print.pdf"),
            str(ARTIFACTS / "map_print"),
        ],
        check=True,
    )
    from PIL import Image

    page = np.asarray(Image.open(ARTIFACTS / "map_print.png").convert("RGB")).astype(int)
    right = page[:, int(page.shape[1] * 0.72) :]  # the legend's column
    for colour in palette.TIERS.values():
        assert share(right, colour) > 1e-4, f"the printed legend shows {colour}"
    left = page[:, : int(page.shape[1] * 0.7)]
    assert share(left, palette.TIERS["T1"]) > 0.01, "the printed map shows the CPTS"


def test_layout_at_1366_by_768(region, shapes, browser):
    """At 1366×768 the first view shows the Gard and Hérault coast clear of every panel; the
    legend and the summary fold; the composer panel fits the window with one scroll area and
    switches no layer on."""
    open_map(browser, stages.export_paths(region)["map"])
    coast = shapes["communes"].set_index("code_commune").loc[["30133", "34301", "34003"]]
    points = coast.to_crs(4326).geometry.representative_point()
    covered = browser.execute_script(
        """var m = window.cptsMap, out = [], box = m.getContainer().getBoundingClientRect();
        var panels = Array.from(document.querySelectorAll('.cpts-panel, .leaflet-control'))
          .map(e => e.getBoundingClientRect()).filter(r => r.width > 0);
        arguments[0].forEach(function (p) {
          var c = m.latLngToContainerPoint(p), x = c.x + box.left, y = c.y + box.top;
          out.push(x < 0 || y < 0 || x > innerWidth || y > innerHeight ||
            panels.some(r => x >= r.left && x <= r.right && y >= r.top && y <= r.bottom));
        });
        return out;""",
        [[p.y, p.x] for p in points],
    )
    assert covered == [False, False, False], dict(zip(coast["nom"], covered))
    legend = browser.find_element("id", "cpts-legend")
    height = legend.size["height"]
    legend.find_element("tag name", "summary").click()
    assert legend.size["height"] < height / 3
    legend.find_element("tag name", "summary").click()

    on_map = (
        "return Object.values(window.cptsMap.cptsApi.layers).map(l => window.cptsMap.hasLayer(l))"
    )
    before = browser.execute_script(on_map)
    browser.find_element("id", "cc-toggle").click()
    assert browser.execute_script(on_map) == before, "the composer switches no layer on"
    panel = browser.execute_script(
        """var p = document.getElementById('cc-panel').getBoundingClientRect();
        var inner = Array.from(document.querySelectorAll('#cc-panel *')).filter(function (e) {
          var s = getComputedStyle(e); return /auto|scroll/.test(s.overflowY); }).length;
        return [p.top, p.bottom, innerHeight, inner];"""
    )
    assert panel[0] >= 0 and panel[1] <= panel[2] and panel[3] == 0, panel
    browser.save_screenshot(str(ARTIFACTS / "map_composer_open.png"))


def test_map_sizes(region):
    """The région map stays within 2 MB (the France map's 8 MB is checked by the bench)."""
    assert stages.export_paths(region)["map"].stat().st_size <= 2_000_000
