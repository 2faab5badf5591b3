"""The settings reference of ``docs/settings.md``, generated from :data:`pipeline.config.SCHEMA`.

The schema declares every section and key once (type, default, one-line description); the page's
reference tables are written from it between two marker lines, and the text around them is kept
as written. ``python -m pipeline settings-doc`` rewrites the block; ``tests/test_docs.py`` fails
when the page in the repository differs from what the schema gives.

The module also takes the front page's screenshots (:func:`screenshots`, ``make screenshots``):
the région map, the composer open and a white-zone report, from the outputs of ``make diagnose``,
in headless Chromium with no network.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from . import stages
from .config import DEFAULT_CONFIG, REQUIRED, SCHEMA, Key, Section, Settings, load_settings
from .errors import PipelineError
from .io import write_text

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGE = DOCS / "settings.md"
IMAGES = DOCS / "img"
WINDOW = (1280, 800)
BEGIN = (
    "<!-- BEGIN settings reference: generated from pipeline.config.SCHEMA by "
    "`python -m pipeline settings-doc`; do not edit by hand -->"
)
END = "<!-- END settings reference -->"


def toml_value(value: Any) -> str:
    """A default value written as it would be in ``pipeline.toml``.

    Parameters
    ----------
    value : object
        A default of :data:`~pipeline.config.SCHEMA`: text, number, boolean, list or table.

    Returns
    -------
    str
        The TOML spelling (``"cog"``, ``20000.0``, ``true``, ``[7.0, 10.5]``, ``{ 971 = 5490 }``).
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    return repr(value)


def type_name(key: Key) -> str:
    """The type of a key as the reference shows it: ``int``, ``list of str``, or ``input``."""
    if key.item and key.kind in ("list", "table"):
        return f"{key.kind} of {key.item}"
    return key.kind


def default_cell(key: Key) -> str:
    """The default column of a key: its TOML value, or *required* when the file must give it."""
    if key.default is REQUIRED:
        return "*required*"
    if key.kind == "input" and key.default == "":
        return '`""` (none)'
    return f"`{toml_value(key.default)}`"


def cell(text: str) -> str:
    """Text made safe inside a Markdown table cell.

    A ``|`` would end the cell and ``<code>`` would be read as an HTML tag: both are escaped.
    """
    return text.replace("|", "\\|").replace("<", "\\<")


def sections(schema: Section, path: str = "") -> Iterator[tuple[str, Section]]:
    """Every section of ``schema`` with its dotted name, parents before their subsections.

    Parameters
    ----------
    schema : Section
        The root (:data:`~pipeline.config.SCHEMA`) or any section of it.
    path : str, optional
        Dotted name of ``schema`` itself (``""`` for the root, which is not yielded).

    Yields
    ------
    tuple of (str, Section)
        ``("territories", ...)``, ``("maps.overview", ...)``; a free section's entries are named
        ``<name>`` (``"sources.<name>"``).
    """
    if path:
        yield path, schema
    for name, sub in schema.keys.items():
        if isinstance(sub, Section):
            yield from sections(sub, f"{path}.{name}" if path else name)
    if isinstance(schema.free, Section):
        yield from sections(schema.free, f"{path}.<name>" if path else "<name>")


def section_table(path: str, section: Section) -> list[str]:
    """The Markdown lines of one section: its heading, and a table of its keys (if it has any).

    Parameters
    ----------
    path : str
        Dotted name of the section (``"indicators.e2sfca"``).
    section : Section
        Its schema.

    Returns
    -------
    list of str
        Lines without their newlines; an empty table is left out (a section holding only
        subsections gets its heading alone).
    """
    title = f"### `[{path}]`"
    notes = []
    if not section.optional:
        notes.append("required section")
    if section.doc:
        notes.append(section.doc)
    lines = [title + (f" ({'; '.join(notes)})" if notes else ""), ""]
    keys = [(name, key) for name, key in section.keys.items() if isinstance(key, Key)]
    if isinstance(section.free, Key):
        keys.append(("<name>", section.free))
    if keys:
        lines += ["| key | type | default | description |", "|---|---|---|---|"]
        lines += [
            f"| `{name}` | {type_name(key)} | {cell(default_cell(key))} | {cell(key.doc)} |"
            for name, key in keys
        ]
    else:
        names = [n for n, sub in section.keys.items() if isinstance(sub, Section)]
        names += ["<name>"] if isinstance(section.free, Section) else []
        lines.append("Holds " + ", ".join(f"`[{path}.{n}]`" for n in names) + ".")
    return lines + [""]


