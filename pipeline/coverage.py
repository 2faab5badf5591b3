"""Stage ``coverage``: who is covered, who is not, where two CPTS claim the same communes.

Pure functions on the commune table, its adjacency and the membership table:

* :func:`commune_status` — exactly one status per commune: ``couverte`` (one CPTS),
  ``zone_blanche`` (none), ``chevauchement`` (two or more);
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

from .adjacency import Adjacency, components, shared_border_length
from .aci import envelopes
from .errors import PipelineError

STATUSES = ("couverte", "zone_blanche", "chevauchement")


def partial_flags(members: pd.DataFrame) -> pd.Series:
    """Whether each membership row is partial (part of a commune only)."""
    if "partiel" not in members:
        return pd.Series(False, index=members.index)
    return members["partiel"].astype(str).str.lower().isin(["true", "1", "oui"])


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
    out["cpts_ids"] = out["code_commune"].map(ids).fillna("")
    out["partiel"] = out["code_commune"].isin(members.loc[partial, "code_commune"])
    out["statut"] = np.select([(out["n_cpts"] == 0) & ~out["partiel"], out["n_cpts"] <= 1],
                              ["zone_blanche", "couverte"], "chevauchement")
    return out


def counted_population(members: pd.DataFrame, communes: pd.DataFrame) -> pd.Series:
    """Inhabitants of each membership row's commune counted in that CPTS, so that no inhabitant is
    counted twice between CPTS:

    * a part given at IRIS level counts its IRIS population (``population_partielle``), and the
      CPTS holding the whole commune counts the rest;
    * a part without IRIS data counts the whole commune only when no CPTS holds the whole commune
      and it is the first CPTS (by id) holding a part; otherwise nothing.
    """
    population = dict(zip(communes["code_commune"], communes["population"].fillna(0).astype("int64")))
    partial = partial_flags(members)
    part_pop = pd.to_numeric(members.get("population_partielle"), errors="coerce") if "population_partielle" in members \
        else pd.Series(np.nan, index=members.index)
    at_iris = partial & part_pop.notna()
    taken = part_pop.where(at_iris, 0).groupby(members["code_commune"]).sum()
    whole_codes = set(members.loc[~partial, "code_commune"])
    first_part = members[partial & ~at_iris].sort_values("cpts_id").drop_duplicates("code_commune").index
    base = members["code_commune"].map(population).astype("int64")
    out = pd.Series(0, index=members.index, dtype="int64")
    out[~partial] = (base - members["code_commune"].map(taken).fillna(0).astype("int64"))[~partial].clip(lower=0)
    out[at_iris] = part_pop[at_iris].astype("int64")
    lone = members.index.isin(first_part) & ~members["code_commune"].isin(whole_codes)
    out[lone] = base[lone] - members.loc[lone, "code_commune"].map(taken).fillna(0).astype("int64")
    return out


def check_statuses(communes: pd.DataFrame, status: pd.DataFrame) -> None:
    """Invariants asserted on every run: one status per commune, population conserved exactly."""
    if list(status["code_commune"]) != list(communes["code_commune"]) or not status["statut"].isin(STATUSES).all():
        raise PipelineError("internal check failed: every commune must have exactly one status")
    pop = communes["population"].fillna(0).astype("int64").to_numpy()
    by_status = sum(int(pop[(status["statut"] == s).to_numpy()].sum()) for s in STATUSES)
    if by_status != int(pop.sum()):
        raise PipelineError(f"internal check failed: population over statuses {by_status:,} != scope {pop.sum():,}")


def white_zone_patches(communes: gpd.GeoDataFrame, status: pd.DataFrame, adjacency: Adjacency) -> tuple[np.ndarray, gpd.GeoDataFrame]:
    """Group white-zone communes into contiguous patches.

    Returns
    -------
    patch_of : ndarray of object
        Patch id per commune (``""`` for communes not in a white zone). Ids are
        ``ZB-<département of the patch's first commune>-<n>``, numbered by first commune code.
    patches : GeoDataFrame
        One row per patch: ``patch_id, population, n_communes, communes, departements,
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
    frame = communes.assign(patch_id=patch_of, island=adjacency.island)[white]
    pop = frame["population"].fillna(0).astype("int64")
    grouped = frame.assign(population=pop).groupby("patch_id", sort=True)
    patches = grouped.agg(population=("population", "sum"), n_communes=("code_commune", "size"),
                          communes=("code_commune", lambda s: ";".join(s)),
                          departements=("code_departement", lambda s: ";".join(sorted(set(s)))),
                          ile=("island", "any"))
    patches["cpts_limitrophes"] = [";".join(sorted(bordering.get(p, ()))) for p in patches.index]
    geometry = frame.dissolve("patch_id", sort=True).geometry if len(frame) else gpd.GeoSeries([], crs=communes.crs)
    patches = gpd.GeoDataFrame(patches.reset_index(), geometry=geometry.to_numpy() if len(frame) else [],
                               crs=communes.crs)
    return patch_of, patches[["patch_id", "population", "n_communes", "communes", "departements",
                              "cpts_limitrophes", "ile", "geometry"]]


