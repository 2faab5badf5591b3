"""Practitioner supply: the annuaire santé RPPS extract and the DREES APL workbook.

RPPS extract (``PS_LibreAcces_Personne_activite_<AAAAMMJJhhmm>.txt``): UTF-8, ``|``-separated,
every line ending with a ``|``, one row per professional × activity site, published column names.
:func:`count_practitioners` counts each professional once per commune and profession. The
site's commune is ``Code commune (coord. structure)``; when empty, the postal code is used only if
it belongs to exactly one commune (rule reported); foreign sites are set aside and reported; codes
of another COG vintage are mapped like the perimeter import does.

DREES APL workbook (xlsx): one sheet per vintage plus a "Lisez-moi"; title rows, the header row
(found by its "Code commune INSEE" cell), a units row, one row per commune.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import PipelineError, Problems
from .rawdata import find_header_row, read_text, read_workbook_frames
from .rawdata import plain_label as _norm

RPPS_COLUMNS = {
    "id": "Identification nationale PP",
    "profession": "Code profession",
    "savoir_faire": "Code savoir-faire",
    "commune": "Code commune (coord. structure)",
    "postal": "Code postal (coord. structure)",
    "country": "Code pays (coord. structure)",
}
UNMATCHED = ["motif", "identification", "code_publie", "lignes"]


def read_rpps(path: str | Path) -> tuple[pd.DataFrame, str]:
    """Read an RPPS activity extract; return the rows (strings) and how the file was read.

    Raises
    ------
    PipelineError
        Missing or empty file, not ``|``-separated, missing published columns.
    """
    path = Path(path)
    text, encoding = read_text(
        path, what="RPPS extract", setting="[indicators] rpps", again="download the extract again"
    )
    encoding = "latin-1 (converted)" if encoding == "latin-1" else encoding
    header = text.split("\n", 1)[0]
    if "|" not in header:
        guess = max(";,\t", key=header.count)
        raise PipelineError(
            f"{path}: the header is not '|'-separated (it looks {guess!r}-separated); expected "
            "the annuaire santé extract PS_LibreAcces_Personne_activite_*.txt as published"
        )
    check_rpps_lines(text, path)
    import io

    frame = pd.read_csv(io.StringIO(text), sep="|", dtype=str, keep_default_na=False, quoting=3)
    frame = frame.loc[
        :, [c for c in frame.columns if not c.startswith("Unnamed")]
    ]  # the trailing '|'
    frame.columns = [c.strip() for c in frame.columns]
    missing = [c for c in RPPS_COLUMNS.values() if c not in frame.columns]
    if missing:
        raise PipelineError(
            f"{path}: missing column(s) {', '.join(missing)}; expected the published header of "
            "PS_LibreAcces_Personne_activite (see pipeline/sources/practitioners.py)"
        )
    if frame.empty:
        raise PipelineError(f"{path}: has a header but no rows; download the extract again")
    return frame.rename(columns={v: k for k, v in RPPS_COLUMNS.items()})[
        list(RPPS_COLUMNS)
    ], encoding


def check_rpps_lines(text: str, path: Path) -> None:
    """Every line has the header's number of ``|`` (each line ends with one): a line with fewer is
    cut short — at the end of the file, a truncated download — and one with more is malformed.

    Raises
    ------
    ValidationError
        Naming the line numbers (the header is line 1).
    """
    lines = text.split("\n")
    expected = lines[0].count("|")
    counts = np.fromiter((line.count("|") for line in lines), dtype=np.int64, count=len(lines))
    blank = np.fromiter((not line.strip() for line in lines), dtype=bool, count=len(lines))
    bad = np.flatnonzero((counts != expected) & ~blank)
    if not len(bad):
        return
    problems = Problems(path)
    last = int(np.flatnonzero(~blank)[-1])
    for k in bad[:5]:
        fields = f"{counts[k]} '|' instead of {expected}"
        if k == last and counts[k] < expected:
            problems.add(
                f"line {k + 1} (the last): cut short ({fields}, the line stops in the middle): the "
                "extract is truncated; download it again (or delete this line)"
            )
        else:
            problems.add(
                f"line {k + 1}: {fields}; the file is not the published extract as downloaded: "
                "download it again"
            )
    if len(bad) > 5:
        problems.add(f"{len(bad) - 5} more line(s) with the wrong number of fields")
    problems.raise_if_any()


def classify(
    rows: pd.DataFrame, professions: dict[str, str], gp_savoir_faire: list[str]
) -> pd.Series:
    """Profession counted for each row ('' when not counted)."""
    code_to_name = {str(v): k for k, v in professions.items() if k != "medecin_generaliste"}
    out = rows["profession"].map(code_to_name).fillna("")
    gp = (rows["profession"] == str(professions["medecin_generaliste"])) & rows[
        "savoir_faire"
    ].isin(gp_savoir_faire)
    out[gp] = "medecin_generaliste"
    return out


def locate(
    rows: pd.DataFrame, *, lookup: dict[str, tuple[str, str]], postal: dict[str, list[str]]
) -> tuple[pd.Series, pd.Series]:
    """Current commune code of each row's site and how it was found ('' + reason when not)."""
    commune = pd.Series("", index=rows.index, dtype=object)
    how = pd.Series("", index=rows.index, dtype=object)
    for k, (code, cp, country) in enumerate(zip(rows["commune"], rows["postal"], rows["country"])):
        idx = rows.index[k]
        code, cp, country = code.strip(), cp.strip(), country.strip()
        if country and country not in ("99100", "FR", "FRA", "France"):
            how[idx] = "hors de France"
        elif code:
            found = lookup.get(code.zfill(5) if code.isdigit() else code.upper())
            commune[idx], how[idx] = (found[0], found[1]) if found else ("", "code commune inconnu")
        elif cp in postal and len(postal[cp]) == 1:
            commune[idx], how[idx] = postal[cp][0], "code postal (une seule commune)"
        elif cp in postal:
            how[idx] = "code postal partagé par plusieurs communes"
        else:
            how[idx] = "ni code commune ni code postal connu"
    return commune, how


