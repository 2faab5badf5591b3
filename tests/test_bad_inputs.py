"""The catalogue of bad inputs (issue 15): each case runs ``python -m pipeline`` (``cli.main``) on a
small scope (Lozère) whose outputs were built once, and asserts

* the exit status,
* one clear line: an ``error:`` line naming the file or key and what to do, and no traceback,
* that every previous output is byte-identical afterwards.

Adding a case is one line in :data:`CASES`: an id, how to spoil the run (an edit of the settings
text, usually naming a bad input file written by a small maker function), the expected status and
a pattern the error line must match. The bad files are written here in the published layouts.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

from pipeline import cli, stages
from pipeline.analysis.coverage import OVERLAP_COLUMNS
from pipeline.config import load_settings, write_settings_copy

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
SCOPE = "departements:48"  # Lozère: 152 communes, a full run takes seconds


# ---------------------------------------- the good run, built once


def build_good_run(tmp_path_factory) -> Path:
    """Settings copy with every output in a temporary folder, after one successful diagnosis."""
    folder = tmp_path_factory.mktemp("good_run")
    config = write_settings_copy(REPO / "pipeline.toml", folder, scope=SCOPE)
    assert cli.main(["--config", str(config), "diagnose"]) == 0
    return config


@pytest.fixture(scope="module")
def good_run(tmp_path_factory, raw):
    """The good run of this module (:func:`build_good_run`)."""
    return build_good_run(tmp_path_factory)


def output_hashes(config: Path) -> dict[str, str]:
    """sha256 of every output file of the run.

    The stage manifests are left out: a stage that succeeds before the failing one records the
    settings it ran with (e.g. ``indicators`` reads ``[perimeters]``), its outputs staying
    identical. So is the run's lock file (``.lock``), which holds the pid of a run, not an output.
    """
    settings = load_settings(config)
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest()
        for folder in settings.output_dirs.values()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and ".manifests" not in p.parts and p.name != ".lock"
    }


def run_bad(config: Path, args: list[str], capsys) -> tuple[int, str]:
    """Run the CLI; return its status and everything it printed."""
    capsys.readouterr()
    code = cli.main(["--config", str(config), *args])
    out = capsys.readouterr()
    return code, out.out + out.err


def assert_one_clear_line(printed: str, pattern: str) -> str:
    """Exactly one ``error:`` line (or one line per problem of the settings),
    matching ``pattern``.
    """
    assert "Traceback" not in printed, printed
    errors = [line for line in printed.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, printed
    assert re.search(pattern, errors[0]), f"{pattern!r} not in {errors[0]!r}"
    return errors[0]


# ---------------------------------------- spoiling the settings


@dataclass(frozen=True)
class Context:
    """Where a case writes its files, and the good run's settings."""

    folder: Path
    good: Path


def replace(old: str, new: str) -> Callable[[str, Context], str]:
    """An edit of the settings text: the first ``old`` becomes ``new``."""

    def edit(text: str, _ctx: Context) -> str:
        assert old in text, old
        return text.replace(old, new, 1)

    return edit


def set_input(key: str, maker: Callable[[Context], Path]) -> Callable[[str, Context], str]:
    """An edit naming the file written by ``maker(ctx)`` in ``key = ""`` (``key`` unique in the
    file).
    """

    def edit(text: str, ctx: Context) -> str:
        path = maker(ctx)
        return replace(f'{key} = ""', f'{key} = "{path.as_posix()}"')(text, ctx)

    return edit


def a_folder(ctx: Context) -> Path:
    (ctx.folder / "a_folder").mkdir(exist_ok=True)
    return ctx.folder / "a_folder"


def xlsx_renamed(name: str) -> Callable[[Context], Path]:
    def make(ctx: Context) -> Path:
        path = ctx.folder / name
        table = pd.DataFrame({"cpts_id": ["A"], "cpts_nom": ["CPTS A"], "code_commune": ["48095"]})
        table.to_excel(path.with_suffix(".xlsx"), index=False)
        return path.with_suffix(".xlsx").rename(path)

    return make


def gzip_renamed(ctx: Context) -> Path:
    path = ctx.folder / "PS_LibreAcces_Personne_activite.txt"
    path.write_bytes(
        gzip.compress(next(FIXTURES.glob("PS_LibreAcces_*.txt")).read_bytes(), mtime=0)
    )
    return path


