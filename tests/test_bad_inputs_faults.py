"""Bad inputs, part 3 (issue 22): settings refused with what to write, and what a machine does —
another run at the same time, a file rewritten while it is read, a full disk, a linked folder, a
damaged cache copy, Ctrl-C at start-up, leftovers of a killed run.

Each case runs ``python -m pipeline`` (``cli.main``) on Lozère and asserts the exit status, the one
message line and, where the run fails, that every previous output is byte-identical.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline import io, stages
from pipeline.config import load_settings, write_settings_copy
from tests.test_bad_inputs import (
    SCOPE,
    assert_one_clear_line,
    build_good_run,
    case,
    check_case,
    output_hashes,
    replace,
    run_bad,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def good_run(tmp_path_factory, raw):
    """The good run of this module (:func:`tests.test_bad_inputs.build_good_run`)."""
    return build_good_run(tmp_path_factory)


def copy_run(good: Path, folder: Path) -> Path:
    """A copy of the good run (settings and every output) in ``folder``, for the cases that change
    the folders themselves."""
    config = write_settings_copy(good, folder, scope=SCOPE)
    for key, source in load_settings(good).output_dirs.items():
        shutil.copytree(source, load_settings(config).output_dirs[key], symlinks=True)
    return config


# ---------------------------------------- settings refused with what to write

CASES = [
    case(
        "geographic CRS",
        replace("crs_metropole = 2154", "crs_metropole = 4326"),
        r"\[communes\] crs_metropole = 4326: EPSG:4326 \(WGS 84\) is not a projected CRS in "
        r"metres.*write a projected CRS, e.g. 2154 \(Lambert-93\)",
    ),
    case(
        "unknown EPSG",
        replace("crs_metropole = 2154", "crs_metropole = 99999"),
        r"\[communes\] crs_metropole = 99999: EPSG:99999 is not a known EPSG code; write a "
        "projected CRS in metres, e.g. 2154",
    ),
    case(
        "geographic CRS for a DROM",
        replace('"973" = 2972', '"973" = 4326'),
        r"\[communes\] crs_drom = .*973: EPSG:4326 \(WGS 84\) is not a projected CRS",
    ),
    case(
        "target below the floor",
        lambda text, ctx: replace('objective = "realistic"', 'objective = "max_count"')(
            replace("target_population = 0", "target_population = 5000")(text, ctx), ctx
        ),
        r"\[territories\] target_population: target_population \(5000\) is below floor "
        r"\(10000\): write 0 .* or a population of at least the floor",
    ),
]


@pytest.mark.parametrize("edit, code, pattern", CASES)
def test_setting_refused_with_what_to_write(good_run, tmp_path, capsys, edit, code, pattern):
    check_case(good_run, tmp_path, capsys, edit, code, pattern)


def test_empty_scope_is_refused_not_replaced_by_the_settings(good_run, capsys):
    before = output_hashes(good_run)
    status, printed = run_bad(good_run, ["--scope", "", "diagnose"], capsys)
    assert status == 2, printed
    assert_one_clear_line(
        printed, r"--scope: scope '' is not understood: write 'france', 'region:<code>'"
    )
    assert output_hashes(good_run) == before


# ---------------------------------------- one run at a time

HOLD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from pipeline.io import output_lock
    folders = {"processed": Path(sys.argv[1])}
    with output_lock(folders, wait=0):
        print("held", flush=True)
        time.sleep(60)
    """
)


def test_a_second_run_waits_then_names_the_holder(good_run, monkeypatch, capsys):
    settings = load_settings(good_run)
    before = output_hashes(good_run)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(settings.processed_dir)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        monkeypatch.setattr(io, "LOCK_WAIT_S", 0.3)
        status, printed = run_bad(good_run, ["diagnose"], capsys)
    finally:
        holder.kill()
        holder.wait()
    assert status == 3, printed
    assert_one_clear_line(
        printed,
        rf"\.lock: the output folders \(.*processed, .*maps, .*reports\) are in use by another "
        rf"run \(pid {holder.pid} since .* UTC\); wait for it to end and run again",
    )
    assert output_hashes(good_run) == before
    status, printed = run_bad(good_run, ["diagnose"], capsys)  # the holder is gone: free again
    assert status == 0, printed


def test_a_stale_lock_is_taken_over(good_run, capsys):
    settings = load_settings(good_run)
    before = output_hashes(good_run)
    lock = settings.processed_dir / io.LOCK_NAME
    lock.write_text(json.dumps({"pid": 999999, "since": "2026-01-01 00:00:00 UTC"}))
    status, printed = run_bad(good_run, ["diagnose"], capsys)
    assert status == 0, printed
    assert (
        "note: took over the lock on the output folders left by pid 999999 since 2026-01-01 "
        "00:00:00 UTC (no longer held)" in printed
    )
    assert lock.read_text() == "", "released at the end"
    assert output_hashes(good_run) == before


# ---------------------------------------- never stale


def perimeter_file(folder: Path, codes: list[str]) -> Path:
    path = folder / "cpts.csv"
    rows = "".join(f"A;CPTS Alpha;{c}\n" for c in codes)
    path.write_text("cpts_id;cpts_nom;code_commune\n" + rows, encoding="utf-8")
    return path