def overlap_pairs(communes: gpd.GeoDataFrame, status: pd.DataFrame, members: pd.DataFrame,
                  adjacency: Adjacency, *, tolerance_m: float) -> pd.DataFrame:
    """Every pair of CPTS sharing communes, one row per shared commune, with a proposed resolution.

    Rule (documented in the README): a disputed commune goes to the CPTS whose undisputed communes
    share the longest border with it; on a tie (e.g. no shared border), to the CPTS with fewer
    inhabitants without the disputed communes (to balance sizes); then to the smaller id.
    """
    columns = ["cpts_a", "cpts_b", "code_commune", "nom", "population", "frontiere_a_m", "frontiere_b_m",
               "proposition", "regle"]
    disputed = status[status["statut"] == "chevauchement"]
    members = members[~partial_flags(members)]
    holders = members.groupby("code_commune")["cpts_id"].agg(lambda s: sorted(set(s)))
    if disputed.empty:
        return pd.DataFrame(columns=columns)
    index = {c: k for k, c in enumerate(communes["code_commune"])}
    # the CPTS holding each commune alone (whole commune), '' otherwise
    sole = {c: (holders[c][0] if c in holders and len(holders[c]) == 1 else "") for c in status["code_commune"]}
    pop = communes["population"].fillna(0).astype("int64").to_numpy()
    undisputed_pop = {cid: int(sum(pop[index[c]] for c in grp["code_commune"] if sole[c] == cid))
                      for cid, grp in members.groupby("cpts_id")}
    neighbours = adjacency.neighbours()
    rows = []
    for rec in disputed.itertuples(index=False):
        k = index[rec.code_commune]
        nbrs = neighbours[k]
        lengths = shared_border_length(communes, np.full(len(nbrs), k), nbrs, tolerance_m=tolerance_m)
        ids = holders[rec.code_commune]
        for x in range(len(ids)):
            for y in range(x + 1, len(ids)):
                a, b = ids[x], ids[y]
                border = {c: float(sum(length for nb, length in zip(nbrs, lengths)
                                       if sole[communes["code_commune"].iloc[nb]] == c)) for c in (a, b)}
                if round(border[a]) != round(border[b]):
                    winner, rule = max((a, b), key=lambda c: border[c]), "frontière commune la plus longue"
                else:
                    winner = min((a, b), key=lambda c: (undisputed_pop.get(c, 0), c))
                    rule = "égalité de frontière : CPTS la moins peuplée"
                rows.append((a, b, rec.code_commune, communes["nom"].iloc[k], int(pop[k]),
                             round(border[a]), round(border[b]), winner, rule))
    return pd.DataFrame(rows, columns=columns)


