"""Priority of the white zones — a transparent, configurable score — and the FINESS cross-check of
the perimeter file.

**Score.** Each criterion of :data:`CRITERIA` is scaled to a *note* between 0 and 1 over the white
zones (min–max: the zone with the lowest value gets 0, the highest 1, reversed for a criterion where
lower means more urgent; a criterion equal in every zone gives 0 to all). The score is the weighted
mean of the notes, × 100, **over the criteria present for that zone**: a criterion whose data is
missing is left out and listed in ``criteres_absents`` — never counted as zero — so its absence
changes the ranking exactly as a zero weight would. Weights: :data:`DEFAULT_WEIGHTS` (all equal),
set in ``pipeline.toml`` (``[priority.weights]``); a weight of 0 removes a criterion.

**Cross-check.** A CPTS of FINESS (category 604) whose seat lies in a white-zone commune, or in a
commune claimed by CPTS none of which bears its name, is reported: perimeter files are often
incomplete, FINESS is national.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

from ..errors import PipelineError
from ..sources.names import CPTS_NAME_WORDS
from ..sources.rawdata import plain_label as _norm


@dataclass(frozen=True)
class Criterion:
    """One criterion of the score: French label, whether a higher value is more urgent, and why it
    counts (French, for the "Méthode" section).
    """

    label: str
    higher_is_urgent: bool = True
    why: str = ""


CRITERIA = {
    "population": Criterion("Habitants", why="plus d'habitants sans CPTS"),
    "part_75p": Criterion(
        "Part des 75 ans et plus (%)", why="population plus âgée, besoins de soins plus grands"
    ),
    "part_sous_dotee": Criterion(
        "Population sous le seuil d'APL (%)",
        why="part des habitants dans des communes dont l'APL est sous le seuil",
    ),
    "part_zip": Criterion(
        "Population en ZIP (%)", why="part des habitants en zone d'intervention prioritaire"
    ),
    "distance_cpts_km": Criterion(
        "Distance moyenne des habitants à la CPTS la plus proche (km)",
        why="habitants loin de toute CPTS : pas d'extension à portée",
    ),
    "sans_msp": Criterion(
        "Aucune maison de santé (1 = aucune)", why="pas d'exercice coordonné sur lequel s'appuyer"
    ),
}
DEFAULT_WEIGHTS = {name: 1.0 for name in CRITERIA}
CHECK_COLUMNS = ["nofinesset", "rs", "code_commune", "nom_commune", "motif", "cpts_ids", "message"]
_NAME_STOPWORDS = CPTS_NAME_WORDS | {"a"}


def weights_from_settings(weights: dict | None) -> dict[str, float]:
    """Defaults overridden by ``weights`` (``[priority.weights]``), checked.

    Raises
    ------
    PipelineError
        Unknown criterion, a weight that is not a number ≥ 0, every weight zero.
    """
    out = dict(DEFAULT_WEIGHTS)
    for name, value in (weights or {}).items():
        if name not in CRITERIA:
            raise PipelineError(
                f"[priority.weights] unknown criterion {name!r}; known: {', '.join(CRITERIA)}"
            )
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise PipelineError(
                f"[priority.weights] {name} = {value!r}: a weight is a number >= 0 (0 leaves it "
                "out)"
            )
        out[name] = float(value)
    if not any(out.values()):
        raise PipelineError(
            "[priority.weights] every weight is 0; give at least one criterion a positive weight"
        )
    return out


def zone_criteria(
    sums: pd.DataFrame, shares: pd.DataFrame, *, distance_km: pd.Series | None = None
) -> pd.DataFrame:
    """The criteria of each zone (columns named as :data:`CRITERIA`, NaN when unknown) from its
    :func:`pipeline.analysis.profile.group_profile` sums and
    :func:`pipeline.analysis.profile.ratios`.
    """
    out = pd.DataFrame(index=sums.index)
    out["population"] = sums["population"].astype(float)
    for name in ("part_75p", "part_sous_dotee", "part_zip"):
        out[name] = shares[name].astype(float) if name in shares else np.nan
    out["distance_cpts_km"] = (
        distance_km.reindex(sums.index).astype(float) if distance_km is not None else np.nan
    )
    msp = sums["n_msp"].astype(float) if "n_msp" in sums else pd.Series(np.nan, index=sums.index)
    out["sans_msp"] = np.where(msp.isna(), np.nan, (msp == 0).astype(float))
    return out


def notes(values: pd.Series, *, higher_is_urgent: bool) -> pd.Series:
    """Min–max note in [0, 1] over the known values (NaN stays NaN; all equal → 0)."""
    values = values.astype(float)
    low, high = values.min(), values.max()
    if not high > low:
        return values.where(values.isna(), 0.0)
    scaled = (values - low) / (high - low)
    return scaled if higher_is_urgent else 1.0 - scaled


def priority(zones: pd.DataFrame, *, weights: dict | None = None) -> pd.DataFrame:
    """Score and rank the white zones.

    Parameters
    ----------
    zones : DataFrame
        Indexed by zone id; a column per criterion of :data:`CRITERIA` (a missing column is a
        criterion missing for every zone; NaN a criterion missing for that zone).
    weights : dict, optional
        Criterion → weight, over :data:`DEFAULT_WEIGHTS`.

    Returns
    -------
    DataFrame
        Same index, sorted by ``rang``: each criterion's value and ``note_<criterion>``,
        ``score`` (0–100, NaN when no criterion is known), ``rang`` (1 = most urgent; ties and
        unknown scores by zone id), ``criteres_absents`` (codes, ``;``-joined).
    """
    weights = weights_from_settings(weights)
    out = pd.DataFrame(index=zones.index)
    numerator = pd.Series(0.0, index=zones.index)
    denominator = pd.Series(0.0, index=zones.index)
    absent = pd.Series([[] for _ in range(len(zones))], index=zones.index, dtype=object)
    for name, criterion in CRITERIA.items():
        values = (
            zones[name].astype(float) if name in zones else pd.Series(np.nan, index=zones.index)
        )
        note = notes(values, higher_is_urgent=criterion.higher_is_urgent)
        out[name], out[f"note_{name}"] = values, note
        if weights[name] > 0:
            numerator += weights[name] * note.fillna(0.0)
            denominator += weights[name] * note.notna()
            for key in note.index[note.isna()]:
                absent[key] = absent[key] + [name]
    out["score"] = 100.0 * numerator / denominator.replace(0.0, np.nan)
    out["criteres_absents"] = absent.map(";".join)
    order = (
        out.assign(
            _missing=out["score"].isna(),
            _score=-out["score"].fillna(0.0),
            _id=out.index.astype(str),
        )
        .sort_values(["_missing", "_score", "_id"], kind="stable")
        .index
    )
    out = out.loc[order]
    out["rang"] = np.arange(1, len(out) + 1)
    return out


def priority_table(ranked: pd.DataFrame) -> pd.DataFrame:
    """:func:`priority` as written to ``priority.csv``: ``id_zone_blanche, rang, score``, each
    criterion and its ``note_<criterion>``, ``criteres_absents``; rounded for reading (score and
    notes to 4 decimals, values to 3).
    """
    out = ranked.rename_axis("id_zone_blanche").reset_index()
    columns = ["id_zone_blanche", "rang", "score"]
    for name in CRITERIA:
        columns += [name, f"note_{name}"]
    out = out.reindex(columns=columns + ["criteres_absents"])
    for column in columns[2:]:
        out[column] = (
            out[column].astype(float).round(4 if "note" in column or column == "score" else 3)
        )
    out["rang"] = out["rang"].astype("int64")
    return out


def method_table(weights: dict | None = None) -> pd.DataFrame:
    """The "Méthode" table: ``critere, libelle, poids, part_du_poids (%), sens,
    raison`` (French).
    """
    weights = weights_from_settings(weights)
    total = sum(weights.values())
    rows = [
        {
            "critere": name,
            "libelle": c.label,
            "poids": weights[name],
            "part_du_poids": round(100.0 * weights[name] / total, 1),
            "sens": "plus élevé = plus prioritaire"
            if c.higher_is_urgent
            else "plus bas = plus prioritaire",
            "raison": c.why,
        }
        for name, c in CRITERIA.items()
    ]
    return pd.DataFrame(rows)


def distance_to_covered_km(coverage) -> pd.Series:
    """Mean distance (km) of a white zone's inhabitants to the nearest unit covered by an existing
    CPTS, indexed by ``id_zone_blanche``: each unit's distance to the nearest covered unit (0 for a
    unit touching one), weighted by its population (unweighted when the zone has none). Measured in
    each unit's projected CRS (:func:`pipeline.geo.by_zone`, so it works on a national table too);
    NaN for a zone with no covered unit in its CRS zone (an overseas département without any CPTS).

    A white zone always touches the CPTS around it, so the distance of its nearest edge says little;
    the mean distance of its inhabitants says how deep inside the uncovered area they live.
    """
    from ..geo import by_zone

    parts = []
    for _epsg, zone in by_zone(coverage):
        white = zone[zone["id_zone_blanche"].fillna("") != ""]
        if white.empty:
            continue
        covered = zone.geometry[
            zone["statut"].isin(["couverte", "chevauchement"]) & zone.geometry.notna()
        ].to_numpy()
        distance = np.full(len(white), np.nan)
        if len(covered):
            tree = shapely.STRtree(covered)
            (source, _target), metres = tree.query_nearest(
                white.geometry.to_numpy(), return_distance=True, all_matches=False
            )
            distance[source] = metres / 1000.0
        weight = white["population"].astype(float).fillna(0.0).to_numpy()
        parts.append(
            pd.DataFrame({"zone": white["id_zone_blanche"].to_numpy(), "d": distance, "w": weight})
        )
    if not parts:
        return pd.Series(dtype=float, name="distance_cpts_km")
    rows = pd.concat(parts, ignore_index=True)
    rows["w"] = rows["w"].where(rows.groupby("zone")["w"].transform("sum") > 0, 1.0)
    rows["dw"] = rows["d"] * rows["w"]
    grouped = rows.groupby("zone", sort=True)
    mean = grouped["dw"].sum(min_count=1) / grouped["w"].sum()
    mean[grouped["d"].apply(lambda d: d.isna().any())] = np.nan
    return mean.rename("distance_cpts_km").rename_axis(None)


def _name_tokens(name: str) -> frozenset[str]:
    return frozenset(t for t in _norm(name).replace("-", " ").split() if t not in _NAME_STOPWORDS)


def same_cpts(finess_name: str, perimeter_name: str) -> bool:
    """Whether two CPTS names designate the same CPTS: their words (without accents, case,
    "CPTS", "communauté professionnelle territoriale de santé" and articles) are equal, or one
    set contains the other.
    """
    a, b = _name_tokens(finess_name), _name_tokens(perimeter_name)
    return bool(a) and bool(b) and (a <= b or b <= a)


def finess_cross_check(
    seats: pd.DataFrame,
    status: pd.DataFrame,
    cpts_names: dict[str, str],
    *,
    commune_names: dict[str, str] | None = None,
) -> pd.DataFrame:
    """FINESS CPTS the perimeter file may have left out.

    Parameters
    ----------
    seats : DataFrame
        :func:`pipeline.sources.finess.cpts_seats`: ``nofinesset, rs, code_commune``.
    status : DataFrame
        ``coverage.parquet``: ``code_commune, statut, cpts_ids`` (seats outside it are ignored).
    cpts_names : dict
        ``cpts_id`` → name in the perimeter file.
    commune_names : dict, optional
        Code → name, for the messages.

    Returns
    -------
    DataFrame
        Columns :data:`CHECK_COLUMNS`; ``motif`` is ``siege_zone_blanche`` or ``siege_autre_cpts``
        (the seat's commune is claimed only by CPTS of other names), sorted by FINESS number.
    """
    names = commune_names or {}
    state = status.set_index("code_commune")
    rows = []
    for nofiness, rs, code in seats[["nofinesset", "rs", "code_commune"]].itertuples(index=False):
        if code not in state.index:
            continue
        commune = names.get(code, code)
        ids = state.at[code, "cpts_ids"]
        claimed = [c for c in ids.split(";") if c] if isinstance(ids, str) else []
        if state.at[code, "statut"] == "zone_blanche":
            motif, detail = "siege_zone_blanche", f"son siège ({commune}) est en zone blanche"
        elif claimed and not any(same_cpts(rs, cpts_names.get(c, "")) for c in claimed):
            others = ", ".join(f"« {cpts_names.get(c, c)} »" for c in claimed)
            motif, detail = (
                "siege_autre_cpts",
                f"son siège ({commune}) est dans le périmètre de {others}",
            )
        else:
            continue
        rows.append(
            {
                "nofinesset": nofiness,
                "rs": rs,
                "code_commune": code,
                "nom_commune": commune,
                "motif": motif,
                "cpts_ids": ";".join(claimed),
                "message": (
                    f"Le fichier de périmètres omet peut-être la CPTS « {rs} » "
                    f"(FINESS {nofiness}) : {detail}."
                ),
            }
        )
    return (
        pd.DataFrame(rows, columns=CHECK_COLUMNS)
        .sort_values("nofinesset", kind="stable")
        .reset_index(drop=True)
    )
