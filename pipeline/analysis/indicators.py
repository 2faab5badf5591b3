"""Stage ``indicators`` (pure parts): supply of care and accessibility per commune and per
territory.

Per commune: professionals by profession (each counted once per commune), density per 10,000
inhabitants, E2SFCA accessibility to general practitioners, DREES APL when given, and an
under-served flag. Without a practitioner file every supply column is missing (NaN/NA) and marked
unavailable by the maps and reports — never zero.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .accessibility import e2sfca

PROFESSIONS_FR = {
    "medecin_generaliste": "Médecins généralistes",
    "infirmier": "Infirmiers",
    "masseur_kinesitherapeute": "Masseurs-kinésithérapeutes",
    "pharmacien": "Pharmaciens",
    "chirurgien_dentiste": "Chirurgiens-dentistes",
    "sage_femme": "Sages-femmes",
}


def commune_indicators(
    communes,
    counts: pd.DataFrame | None,
    apl: pd.Series | None,
    *,
    professions: list[str],
    bands_km: list[float],
    weights: list[float],
    apl_threshold: float,
    e2sfca_threshold: float,
) -> pd.DataFrame:
    """One row per commune of ``communes`` (same order): counts, densities, E2SFCA, APL, flag.

    Parameters
    ----------
    communes : GeoDataFrame
        The units of the scope: ``code_commune``, ``population`` and a geometry (E2SFCA measures
        distances between their centres).
    counts : DataFrame or None
        Professionals per unit, indexed by ``code_commune``, one column per profession; None when
        no RPPS extract is given (counts, densities and E2SFCA are then missing, never zero).
    apl : Series or None
        DREES APL per ``code_commune``; None without the workbook.
    professions : list of str
        The professions counted (``[indicators.professions]`` names).
    bands_km, weights : list of float
        The E2SFCA distance bands and their weights (``[indicators.e2sfca]``).
    apl_threshold : float
        A unit whose APL is below it is ``sous_dotee`` (``[indicators] apl_underserved``).
    e2sfca_threshold : float
        Also ``sous_dotee`` below this E2SFCA (GPs per 10,000 inhabitants); 0 turns the rule off.

    Returns
    -------
    DataFrame
        ``code_commune``, ``population``, ``n_<profession>`` and ``densite_<profession>_10k`` per
        profession, ``e2sfca_mg_10k``, ``apl_mg`` and ``sous_dotee`` (missing where nothing says).
    """
    out = pd.DataFrame(
        {
            "code_commune": communes["code_commune"].to_numpy(),
            "population": communes["population"].to_numpy(),
        }
    )
    pop = communes["population"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    for name in professions:
        if counts is None:
            out[f"n_{name}"] = pd.array([pd.NA] * len(out), dtype="Int64")
            out[f"densite_{name}_10k"] = np.nan
        else:
            n = out["code_commune"].map(counts[name]).fillna(0).astype("int64")
            out[f"n_{name}"] = pd.array(n.to_numpy(), dtype="Int64")
            out[f"densite_{name}_10k"] = np.where(pop > 0, n.to_numpy() / pop * 1e4, np.nan)
    if counts is None:
        out["e2sfca_mg_10k"] = np.nan
    else:
        supply = out["n_medecin_generaliste"].to_numpy(dtype=float)
        out["e2sfca_mg_10k"] = np.round(
            e2sfca(communes, supply, bands_km=bands_km, weights=weights), 4
        )
    out["apl_mg"] = out["code_commune"].map(apl).astype(float) if apl is not None else np.nan
    flag = pd.array([pd.NA] * len(out), dtype="boolean")
    if apl is not None:
        known = out["apl_mg"].notna().to_numpy()
        flag[known] = out.loc[known, "apl_mg"].to_numpy() < apl_threshold
    if counts is not None and e2sfca_threshold > 0:
        low = out["e2sfca_mg_10k"].to_numpy() < e2sfca_threshold
        flag = pd.array(
            np.where(pd.isna(flag), low, np.asarray(flag, dtype=object) | low), dtype="boolean"
        )
    out["sous_dotee"] = flag
    return out


def aggregate(
    indicators: pd.DataFrame, groups: pd.DataFrame, *, professions: list[str]
) -> pd.DataFrame:
    """Indicators per group from a membership table ``(group, code_commune)``: counts summed,
    densities over the group's population, E2SFCA and APL population-weighted, under-served communes
    counted. Missing inputs stay missing.
    """
    joined = groups.merge(indicators, on="code_commune", how="left")
    joined["population"] = joined["population"].fillna(0).astype(float)
    g = joined.groupby("group", sort=True)
    out = pd.DataFrame(index=g.size().index)
    pop = g["population"].sum()
    for name in professions:
        column = joined[f"n_{name}"]
        total = column.astype("Float64").groupby(joined["group"]).sum(min_count=1)
        out[f"n_{name}"] = total.astype("Int64")
        out[f"densite_{name}_10k"] = (total.astype(float) / pop.replace(0, np.nan) * 1e4).round(2)
    for column in ("e2sfca_mg_10k", "apl_mg"):
        value = joined[column].astype(float)
        weight = joined["population"].where(value.notna(), 0.0)
        num = (value.fillna(0) * weight).groupby(joined["group"]).sum()
        den = weight.groupby(joined["group"]).sum()
        out[column] = (num / den.replace(0, np.nan)).round(3)
    out["communes_sous_dotees"] = (
        joined["sous_dotee"]
        .astype("Float64")
        .groupby(joined["group"])
        .sum(min_count=1)
        .astype("Int64")
    )
    return out


def indicator_text(value, unit: str = "", *, decimals: int = 1) -> str:
    """French display of a value (space between thousands, decimal comma), or 'indisponible'."""
    if value is None or pd.isna(value):
        return "indisponible"
    return f"{float(value):,.{decimals}f}".replace(",", " ").replace(".", ",") + unit