def coverage_rates(communes: pd.DataFrame, status: pd.DataFrame) -> pd.DataFrame:
    """Coverage per département, région and the whole scope (population and communes)."""
    frame = pd.DataFrame({
        "code_departement": communes["code_departement"].to_numpy(),
        "code_region": communes["code_region"].to_numpy(),
        "population": communes["population"].fillna(0).astype("int64").to_numpy(),
        "couverte": (status["statut"] != "zone_blanche").to_numpy(),
        "zone_blanche": (status["statut"] == "zone_blanche").to_numpy(),
        "chevauchement": (status["statut"] == "chevauchement").to_numpy(),
    })
    parts = []
    for level, key in (("departement", "code_departement"), ("region", "code_region"), ("perimetre", None)):
        groups = frame.groupby(key, sort=True) if key else [("ensemble", frame)]
        for code, g in groups:
            covered_pop = int(g.loc[g["couverte"], "population"].sum())
            parts.append({
                "niveau": level, "code": code, "communes": len(g), "communes_couvertes": int(g["couverte"].sum()),
                "communes_zone_blanche": int(g["zone_blanche"].sum()),
                "communes_chevauchement": int(g["chevauchement"].sum()),
                "population": int(g["population"].sum()), "population_couverte": covered_pop,
                "population_zone_blanche": int(g.loc[g["zone_blanche"], "population"].sum()),
                "taux_couverture_population": round(100 * covered_pop / max(int(g["population"].sum()), 1), 2),
                "taux_couverture_communes": round(100 * g["couverte"].mean(), 2),
            })
    return pd.DataFrame(parts)


def cpts_table(communes: gpd.GeoDataFrame, members: pd.DataFrame, aci: dict, *, example: bool,
               outside: pd.DataFrame | None = None) -> gpd.GeoDataFrame:
    """One row per CPTS: population, communes, ACI tier and envelope, geometry (of the scope part).

    The population counts every unit the CPTS claims (never an inhabitant twice between CPTS, see
    :func:`counted_population`), including the units it lists outside the scope (``outside``:
    ``cpts_id, code_commune, population``), stated apart in ``population_hors_champ``: a CPTS is
    tiered on its whole territory, not on the part inside the run's scope.
    """
    owned = members.assign(_counted=counted_population(members, communes))
    joined = communes[["code_commune", "code_departement", "geometry"]].merge(
        owned[["cpts_id", "cpts_nom", "code_commune", "_counted"]], on="code_commune")
    joined["population"] = joined["_counted"].astype("int64")
    dissolved = gpd.GeoDataFrame(joined, geometry="geometry", crs=communes.crs).dissolve(
        "cpts_id", sort=True, aggfunc={"cpts_nom": "first", "population": "sum", "code_commune": "size",
                                       "code_departement": lambda s: ";".join(sorted(set(s)))})
    out = dissolved.reset_index().rename(columns={"code_commune": "n_communes", "code_departement": "departements"})
    beyond = (outside if outside is not None else pd.DataFrame(columns=["cpts_id", "population"])).assign(
        population=lambda f: pd.to_numeric(f["population"]).astype("int64")).groupby("cpts_id")["population"]
    out["population_hors_champ"] = out["cpts_id"].map(beyond.sum()).fillna(0).astype("int64")
    out["n_communes_hors_champ"] = out["cpts_id"].map(beyond.size()).fillna(0).astype("int64")
    out["population"] = out["population"] + out["population_hors_champ"]
    money = envelopes(out["population"].to_numpy(), aci)
    out["tier"] = money["tier"].to_numpy()
    out["envelope_eur"] = money["envelope_eur"].to_numpy()
    out["supplement_snp_eur"] = money["supplement_snp_eur"].to_numpy()
    out["exemple"] = example
    return out[["cpts_id", "cpts_nom", "exemple", "population", "population_hors_champ", "n_communes",
                "n_communes_hors_champ", "departements", "tier", "envelope_eur", "supplement_snp_eur", "geometry"]]