def count_practitioners(
    rows: pd.DataFrame,
    *,
    professions: dict[str, str],
    gp_savoir_faire: list[str],
    lookup: dict[str, tuple[str, str]],
    postal: dict[str, list[str]],
    scope_codes: set[str],
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Professionals per commune and profession, each counted once per commune.

    Returns
    -------
    counts : DataFrame
        Index: commune code; one column per profession.
    unmatched : DataFrame
        Columns :data:`UNMATCHED`: rows that could not be placed, by reason.
    report : dict
        Row counts per locating rule.
    """
    profession = classify(rows, professions, gp_savoir_faire)
    kept = rows[profession != ""].assign(profession_name=profession[profession != ""])
    commune, how = locate(kept, lookup=lookup, postal=postal)
    kept = kept.assign(code_commune=commune, how=how)
    placed = kept[kept["code_commune"] != ""]
    in_scope = placed[placed["code_commune"].isin(scope_codes)]
    unique = in_scope.drop_duplicates(["id", "code_commune", "profession_name"])
    counts = unique.groupby(["code_commune", "profession_name"]).size().unstack(fill_value=0)
    for name in professions:
        if name not in counts:
            counts[name] = 0
    counts = counts[list(professions)].sort_index()
    lost = kept[kept["code_commune"] == ""]
    unmatched = (
        lost.groupby(["how", "id"])
        .agg(code_publie=("commune", "first"), lignes=("commune", "size"))
        .reset_index()
        .rename(columns={"how": "motif", "id": "identification"})
    )[UNMATCHED]
    report = {
        "lignes_lues": int(len(rows)),
        "lignes_professions_suivies": int(len(kept)),
        "par_regle": {k: int(v) for k, v in kept["how"].value_counts().sort_index().items()},
        "lignes_hors_perimetre": int(len(placed) - len(in_scope)),
        "professionnels_comptes": int(unique["id"].nunique()),
    }
    return counts, unmatched, report


# --------------------------------------------------------------------------- DREES APL

APL_CODE = "code commune insee"
APL_VALUE = "apl aux medecins generalistes"


def read_apl(
    path: str | Path, *, sheet: str = "", notes: list[tuple[str, str, str]] | None = None
) -> tuple[pd.DataFrame, str]:
    """Read the general-practice APL of one vintage: ``code_commune, apl, population_totale``.

    The sheet is ``sheet`` or the most recent year among the names of the visible sheets (a
    hidden sheet is skipped and said in ``notes``, unless it is ``sheet``); the header row is
    found by its "Code commune INSEE" cell; the units row and blank rows are skipped; merged
    cells take their first value; values written as text with a decimal comma are read as
    numbers.

    Raises
    ------
    ValidationError
        Listing every problem (no data sheet, header not found, columns missing, bad values).
    """
    path = Path(path)
    if not path.is_file():
        raise PipelineError(
            f"{path}: APL workbook not found; fix [indicators] apl in pipeline.toml"
        )
    sheets = read_workbook_frames(
        path,
        what="APL workbook",
        setting="[indicators] apl",
        include=(sheet,) if sheet else (),
        notes=notes,
    )
    data_sheets = {name: frame for name, frame in sheets.items() if "lisez" not in _norm(name)}
    problems = Problems(path)
    if sheet:
        if sheet not in data_sheets:
            raise PipelineError(
                f"{path}: no sheet {sheet!r} (sheets: {', '.join(sheets)}); fix [indicators] "
                "apl_sheet"
            )
        name = sheet
    else:
        years = {
            n: max(map(int, re.findall(r"(?:19|20)\d{2}", n)), default=-1) for n in data_sheets
        }
        if not years:
            raise PipelineError(
                f"{path}: no data sheet (only {', '.join(sheets)}); expected the DREES APL workbook"
            )
        name = max(years, key=lambda n: (years[n], n))
    frame = data_sheets[name]
    header_row = find_header_row(frame, APL_CODE)
    if header_row is None:
        raise PipelineError(
            f"{path} [{name}]: no header cell 'Code commune INSEE' in the first 30 rows; "
            "expected the DREES APL layout"
        )
    headers = [_norm(v) if isinstance(v, str) else "" for v in frame.iloc[header_row]]
    find = {"code": APL_CODE, "apl": APL_VALUE}
    cols = {k: headers.index(v) for k, v in find.items() if v in headers}
    pop = next((k for k, h in enumerate(headers) if h.startswith("population totale")), None)
    for key in find:
        if key not in cols:
            problems.add(
                f"sheet {name!r}: no column '{find[key]}' (headers: {[h for h in headers if h]})"
            )
    problems.raise_if_any()
    body = frame.iloc[header_row + 1 :]
    codes = body.iloc[:, cols["code"]].map(lambda v: "" if pd.isna(v) else str(v).strip())
    lines = body.index.to_numpy()
    codes = codes.map(lambda c: c[:-2] if c.endswith(".0") else c).map(
        lambda c: c.zfill(5) if c.isdigit() else c.upper()
    )
    is_row = codes.str.fullmatch(r"[0-9][0-9AB][0-9]{3}")
    values = body.iloc[:, cols["apl"]][is_row]
    apl = pd.to_numeric(
        values.map(lambda v: str(v).strip().replace(",", ".") if isinstance(v, str) else v),
        errors="coerce",
    )
    bad = apl.isna() & values.map(lambda v: not (pd.isna(v) or str(v).strip() == ""))
    for k in np.flatnonzero(bad.to_numpy())[:10]:
        problems.add(
            f"sheet {name!r} row {lines[np.flatnonzero(is_row.to_numpy())[k]]}: APL "
            f"value {values.iloc[k]!r} is not a number"
        )
    problems.raise_if_any()
    out = pd.DataFrame({"code_commune": codes[is_row].to_numpy(), "apl": apl.to_numpy(dtype=float)})
    if pop is not None:
        out["population_totale"] = pd.to_numeric(
            body.iloc[:, pop][is_row], errors="coerce"
        ).to_numpy()
    if out.empty:
        raise PipelineError(
            f"{path} [{name}]: no commune row under the header; expected the DREES APL layout"
        )
    return out, name


def apl_by_commune(
    apl: pd.DataFrame, lookup: dict[str, tuple[str, str]]
) -> tuple[pd.Series, list[str]]:
    """APL per current commune: arrondissements and old codes are mapped to their commune
    (population-weighted mean); returns the series and the codes that could not be mapped.
    """
    mapped = apl["code_commune"].map(lambda c: lookup.get(c, ("", ""))[0])
    unknown = sorted(apl.loc[mapped == "", "code_commune"])
    frame = apl.assign(current=mapped)[mapped != ""]
    weight = (
        frame["population_totale"].fillna(1.0)
        if "population_totale" in frame
        else pd.Series(1.0, index=frame.index)
    )
    frame = frame.assign(
        w=weight.where(frame["apl"].notna(), 0.0), wv=(frame["apl"] * weight).fillna(0.0)
    )
    grouped = frame.groupby("current")[["w", "wv"]].sum()
    return (grouped["wv"] / grouped["w"].replace(0, np.nan)).rename("apl"), unknown
