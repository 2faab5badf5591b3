"""FINESS establishments, etalab geolocated stock (``etalab-cs1100507-stock-<AAAAMMJJ-HHMM>.csv``).

Line 1 ``finess;etalab;<n>;<date>`` (skipped), no column header, ``;``-separated, Windows-1252. Two
record kinds: ``structureet`` (32 fields, :data:`STRUCTURE_FIELDS`) and ``geolocalisation``
(:data:`GEO_FIELDS`). The INSEE commune code is ``departement + commune``, except overseas where
``departement`` is ``9A``–``9F`` and the code is ``97 + commune`` (``9A``/``101`` → ``97101``).

Categories counted (:data:`CATEGORIES`): maisons de santé pluriprofessionnelles (603), centres de
santé (124), pharmacies d'officine (620); CPTS (604) are listed with their seat commune.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import PipelineError
from .opendata import check_separator, source_text

STRUCTURE_FIELDS = [
    "section",
    "nofinesset",
    "nofinessej",
    "rs",
    "rslongue",
    "complrs",
    "compldistrib",
    "numvoie",
    "typvoie",
    "voie",
    "compvoie",
    "lieuditbp",
    "commune",
    "departement",
    "libdepartement",
    "ligneacheminement",
    "telephone",
    "telecopie",
    "categetab",
    "libcategetab",
    "categagretab",
    "libcategagretab",
    "siret",
    "codeape",
    "codemft",
    "libmft",
    "codesph",
    "libsph",
    "dateouv",
    "dateautor",
    "datemaj",
    "numuai",
]
GEO_FIELDS = ["section", "nofinesset", "coordxet", "coordyet", "sourcecoordet", "datemaj"]
CATEGORIES = {"msp": "603", "centre_sante": "124", "pharmacie": "620", "cpts": "604"}
COUNTED = ("msp", "centre_sante", "pharmacie")
LABELS_FR = {
    "n_msp": "Maisons de santé pluriprofessionnelles",
    "n_centre_sante": "Centres de santé",
    "n_pharmacie": "Pharmacies",
    "n_cpts_finess": "CPTS (sièges FINESS)",
}
OUTRE_MER = {"9A": "97", "9B": "97", "9C": "97", "9D": "97", "9E": "97", "9F": "97"}
CODE_PATTERN = r"(?:\d\d|2A|2B)\d{3}"
LAYOUT = "the etalab FINESS stock etalab-cs1100507-stock-<date>.csv"
COLUMNS = [
    "nofinesset",
    "rs",
    "categetab",
    "libcategetab",
    "code_commune",
    "departement",
    "coordx",
    "coordy",
    "source_coordonnees",
]


def insee_code(departement: str, commune: str) -> str:
    """INSEE commune code from FINESS's ``departement`` and 3-digit ``commune`` fields."""
    departement, commune = departement.strip().upper(), commune.strip()
    return OUTRE_MER.get(departement, departement.zfill(2)) + commune.zfill(3)


def _fields(record: list[str], expected: int) -> list[str] | None:
    """The record's fields, tolerating one trailing empty field; ``None`` when the count
    is wrong.
    """
    if len(record) == expected + 1 and record[-1] == "":
        record = record[:-1]
    return record if len(record) == expected else None


