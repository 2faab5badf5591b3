"""Zonage médecin: the category of each commune in the zoning of under-served areas for general
practitioners.

* DREES national workbook ``Zonage_medecin_<AAAAMMJJ>.xlsx``, sheet ``Zonage_communes``, columns in
  the published order :data:`NATIONAL_COLUMNS`; the category is the regional arrêté's
  (``ZIP``, ``ZAC``, ``Zone de vigilance``, ``Hors vivier``).
* 2025 regional arrêtés: ``ZIP``, ``ZAC``, ``ZAR``, ``ZV`` (and *hors zonage*), in a column such
  as ``Zonage 2025`` next to the commune code.

Categories are :class:`Zonage` codes; the French labels (:data:`LABELS_FR`) are for display only.
The header row is found by its "Code de la commune" cell whatever the title rows above it.
"""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path

import pandas as pd

from ..errors import PipelineError
from .codes import normalise_code
from .rawdata import find_header_row, read_workbook_frames
from .rawdata import plain_label as _norm


class Zonage(str, Enum):
    """Zoning category of a commune (code, never the displayed text)."""

    ZIP = "ZIP"  # zone d'intervention prioritaire
    ZAC = "ZAC"  # zone d'action complémentaire
    ZAR = "ZAR"  # category of some 2025 regional arrêtés
    ZV = "ZV"  # zone de vigilance
    HV = "HV"  # hors vivier (2017-2022 national method)
    HZ = "HZ"  # hors zonage / hors classement (2025 arrêtés)


LABELS_FR = {
    Zonage.ZIP: "Zone d'intervention prioritaire (ZIP)",
    Zonage.ZAC: "Zone d'action complémentaire (ZAC)",
    Zonage.ZAR: "ZAR (catégorie de l'arrêté régional)",
    Zonage.ZV: "Zone de vigilance",
    Zonage.HV: "Hors vivier",
    Zonage.HZ: "Hors zonage",
}
# Published values (compared without accents, case or extra spaces) → category.
VALUES = {
    "zip": Zonage.ZIP,
    "zone d intervention prioritaire": Zonage.ZIP,
    "zac": Zonage.ZAC,
    "zone d action complementaire": Zonage.ZAC,
    "zar": Zonage.ZAR,
    "zv": Zonage.ZV,
    "zone de vigilance": Zonage.ZV,
    "hors vivier": Zonage.HV,
    "hv": Zonage.HV,
    "zz_hors vivier": Zonage.HV,
    "hors zonage": Zonage.HZ,
    "hz": Zonage.HZ,
    "hors classement": Zonage.HZ,
    "hc": Zonage.HZ,
}
# Which category wins when several old communes merged into one carry different ones.
PRECEDENCE = [Zonage.ZIP, Zonage.ZAC, Zonage.ZAR, Zonage.ZV, Zonage.HV, Zonage.HZ]

NATIONAL_COLUMNS = [
    "Identifiant unique",
    "Code de la région",
    "Libellé de la région",
    "Code du territoire de vie-santé",
    "Libellé du territoire de vie-santé",
    "Code de la commune",
    "Libellé de la commune",
    "Qualification nationale issue de la concertation de 2017",
    "Qualification attribuée par l'arrêté régional",
    "Population totale (2016)",
]
CODE = "Code de la commune"
ARRETE = "Qualification attribuée par l'arrêté régional"
SHEET = "Zonage_communes"
LAYOUT = "the DREES workbook Zonage_medecin_<date>.xlsx, sheet Zonage_communes"


def _category_column(headers: list[str], column: str, path: Path) -> int:
    """Index of the category column: ``column`` if given, the arrêté's, else one
    ``Zonage <year>``.
    """
    if column:
        if _norm(column) not in headers:
            raise PipelineError(
                f"{path}: no column {column!r} in sheet {SHEET}; fix [profile] zonage_column"
            )
        return headers.index(_norm(column))
    if _norm(ARRETE) in headers:
        missing = [c for c in NATIONAL_COLUMNS if _norm(c) not in headers]
        if missing:
            raise PipelineError(
                f"{path}: missing column(s) {', '.join(missing)}; expected {LAYOUT} (published "
                "order)"
            )
        return headers.index(_norm(ARRETE))
    regional = [k for k, h in enumerate(headers) if re.fullmatch(r"zonage( (19|20)\d{2})?", h)]
    if len(regional) != 1:
        raise PipelineError(
            f"{path}: no category column ({ARRETE!r}, or one 'Zonage <année>' column); "
            f"expected {LAYOUT}, or set [profile] zonage_column"
        )
    return regional[0]


