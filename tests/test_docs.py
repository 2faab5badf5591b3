"""The documentation that follows a declaration: the settings reference of docs/settings.md is
generated from config.SCHEMA (as stages.mk is from the stage table), the pages link to files
that exist, and the front page's screenshots are taken from a run's outputs."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from pipeline import docs, stages
from pipeline.config import REQUIRED, SCHEMA, Key, Section, load_settings
from pipeline.errors import PipelineError
from pipeline.outputs.browser import chromium_paths

from .conftest import REPO, write_config


def test_settings_page_is_generated_from_the_schema():
    text = (REPO / "docs" / "settings.md").read_text(encoding="utf-8")
    assert text == docs.settings_page(text), (
        "docs/settings.md is stale: run `python -m pipeline settings-doc`"
    )


def schema_keys(schema: Section, path: str = "") -> list[tuple[str, str, Key]]:
    found = []
    for name, sub in schema.keys.items():
        inner = f"{path}.{name}" if path else name
        if isinstance(sub, Section):
            found += schema_keys(sub, inner)
        else:
            found.append((path, name, sub))
    if isinstance(schema.free, Section):
        found += schema_keys(schema.free, f"{path}.<name>")
    return found


def test_every_key_of_the_schema_has_its_row_under_its_section():
    reference = docs.settings_reference()
    blocks = dict(re.findall(r"### `\[([^\]]+)\]`[^\n]*\n(.*?)(?=\n### |\Z)", reference, re.S))
    keys = schema_keys(SCHEMA)
    assert len(keys) > 60
    for section, name, key in keys:
        rows = [r for r in blocks[section].splitlines() if r.startswith(f"| `{name}` |")]
        assert len(rows) == 1, (section, name)
        assert key.doc.replace("<", "\\<") in rows[0], (section, name)
        if key.default is REQUIRED:
            assert "*required*" in rows[0]


def test_reference_writes_defaults_as_toml():
    territories = docs.section_table("territories", SCHEMA.keys["territories"])
    assert "| `floor` | float | `10000.0` | minimum population of a candidate territory |" in (
        territories
    )
    assert "| `cross_departements` | bool | `true` |" in "\n".join(territories)
    assert docs.toml_value({"971": 5490}) == "{ 971 = 5490 }"
    assert docs.toml_value(["SM54", True, 0.5]) == '["SM54", true, 0.5]'


def test_a_new_key_makes_the_page_stale_and_the_rest_is_kept():
    page = f"intro\n\n{docs.BEGIN}\nold\n{docs.END}\n\noutro\n"
    grown = replace(
        SCHEMA,
        keys={**SCHEMA.keys, "extra": Section({"answer": Key("int", 42, "a new key | pipe")})},
    )
    new = docs.settings_page(page, grown)
    assert new.startswith("intro\n\n" + docs.BEGIN) and new.endswith(docs.END + "\n\noutro\n")
    assert "| `answer` | int | `42` | a new key \\| pipe |" in new
    assert new != docs.settings_page(page)
    assert docs.settings_page(new, grown) == new


@pytest.mark.parametrize(
    "page", ["no markers", f"{docs.END}\n{docs.BEGIN}", f"{docs.BEGIN}\n{docs.BEGIN}\n{docs.END}"]
)
def test_a_page_without_its_markers_is_refused(page):
    with pytest.raises(PipelineError, match="markers"):
        docs.settings_page(page)


def test_write_settings_page_rewrites_only_a_stale_page(tmp_path):
    page = tmp_path / "settings.md"
    page.write_text(f"# Settings\n{docs.BEGIN}\n{docs.END}\n", encoding="utf-8")
    assert docs.write_settings_page(page) is True
    assert "### `[scope]` (required section)" in page.read_text(encoding="utf-8")
    assert docs.write_settings_page(page) is False


PAGES = sorted([REPO / "README.md", *(REPO / "docs").glob("*.md")])


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_of_the_docs_lead_to_files(page):
    text = page.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    # docs/errors.md is written by the robustness work (issue 22), merged separately
    missing = [
        t
        for t in targets
        if "://" not in t and not (page.parent / t).exists() and not t.endswith("errors.md")
    ]
    assert not missing, f"{page.name} links to missing files: {missing}"


def png_size(path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", path
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


def test_screenshots_of_a_run(tmp_path, raw):
    """On Aude alone, into a temporary folder (docs/img is rewritten only by make screenshots)."""
    if not all(chromium_paths()):
        pytest.skip("no chromium/chromedriver on this machine (.ci/run installs them)")
    settings = load_settings(write_config(tmp_path / "run", scope="departements:11"))
    with pytest.raises(PipelineError, match="make diagnose"):
        docs.screenshots(settings, tmp_path / "img")
    stages.run_until(settings, "export")
    written = docs.screenshots(settings, tmp_path / "img")
    assert [p.name for p in written] == ["region_map.png", "composer.png", "white_zone_report.png"]
    for path in written:
        assert png_size(path) == docs.WINDOW, path.name
        assert 10_000 < path.stat().st_size < 300_000, path.name
    assert len({p.read_bytes() for p in written}) == 3, "three different pictures"
    priority = stages.profile_paths(settings)["priority"].read_text(encoding="utf-8")
    first = priority.splitlines()[1].split(",")
    assert first[1] == "1" and docs.first_zone(settings).name == f"{first[0]}.html"
    candidate = docs.largest_candidate(settings)
    assert candidate["type_territoire"] == "candidate"
    assert -5 < candidate["geometry"].bounds[0] < 10, "bounds in degrees for the map"


def test_the_realism_table_of_the_docs_is_the_benchmark_s():
    # docs/territories.md quotes the realism section of bench/results/summary.md (written by
    # `make bench`): a benchmark re-run that changes a figure makes the page stale.
    summary = (REPO / "bench" / "results" / "summary.md").read_text(encoding="utf-8")
    start = summary.index("Development set: 35 real CPTS")
    block = summary[start : summary.index("\n## ", start)].strip()
    page = (REPO / "docs" / "territories.md").read_text(encoding="utf-8")
    assert block in page, (
        "docs/territories.md: copy the realism section of bench/results/summary.md"
    )