def binary_file(ctx: Context) -> Path:
    path = ctx.folder / "extract.txt"
    path.write_bytes(bytes(range(256)) * 16)
    return path


def truncated_rpps(ctx: Context) -> Path:
    """The fixture extract cut in the middle of its last line (as an interrupted download)."""
    text = next(FIXTURES.glob("PS_LibreAcces_*.txt")).read_text(encoding="utf-8").rstrip("\n")
    path = ctx.folder / "PS_LibreAcces_Personne_activite_tronque.txt"
    path.write_text(text[: text.rindex("\n") + 60], encoding="utf-8")
    return path


def lozere(ctx: Context) -> gpd.GeoDataFrame:
    """Two CPTS polygons from real Lozère communes (Lambert-93), dissolved by EPCI."""
    communes = gpd.read_parquet(stages.communes_path(load_settings(ctx.good)))
    groups = communes.dissolve("code_epci").reset_index().head(2)
    return gpd.GeoDataFrame(
        {"cpts_id": ["A", "B"], "cpts_nom": ["CPTS A", "CPTS B"]},
        geometry=groups.geometry.to_numpy(),
        crs=communes.crs,
    )


def geojson_metres_without_crs(ctx: Context) -> Path:
    """Lambert-93 coordinates in a GeoJSON with no "crs" member (read as EPSG:4326 degrees)."""
    data = json.loads(lozere(ctx).to_json())
    data.pop("crs", None)
    path = ctx.folder / "perimetres.geojson"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def gpkg_degrees_declared_metres(ctx: Context) -> Path:
    path = ctx.folder / "perimetres.gpkg"
    lozere(ctx).to_crs(4326).set_crs(2154, allow_override=True).to_file(path)
    return path


def point_layer(ctx: Context) -> Path:
    frame = lozere(ctx)
    path = ctx.folder / "perimetres_points.gpkg"
    frame.set_geometry(frame.geometry.representative_point()).to_file(path)
    return path


def latin1_settings(text: str, _ctx: Context) -> str:
    return text.replace("# Settings of a diagnosis run", "# Paramètres d'un diagnostic", 1)


def perimeter_table(text: str, name: str = "cpts.csv") -> Callable[[Context], Path]:
    """A perimeter table as people send it (written as given)."""

    def make(ctx: Context) -> Path:
        path = ctx.folder / name
        path.write_text(text, encoding="utf-8")
        return path

    return make


def all_weights_zero(text: str, _ctx: Context) -> str:
    head, weights = text.split("[priority.weights]", 1)
    return head + "[priority.weights]" + re.sub(r"= 1\.0", "= 0.0", weights)


def case(name: str, edit: Callable[[str, Context], str], pattern: str, code: int = 2):
    """One bad input: how to spoil the settings, the pattern of the error line, the exit status."""
    return pytest.param(edit, code, pattern, id=name)


