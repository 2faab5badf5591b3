"""Stage ``coverage``: who is covered, who is not, where two CPTS claim the same communes.

Pure functions on the commune table, its adjacency and the membership table:

* :func:`commune_status` — exactly one status per commune: ``couverte`` (one CPTS),
  ``zone_blanche`` (none), ``chevauchement`` (two or more); :func:`cpts_rows` reads its
  ``cpts_ids`` back as one row per commune and CPTS;
* :func:`white_zone_patches` — white-zone communes grouped into contiguous patches, with the
  existing CPTS bordering each;
* :func:`overlap_pairs` — every pair of CPTS sharing communes, with a proposed resolution;
* :func:`coverage_rates` — % of population and communes covered per département, région, scope;
* :func:`cpts_table` — population, ACI tier and envelope of each CPTS.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from ..aci import envelopes
from ..errors import PipelineError
from ..geo import union_groups
from .adjacency import Adjacency, components, shared_border_length

STATUSES = ("couverte", "zone_blanche", "chevauchement")


def partial_flags(members: pd.DataFrame) -> pd.Series:
    """Whether each membership row is partial (part of a commune only)."""
    if "partiel" not in members:
        return pd.Series(False, index=members.index)
    return members["partiel"].astype(str).str.lower().isin(["true", "1", "oui"])


def cpts_rows(frame: pd.DataFrame, column: str = "cpts_id") -> pd.DataFrame:
    """One row per CPTS each row of ``frame`` belongs to: ``frame``'s columns (index kept) and
    ``column``, the CPTS id, from its ``cpts_ids`` (";"-separated, as :func:`commune_status`
    writes it); rows of no CPTS are left out.
    """
    rows = frame.assign(**{column: frame["cpts_ids"].fillna("").str.split(";")}).explode(column)
    return rows[rows[column] != ""]


def commune_status(communes: pd.DataFrame, members: pd.DataFrame) -> pd.DataFrame:
    """Status of every commune: ``code_commune, statut, n_cpts, cpts_ids, partiel``.

    Only whole-commune memberships make an overlap; a commune claimed in part only (a "partie de
    commune" without IRIS data) is ``couverte`` and flagged ``partiel``.
    """
    partial = partial_flags(members)
    ids = members.groupby("code_commune")["cpts_id"].agg(lambda s: ";".join(sorted(set(s))))
    whole = members[~partial].groupby("code_commune")["cpts_id"].nunique()
    out = pd.DataFrame({"code_commune": communes["code_commune"].to_numpy()})
    out["n_cpts"] = out["code_commune"].map(whole).fillna(0).astype("int64")
    out["cpts_ids"] = out["code_commune"].map(ids).astype(object).fillna("")  # none: float NaN
    out["partiel"] = out["code_commune"].isin(members.loc[partial, "code_commune"])
    out["statut"] = np.select(
        [(out["n_cpts"] == 0) & ~out["partiel"], out["n_cpts"] <= 1],
        ["zone_blanche", "couverte"],
        "chevauchement",
    )
    return out


def counted_population(members: pd.DataFrame, communes: pd.DataFrame) -> pd.Series:
    """Inhabitants of each membership row's commune counted in that CPTS, so that no inhabitant is
    counted twice between CPTS.

    * a part given at IRIS level counts its IRIS population (``population_partielle``), and the
      CPTS holding the whole commune counts the rest;
    * a part without IRIS data counts the whole commune only when no CPTS holds the whole commune
      and it is the first CPTS (by id) holding a part; otherwise nothing.
    """
    population = dict(
        zip(communes["code_commune"], communes["population"].fillna(0).astype("int64"))
    )
    partial = partial_flags(members)
    part_pop = (
        pd.to_numeric(members.get("population_partielle"), errors="coerce")
        if "population_partielle" in members
        else pd.Series(np.nan, index=members.index)
    )
    at_iris = partial & part_pop.notna()
    taken = part_pop.where(at_iris, 0).groupby(members["code_commune"]).sum()
    whole_codes = set(members.loc[~partial, "code_commune"])
    first_part = (
        members[partial & ~at_iris].sort_values("cpts_id").drop_duplicates("code_commune").index
    )
    base = members["code_commune"].map(population).astype("int64")
    out = pd.Series(0, index=members.index, dtype="int64")
    out[~partial] = (base - members["code_commune"].map(taken).fillna(0).astype("int64"))[
        ~partial
    ].clip(lower=0)
    out[at_iris] = part_pop[at_iris].astype("int64")
    lone = members.index.isin(first_part) & ~members["code_commune"].isin(whole_codes)
    out[lone] = base[lone] - members.loc[lone, "code_commune"].map(taken).fillna(0).astype("int64")
    return out


def check_statuses(communes: pd.DataFrame, status: pd.DataFrame) -> None:
    """Invariants asserted on every run: one status per commune, population conserved exactly."""
    if (
        list(status["code_commune"]) != list(communes["code_commune"])
        or not status["statut"].isin(STATUSES).all()
    ):
        raise PipelineError("internal check failed: every commune must have exactly one status")
    pop = communes["population"].fillna(0).astype("int64").to_numpy()
    by_status = sum(int(pop[(status["statut"] == s).to_numpy()].sum()) for s in STATUSES)
    if by_status != int(pop.sum()):
        raise PipelineError(
            f"internal check failed: population over statuses {by_status:,} != scope {pop.sum():,}"
        )


def white_zone_patches(
    communes: gpd.GeoDataFrame, status: pd.DataFrame, adjacency: Adjacency
) -> tuple[np.ndarray, gpd.GeoDataFrame]:
    """Group white-zone communes into contiguous patches.

    Parameters
    ----------
    communes : GeoDataFrame
        The units of the scope, in the order of ``adjacency``.
    status : DataFrame
        Their statuses (:func:`commune_status`), same order.
    adjacency : Adjacency
        The units' adjacency (islands linked to their nearest neighbour).

    Returns
    -------
    patch_of : ndarray of object
        Patch id per commune (``""`` for communes not in a white zone). Ids are
        ``ZB-<département of the patch's first commune>-<n>``, numbered by first commune code.
    patches : GeoDataFrame
        One row per patch: ``id_zone_blanche, population, n_communes, communes, departements,
        cpts_limitrophes, ile, geometry``.
    """
    white = (status["statut"] == "zone_blanche").to_numpy()
    labels = components(adjacency, white)
    codes = communes["code_commune"].to_numpy()
    deps = communes["code_departement"].to_numpy()
    patch_of = np.full(len(codes), "", dtype=object)
    counters: dict[str, int] = {}
    names = {}
    for label in range(labels.max() + 1):
        first = np.flatnonzero(labels == label)[0]
        counters[deps[first]] = counters.get(deps[first], 0) + 1
        names[label] = f"ZB-{deps[first]}-{counters[deps[first]]:03d}"
    patch_of[white] = [names[v] for v in labels[white]]
    cpts_of = status["cpts_ids"].to_numpy()
    bordering: dict[str, set] = {}
    for a, b in zip(adjacency.i, adjacency.j):
        for x, y in ((a, b), (b, a)):
            if patch_of[x] and cpts_of[y]:
                bordering.setdefault(patch_of[x], set()).update(cpts_of[y].split(";"))
    frame = communes.assign(id_zone_blanche=patch_of, island=adjacency.island)[white]
    pop = frame["population"].fillna(0).astype("int64")
    grouped = frame.assign(population=pop).groupby("id_zone_blanche", sort=True)
    patches = grouped.agg(
        population=("population", "sum"),
        n_communes=("code_commune", "size"),
        communes=("code_commune", lambda s: ";".join(s)),
        departements=("code_departement", lambda s: ";".join(sorted(set(s)))),
        ile=("island", "any"),
    )
    patches["cpts_limitrophes"] = [";".join(sorted(bordering.get(p, ()))) for p in patches.index]
    ids, unions = union_groups(frame.geometry.to_numpy(), frame["id_zone_blanche"].to_numpy())
    patches = gpd.GeoDataFrame(patches.reset_index(), geometry=unions, crs=communes.crs)
    return patch_of, patches[
        [
            "id_zone_blanche",
            "population",
            "n_communes",
            "communes",
            "departements",
            "cpts_limitrophes",
            "ile",
            "geometry",
        ]
    ]


OVERLAP_COLUMNS = [
    "cpts_a",
    "cpts_b",
    "code_commune",
    "nom",
    "population",
    "frontiere_a_m",
    "frontiere_b_m",
    "proposition",
    "regle",
]


def overlap_pairs(
    communes: gpd.GeoDataFrame,
    status: pd.DataFrame,
    members: pd.DataFrame,
    adjacency: Adjacency,
    *,
    tolerance_m: float,
) -> pd.DataFrame:
    """Every pair of CPTS sharing communes, one row per shared commune, with a proposed resolution.

    Rule (documented in docs/coverage.md): a disputed commune goes to the CPTS whose undisputed
    communes share the longest border with it; on a tie (e.g. no shared border), to the CPTS with
    fewer inhabitants without the disputed communes (to balance sizes); then to the smaller id.

    Rows follow the disputed communes in table order, then the pairs of their CPTS in id order
    (``a < b``). The work is vectorised: the claims are grouped by commune once, and each shared
    border is measured once per disputed commune and neighbour held by a single CPTS, so that
    thousands of CPTS claiming the same communes take seconds.

    Parameters
    ----------
    communes : GeoDataFrame
        The units of the scope with their geometry, in the order of ``adjacency``.
    status : DataFrame
        Their statuses (:func:`commune_status`), same order.
    members : DataFrame
        The claims, one row per CPTS and unit (``cpts_id``, ``code_commune``…).
    adjacency : Adjacency
        The units' adjacency.
    tolerance_m : float
        The adjacency tolerance, also used to measure the shared borders (``[adjacency]``).

    Returns
    -------
    DataFrame
        Columns :data:`OVERLAP_COLUMNS`, empty when no unit is claimed twice.
    """
    disputed = np.flatnonzero((status["statut"] == "chevauchement").to_numpy())
    if not len(disputed):
        return pd.DataFrame(columns=OVERLAP_COLUMNS)
    codes = communes["code_commune"].to_numpy()
    rows_of = pd.Index(codes)
    disputed = rows_of.get_indexer(status["code_commune"].to_numpy()[disputed])
    whole = members[~partial_flags(members)]
    ids, cpts = np.unique(whole["cpts_id"].to_numpy(dtype=object), return_inverse=True)
    row = rows_of.get_indexer(whole["code_commune"].to_numpy())
    known = row >= 0
    claims = np.unique(row[known] * len(ids) + cpts[known])  # (commune row, CPTS) once, sorted
    claim_row, claim_cpts = claims // len(ids), claims % len(ids)
    n_holders = np.bincount(claim_row, minlength=len(codes))
    first_claim = np.r_[0, np.cumsum(n_holders)[:-1]]
    sole = np.full(len(codes), -1)
    single = n_holders == 1
    sole[single] = claim_cpts[first_claim[single]]
    pop = communes["population"].fillna(0).astype("int64").to_numpy()
    undisputed_pop = np.zeros(len(ids), dtype=np.int64)
    held = known.copy()
    held[known] = sole[row[known]] == cpts[known]
    np.add.at(undisputed_pop, cpts[held], pop[row[held]])
    border = _borders_by_holder(
        communes, disputed, sole, adjacency, n_cpts=len(ids), tolerance_m=tolerance_m
    )
    pair_x, pair_y, where = [], [], []
    triangles: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for k in disputed:
        m = n_holders[k]
        x, y = triangles.setdefault(m, np.triu_indices(m, 1))
        pair_x.append(first_claim[k] + x)
        pair_y.append(first_claim[k] + y)
        where.append(np.full(len(x), k))
    pair_x, pair_y, where = np.concatenate(pair_x), np.concatenate(pair_y), np.concatenate(where)
    a, b = claim_cpts[pair_x], claim_cpts[pair_y]
    border_a = border.get(where, a)
    border_b = border.get(where, b)
    round_a, round_b = np.round(border_a).astype(np.int64), np.round(border_b).astype(np.int64)
    by_border = round_a != round_b
    winner = np.where(
        by_border,
        np.where(border_a > border_b, a, b),
        np.where(undisputed_pop[a] <= undisputed_pop[b], a, b),
    )
    return pd.DataFrame(
        {
            "cpts_a": ids[a],
            "cpts_b": ids[b],
            "code_commune": codes[where],
            "nom": communes["nom"].to_numpy()[where],
            "population": pop[where],
            "frontiere_a_m": round_a,
            "frontiere_b_m": round_b,
            "proposition": ids[winner],
            "regle": np.where(
                by_border,
                "frontière commune la plus longue",
                "égalité de frontière : CPTS la moins peuplée",
            ).astype(object),
        },
        columns=OVERLAP_COLUMNS,
    )


class _Borders:
    """Length of the border each disputed commune shares with the communes held by each
    CPTS alone.
    """

    def __init__(self, keys: np.ndarray, lengths: np.ndarray, n_cpts: int):
        self.keys, self.lengths, self.n_cpts = keys, lengths, n_cpts

    def get(self, rows: np.ndarray, cpts: np.ndarray) -> np.ndarray:
        """Border (m) of commune ``rows[i]`` with CPTS ``cpts[i]`` (0 where they share none)."""
        if not len(self.keys):
            return np.zeros(len(rows))
        wanted = rows.astype(np.int64) * self.n_cpts + cpts
        pos = np.minimum(np.searchsorted(self.keys, wanted), len(self.keys) - 1)
        return np.where(self.keys[pos] == wanted, self.lengths[pos], 0.0)


def _borders_by_holder(
    communes: gpd.GeoDataFrame,
    disputed: np.ndarray,
    sole: np.ndarray,
    adjacency: Adjacency,
    *,
    n_cpts: int,
    tolerance_m: float,
) -> _Borders:
    """Shared borders of the disputed communes with their neighbours held by a single CPTS, measured
    once per pair and summed per (disputed commune, CPTS) in neighbour order.
    """
    neighbours = adjacency.neighbours()
    pairs_i = [np.full(int((sole[neighbours[k]] >= 0).sum()), k) for k in disputed]
    pairs_j = [neighbours[k][sole[neighbours[k]] >= 0] for k in disputed]
    pairs_i = np.concatenate(pairs_i).astype(np.int64) if pairs_i else np.empty(0, np.int64)
    pairs_j = np.concatenate(pairs_j).astype(np.int64) if pairs_j else np.empty(0, np.int64)
    lengths = (
        shared_border_length(communes, pairs_i, pairs_j, tolerance_m=tolerance_m)
        if len(pairs_i)
        else np.empty(0)
    )
    totals: dict[int, float] = {}
    for i, j, length in zip(pairs_i.tolist(), pairs_j.tolist(), lengths.tolist()):
        key = i * n_cpts + int(sole[j])
        totals[key] = totals.get(key, 0) + length
    keys = np.fromiter(sorted(totals), dtype=np.int64, count=len(totals))
    return _Borders(keys, np.array([totals[k] for k in keys.tolist()], dtype=float), n_cpts)


def coverage_rates(communes: pd.DataFrame, status: pd.DataFrame) -> pd.DataFrame:
    """Coverage per département, région and the whole scope (population and communes)."""
    frame = pd.DataFrame(
        {
            "code_departement": communes["code_departement"].to_numpy(),
            "code_region": communes["code_region"].to_numpy(),
            "population": communes["population"].fillna(0).astype("int64").to_numpy(),
            "couverte": (status["statut"] != "zone_blanche").to_numpy(),
            "zone_blanche": (status["statut"] == "zone_blanche").to_numpy(),
            "chevauchement": (status["statut"] == "chevauchement").to_numpy(),
        }
    )
    parts = []
    for level, key in (
        ("departement", "code_departement"),
        ("region", "code_region"),
        ("perimetre", None),
    ):
        groups = frame.groupby(key, sort=True) if key else [("ensemble", frame)]
        for code, g in groups:
            covered_pop = int(g.loc[g["couverte"], "population"].sum())
            parts.append(
                {
                    "niveau": level,
                    "code": code,
                    "communes": len(g),
                    "communes_couvertes": int(g["couverte"].sum()),
                    "communes_zone_blanche": int(g["zone_blanche"].sum()),
                    "communes_chevauchement": int(g["chevauchement"].sum()),
                    "population": int(g["population"].sum()),
                    "population_couverte": covered_pop,
                    "population_zone_blanche": int(g.loc[g["zone_blanche"], "population"].sum()),
                    "taux_couverture_population": round(
                        100 * covered_pop / max(int(g["population"].sum()), 1), 2
                    ),
                    "taux_couverture_communes": round(100 * g["couverte"].mean(), 2),
                }
            )
    return pd.DataFrame(parts)


def cpts_table(
    communes: gpd.GeoDataFrame,
    members: pd.DataFrame,
    aci: dict,
    *,
    example: bool,
    outside: pd.DataFrame | None = None,
) -> gpd.GeoDataFrame:
    """One row per CPTS: population, communes, ACI tier and envelope, geometry (of the scope part).

    The population counts every unit the CPTS claims (never an inhabitant twice between CPTS, see
    :func:`counted_population`), including the units it lists outside the scope (``outside``:
    ``cpts_id, code_commune, population``), stated apart in ``population_hors_champ``: a CPTS is
    tiered on its whole territory, not on the part inside the run's scope.

    Parameters
    ----------
    communes : GeoDataFrame
        The units of the scope with their population and geometry.
    members : DataFrame
        The claims inside the scope, one row per CPTS and unit.
    aci : dict
        The ``[aci]`` settings (tiers and funding table, :func:`pipeline.aci.envelopes`).
    example : bool
        Whether the perimeters are the EXAMPLE ones (written in the ``exemple`` column).
    outside : DataFrame, optional
        The units claimed outside the scope, with their population.

    Returns
    -------
    GeoDataFrame
        One row per CPTS, sorted by ``cpts_id``.
    """
    owned = members.assign(_counted=counted_population(members, communes))
    joined = communes[["code_commune", "code_departement", "geometry"]].merge(
        owned[["cpts_id", "cpts_nom", "code_commune", "_counted"]], on="code_commune"
    )
    joined["population"] = joined["_counted"].astype("int64")
    grouped = joined.groupby("cpts_id", sort=True)
    out = pd.DataFrame(
        {
            "cpts_nom": grouped["cpts_nom"].first(),
            "population": grouped["population"].sum(),
            "n_communes": grouped.size(),
            "departements": grouped["code_departement"].agg(lambda s: ";".join(sorted(set(s)))),
        }
    ).reset_index()
    ids, unions = union_groups(joined["geometry"].to_numpy(), joined["cpts_id"].to_numpy())
    out = gpd.GeoDataFrame(out, geometry=unions, crs=communes.crs)
    beyond = (
        (outside if outside is not None else pd.DataFrame(columns=["cpts_id", "population"]))
        .assign(population=lambda f: pd.to_numeric(f["population"]).astype("int64"))
        .groupby("cpts_id")["population"]
    )
    out["population_hors_champ"] = out["cpts_id"].map(beyond.sum()).fillna(0).astype("int64")
    out["n_communes_hors_champ"] = out["cpts_id"].map(beyond.size()).fillna(0).astype("int64")
    out["population"] = out["population"] + out["population_hors_champ"]
    money = envelopes(out["population"].to_numpy(), aci)
    out["palier"] = money["palier"].to_numpy()
    out["enveloppe_eur"] = money["enveloppe_eur"].to_numpy()
    out["supplement_snp_eur"] = money["supplement_snp_eur"].to_numpy()
    out["exemple"] = example
    return out[
        [
            "cpts_id",
            "cpts_nom",
            "exemple",
            "population",
            "population_hors_champ",
            "n_communes",
            "n_communes_hors_champ",
            "departements",
            "palier",
            "enveloppe_eur",
            "supplement_snp_eur",
            "geometry",
        ]
    ]
