"""INSEE population by age: commune level (``base-cc-evol-struct-pop-<AAAA>.CSV``) and IRIS level
(``base-ic-evol-struct-pop-<AAAA>.CSV``).

Commune file: ``;``-separated, header on line 1, ``CODGEO`` first (communes and arrondissements
municipaux), then for the latest year ``YY`` ``PYY_POP``, ``PYY_POP0014`` … ``PYY_POP6074``,
``PYY_POP7589``, ``PYY_POP90P`` (no 75+ column at commune level: 75+ = 7589 + 90P), the sex and
residence blocks, then the same blocks for two earlier years. Values are weighted floats.

IRIS file: ``IRIS, COM, …, PYY_POP, …, PYY_POP0014, 1529, 3044, 4559, 6074, 75P, …``.

Both loaders return the same age bands, :data:`AGE_BANDS`, as floats (never rounded: they are
estimates), plus ``population_age`` (``PYY_POP``), the denominator of every age share.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ..errors import PipelineError
from .opendata import numbers, read_delimited

AGE_BANDS = ("0014", "1529", "3044", "4559", "6074", "75p")
AGE_COLUMNS = [f"pop_{band}" for band in AGE_BANDS]
AGE_LABELS_FR = {
    "pop_0014": "0 à 14 ans",
    "pop_1529": "15 à 29 ans",
    "pop_3044": "30 à 44 ans",
    "pop_4559": "45 à 59 ans",
    "pop_6074": "60 à 74 ans",
    "pop_75p": "75 ans et plus",
}
# Source columns (without the PYY_ prefix) summed into each band, per file.
COMMUNE_SOURCE = {
    "population_age": ("POP",),
    "pop_0014": ("POP0014",),
    "pop_1529": ("POP1529",),
    "pop_3044": ("POP3044",),
    "pop_4559": ("POP4559",),
    "pop_6074": ("POP6074",),
    "pop_75p": ("POP7589", "POP90P"),
}
IRIS_SOURCE = {**COMMUNE_SOURCE, "pop_75p": ("POP75P",)}
# Arrondissements municipaux: code range → their commune (Paris, Lyon, Marseille; COG since 1982).
ARRONDISSEMENTS = {
    ("75101", "75120"): "75056",
    ("69381", "69389"): "69123",
    ("13201", "13216"): "13055",
}
COMMUNE_LAYOUT = "INSEE's base-cc-evol-struct-pop-<year>.CSV (CODGEO;P<yy>_POP;P<yy>_POP0014;…)"
IRIS_LAYOUT = "INSEE's base-ic-evol-struct-pop-<year>.CSV (IRIS;…;COM;…;P<yy>_POP;…)"


def latest_prefix(columns, *, path: str | Path, layout: str) -> str:
    """The prefix ``PYY_`` of the latest year having a ``PYY_POP`` column (``P21_``
    over ``P15_``).
    """
    years = sorted(int(m.group(1)) for c in columns if (m := re.fullmatch(r"P(\d{2})_POP", c)))
    if not years:
        raise PipelineError(
            f"{path}: no population column P<yy>_POP (e.g. P21_POP); expected {layout}"
        )
    return f"P{years[-1]:02d}_"


def arrondissement_parent(code: str) -> str:
    """The commune of an arrondissement municipal code (``13201`` → ``13055``), ``""`` otherwise."""
    for (low, high), parent in ARRONDISSEMENTS.items():
        if low <= code <= high and len(code) == 5:
            return parent
    return ""


def _age_table(
    path: Path,
    frame: pd.DataFrame,
    keys: dict[str, str],
    source: dict[str, tuple[str, ...]],
    layout: str,
) -> tuple[pd.DataFrame, int]:
    """Key columns renamed and age bands summed from the latest year's columns."""
    upper = {c.upper(): c for c in frame.columns}
    prefix = latest_prefix(upper, path=path, layout=layout)
    wanted = list(keys) + [prefix + s for parts in source.values() for s in parts]
    missing = [c for c in wanted if c not in upper]
    if missing:
        raise PipelineError(f"{path}: missing column(s) {', '.join(missing)}; expected {layout}")
    out = pd.DataFrame(
        {new: frame[upper[old]].str.strip().str.strip('"') for old, new in keys.items()}
    )
    for column, parts in source.items():
        out[column] = sum(numbers(path, frame, upper[prefix + s]) for s in parts)
    bands = out[AGE_COLUMNS].sum(axis=1)
    off = (bands - out["population_age"]).abs() > 0.5 + 1e-3 * out["population_age"]
    if off.any():
        k = int(off.to_numpy().argmax())
        raise PipelineError(
            f"{path}: line {k + 2}: the age bands add up to {bands.iloc[k]:.2f}, not "
            f"{prefix}POP = {out['population_age'].iloc[k]:.2f}; the columns look shifted, "
            f"expected {layout}"
        )
    return out, 2000 + int(prefix[1:3])