def settings_reference(schema: Section = SCHEMA) -> str:
    """The generated block of ``docs/settings.md``: one table per section, in the schema's order.

    Parameters
    ----------
    schema : Section, optional
        The settings schema (:data:`~pipeline.config.SCHEMA` by default).

    Returns
    -------
    str
        Markdown from the :data:`BEGIN` marker line to the :data:`END` one, ending with a newline.
    """
    lines = [BEGIN, ""]
    for path, section in sections(schema):
        lines += section_table(path, section)
    return "\n".join(lines + [END]) + "\n"


def settings_page(text: str, schema: Section = SCHEMA) -> str:
    """``text`` (the page) with its reference block replaced by :func:`settings_reference`.

    Parameters
    ----------
    text : str
        The current page, holding the :data:`BEGIN` and :data:`END` marker lines once each.
    schema : Section, optional
        The settings schema.

    Returns
    -------
    str
        The page with the text before and after the block unchanged.

    Raises
    ------
    PipelineError
        When the markers are missing, repeated or out of order (the block cannot be found).
    """
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise PipelineError(
            f"{PAGE.name}: the settings reference markers are missing or repeated; put the lines "
            f"{BEGIN!r} and {END!r} once each where the reference goes"
        )
    before, rest = text.split(BEGIN, 1)
    after = rest.split(END, 1)[1]
    return before + settings_reference(schema).rstrip("\n") + after


def write_settings_page(page: Path = PAGE) -> bool:
    """Rewrite the reference block of ``page`` from the schema.

    Parameters
    ----------
    page : Path, optional
        The page (``docs/settings.md`` of the repository by default).

    Returns
    -------
    bool
        True when the page changed, False when it was already up to date (left untouched).

    Raises
    ------
    PipelineError
        When the page does not exist or its markers cannot be found.
    """
    if not page.is_file():
        raise PipelineError(f"{page}: no settings page to update (run from a clone of the repo)")
    text = page.read_text(encoding="utf-8")
    new = settings_page(text)
    if new == text:
        return False
    write_text(page, new)
    return True


