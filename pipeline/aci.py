"""ACI size tiers and annual funding envelopes of a CPTS (or candidate territory).

The tiers and amounts live in ``[aci]`` of the settings; a new ACI vintage is a new
``[aci.funding."<vintage>"]`` table. :func:`funding_table` checks the table (four amounts per
mission, missions summing to the declared total) and reports every problem at once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import Problems

SUPPLEMENT = "supplement_soins_non_programmes"
META = {"source", "total", SUPPLEMENT}


def assign_tier(
    population, *, tiers: list[str], bounds: list[int], bound_goes_up: list[bool]
) -> np.ndarray:
    """ACI tier of each population.

    With the 2019 settings: T1 < 40,000 <= T2 < 80,000 <= T3 <= 175,000 < T4.

    Parameters
    ----------
    population : array-like of int
    tiers : list of str
        ``len(bounds) + 1`` tier names, smallest first.
    bounds : list of int
        Increasing tier limits.
    bound_goes_up : list of bool
        For each bound, whether a population equal to it falls in the upper tier.
    """
    pop = np.asarray(population, dtype=np.int64)
    index = np.zeros(len(pop), dtype=np.int64)
    for bound, up in zip(bounds, bound_goes_up):
        index += (pop >= bound) if up else (pop > bound)
    return np.asarray(tiers, dtype=object)[index]


def funding_table(aci: dict) -> pd.DataFrame:
    """The funding table of the selected vintage: one row per tier, one column per mission,
    plus ``total`` (missions summed) and the separate supplement.

    Raises
    ------
    ValidationError
        Listing every problem of the ``[aci]`` settings.
    """
    problems = Problems("pipeline.toml [aci]")
    tiers = list(aci.get("tiers", []))
    vintage = str(aci.get("vintage"))
    table = aci.get("funding", {}).get(vintage)
    if (
        len(aci.get("bounds", [])) != len(tiers) - 1
        or len(aci.get("bound_goes_up", [])) != len(tiers) - 1
    ):
        problems.add("bounds and bound_goes_up need one value fewer than tiers")
    if list(aci.get("bounds", [])) != sorted(aci.get("bounds", [])):
        problems.add("bounds must be increasing")
    if table is None:
        problems.add(
            f'no [aci.funding."{vintage}"] table for vintage {vintage!r}; add it or fix vintage'
        )
        problems.raise_if_any()
    missions = [k for k in table if k not in META]
    for key in missions + [k for k in (SUPPLEMENT, "total") if k in table]:
        values = table[key]
        if len(values) != len(tiers) or not all(isinstance(v, int) and v >= 0 for v in values):
            problems.add(
                f'[aci.funding."{vintage}"] {key}: needs {len(tiers)} whole amounts in EUR, got '
                f"{values}"
            )
    problems.raise_if_any()
    frame = pd.DataFrame({m: table[m] for m in missions}, index=pd.Index(tiers, name="palier"))
    frame["total"] = frame[missions].sum(axis=1)
    if "total" in table and list(frame["total"]) != list(table["total"]):
        problems.add(
            f'[aci.funding."{vintage}"] missions sum to {list(frame["total"])}, but total says '
            f"{table['total']}: fix the amounts or the total"
        )
    problems.raise_if_any()
    frame[SUPPLEMENT] = table.get(SUPPLEMENT, [0] * len(tiers))
    return frame


def envelopes(population, aci: dict) -> pd.DataFrame:
    """Tier, total envelope, supplement and per-mission amounts for each population.

    Parameters
    ----------
    population : array-like of int
        Inhabitants of each CPTS or territory (all the units it claims).
    aci : dict
        The ``[aci]`` settings: ``tiers``, ``bounds``, ``bound_goes_up``, ``vintage`` and
        ``funding``.

    Returns
    -------
    DataFrame
        One row per population, in the input order: ``palier``, one column per mission,
        ``enveloppe_eur`` (the missions summed) and ``supplement_snp_eur`` (the unscheduled-care
        supplement, apart).

    Raises
    ------
    ValidationError
        When the ``[aci]`` funding table is inconsistent (:func:`funding_table`).
    """
    table = funding_table(aci)
    tier = assign_tier(
        population,
        tiers=list(aci["tiers"]),
        bounds=list(aci["bounds"]),
        bound_goes_up=list(aci["bound_goes_up"]),
    )
    out = table.loc[tier].reset_index()
    return out.rename(columns={"total": "enveloppe_eur", SUPPLEMENT: "supplement_snp_eur"})
