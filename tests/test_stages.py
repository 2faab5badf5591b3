"""The stage table is the one declaration of the stages: the command line, the Makefile's stage
targets (stages.mk), the order of `diagnose` and the stage table of docs/outputs.md all follow
it."""

from __future__ import annotations

import re

from pipeline import cli, stages

from .conftest import REPO


def test_stages_mk_is_generated_from_the_table(repo_settings):
    assert (REPO / "stages.mk").read_text(encoding="utf-8") == stages.makefile(
        repo_settings
    ) + "\n", "stages.mk is stale: run `python -m pipeline makefile > stages.mk`"


def test_make_dependencies_are_the_data_the_stage_reads(repo_settings):
    needs = {s.name: stages.depends_on(repo_settings, s) for s in stages.STAGES}
    assert needs["perimeters"] == ["data", "communes"], "perimeters reads no indicator"
    assert needs["territories"] == ["indicators", "coverage"]
    assert needs["data"] == []


def test_command_line_offers_every_stage_with_its_summary(capsys):
    parser = cli.build_parser()
    help_text = parser.format_help()
    for stage in stages.STAGES:
        assert re.search(
            rf"\n\s+{stage.name}\s+{re.escape(stage.summary.split()[0])}", help_text
        ), stage.name
        assert parser.parse_args([stage.name]).stage == stage.name


def docs_stage_rows() -> list[list[str]]:
    text = (REPO / "docs" / "outputs.md").read_text(encoding="utf-8")
    table = text.split("## What a run does (stages)", 1)[1].split("\n\n", 2)[1]
    rows = [
        [cell.strip() for cell in line.strip("|").split("|")] for line in table.splitlines()[2:]
    ]
    return rows


def test_docs_stage_table_matches_the_table(repo_settings):
    rows = docs_stage_rows()
    assert [r[0].strip("`") for r in rows] == [s.name for s in stages.STAGES]
    slug = str(repo_settings.scope).replace(":", "-").replace(",", "-")
    for row, stage in zip(rows, stages.STAGES):
        assert row[1] == f"`make {stage.name}`"
        for path in stage.outputs(repo_settings).values():
            name = path.name.replace(slug, "<scope>")
            assert name in row[3] or path.parent.name in row[3], (stage.name, name)