def _wait_for_map(driver, path: Path) -> None:
    """Open a generated map and wait until its Leaflet map and composer are ready."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(path.as_uri())
    WebDriverWait(driver, 60).until(
        lambda d: d.execute_script("return !!window.cptsMap && !!window.cptsComposer")
    )
    time.sleep(1.0)  # the last polygons are drawn after the map object exists


def _save(driver, target: Path) -> Path:
    """Save the browser's viewport as a PNG of at most 256 colours (a few hundred kB at most)."""
    from io import BytesIO

    from PIL import Image

    image = Image.open(BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    image = image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    target.parent.mkdir(parents=True, exist_ok=True)
    image.save(target, optimize=True)
    return target


def largest_candidate(settings: Settings) -> pd.Series:
    """The candidate territory with the most communes (ties: the most inhabitants, the smaller id).

    Parameters
    ----------
    settings : Settings
        The run whose ``territories.parquet`` is read.

    Returns
    -------
    pandas.Series
        Its row, with its ``geometry`` in WGS84 degrees.

    Raises
    ------
    PipelineError
        When the run proposed no candidate (nothing to show in the composer).
    """
    import geopandas as gpd

    territories = gpd.read_parquet(stages.territory_paths(settings)["territories"])
    candidates = territories[territories["type_territoire"] == "candidate"].to_crs(4326)
    if candidates.empty:
        raise PipelineError("the run proposed no candidate territory: nothing to compose")
    order = ["n_communes", "population", "id_territoire"]
    return candidates.sort_values(order, ascending=[False, False, True]).iloc[0]


def first_zone(settings: Settings) -> Path:
    """The report page of the white zone ranked first by the priority score.

    Parameters
    ----------
    settings : Settings
        The run whose ``priority.csv`` and reports are read.

    Returns
    -------
    Path
        ``reports/zones_blanches/<zone>.html``.
    """
    priority = pd.read_csv(stages.profile_paths(settings)["priority"], dtype={"rang": int})
    zone = priority.sort_values(["rang", "id_zone_blanche"])["id_zone_blanche"].iloc[0]
    return stages.export_paths(settings)["zones"] / f"{zone}.html"


def screenshots(settings: Settings, folder: Path = IMAGES) -> list[Path]:
    """Take the front page's three screenshots from the outputs of a run.

    The viewport is 1280×800 and the browser can reach no network
    (:func:`~pipeline.outputs.browser.offline_chromium`): ``region_map.png`` is the scope's
    overview map as it opens, ``composer.png`` the same map with the composer open on the
    candidate territory of the most communes, and ``white_zone_report.png`` the top of the report
    page of the white zone ranked first.

    Parameters
    ----------
    settings : Settings
        The run (after ``make diagnose``) whose maps and reports are shown.
    folder : Path, optional
        Where the PNGs go (``docs/img`` by default).

    Returns
    -------
    list of Path
        The three files written.

    Raises
    ------
    PipelineError
        When an output is missing (run ``make diagnose`` first).
    """
    from .outputs.browser import offline_chromium

    paths = stages.export_paths(settings)
    report = first_zone(settings) if stages.profile_paths(settings)["priority"].exists() else None
    for path in (paths["map"], report):
        if path is None or not path.exists():
            raise PipelineError(f"{path or 'priority.csv'}: missing; run `make diagnose` first")
    driver = offline_chromium()
    try:
        driver.set_window_size(*WINDOW)
        width, height = WINDOW
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        written = []
        _wait_for_map(driver, paths["map"])
        written.append(_save(driver, folder / "region_map.png"))

        candidate = largest_candidate(settings)
        west, south, east, north = candidate["geometry"].bounds
        driver.execute_script("localStorage.clear()")
        _wait_for_map(driver, paths["map"])
        driver.execute_script(
            "window.cptsComposer.open(true);"
            "var s = document.getElementById('cc-from'); s.value = arguments[0];"
            "document.getElementById('cc-start').click();"
            "window.cptsMap.fitBounds([[arguments[1], arguments[2]], [arguments[3], arguments[4]]],"
            " {paddingTopLeft: [420, 80], paddingBottomRight: [380, 80], animate: false});",
            candidate["id_territoire"],
            south,
            west,
            north,
            east,
        )
        time.sleep(1.0)
        written.append(_save(driver, folder / "composer.png"))

        driver.get(report.as_uri())
        time.sleep(1.0)
        written.append(_save(driver, folder / "white_zone_report.png"))
        return written
    finally:
        driver.quit()


def main(argv: list[str] | None = None) -> int:
    """``python -m pipeline.docs screenshots [--config FILE] [--scope SCOPE]``: the PNGs.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (``sys.argv[1:]`` by default).

    Returns
    -------
    int
        0 when the screenshots were written, 2 on a missing output (the message says what to do).
    """
    import argparse

    parser = argparse.ArgumentParser(prog="python -m pipeline.docs")
    parser.add_argument("command", choices=["screenshots"])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--scope", default=None, help="the run's scope, as for the stages")
    args = parser.parse_args(argv)
    try:
        for path in screenshots(load_settings(args.config, scope=args.scope)):
            print(f"{path}: {path.stat().st_size / 1000:.0f} kB")
    except PipelineError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
