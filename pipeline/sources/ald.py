"""Assurance Maladie open data ``patients-longueduree-annuelle``: the share of patients in affection
de longue durée (ALD) without a médecin traitant, published per département at best — context for
a white zone's département, labelled as such, never a commune value.

Layout: ``;``-separated, ``annee, region, libelle_region, departement, libelle_departement,
taux_patients_ald_sans_mt, taux_patients_ald_sans_mt_integer``; ``region = 99`` is France,
``departement = 999`` a région row, ``NC`` a masked value.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import PipelineError
from .opendata import numbers, read_delimited

COLUMNS = [
    "annee",
    "region",
    "libelle_region",
    "departement",
    "libelle_departement",
    "taux_patients_ald_sans_mt",
]
LAYOUT = (
    "Assurance Maladie's patients-longueduree-annuelle CSV "
    "(annee;region;…;taux_patients_ald_sans_mt;…)"
)
LABEL_FR = "Patients en ALD sans médecin traitant (%, donnée départementale)"
MASKED = {"NC", ""}


def read_ald(path: str | Path) -> pd.DataFrame:
    """Read the rates into ``annee (int), niveau (france / region / departement), code_region,
    code_departement ("" above the département), taux`` (NaN where masked ``NC``).

    Raises
    ------
    PipelineError
        As :func:`pipeline.sources.opendata.read_delimited`; missing columns; a rate or year that is
        not a number.
    """
    path = Path(path)
    frame = read_delimited(path, sep=";", what="ALD rates", setting="[profile] ald", layout=LAYOUT)
    frame.columns = [c.lower() for c in frame.columns]
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise PipelineError(f"{path}: missing column(s) {', '.join(missing)}; expected {LAYOUT}")
    region = frame["region"].str.strip().str.zfill(2)
    departement = (
        frame["departement"].str.strip().str.upper().map(lambda d: d.zfill(2) if d.isdigit() else d)
    )
    niveau = np.where(
        region == "99", "france", np.where(departement == "999", "region", "departement")
    )
    rates = numbers(path, frame, "taux_patients_ald_sans_mt", masked=MASKED)
    return pd.DataFrame(
        {
            "annee": numbers(path, frame, "annee").astype(int),
            "niveau": niveau,
            "code_region": np.where(niveau == "france", "", region),
            "code_departement": np.where(niveau == "departement", departement, ""),
            "taux": rates,
        }
    )


def ald_context(
    table: pd.DataFrame, code_departement: str, code_region: str, *, year: int | None = None
) -> dict:
    """The rate of a département next to its région's and France's, for the latest year (or
    ``year``): ``{"annee", "departement", "region", "france"}`` (NaN when masked or absent).
    """
    year = int(table["annee"].max()) if year is None else year
    rows = table[table["annee"] == year]

    def rate(mask) -> float:
        found = rows.loc[mask, "taux"]
        return float(found.iloc[0]) if len(found) else float("nan")

    return {
        "annee": year,
        "departement": rate(
            (rows["niveau"] == "departement") & (rows["code_departement"] == code_departement)
        ),
        "region": rate((rows["niveau"] == "region") & (rows["code_region"] == code_region)),
        "france": rate(rows["niveau"] == "france"),
    }