def read_finess(path: str | Path) -> tuple[pd.DataFrame, dict]:
    """Read the establishments of the FINESS stock with their coordinates.

    Returns
    -------
    establishments : DataFrame
        Columns :data:`COLUMNS` (strings; ``coordx``/``coordy``/``source_coordonnees`` empty when
        the establishment has no ``geolocalisation`` record), sorted by ``nofinesset``.
    report : dict
        Encoding read, export date and announced count of line 1, records of each kind, FINESS
        numbers whose departement + commune do not make an INSEE code (they match no commune).

    Raises
    ------
    PipelineError
        Missing/empty file, zip/UTF-16/binary, not ``;``-separated, first line not
        ``finess;etalab;…``, a record with the wrong number of fields or of an unknown kind, no
        ``structureet`` record.
    """
    path = Path(path)
    text, encoding = source_text(
        path, what="FINESS stock", setting="[profile] finess", layout=LAYOUT
    )
    lines = text.splitlines()
    check_separator(path, lines[0], sep=";", layout=LAYOUT)
    first = lines[0].split(";")
    if (
        first[0].strip().lower() != "finess"
        or len(first) < 2
        or first[1].strip().lower() != "etalab"
    ):
        raise PipelineError(
            f"{path}: line 1 is {lines[0][:60]!r}, not 'finess;etalab;<n>;<date>'; expected "
            f"{LAYOUT} (a file with a column header is another FINESS export)"
        )
    structures, geos = [], {}
    for number, record in enumerate((line.split(";") for line in lines[1:]), start=2):
        if not record or record == [""]:
            continue
        kind = record[0].strip()
        expected = (
            STRUCTURE_FIELDS
            if kind == "structureet"
            else GEO_FIELDS
            if kind == "geolocalisation"
            else None
        )
        if expected is None:
            raise PipelineError(
                f"{path}: line {number}: unknown record kind {kind[:30]!r}; expected 'structureet' "
                f"or 'geolocalisation' records of {LAYOUT}"
            )
        fields = _fields(record, len(expected))
        if fields is None:
            raise PipelineError(
                f"{path}: line {number}: {kind} record with {len(record)} fields, expected "
                f"{len(expected)}; expected {LAYOUT} as published (not re-saved by a spreadsheet)"
            )
        row = dict(zip(expected, (f.strip() for f in fields)))
        if kind == "structureet":
            structures.append(row)
        else:
            geos[row["nofinesset"]] = row
    if not structures:
        raise PipelineError(
            f"{path}: no 'structureet' record after line 1; download {LAYOUT} again"
        )
    frame = pd.DataFrame(structures)
    frame["code_commune"] = [
        insee_code(d, c) for d, c in zip(frame["departement"], frame["commune"])
    ]
    for column, field in (
        ("coordx", "coordxet"),
        ("coordy", "coordyet"),
        ("source_coordonnees", "sourcecoordet"),
    ):
        frame[column] = frame["nofinesset"].map(lambda n, f=field: geos.get(n, {}).get(f, ""))
    announced = (first + ["", ""])[2:4]
    report = {
        "encodage": "Windows-1252" if encoding == "latin-1" else encoding,
        "ligne_1": {"annonce": announced[0].strip(), "date": announced[1].strip()},
        "structureet": int(len(frame)),
        "geolocalisation": int(len(geos)),
        "sans_coordonnees": int((frame["coordx"] == "").sum()),
        "code_commune_invalide": sorted(
            frame.loc[~frame["code_commune"].str.fullmatch(CODE_PATTERN), "nofinesset"]
        ),
    }
    return frame[COLUMNS].sort_values("nofinesset", kind="stable").reset_index(drop=True), report


def counts_by_commune(establishments: pd.DataFrame) -> pd.DataFrame:
    """Establishments of :data:`COUNTED` per commune: ``n_msp, n_centre_sante, n_pharmacie`` (and
    ``n_cpts_finess``, CPTS seats), indexed by ``code_commune`` (communes with none are absent:
    with the file read, their count is a real zero).
    """
    columns = {f"n_{name}": CATEGORIES[name] for name in COUNTED}
    columns["n_cpts_finess"] = CATEGORIES["cpts"]
    out = pd.DataFrame(
        {
            column: (establishments["categetab"] == code)
            .groupby(establishments["code_commune"])
            .sum()
            for column, code in columns.items()
        }
    )
    out = out.astype("int64")
    out.index.name = "code_commune"
    return out[out.sum(axis=1) > 0].sort_index()


def place_in_units(
    establishments: pd.DataFrame, lookup: dict[str, tuple[str, str]]
) -> pd.DataFrame:
    """The establishments with ``code_unite``: the unit of coverage their commune code stands for
    (:func:`pipeline.sources.codes.single_unit`: codes of older COG vintages mapped to today's
    commune, arrondissement codes kept), ``""`` when it stands for no single unit — a Paris / Lyon /
    Marseille commune code (the arrondissement is not known: never guessed) or an unknown code.
    """
    unit = establishments["code_commune"].map(lambda c: lookup.get(c, ("", ""))[0])
    return establishments.assign(code_unite=unit.to_numpy())


def cpts_seats(establishments: pd.DataFrame) -> pd.DataFrame:
    """The CPTS (category 604) with their seat commune: ``nofinesset, rs, code_commune``."""
    seats = establishments.loc[
        establishments["categetab"] == CATEGORIES["cpts"], ["nofinesset", "rs", "code_commune"]
    ]
    return seats.reset_index(drop=True)