TERRITORIES, PERIMETERS = r"\[territories\] ", r"\[perimeters\] "
CASES = [
    case(
        "section misspelt",
        replace("[territories]", "[territorie]"),
        r"\[territorie\]: unknown section; did you "
        "mean 'territories'",
    ),
    case(
        "key misspelt",
        replace("\nfloor = 10000", "\nflor = 10000"),
        TERRITORIES + "flor: unknown key; did you mean 'floor'",
    ),
    case(
        "floor as text",
        replace("floor = 10000", 'floor = "20 000"'),
        TERRITORIES + "floor = '20 000': expected a number.*write 20000 without quotes",
    ),
    case(
        "floor negative",
        replace("floor = 10000", "floor = -5000"),
        TERRITORIES + "floor = -5000: must be greater",
    ),
    case(
        "floor above ceiling",
        replace("floor = 10000", "floor = 300000"),
        TERRITORIES + r"ceiling: floor \(300000\) "
        r"must be below ceiling \(200000\)",
    ),
    case(
        "ceiling zero",
        replace("ceiling = 200000", "ceiling = 0"),
        TERRITORIES + "ceiling = 0: must be greater",
    ),
    case(
        "share negative",
        replace("min_area_share = 0.5", "min_area_share = -1"),
        PERIMETERS + "min_area_share = -1: must be above 0 and at most 1",
    ),
    case(
        "share above 1",
        replace("min_area_share = 0.5", "min_area_share = 1.5"),
        PERIMETERS + "min_area_share = 1.5: must be above 0 and at most 1",
    ),
    case(
        "tolerance negative",
        replace("tolerance_m = 20.0", "tolerance_m = -1.0"),
        r"\[adjacency\] tolerance_m = "
        "-1.0: must be 0 or more",
    ),
    case(
        "optional key misspelt",
        replace("target_population = 0", "target_populaton = 0"),
        "target_populaton: unknown key; did you mean 'target_population'",
    ),
    case(
        "settings in latin-1",
        latin1_settings,
        r"pipeline\.toml: not UTF-8 text \(byte 0xe8 on line 1.*save it "
        "again with the UTF-8 encoding",
    ),
    case(
        "cog_events a folder",
        set_input("cog_events", a_folder),
        PERIMETERS + "cog_events = '.*a_folder': is a folder, not a file",
    ),
    case(
        "rpps a folder",
        set_input("rpps", a_folder),
        r"\[indicators\] rpps = '.*a_folder': is a folder, not a file",
    ),
    case(
        "rpps missing",
        set_input("rpps", lambda ctx: ctx.folder / "PS.txt"),
        r"rpps = .*PS\.txt': file not "
        r"found.*set rpps = \"\"",
    ),
    case(
        "xlsx renamed .csv",
        set_input("file", xlsx_renamed("cpts.csv")),
        r"cpts\.csv: this looks like an Excel "
        r"workbook \(xlsx\).*rename it with the \.xlsx",
    ),
    case(
        "xlsx renamed .txt",
        set_input("rpps", xlsx_renamed("rpps.txt")),
        r"rpps\.txt: this looks like an Excel",
    ),
    case(
        "gzip renamed .txt",
        set_input("rpps", gzip_renamed),
        r"activite\.txt: this looks like a gzip-compressed "
        "file.*decompress it",
    ),
    case(
        "binary renamed .txt",
        set_input("rpps", binary_file),
        r"extract\.txt: this is a binary file",
    ),
    case(
        "rpps truncated",
        set_input("rpps", truncated_rpps),
        r"tronque\.txt: line \d+ \(the last\): cut short "
        ".*truncated; download it again",
    ),
    case(
        "metres declared as degrees",
        set_input("file", geojson_metres_without_crs),
        r"perimetres\.geojson: "
        "coordinates reach .*impossible in degrees.*EPSG:4326.*Lambert-93",
    ),
    case(
        "degrees declared as metres",
        set_input("file", gpkg_degrees_declared_metres),
        r"perimetres\.gpkg: every "
        "coordinate lies within .*longitude/latitude degrees.*EPSG:2154",
    ),
    case(
        "point layer",
        set_input("file", point_layer),
        r"points\.gpkg: .*holds Point features, not polygons",
    ),
    case(
        "unquoted comma in a name",
        set_input(
            "file",
            perimeter_table(
                "cpts_id,cpts_nom,code_commune\nCPTS-01,CPTS Mende,48095\n"
                "CPTS-01,CPTS Mende, Lot,48095\n"
            ),
        ),
        r"cpts\.csv line 3: 4 fields where the header has 3 .*put the value in quotes, "
        r"or export the table with ';'",
    ),
    case(
        "row with one extra field",
        set_input(
            "file",
            perimeter_table(
                "cpts_id;cpts_nom;code_commune\nA;CPTS A;48095\nA;CPTS A;48061;48062\n"
            ),
        ),
        r"cpts\.csv line 3: 4 fields where the header has 3",
    ),
    case(
        "unclosed quote",
        set_input("file", perimeter_table('cpts_id;cpts_nom;code_commune\nA;"CPTS A;48095\n')),
        r"cpts\.csv line \d+: .*close the quote",
    ),
    case(
        "no header below the title rows",
        set_input("file", perimeter_table("Liste des CPTS\n\nCPTS;Date\nA;2021\n")),
        r"cpts\.csv: no header row naming a CPTS column .* and a "
        r"commune column .*add or rename the header",
    ),
    case(
        "FINESS export with a column header",
        set_input(
            "finess",
            perimeter_table(
                "nofinesset;rs;categetab\n480000001;MSP;603\n",
                "etalab-cs1100507-stock-20241001-0400.csv",
            ),
        ),
        r"etalab-cs1100507-stock-20241001-0400\.csv: line 1 is 'nofinesset;rs;categetab', not "
        r"'finess;etalab;<n>;<date>'",
    ),
    case(
        "INSEE ages comma-separated",
        set_input(
            "population_age",
            perimeter_table("CODGEO,P21_POP\n48095,100\n", "base-cc-evol-struct-pop-2021.CSV"),
        ),
        r"base-cc-evol-struct-pop-2021\.CSV: line 1 is not ';'-separated \(it looks ','-sep",
    ),
    case(
        "ALD rate not a number",
        set_input(
            "ald",
            perimeter_table(
                "annee;region;libelle_region;departement;libelle_departement;"
                "taux_patients_ald_sans_mt;taux_patients_ald_sans_mt_integer\n"
                "2023;76;Occitanie;48;Lozère;beaucoup;3\n",
                "patients-longueduree-annuelle.csv",
            ),
        ),
        r"patients-longueduree-annuelle\.csv: line 2, column taux_patients_ald_sans_mt: "
        r"'beaucoup' is not a number",
    ),
    case(
        "zonage workbook that is a text file",
        set_input(
            "zonage",
            perimeter_table("Code de la commune;Zonage\n48095;ZIP\n", "Zonage_medecin.xlsx"),
        ),
        r"Zonage_medecin\.xlsx: not a readable xlsx workbook",
    ),
    case(
        "priority weight negative",
        replace("part_75p = 1.0", "part_75p = -1.0"),
        r"\[priority\.weights\] part_75p = -1\.0: must be 0 or more",
    ),
    case(
        "priority criterion misspelt",
        replace("sans_msp = 1.0", "sans_mps = 1.0"),
        r"\[priority\.weights\] sans_mps: unknown key; did you mean 'sans_msp'",
    ),
    case(
        "every priority weight zero",
        all_weights_zero,
        r"\[priority\.weights\] population: every weight is 0",
    ),
]