def with_perimeters(good: Path, folder: Path, codes: list[str]) -> tuple[Path, Path]:
    config = write_settings_copy(good, folder / "run", scope=SCOPE)
    given = perimeter_file(folder, codes)
    text = config.read_text(encoding="utf-8").replace('file = ""', f'file = "{given}"', 1)
    config.write_text(text, encoding="utf-8")
    return config, given


def test_a_file_rewritten_while_read_is_not_recorded(good_run, tmp_path, monkeypatch, capsys):
    """Mende alone, rewritten to Mende and Badaroux while the stage reads it: the run says so and
    the next one rebuilds from the new content (not 'up to date')."""
    from pipeline.analysis import perimeters

    config, given = with_perimeters(good_run, tmp_path, ["48095"])
    real = perimeters.read_perimeter_table

    def read_then_rewritten(path):
        result = real(path)
        perimeter_file(tmp_path, ["48095", "48017"])
        return result

    monkeypatch.setattr(perimeters, "read_perimeter_table", read_then_rewritten)
    status, printed = run_bad(config, ["diagnose"], capsys)
    assert status == 2, printed
    assert_one_clear_line(
        printed,
        r"cpts\.csv: changed while the perimeters stage was reading it; its outputs come from "
        r"the earlier content .*run again once the file is complete",
    )
    monkeypatch.setattr(perimeters, "read_perimeter_table", real)
    status, printed = run_bad(config, ["diagnose"], capsys)
    assert status == 0 and "perimeters: up to date" not in printed, printed
    members = io.read_csv(stages.perimeter_paths(load_settings(config))["members"])
    assert sorted(members["code_commune"]) == ["48017", "48095"]


def test_a_stage_run_alone_rebuilds_its_stale_upstream(good_run, tmp_path, capsys):
    config, given = with_perimeters(good_run, tmp_path, ["48095"])
    assert run_bad(config, ["diagnose"], capsys)[0] == 0
    perimeter_file(tmp_path, ["48095", "48017"])  # the user edits the perimeters
    status, printed = run_bad(config, ["export"], capsys)
    assert status == 0, printed
    assert "communes: up to date" in printed and "perimeters: up to date" not in printed
    cpts = pd.read_parquet(stages.coverage_paths(load_settings(config))["cpts"])
    assert cpts["n_communes"].tolist() == [2], "export drew the new perimeters"


# ---------------------------------------- faults of the machine


@pytest.mark.parametrize(
    "where, folder",
    [
        ("map", "maps"),
        ("report workbook", "reports"),
        ("GeoPackage", "processed"),
    ],
)
def test_disk_full_exits_3_naming_the_folder(good_run, monkeypatch, capsys, where, folder):
    import pyogrio

    from pipeline.outputs import zone_reports

    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    if where == "map":  # the disk fills up while a map page is written
        real = Path.write_text

        def write_text(path, *args, **kwargs):
            if path.suffix == ".html" and ".carte_" in path.name:
                full()
            return real(path, *args, **kwargs)

        monkeypatch.setattr(Path, "write_text", write_text)
    else:
        module, name = (
            (zone_reports, "write_xlsx")
            if where == "report workbook"
            else (pyogrio, "write_dataframe")
        )
        monkeypatch.setattr(module, name, full)
    before = output_hashes(good_run)
    status, printed = run_bad(good_run, ["--force", "export"], capsys)
    assert status == 3, printed
    line = assert_one_clear_line(
        printed,
        rf"cannot write to the output folder .*{folder} \(No space left on device\); free some "
        rf"space on its disk, or change \[paths\] {folder}",
    )
    assert str(load_settings(good_run).output_dirs[folder].resolve()) in line
    assert output_hashes(good_run) == before


@pytest.mark.parametrize("link", ["maps/departements", "reports/zones_blanches"])
def test_a_linked_output_folder_is_written_through(good_run, tmp_path, capsys, link):
    config = copy_run(good_run, tmp_path / "run")
    linked = tmp_path / "run" / link
    elsewhere = tmp_path / "shared_drive" / linked.name
    elsewhere.parent.mkdir()
    shutil.move(linked, elsewhere)
    linked.symlink_to(elsewhere, target_is_directory=True)
    before = sorted(p.name for p in elsewhere.iterdir())
    status, printed = run_bad(config, ["--force", "export"], capsys)
    assert status == 0, printed
    assert linked.is_symlink() and linked.resolve() == elsewhere.resolve(), "link kept"
    assert sorted(p.name for p in elsewhere.iterdir()) == before
    assert [p.name for p in elsewhere.parent.iterdir()] == [linked.name], "no leftover"


