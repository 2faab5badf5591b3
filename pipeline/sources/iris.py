"""IRIS level: IGN CONTOURS-IRIS boundaries and INSEE population by IRIS.

* CONTOURS-IRIS (GeoPackage, IGN): attributes ``code_insee, nom_commune, iris, code_iris, nom_iris,
  type_iris`` (older shapefile editions: ``INSEE_COM, NOM_COM, IRIS, CODE_IRIS, NOM_IRIS,
  TYP_IRIS``); Lambert-93 in metropolitan France.
* INSEE population by IRIS (``base-ic-evol-struct-pop-<year>.CSV``): ``;``-separated, one row per
  IRIS, ``IRIS`` (9 characters), ``COM``, …, ``P<yy>_POP`` (a fractional estimate).

IRIS populations are estimates of another vintage than the commune's: :func:`apportion` scales
them to the commune's population with largest-remainder rounding, so that the IRIS of a commune add
up to its population to the inhabitant.
"""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from ..errors import PipelineError, Problems
from .rawdata import read_text_table, read_vector

CONTOUR_COLUMNS = {
    "code_iris": ("code_iris",),
    "code_commune": ("code_insee", "insee_com", "depcom"),
    "nom_iris": ("nom_iris",),
    "type_iris": ("type_iris", "typ_iris"),
}


IRIS_CODE = re.compile(r"(?:\d{2}|2[AB])\d{3}\d{4}")


def malformed_iris(codes: list[str], communes: tuple[str, ...]) -> list[str]:
    """The IRIS codes of ``codes`` that cannot be IRIS of ``communes``.

    An IRIS code is its commune's code (5 characters) followed by 4 digits (``480950101``).

    Parameters
    ----------
    codes : list of str
        IRIS codes as a perimeter table lists them for one commune.
    communes : tuple of str
        The codes of the commune (or its arrondissements) they belong to.

    Returns
    -------
    list of str
        The malformed codes, or codes of another commune, in the order given.
    """
    return [c for c in codes if not IRIS_CODE.fullmatch(c) or c[:5] not in communes]


def read_iris_contours(path: str | Path) -> gpd.GeoDataFrame:
    """Read CONTOURS-IRIS into ``code_iris, code_commune, nom_iris, type_iris, geometry``."""
    path = Path(path)
    frame = read_vector(
        path,
        what="IRIS contours",
        setting="[territories] iris_contours",
        fix="use IGN's CONTOURS-IRIS GeoPackage",
        polygons=True,
    )
    lower = {c.lower(): c for c in frame.columns}
    rename, missing = {}, []
    for target, aliases in CONTOUR_COLUMNS.items():
        found = next((lower[a] for a in aliases if a in lower), None)
        if found is None:
            missing.append(f"{target} (any of {', '.join(aliases)})")
        else:
            rename[found] = target
    if missing:
        raise PipelineError(
            f"{path}: missing attribute(s) {'; '.join(missing)}; expected IGN CONTOURS-IRIS layout"
        )
    out = frame.rename(columns=rename)[list(CONTOUR_COLUMNS) + ["geometry"]]
    out["code_iris"] = out["code_iris"].astype(str).str.strip()
    out["code_commune"] = out["code_commune"].astype(str).str.strip()
    bad = out.loc[out["code_iris"].str.len() != 9, "code_iris"]
    if len(bad):
        raise PipelineError(
            f"{path}: code_iris must have 9 characters (e.g. 315550101); "
            f"{len(bad)} do not, first {bad.iloc[0]!r}"
        )
    return out.sort_values("code_iris").reset_index(drop=True)


def read_iris_population(path: str | Path) -> pd.DataFrame:
    """Read INSEE population by IRIS into ``code_iris, code_commune, population_iris`` (float)."""
    frame, _how = read_text_table(
        path, what="IRIS population", setting="[territories] iris_population"
    )
    upper = {c.upper().strip(): c for c in frame.columns}
    pop_cols = sorted(c for c in upper if re.fullmatch(r"P\d{2}_POP", c))
    problems = Problems(path)
    for col in ("IRIS", "COM"):
        if col not in upper:
            problems.add(
                f"missing column {col}; expected INSEE's base-ic-evol-struct-pop layout "
                "(IRIS;COM;…;Pyy_POP)"
            )
    if not pop_cols:
        problems.add(
            "no population column P<yy>_POP (e.g. P20_POP); expected INSEE's "
            "base-ic-evol-struct-pop layout"
        )
    problems.raise_if_any()
    values = frame[upper[pop_cols[-1]]].astype(str).str.strip().str.replace(",", ".", regex=False)
    population = pd.to_numeric(values, errors="coerce")
    bad = np.flatnonzero(population.isna().to_numpy())
    for k in bad[:10]:
        problems.add(
            f"line {k + 2}: {pop_cols[-1]} = {frame[upper[pop_cols[-1]]].iloc[k]!r} is not a number"
        )
    problems.raise_if_any()
    return pd.DataFrame(
        {
            "code_iris": frame[upper["IRIS"]].str.strip(),
            "code_commune": frame[upper["COM"]].str.strip(),
            "population_iris": population.to_numpy(),
        }
    )


def apportion(weights: np.ndarray, total: int) -> np.ndarray:
    """Integers proportional to ``weights`` summing exactly to ``total`` (largest remainder)."""
    weights = np.asarray(weights, dtype=float)
    if total <= 0 or weights.sum() <= 0:
        out = np.zeros(len(weights), dtype=np.int64)
        if total > 0 and len(out):
            out[:] = total // len(out)
            out[: total - out.sum()] += 1
        return out
    exact = weights / weights.sum() * total
    out = np.floor(exact).astype(np.int64)
    remainder = total - out.sum()
    order = np.lexsort((np.arange(len(exact)), -(exact - out)))
    out[order[:remainder]] += 1
    return out


def iris_of_commune(
    contours: gpd.GeoDataFrame, population: pd.DataFrame, commune: pd.Series, *, epsg: int
) -> gpd.GeoDataFrame:
    """The IRIS of one commune with populations scaled to the commune's, ready for regionalization.

    Raises
    ------
    PipelineError
        When the files have no IRIS for the commune, or IRIS without population.
    """
    code = commune["code_commune"]
    iris = contours[contours["code_commune"] == code]
    if iris.empty:
        raise PipelineError(
            f"IRIS contours have no IRIS for commune {code}; check the file's vintage and coverage"
        )
    pops = iris.merge(population[["code_iris", "population_iris"]], on="code_iris", how="left")
    missing = pops.loc[pops["population_iris"].isna(), "code_iris"]
    if len(missing):
        raise PipelineError(
            f"IRIS population has no row for {', '.join(missing[:5])} (commune {code}); "
            "use files of the same vintage"
        )
    out = gpd.GeoDataFrame(pops, geometry="geometry", crs=contours.crs).to_crs(epsg)
    out["population"] = apportion(out["population_iris"].to_numpy(), int(commune["population"]))
    out["code_epci"] = code
    out["code_departement"] = commune["code_departement"]
    out["epsg"] = epsg
    return out.reset_index(drop=True)
