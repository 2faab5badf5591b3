"""XLSX workbooks as people open them in a French Excel: sheets with French names, headers with
units, columns as wide as their longest value (up to a cap), a number format per column.

The sheets are given by code (``communes``, ``territoires_proposes``…) and named in French here
(:data:`SHEET_NAMES`); the headers are the report labels (:func:`pipeline.outputs.reports
.for_people`); the formats follow the column codes (:func:`number_format`): whole numbers and
populations with a thousands separator, amounts in euros, percentages with one decimal, notes,
weights and compactness with two or three decimals (never rounded to one). Excel shows the
separators of its own locale (« 12 345 », « 0,25 »).
"""

from __future__ import annotations

import datetime

import numpy as np
import pandas as pd

from .reports import for_people

FIXED_TIME = datetime.datetime(2000, 1, 1)
SHEET_NAMES = {
    "communes": "Communes",
    "cpts_limitrophes": "CPTS limitrophes",
    "territoires_proposes": "Territoires proposés",
    "profil": "Profil de la zone",
    "priorite": "Priorité",
}
MAX_WIDTH = 60  # characters: longer texts wrap
MIN_WIDTH = 6
FORMATS = {
    "int": "#,##0",
    "eur": "#,##0 €",
    "percent": '0.0" %"',
    "share": "0.000",
    "two": "0.00",
    "one": "0.0",
    "mixed": "#,##0.0##",
}
MIXED = ("valeur", "departement", "region", "france")  # indicators of different units per row


def number_format(column: str, values: pd.Series) -> str | None:
    """The format code (:data:`FORMATS`) of a column from its code and values; None for text.

    Parameters
    ----------
    column : str
        The column code (``population``, ``part_75p``, ``enveloppe_eur``…).
    values : Series
        Its values.

    Returns
    -------
    str or None
    """
    if not (pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)):
        return None
    if column.endswith("_eur"):
        return "eur"
    if column in MIXED:
        return "mixed"
    if (
        pd.api.types.is_integer_dtype(values)
        or column.startswith(("population", "n_", "rang"))
        or column in ("communes", "n_communes", "taille_visee")
    ):
        return "int"
    if column.startswith(("part_", "taux_")) or column.endswith("_pct"):
        return "percent"
    if column in ("note", "score_note") or column.startswith("note_"):
        return "share"
    if column in ("compacite", "poids", "rapport_taille_visee"):
        return "two"
    return "one"


def shown_width(values: list, header: str) -> float:
    """A column's width in characters: its longest value or header word, plus a margin, between
    :data:`MIN_WIDTH` and :data:`MAX_WIDTH`.

    Parameters
    ----------
    values : list
        The cells as displayed (numbers with their separators).
    header : str
        The column's header (it wraps: its longest word counts).

    Returns
    -------
    float
    """
    longest = max([len(str(v)) for v in values if v is not None] + [0])
    word = max([len(w) for w in str(header).split()] + [0])
    return float(min(max(longest, word, MIN_WIDTH) + 2, MAX_WIDTH))


def displayed(value, kind: str | None) -> str:
    """How a cell reads once formatted (for its width): thousands separators, decimals."""
    if value is None:
        return ""
    if kind in ("int", "eur"):
        return f"{value:,.0f}" + (" €" if kind == "eur" else "")
    if kind in ("percent", "one"):
        return f"{value:,.1f}" + (" %" if kind == "percent" else "")
    if kind in ("share", "two", "mixed"):
        return f"{value:.3f}"
    return str(value)


def write_xlsx(path, sheets: dict[str, pd.DataFrame]) -> None:
    """An xlsx workbook, one sheet per frame (keyed by code, named by :data:`SHEET_NAMES`).

    French headers with units (:func:`for_people`) in bold, wrapped, frozen, filterable; each
    column as wide as its longest value (:func:`shown_width`) and in its format
    (:func:`number_format`); missing values left blank. Written with xlsxwriter with a fixed
    creation time (same data, same bytes: xlsxwriter also fixes the zip entries' dates).

    Parameters
    ----------
    path : str or Path
        The workbook.
    sheets : dict of DataFrame
        Sheet code → table (column codes as headers).
    """
    import xlsxwriter

    workbook = xlsxwriter.Workbook(
        str(path),
        {
            "in_memory": True,
            "nan_inf_to_errors": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
        },
    )
    workbook.set_properties({"created": FIXED_TIME})
    header = workbook.add_format({"bold": True, "text_wrap": True, "valign": "top"})
    formats = {k: workbook.add_format({"num_format": v}) for k, v in FORMATS.items()}
    wrap = workbook.add_format({"text_wrap": True, "valign": "top"})
    for code, frame in sheets.items():
        sheet = workbook.add_worksheet(SHEET_NAMES.get(code, code)[:31])
        shown = for_people(frame)
        rows = _rows(shown)
        sheet.write_row(0, 0, [str(c) for c in shown.columns], header)
        for k, column in enumerate(frame.columns):
            kind = number_format(column, frame[column])
            width = shown_width([displayed(r[k], kind) for r in rows], shown.columns[k])
            cell = formats.get(kind) if kind else (wrap if width >= MAX_WIDTH else None)
            sheet.set_column(k, k, width, cell)
        for r, row in enumerate(rows, start=1):
            sheet.write_row(r, 0, row)
        sheet.freeze_panes(1, 0)
        if len(frame):
            sheet.autofilter(0, 0, len(frame), max(len(frame.columns) - 1, 0))
    workbook.close()


def _rows(frame: pd.DataFrame) -> list[list]:
    """The rows of a frame as Python values for xlsxwriter (None for a missing value: a blank
    cell), converted in one pass.
    """
    values = frame.to_numpy(dtype=object)
    values[pd.isna(values)] = None
    return [[v.item() if isinstance(v, np.generic) else v for v in row] for row in values.tolist()]
