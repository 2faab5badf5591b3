"""Shared first steps of the health-profile loaders (INSEE population by age, FINESS stock, ameli
ALD rates, zonage workbook): the file's text, refused clearly when it is a zip archive, UTF-16 or
binary, its separator checked, numbers read with the line of the first bad cell, and the header row
of a sheet found below its title rows.

Built on :func:`pipeline.sources.rawdata.read_text` (UTF-8, else Windows-1252). Every error is one
:class:`~pipeline.errors.PipelineError` line naming the file and what to do.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import PipelineError
from .rawdata import read_text

SEPARATORS = ";,\t|"


def source_text(path: str | Path, *, what: str, setting: str, layout: str) -> tuple[str, str]:
    """Text of an optional open-data file and its encoding
    (:func:`pipeline.sources.rawdata.read_text`: UTF-8, UTF-16 with a BOM or Windows-1252; a zip
    archive, workbook or binary file is refused with what to do).

    Parameters
    ----------
    what, setting : str
        As in :func:`pipeline.sources.rawdata.read_text` ("FINESS stock", "[profile] finess").
    layout : str
        The published file expected, for the messages ("etalab-cs1100507-stock-<date>.csv").
    """
    return read_text(path, what=what, setting=setting, again=f"download {layout} again")


def check_separator(path: str | Path, line: str, *, sep: str, layout: str, number: int = 1) -> None:
    """Refuse a line that is not ``sep``-separated, naming the separator it seems to use.

    Parameters
    ----------
    path : path
        The file, named in the error.
    line : str
        The line to check (usually the header).
    sep : str
        The published separator.
    layout : str
        The published layout, as the error names it (each reader's ``LAYOUT``).
    number : int, optional
        The line's number in the file.

    Raises
    ------
    PipelineError
        When ``sep`` does not occur in ``line``.
    """
    if sep in line:
        return
    others = [s for s in SEPARATORS if s != sep]
    guess = max(others, key=line.count)
    looks = f"it looks {guess!r}-separated" if line.count(guess) else "it has no separator at all"
    raise PipelineError(
        f"{path}: line {number} is not {sep!r}-separated ({looks}); expected {layout} as published"
    )


def read_delimited(
    path: str | Path, *, sep: str, what: str, setting: str, layout: str
) -> pd.DataFrame:
    """A delimited table with its header on line 1, every cell a string (header names stripped).

    Raises
    ------
    PipelineError
        As :func:`source_text`; header not ``sep``-separated; no row under the header.
    """
    text, _encoding = source_text(path, what=what, setting=setting, layout=layout)
    check_separator(path, text.lstrip().split("\n", 1)[0], sep=sep, layout=layout)
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, quoting=3)
    except pd.errors.ParserError as exc:
        detail = str(exc).strip().split("error: ")[-1]
        raise PipelineError(
            f"{path}: {detail} (a row does not match the header); expected {layout}"
        ) from exc
    frame.columns = [str(c).strip().strip('"') for c in frame.columns]
    if frame.empty:
        raise PipelineError(f"{path}: has a header but no rows; download {layout} again")
    return frame


def numbers(
    path: str | Path, frame: pd.DataFrame, column: str, *, first_line: int = 2, masked=frozenset()
) -> np.ndarray:
    """Column ``column`` of ``frame`` as floats (decimal point or comma); cells in ``masked`` (e.g.
    ``{"NC"}``) are NaN; any other cell that is not a number is an error naming its line.

    Parameters
    ----------
    path : path
        The file the frame was read from, named in the error.
    frame : DataFrame
        The table as read, every cell a string.
    column : str
        The column to convert.
    first_line : int, optional
        Line number in the file of the frame's first row (2: under a one-line header).
    masked : set of str, optional
        Upper-case cell values that stand for a masked figure (read as NaN).

    Returns
    -------
    ndarray of float
        One value per row.

    Raises
    ------
    PipelineError
        On the first cell that is neither a number nor masked, with its line and the count of such
        cells.
    """
    text = frame[column].astype(str).str.strip().str.strip('"')
    hidden = text.str.upper().isin(masked).to_numpy()
    values = pd.to_numeric(text.str.replace(",", ".", regex=False), errors="coerce")
    bad = np.flatnonzero(values.isna().to_numpy() & ~hidden)
    if len(bad):
        k = int(bad[0])
        raise PipelineError(
            f"{path}: line {k + first_line}, column {column}: {frame[column].iloc[k]!r} is not a "
            f"number ({len(bad)} such cell(s)); download the published file again"
        )
    return values.to_numpy(dtype=float)