def read_zonage(
    path: str | Path, *, sheet: str = SHEET, column: str = ""
) -> tuple[pd.DataFrame, dict]:
    """Read the zoning category of each commune.

    Parameters
    ----------
    sheet : str
        Sheet to read (the published ``Zonage_communes``).
    column : str
        Category column; ``""``: the arrêté's column of the national workbook, else the single
        ``Zonage <année>`` column of a regional table.

    Returns
    -------
    zonage : DataFrame
        ``code_commune, categorie`` (a :class:`Zonage` value, ``None`` when the cell is empty),
        ``categorie_publiee`` (the text read), sorted by code.
    report : dict
        Sheet, column, rows read, rows without a category.

    Raises
    ------
    PipelineError
        Missing or unreadable workbook, no such sheet, header not found, missing columns, an
        unknown category, a duplicated commune.
    """
    path = Path(path)
    if not path.is_file():
        raise PipelineError(
            f"{path}: zonage workbook not found; fix [profile] zonage in pipeline.toml"
        )
    sheets = read_workbook_frames(
        path, what="zonage workbook", setting="[profile] zonage", include=(sheet,)
    )
    if sheet not in sheets:
        raise PipelineError(
            f"{path}: no sheet {sheet!r} (sheets: {', '.join(sheets)}); expected {LAYOUT}"
        )
    frame = sheets[sheet]
    header_row = find_header_row(frame, CODE)
    if header_row is None:
        raise PipelineError(
            f"{path} [{sheet}]: no header cell {CODE!r} in the first 30 rows; expected {LAYOUT}"
        )
    headers = [_norm(v) if isinstance(v, str) else "" for v in frame.iloc[header_row]]
    where = _category_column(headers, column, path)
    body = frame.iloc[header_row + 1 :]
    codes = body.iloc[:, headers.index(_norm(CODE))].map(
        lambda v: "" if pd.isna(v) else normalise_code(v)
    )
    text = body.iloc[:, where].map(lambda v: "" if pd.isna(v) else str(v).strip())
    keep = codes != ""
    codes, text = codes[keep], text[keep]
    if codes.empty:
        raise PipelineError(f"{path} [{sheet}]: no commune row under the header; expected {LAYOUT}")
    category = text.map(lambda t: VALUES.get(_norm(t)) if t else None)
    unknown = category.isna() & (text != "")
    if unknown.any():
        row = int(unknown.to_numpy().argmax())
        raise PipelineError(
            f"{path} [{sheet}] row {int(codes.index[row])}: "
            f"unknown category {text.iloc[row]!r} ({int(unknown.sum())} such row(s)); expected "
            "ZIP, ZAC, ZAR, ZV / Zone de vigilance, Hors vivier or Hors zonage"
        )
    duplicated = codes[codes.duplicated()]
    if len(duplicated):
        raise PipelineError(
            f"{path} [{sheet}]: commune {duplicated.iloc[0]} appears more than once; "
            "keep one row per commune"
        )
    out = pd.DataFrame(
        {
            "code_commune": codes.to_numpy(),
            "categorie": category.to_numpy(),
            "categorie_publiee": text.to_numpy(),
        }
    )
    report = {
        "feuille": sheet,
        "colonne": str(frame.iloc[header_row, where]).strip(),
        "lignes": int(len(out)),
        "sans_categorie": int(out["categorie"].isna().sum()),
    }
    return out.sort_values("code_commune", kind="stable").reset_index(drop=True), report


def zonage_by_commune(
    zonage: pd.DataFrame,
    lookup: dict[str, tuple[str, str]] | None = None,
    *,
    whole: dict[str, tuple[str, ...]] | None = None,
) -> tuple[pd.Series, list[str]]:
    """Category per unit of coverage (commune, or arrondissement in Paris, Lyon and Marseille), and
    the published codes that could not be mapped.

    ``lookup`` (:func:`pipeline.sources.codes.single_unit` of
    :func:`pipeline.sources.codes.code_lookup`) maps older codes to today's unit; when several map
    to one unit, the first category of :data:`PRECEDENCE` among them wins (a commune partly ZIP is
    treated as ZIP). Without ``lookup``, codes are kept. ``whole`` maps the code of a commune split
    into arrondissements (75056, 69123, 13055) to its arrondissements: a category given for the
    whole commune applies to each of them, unless the file lists the arrondissement itself.
    """
    frame = zonage[zonage["categorie"].notna()]
    if whole:
        listed = set(frame["code_commune"])
        spread = [
            row._replace(code_commune=unit)
            for row in frame[frame["code_commune"].isin(whole)].itertuples(index=False)
            for unit in whole[row.code_commune]
            if unit not in listed
        ]
        frame = pd.concat(
            [
                frame[~frame["code_commune"].isin(whole)],
                pd.DataFrame(spread, columns=frame.columns),
            ],
            ignore_index=True,
        )
    if lookup is None:
        current = frame["code_commune"]
    else:
        current = frame["code_commune"].map(lambda c: lookup.get(c, ("", ""))[0])
    unknown = sorted(frame.loc[current == "", "code_commune"])
    rank = frame["categorie"].map(PRECEDENCE.index)
    best = (
        frame.assign(current=current.to_numpy(), rank=rank.to_numpy())[current.to_numpy() != ""]
        .sort_values(["current", "rank"], kind="stable")
        .drop_duplicates("current")
    )
    return pd.Series(
        best["categorie"].to_numpy(), index=best["current"].to_numpy(), name="zonage"
    ), unknown