def test_damaged_cache_copies_are_recomputed(good_run, tmp_path, capsys):
    """Every copy in .cache truncated: the run recomputes them and its outputs are unchanged."""
    config = copy_run(good_run, tmp_path / "run")
    cache = load_settings(config).cache_dir
    before = {k: v for k, v in output_hashes(config).items() if "/.cache/" not in k}
    copies = sorted(p for p in cache.iterdir() if p.suffix in (".npz", ".parquet"))
    assert {p.suffix for p in copies} == {".npz", ".parquet"}
    for copy in copies:
        copy.write_bytes(copy.read_bytes()[: copy.stat().st_size // 2])
    status, printed = run_bad(config, ["--force", "diagnose"], capsys)
    assert status == 0, printed
    assert {k: v for k, v in output_hashes(config).items() if "/.cache/" not in k} == before


def test_a_valid_cache_copy_of_other_data_is_not_used(tmp_path):
    calls = []

    def compute(value):
        def run():
            calls.append(value)
            return {"a": np.full(3, value)}

        return run

    io.cached_arrays(compute(1), cache=tmp_path, name="x", key="scope-one")
    (tmp_path / "x.scope-one.npz").rename(tmp_path / "x.scope-two.npz")  # another scope's copy
    got = io.cached_arrays(compute(2), cache=tmp_path, name="x", key="scope-two")
    assert calls == [1, 2] and got["a"].tolist() == [2, 2, 2]
    frame = pd.DataFrame({"code": ["48095"]})
    io.cached_frame(lambda: frame, cache=tmp_path, name="t", key="k1")
    (tmp_path / "t.k1.parquet").rename(tmp_path / "t.k2.parquet")
    other = io.cached_frame(lambda: frame.assign(code="11069"), cache=tmp_path, name="t", key="k2")
    assert other["code"].tolist() == ["11069"]


STARTUP = textwrap.dedent(
    """
    import runpy, sys

    class Interrupt:  # Ctrl-C while the heavy libraries load
        def find_spec(self, name, path=None, target=None):
            if name == "geopandas":
                raise KeyboardInterrupt
            return None

    sys.meta_path.insert(0, Interrupt())
    sys.argv = ["pipeline", "--config", sys.argv[1], "communes"]
    runpy.run_module("pipeline", run_name="__main__")
    """
)


def test_ctrl_c_during_start_up_is_one_line_and_exit_130(good_run):
    before = output_hashes(good_run)
    done = subprocess.run(
        [sys.executable, "-c", STARTUP, str(good_run)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    printed = done.stdout + done.stderr
    assert done.returncode == 130, printed
    assert "Traceback" not in printed
    assert printed.strip().splitlines()[-1].startswith("interrupted")
    assert len(printed.strip().splitlines()) == 1, printed
    assert output_hashes(good_run) == before


def test_leftovers_of_a_killed_export_are_removed(good_run, tmp_path, capsys):
    config = copy_run(good_run, tmp_path / "run")
    settings = load_settings(config)
    before = output_hashes(config)
    left = [
        settings.maps_dir / ".carte_departements-48.k3j2_x.tmp.html",
        settings.processed_dir / ".diagnostic.a8b2.tmp.gpkg",
        settings.cache_dir / ".adjacency.x1y2.tmp.npz",
    ]
    for path in left:
        path.write_bytes(b"half written")
    folders = [
        settings.maps_dir / ".departements.q1w2e3r4.tmp",
        settings.reports_dir / ".zones_blanches.tmp.old",
    ]
    for folder in folders:
        folder.mkdir()
        (folder / "carte_48.html").write_text("half")
    status, printed = run_bad(config, ["diagnose"], capsys)
    assert status == 0, printed
    assert not any(p.exists() for p in left + folders)
    assert output_hashes(config) == before, "nothing else touched"


# ---------------------------------------- a writer that fails half-way


def half_then_full(path) -> None:
    """What a full disk does to a writer: part of the file written, then ENOSPC."""
    Path(path).write_bytes(b"PAR1 half written")
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("writer", ["parquet", "csv", "geopackage"])
def test_a_writer_failing_half_way_leaves_the_previous_file(tmp_path, monkeypatch, writer):
    """Caught if write_atomic wrote straight to its target."""
    import geopandas as gpd
    import pyogrio
    import shapely

    frame = gpd.GeoDataFrame({"code": ["48095"]}, geometry=[shapely.box(0, 0, 1, 1)], crs=2154)
    table = pd.DataFrame(frame.drop(columns="geometry"))
    write = {
        "parquet": lambda: io.write_parquet(tmp_path / "t.parquet", frame),
        "csv": lambda: io.write_csv(tmp_path / "t.csv", table),
        "geopackage": lambda: io.write_geopackage(tmp_path / "t.gpkg", {"communes": frame}),
    }[writer]
    target = write()
    previous = target.read_bytes()
    if writer == "parquet":
        monkeypatch.setattr(io, "_to_parquet", lambda path, _frame: half_then_full(path))
    elif writer == "csv":
        monkeypatch.setattr(pd.DataFrame, "to_csv", lambda _self, path, **_kw: half_then_full(path))
    else:
        monkeypatch.setattr(
            pyogrio, "write_dataframe", lambda _f, path, **_kw: half_then_full(path)
        )
    with pytest.raises(OSError) as raised:
        write()
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(target)
    assert target.read_bytes() == previous
    assert [p.name for p in tmp_path.iterdir()] == [target.name], "no temporary file left"