def check_case(
    good: Path, folder: Path, capsys, edit, code: int, pattern: str, *, encoding: str = "utf-8"
) -> None:
    """One case of a catalogue: the good run's settings spoilt by ``edit`` (written in
    ``encoding``), ``diagnose`` exits with ``code``, prints one error line matching ``pattern``,
    and every previous output is byte-identical."""
    before = output_hashes(good)
    text = edit(good.read_text(encoding="utf-8"), Context(folder, good))
    config = folder / "pipeline.toml"
    config.write_bytes(text.encode(encoding, errors="replace"))
    status, printed = run_bad(config, ["diagnose"], capsys)
    assert status == code, printed
    assert_one_clear_line(printed, pattern)
    assert output_hashes(good) == before


@pytest.mark.parametrize("edit, code, pattern", CASES)
def test_bad_input_one_line_and_outputs_intact(good_run, tmp_path, capsys, edit, code, pattern):
    encoding = "latin-1" if edit is latin1_settings else "utf-8"
    check_case(good_run, tmp_path, capsys, edit, code, pattern, encoding=encoding)


# ---------------------------------------- interruptions and folders


def interrupt(*_args, **_kwargs):
    raise KeyboardInterrupt


def test_ctrl_c_exits_130_and_outputs_intact(good_run, monkeypatch, capsys):
    """Interrupted in the coverage stage of a forced run: earlier stages rewrote identical bytes,
    the interrupted one wrote nothing."""
    from pipeline.analysis import coverage

    before = output_hashes(good_run)
    monkeypatch.setattr(coverage, "overlap_pairs", interrupt)
    status, printed = run_bad(good_run, ["--force", "diagnose"], capsys)
    assert status == 130 and "Traceback" not in printed
    assert (
        printed.splitlines()[-1]
        == "interrupted; previous outputs are intact (each output is replaced only "
        "once complete)"
    )
    assert output_hashes(good_run) == before