def read_commune_ages(path: str | Path) -> tuple[pd.DataFrame, int]:
    """Read the commune file into one row per ``CODGEO`` (communes and arrondissements).

    Returns
    -------
    ages : DataFrame
        ``code_commune, arrondissement (bool), code_commune_parent`` (the commune of an
        arrondissement, else the code itself), ``population_age`` and :data:`AGE_COLUMNS` (floats).
    year : int
        The year of the columns read (``P21_`` → 2021).

    Raises
    ------
    PipelineError
        Missing/empty file, not ``;``-separated, zip/UTF-16/binary, missing columns, a value that is
        not a number, age bands that do not add up to ``PYY_POP``, duplicated codes.
    """
    path = Path(path)
    frame = read_delimited(
        path,
        sep=";",
        what="INSEE population by age",
        setting="[profile] population_age",
        layout=COMMUNE_LAYOUT,
    )
    out, year = _age_table(path, frame, {"CODGEO": "code_commune"}, COMMUNE_SOURCE, COMMUNE_LAYOUT)
    out["code_commune"] = out["code_commune"].map(
        lambda c: c.zfill(5) if c.isdigit() else c.upper()
    )
    duplicated = out["code_commune"][out["code_commune"].duplicated()]
    if len(duplicated):
        raise PipelineError(
            f"{path}: CODGEO {duplicated.iloc[0]} appears more than once; download the file again"
        )
    parent = out["code_commune"].map(arrondissement_parent)
    out.insert(1, "arrondissement", parent != "")
    out.insert(2, "code_commune_parent", parent.where(parent != "", out["code_commune"]))
    return out.sort_values("code_commune", kind="stable").reset_index(drop=True), year


def ages_by_commune(ages: pd.DataFrame) -> pd.DataFrame:
    """One row per commune, indexed by ``code_commune``: ``population_age`` and :data:`AGE_COLUMNS`.

    A commune that has its own row keeps it (its arrondissements are not added on top); a commune
    known only through its arrondissements (Paris, Lyon, Marseille) is their sum.
    """
    values = ["population_age", *AGE_COLUMNS]
    own = ages.loc[~ages["arrondissement"]].set_index("code_commune")[values]
    arm = ages.loc[ages["arrondissement"]].groupby("code_commune_parent")[values].sum()
    arm = arm.loc[~arm.index.isin(own.index)]
    out = pd.concat([own, arm]).sort_index()
    out.index.name = "code_commune"
    return out


def ages_by_unit(
    ages: pd.DataFrame, lookup: dict[str, tuple[str, str]]
) -> tuple[pd.DataFrame, list[str]]:
    """One row per unit of coverage (commune, or arrondissement in Paris, Lyon and Marseille),
    indexed by ``code_commune``: ``population_age`` and :data:`AGE_COLUMNS`; and the codes that
    stand for no single unit.

    ``lookup`` (:func:`pipeline.sources.codes.single_unit`) maps the file's codes (of its own COG
    vintage) to today's units: the rows of communes merged since are summed into the commune they
    joined; arrondissements keep their own rows; a Paris / Lyon / Marseille commune row (which
    stands for several units) is left out — its arrondissements' rows give the units, and a unit the
    file does not list stays unknown (never zero).
    """
    values = ["population_age", *AGE_COLUMNS]
    unit = ages["code_commune"].map(lambda c: lookup.get(c, ("", ""))[0])
    whole = ages["code_commune"].isin(set(ARRONDISSEMENTS.values()))
    unknown = sorted(ages.loc[(unit == "") & ~whole, "code_commune"])
    kept = ages.loc[unit != "", values].groupby(unit[unit != ""]).sum()
    kept.index.name = "code_commune"
    return kept.sort_index(), unknown


def read_iris_ages(path: str | Path) -> tuple[pd.DataFrame, int]:
    """Read the age columns of the IRIS file: ``code_iris, code_commune, population_age`` and
    :data:`AGE_COLUMNS` (``pop_75p`` is ``PYY_POP75P``), and the year read.

    Raises
    ------
    PipelineError
        As :func:`read_commune_ages`.
    """
    path = Path(path)
    frame = read_delimited(
        path,
        sep=";",
        what="INSEE population by IRIS",
        setting="[territories] iris_population",
        layout=IRIS_LAYOUT,
    )
    out, year = _age_table(
        path, frame, {"IRIS": "code_iris", "COM": "code_commune"}, IRIS_SOURCE, IRIS_LAYOUT
    )
    return out.sort_values("code_iris", kind="stable").reset_index(drop=True), year
