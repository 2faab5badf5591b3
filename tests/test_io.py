"""Atomic writes and stage manifests: a failed write leaves the previous file or folder as it was;
a manifest notices a changed input, setting, code or output."""

from __future__ import annotations

import pytest

from pipeline.io import (
    Manifest,
    atomic_path,
    read_geoparquet,
    replace_dir,
    sha256_file,
    write_parquet,
    write_text,
)


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path):
    target = write_text(tmp_path / "out.txt", "previous")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half written")
        raise RuntimeError("disk full")
    assert target.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_a_folder_is_swapped_whole_or_not_at_all(tmp_path):
    target = tmp_path / "maps"

    def first(folder):
        (folder / "a.html").write_text("a")
        (folder / "stale.html").write_text("old")

    replace_dir(target, first)

    def failing(folder):
        (folder / "a.html").write_text("new a")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        replace_dir(target, failing)
    assert sorted(p.name for p in target.iterdir()) == ["a.html", "stale.html"]
    replace_dir(target, lambda folder: (folder / "a.html").write_text("new a"))
    assert [p.name for p in target.iterdir()] == ["a.html"], "no stale file from the earlier run"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["maps"], "no temporary folder left"


def test_manifest_notices_inputs_settings_and_outputs(tmp_path):
    source, output = tmp_path / "in.csv", tmp_path / "out.csv"
    source.write_text("a")
    output.write_text("x")

    def manifest(settings="s1"):
        return Manifest(tmp_path, "stage", inputs=[source], settings=settings, outputs=[output])

    assert not manifest().up_to_date(), "never recorded"
    manifest().record()
    assert manifest().up_to_date()
    assert not manifest("s2").up_to_date(), "a setting changed"
    source.write_text("b")
    assert not manifest().up_to_date(), "an input changed"
    manifest().record()
    output.write_text("edited by hand")
    assert not manifest().up_to_date(), "an output changed"
    output.unlink()
    assert not manifest().up_to_date(), "an output is missing"


def test_a_file_rewritten_in_place_at_once_is_hashed_again(tmp_path):
    path = tmp_path / "perimetres.csv"
    path.write_text("cpts_id;code_commune\nA;34001\n", encoding="utf-8")
    first = sha256_file(path)
    path.write_text("cpts_id;code_commune\nB;34001\n", encoding="utf-8")  # same size, same inode
    assert sha256_file(path) != first


def test_a_geoparquet_read_twice_is_a_copy_and_a_replaced_file_is_read_again(tmp_path):
    import geopandas as gpd
    import shapely

    path = tmp_path / "t.parquet"
    frame = gpd.GeoDataFrame(
        {"code": ["a", "b"]}, geometry=shapely.points([0, 1], [0, 1]), crs=2154
    )
    write_parquet(path, frame)
    read = read_geoparquet(path)
    read["code"] = ["changed", "changed"]
    assert read_geoparquet(path)["code"].tolist() == ["a", "b"], "the caller changed a copy"
    write_parquet(path, frame.assign(code=["c", "d"]))  # a new file renamed over the old one
    assert read_geoparquet(path)["code"].tolist() == ["c", "d"]