@pytest.mark.parametrize("how", ["chmod", "denied"])
def test_output_folder_not_writable_names_the_folder(good_run, monkeypatch, capsys, how):
    settings = load_settings(good_run)
    maps = settings.maps_dir
    before = output_hashes(good_run)
    if how == "chmod":
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders: see the 'denied' case")
        maps.chmod(0o555)
    else:  # the same failure as the OS gives for a read-only folder, where root cannot get it
        import tempfile

        real = tempfile.mkstemp

        def mkstemp(*args, dir=None, **kwargs):
            if dir is not None and Path(dir).resolve() == maps.resolve():
                raise PermissionError(errno.EACCES, "Permission denied", str(Path(dir) / ".tmp"))
            return real(*args, dir=dir, **kwargs)

        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    try:
        status, printed = run_bad(good_run, ["--force", "export"], capsys)
    finally:
        maps.chmod(0o755)
    assert status == 3, printed
    line = assert_one_clear_line(
        printed,
        r"cannot write to the output folder .*maps \(Permission denied\); make it "
        r"writable, or change \[paths\] maps",
    )
    assert str(maps.resolve()) in line
    assert output_hashes(good_run) == before


def test_internal_error_is_marked_as_a_bug_with_its_trace(good_run, monkeypatch, capsys):
    from pipeline.analysis import coverage

    def broken(*_args, **_kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(coverage, "overlap_pairs", broken)
    status, printed = run_bad(good_run, ["--force", "coverage"], capsys)
    assert status == 70
    assert "internal error (a bug: please report it with this trace)" in printed
    assert "Traceback" in printed and "ZeroDivisionError" in printed


def test_good_run_is_repeatable(good_run, capsys):
    """The reference the cases compare with: a second run rebuilds nothing and changes nothing."""
    before = output_hashes(good_run)
    status, printed = run_bad(good_run, ["diagnose"], capsys)
    assert status == 0 and printed.count(
        ": up to date (inputs, settings and code unchanged)"
    ) == sum(stage.manifest for stage in stages.STAGES)
    assert output_hashes(good_run) == before


# ---------------------------------------- many overlapping CPTS


def documented_overlap_rule(communes, members, adjacency, *, tolerance_m):
    """The README's resolution rule written out directly, pair by pair (slow, for reference): a
    disputed commune goes to the CPTS whose undisputed communes share the longest border with it
    (borders rounded to the metre); on a tie, to the CPTS with fewer undisputed inhabitants; then
    the smaller id."""
    from itertools import combinations

    from pipeline.analysis.adjacency import shared_border_length

    codes = list(communes["code_commune"])
    pop = dict(zip(codes, communes["population"].fillna(0).astype(int)))
    holders = {c: sorted(set(g)) for c, g in members.groupby("code_commune")["cpts_id"]}
    sole = {c: h[0] for c, h in holders.items() if len(h) == 1}
    undisputed = {}
    for cpts, code in zip(members["cpts_id"], members["code_commune"]):
        if sole.get(code) == cpts:
            undisputed[cpts] = undisputed.get(cpts, 0) + pop[code]
    neighbours = adjacency.neighbours()
    rows = []
    for k, code in enumerate(codes):
        if len(holders.get(code, [])) < 2:
            continue
        lengths = shared_border_length(
            communes, [k] * len(neighbours[k]), neighbours[k], tolerance_m=tolerance_m
        )
        border = {
            c: sum(length for nb, length in zip(neighbours[k], lengths) if sole.get(codes[nb]) == c)
            for c in holders[code]
        }
        for a, b in combinations(holders[code], 2):
            if round(border[a]) != round(border[b]):
                winner, rule = (
                    (a if border[a] > border[b] else b),
                    "frontière commune la plus longue",
                )
            else:
                winner = min((a, b), key=lambda c: (undisputed.get(c, 0), c))
                rule = "égalité de frontière : CPTS la moins peuplée"
            rows.append(
                (
                    a,
                    b,
                    code,
                    communes["nom"].iloc[k],
                    pop[code],
                    round(border[a]),
                    round(border[b]),
                    winner,
                    rule,
                )
            )
    return pd.DataFrame(rows, columns=OVERLAP_COLUMNS)


def test_many_overlapping_cpts_follow_the_documented_rule(good_run):
    """80 SYNTHETIC CPTS of 8 contiguous real Lozère communes each: the vectorised overlap detection
    gives the rows, values and order of the rule applied pair by pair (its speed is in
    `make bench`)."""
    from bench.__main__ import synthetic_claims
    from pipeline.analysis.coverage import commune_status, overlap_pairs

    settings = load_settings(good_run)
    communes = stages.read_communes(settings)
    adjacency = stages.adjacency_of(settings, communes)
    members = synthetic_claims(communes, adjacency, n_cpts=80, size=8, seed=4)
    status = commune_status(communes, members)
    got = overlap_pairs(communes, status, members, adjacency, tolerance_m=20.0)
    expected = documented_overlap_rule(communes, members, adjacency, tolerance_m=20.0)
    assert len(got) > 500 and got["regle"].nunique() == 2  # both branches of the rule are exercised
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert got.to_csv(index=False) == expected.to_csv(index=False)


# ---------------------------------------- perimeter files that match nothing


def test_perimeter_file_matching_no_unit_rewrites_its_issues_and_names_the_cause(
    good_run, tmp_path, capsys
):
    """perimeter_issues.csv is rewritten (the user must not read the previous run's); every other
    output stays as it was."""
    settings = load_settings(good_run)
    issues_file = stages.perimeter_paths(settings)["issues"]
    before = {k: v for k, v in output_hashes(good_run).items() if Path(k) != issues_file}
    ctx = Context(tmp_path, good_run)
    edit = set_input(
        "file", perimeter_table("cpts_id;cpts_nom;code_commune\nA;CPTS A;11069\nA;CPTS A;11262\n")
    )
    config = tmp_path / "pipeline.toml"
    config.write_text(edit(good_run.read_text(encoding="utf-8"), ctx), encoding="utf-8")
    status, printed = run_bad(config, ["diagnose"], capsys)
    assert status == 2
    assert_one_clear_line(
        printed,
        r"cpts\.csv: no unit of the scope departements:48 is in any perimeter \(its 2 "
        r"unit\(s\) lie in départements 11: run with --scope departements:11",
    )
    issues = pd.read_csv(issues_file, dtype=str, sep=None, engine="python", encoding="utf-8-sig")
    none_left = issues.loc[issues["code"] == "sans_commune"].iloc[0]
    assert none_left["cpts_id"] == "A"
    assert "1 CPTS sans aucune commune dans le périmètre du diagnostic" in none_left["message"]
    assert "A (2 ligne(s), 2 commune(s) hors périmètre)" in none_left["message"]
    assert {k: v for k, v in output_hashes(good_run).items() if Path(k) != issues_file} == before


def test_strict_turns_warnings_into_exit_1(good_run, tmp_path, capsys):
    ctx = Context(tmp_path, good_run)
    text = "cpts_id;cpts_nom;code_commune\nA;CPTS A;48095\nB;CPTS B;99999\n"  # B: no commune left
    config = write_settings_copy(good_run, tmp_path / "own", scope=SCOPE)  # outputs of its own
    config.write_text(
        set_input("file", perimeter_table(text))(config.read_text(encoding="utf-8"), ctx),
        encoding="utf-8",
    )
    status, printed = run_bad(config, ["diagnose"], capsys)
    assert status == 0 and "1 unmatched row(s), 1 warning(s)" in printed
    assert (
        "avertissement: cpts.csv : 1 CPTS sans aucune commune dans le périmètre du diagnostic"
        in printed
    )
    status, printed = run_bad(config, ["--strict", "--force", "perimeters"], capsys)
    assert status == 1 and "Traceback" not in printed
    assert_one_clear_line(printed, r"1 error\(s\) and 1 warning\(s\) with --strict")


def test_codes_in_the_name_column_are_named_as_the_likely_cause(good_run, tmp_path, capsys):
    ctx = Context(tmp_path, good_run)
    text = "cpts_id;cpts_nom;commune\nA;CPTS A;48095\nA;CPTS A;48061\n"
    config = write_settings_copy(good_run, tmp_path / "own", scope=SCOPE)
    config.write_text(
        set_input("file", perimeter_table(text))(config.read_text(encoding="utf-8"), ctx),
        encoding="utf-8",
    )
    status, printed = run_bad(config, ["diagnose"], capsys)
    assert status == 2
    assert_one_clear_line(
        printed,
        r"the commune column holds INSEE codes, not names: name that column "
        r"code_insee",
    )
