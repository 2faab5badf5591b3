"""Health profile of communes and of groups of communes (territories, white zones), each compared
with its département, its région and France — as Assurance Maladie's Rézone CPTS does.

Pure functions on tables:

* :func:`commune_profile` — one row per commune: additive quantities (:data:`SUMS`) from the
  optional sources (INSEE population by age, zonage médecin, FINESS counts, supply indicators);
* :func:`group_profile` — the same quantities summed per group (``group, code_commune`` table);
* :func:`ratios` — shares and densities (:data:`RATIOS`) from those sums;
* :func:`compare` — each ratio of each row next to its département's, région's and France's.

Every measure of a source comes with its own denominator (``population_age``, ``population_zonage``,
``population_finess``…), missing exactly where the source says nothing about the commune: a ratio is
computed over the communes the source covers, and is *indisponible* (NaN) without the source —
never zero. A group's or a reference's ratio is the ratio of sums (population-weighted), never a
mean of commune ratios.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..sources.population_age import AGE_COLUMNS, AGE_LABELS_FR
from ..sources.zonage import Zonage
from .indicators import PROFESSIONS_FR

ZONAGE_SUMS = ["population_zonage", "pop_zip", "pop_zac", "pop_zip_zac"]
FINESS_SUMS = ["population_finess", "n_msp", "n_centre_sante", "n_pharmacie"]
SUMS = ["population", "population_age", *AGE_COLUMNS, *ZONAGE_SUMS, *FINESS_SUMS]
# ratio → (numerator, denominator, factor)
RATIOS = {
    **{f"part_{c[4:]}": (c, "population_age", 100.0) for c in AGE_COLUMNS},
    "part_zip": ("pop_zip", "population_zonage", 100.0),
    "part_zac": ("pop_zac", "population_zonage", 100.0),
    "part_zip_zac": ("pop_zip_zac", "population_zonage", 100.0),
    "msp_10k": ("n_msp", "population_finess", 1e4),
    "centres_sante_10k": ("n_centre_sante", "population_finess", 1e4),
    "pharmacies_10k": ("n_pharmacie", "population_finess", 1e4),
}
LABELS_FR = {
    **{f"part_{c[4:]}": f"Part des {label} (%)" for c, label in AGE_LABELS_FR.items()},
    "part_zip": "Population en ZIP (%)",
    "part_zac": "Population en ZAC (%)",
    "part_zip_zac": "Population en ZIP ou ZAC (%)",
    "msp_10k": "Maisons de santé pour 10 000 hab.",
    "centres_sante_10k": "Centres de santé pour 10 000 hab.",
    "pharmacies_10k": "Pharmacies pour 10 000 hab.",
    "apl_mg": "APL médecine générale (consultations/an/hab.)",
    "part_sous_dotee": "Population sous le seuil d'APL (%)",
}
# Optional sources of the profile, in display order, with what a report page says is missing
# (French).
SOURCES_FR = {
    "population_age": (
        "la population par âge de l'INSEE (base-cc-evol-struct-pop-<année>.CSV, "
        "[profile] population_age)"
    ),
    "zonage": (
        "le zonage médecin de la DREES ou de l'ARS (Zonage_medecin_<date>.xlsx, [profile] zonage)"
    ),
    "finess": (
        "le répertoire FINESS géolocalisé (etalab-cs1100507-stock-<date>.csv, [profile] finess)"
    ),
    "rpps": "l'extrait RPPS de l'annuaire santé ([indicators] rpps)",
    "apl": "l'APL de la DREES ([indicators] apl)",
    "ald": (
        "le taux de patients en ALD sans médecin traitant de l'Assurance Maladie, par département "
        "(patients-longueduree-annuelle, [profile] ald)"
    ),
}
LEVELS = ("departement", "region", "france")
LEVELS_FR = {"departement": "Département", "region": "Région", "france": "France"}


def indicator_ratios(professions) -> dict[str, tuple[str, str, float]]:
    """Ratios of the supply indicators (``indicators.parquet``) for ``professions``."""
    out = {f"densite_{p}_10k": (f"n_{p}", "population_rpps", 1e4) for p in professions}
    out["apl_mg"] = ("apl_x_population", "population_apl", 1.0)
    out["part_sous_dotee"] = ("pop_sous_dotee", "population_apl", 100.0)
    return out


def label_fr(name: str) -> str:
    """French label of a ratio code (the code itself when it has none)."""
    if name.startswith("densite_") and name[8:-4] in PROFESSIONS_FR:
        return f"{PROFESSIONS_FR[name[8:-4]]} pour 10 000 hab."
    return LABELS_FR.get(name, name)


def commune_profile(
    communes: pd.DataFrame,
    *,
    ages: pd.DataFrame | None = None,
    zonage: pd.Series | None = None,
    finess: pd.DataFrame | None = None,
    indicators: pd.DataFrame | None = None,
    professions=(),
) -> pd.DataFrame:
    """One row per commune of ``communes`` (same order) with the additive quantities of the profile.

    Parameters
    ----------
    communes : DataFrame
        ``code_commune, code_departement, code_region, population``.
    ages : DataFrame, optional
        :func:`pipeline.sources.population_age.ages_by_commune`: ``population_age`` and age bands by
        code.
    zonage : Series, optional
        :func:`pipeline.sources.zonage.zonage_by_commune`:
        :class:`~pipeline.sources.zonage.Zonage` by code.
    finess : DataFrame, optional
        :func:`pipeline.sources.finess.counts_by_commune`: ``n_msp, n_centre_sante, n_pharmacie``
        by code (a commune absent from it has none).
    indicators : DataFrame, optional
        ``indicators.parquet`` (``code_commune, n_<profession>, apl_mg, sous_dotee``).

    Returns
    -------
    DataFrame
        ``code_commune, code_departement, code_region, zonage`` (a category code or None) and
        :data:`SUMS` (floats, NaN where the source is missing or does not cover the commune), plus
        the supply sums when ``indicators`` is given.
    """
    codes = communes["code_commune"]
    out = pd.DataFrame(
        {
            "code_commune": codes.to_numpy(),
            "code_departement": communes["code_departement"].to_numpy(),
            "code_region": communes["code_region"].to_numpy(),
        }
    )
    population = pd.to_numeric(communes["population"], errors="coerce").astype(float).to_numpy()
    out["population"] = population
    values = ["population_age", *AGE_COLUMNS]
    known = (
        ages.reindex(codes)[values]
        if ages is not None
        else pd.DataFrame(np.nan, index=codes, columns=values)
    )
    for column in values:
        out[column] = known[column].to_numpy(dtype=float)
    category = (
        codes.map(zonage)
        if zonage is not None
        else pd.Series(None, index=codes.index, dtype=object)
    )
    codes_zonage = [Zonage(c).value if isinstance(c, str) else None for c in category]
    out["zonage"] = pd.Series(codes_zonage, index=out.index, dtype=object)
    covered = np.array([c is not None for c in codes_zonage])
    out["population_zonage"] = np.where(covered, population, np.nan)
    for column, members in (
        ("pop_zip", {"ZIP"}),
        ("pop_zac", {"ZAC"}),
        ("pop_zip_zac", {"ZIP", "ZAC"}),
    ):
        out[column] = np.where(
            covered, np.where(out["zonage"].isin(members), population, 0.0), np.nan
        )
    out["population_finess"] = population if finess is not None else np.nan
    for column in FINESS_SUMS[1:]:
        out[column] = (
            codes.map(finess[column]).fillna(0).to_numpy(dtype=float)
            if finess is not None
            else np.nan
        )
    if indicators is not None:
        out = _with_indicators(out, indicators, professions)
    return out


def _with_indicators(out: pd.DataFrame, indicators: pd.DataFrame, professions) -> pd.DataFrame:
    """Supply sums: professional counts, APL × population, population of under-served communes."""
    table = indicators.set_index("code_commune").reindex(out["code_commune"])
    population = out["population"].to_numpy()
    for p in professions:
        out[f"n_{p}"] = table[f"n_{p}"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    first = f"n_{professions[0]}" if len(professions) else None
    out["population_rpps"] = np.where(out[first].notna(), population, np.nan) if first else np.nan
    apl = table["apl_mg"].astype(float).to_numpy()
    out["population_apl"] = np.where(np.isnan(apl), np.nan, population)
    out["apl_x_population"] = apl * population
    flag = table["sous_dotee"].astype("boolean")
    out["pop_sous_dotee"] = np.where(
        flag.isna().to_numpy(),
        np.nan,
        np.where(flag.fillna(False).to_numpy(dtype=bool), population, 0.0),
    )
    return out


def _sum_columns(frame: pd.DataFrame) -> list[str]:
    """The additive columns present in ``frame`` (:data:`SUMS` and the supply sums)."""
    extra = [c for c in frame.columns if c.startswith("n_") and c not in SUMS]
    supply = [
        c
        for c in ("population_rpps", "population_apl", "apl_x_population", "pop_sous_dotee")
        if c in frame
    ]
    return [c for c in SUMS if c in frame] + extra + supply


def group_profile(profile: pd.DataFrame, groups: pd.DataFrame) -> pd.DataFrame:
    """Sums of the profile per group, from a membership table ``group, code_commune``.

    Returns
    -------
    DataFrame
        Indexed by ``group``: the sums (NaN when no member is covered by the source),
        ``communes``, ``communes_sans_age`` and ``communes_sans_zonage`` (members the source does
        not cover), ``departements`` (``;``-joined) and the ``code_departement`` / ``code_region``
        holding most of the group's population (smallest code on a tie), its comparison references.
    """
    columns = _sum_columns(profile)
    joined = groups[["group", "code_commune"]].merge(profile, on="code_commune", how="left")
    g = joined.groupby("group", sort=True)
    out = g[columns].sum(min_count=1)
    out["communes"] = g.size()
    out["communes_sans_age"] = joined["population_age"].isna().groupby(joined["group"]).sum()
    out["communes_sans_zonage"] = joined["population_zonage"].isna().groupby(joined["group"]).sum()
    out["departements"] = g["code_departement"].agg(lambda s: ";".join(sorted(set(s.dropna()))))
    weight = joined.assign(w=joined["population"].fillna(0.0))
    main = (
        weight.groupby(["group", "code_departement", "code_region"])["w"]
        .sum()
        .reset_index()
        .sort_values(
            ["group", "w", "code_departement"], ascending=[True, False, True], kind="stable"
        )
        .drop_duplicates("group")
        .set_index("group")
    )
    out["code_departement"] = main["code_departement"]
    out["code_region"] = main["code_region"]
    return out


def ratios(sums: pd.DataFrame, *, definitions: dict | None = None) -> pd.DataFrame:
    """Shares and densities from sums (same index): ``numerator / denominator × factor``, NaN when
    the source is missing or the denominator is zero. Definitions whose columns are absent are
    skipped. Default: :data:`RATIOS` plus the supply ratios when their sums are present.
    """
    if definitions is None:
        professions = [c[2:] for c in sums.columns if c.startswith("n_") and c not in SUMS]
        definitions = {
            **RATIOS,
            **(indicator_ratios(professions) if "population_apl" in sums else {}),
        }
    out = pd.DataFrame(index=sums.index)
    for name, (num, den, factor) in definitions.items():
        if num in sums and den in sums:
            denominator = sums[den].astype(float).replace(0.0, np.nan)
            out[name] = sums[num].astype(float) / denominator * factor
    return out


def reference_ratios(reference: pd.DataFrame, *, definitions: dict | None = None) -> dict:
    """The ratios of each département, each région and France over ``reference`` (a
    :func:`commune_profile`), for :func:`compare`: compute them once for several comparisons.
    """
    columns = _sum_columns(reference)
    return {
        "departement": ratios(
            reference.groupby("code_departement")[columns].sum(min_count=1),
            definitions=definitions,
        ),
        "region": ratios(
            reference.groupby("code_region")[columns].sum(min_count=1), definitions=definitions
        ),
        "france": ratios(
            reference[columns].sum(min_count=1).to_frame().T, definitions=definitions
        ).iloc[0],
    }


def compare(
    units: pd.DataFrame,
    reference: pd.DataFrame | None = None,
    *,
    definitions: dict | None = None,
    references: dict | None = None,
) -> pd.DataFrame:
    """Each ratio of each unit next to its département's, région's and France's.

    Parameters
    ----------
    units : DataFrame
        Rows with the sums and ``code_departement``, ``code_region``: a :func:`commune_profile`
        or a :func:`group_profile`.
    reference : DataFrame
        The :func:`commune_profile` of the comparison extent: the département and région values are
        sums over its communes of that département / région, the France value the sum over all of
        it (give the national commune table for a true France reference).
    references : dict, optional
        :func:`reference_ratios` of ``reference``, already computed (then ``reference`` may be
        omitted).

    Returns
    -------
    DataFrame
        Same index as ``units``: ``code_departement, code_region``, and for each ratio ``r``:
        ``r``, ``r_departement``, ``r_region``, ``r_france``.
    """
    refs = (
        references
        if references is not None
        else reference_ratios(reference, definitions=definitions)
    )
    own = ratios(units, definitions=definitions)
    departement, region = units["code_departement"], units["code_region"]
    # each unit's row in the département and région references (-1: none), found once
    rows = {
        level: refs[level].index.get_indexer(pd.Index(codes.to_numpy(dtype=object), dtype=object))
        for level, codes in (("departement", departement), ("region", region))
    }

    def at(level: str, name: str) -> np.ndarray:
        values = np.append(refs[level][name].to_numpy(dtype=float), np.nan)  # -1 reads the NaN
        return values[rows[level]]

    out = {"code_departement": departement, "code_region": region}
    for name in own.columns:
        out[name] = own[name]
        out[f"{name}_departement"] = at("departement", name)
        out[f"{name}_region"] = at("region", name)
        out[f"{name}_france"] = np.full(len(units), float(refs["france"][name]))
    return pd.DataFrame(out, index=units.index)


def missing_sources(given) -> list[str]:
    """French descriptions of the sources of :data:`SOURCES_FR` not in ``given`` (the names of the
    sources read), for the sentence "ces données compléteraient la page : …".
    """
    return [text for name, text in SOURCES_FR.items() if name not in set(given)]


def comparison_table(compared: pd.Series) -> pd.DataFrame:
    """One row of :func:`compare` as a display table: ``indicateur`` (code), ``libelle`` (French),
    ``valeur``, ``departement``, ``region``, ``france`` (NaN shown as *indisponible* by the caller).
    """
    names = [
        c
        for c in compared.index
        if c not in ("code_departement", "code_region")
        and not c.endswith(tuple(f"_{level}" for level in LEVELS))
    ]
    rows = [
        {
            "indicateur": n,
            "libelle": label_fr(n),
            "valeur": compared[n],
            **{level: compared[f"{n}_{level}"] for level in LEVELS},
        }
        for n in names
    ]
    return pd.DataFrame(rows, columns=["indicateur", "libelle", "valeur", *LEVELS])


# --------------------------------------------------------------------------- the stage's tables

SUPPLY_SUMS = ("population_rpps", "population_apl", "apl_x_population", "pop_sous_dotee")
KINDS = ("zone_blanche", "cpts_existante", "candidate", "extension")
KINDS_FR = {
    "zone_blanche": "zone blanche",
    "cpts_existante": "CPTS existante",
    "candidate": "territoire candidat",
    "extension": "extension de CPTS",
}


def scope_and_reference(
    units: pd.DataFrame,
    national: pd.DataFrame,
    *,
    ages: pd.DataFrame | None = None,
    zonage: pd.Series | None = None,
    finess: pd.DataFrame | None = None,
    finess_whole: pd.DataFrame | None = None,
    indicators: pd.DataFrame | None = None,
    professions=(),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The :func:`commune_profile` of the scope's units and of the national reference.

    Parameters
    ----------
    units : DataFrame
        The scope's units (``coverage.parquet``: ``code_commune, code_commune_parent,
        code_departement, code_region, population``).
    national : DataFrame
        Every unit of France (:func:`pipeline.analysis.communes.unit_table`), the comparison
        reference.
    finess : DataFrame, optional
        FINESS counts per unit (:func:`pipeline.sources.finess.counts_by_commune` of the
        establishments placed in units).
    finess_whole : DataFrame, optional
        FINESS counts of establishments known only by the code of Paris, Lyon or Marseille (their
        arrondissement unknown), indexed by that commune code: the counts of that commune's
        arrondissements are then unknown (NaN, never a guess) in the scope's profile, and the
        establishments are added to the reference at commune level (a row with no population), so
        that the département, région and France counts stay whole.
    indicators : DataFrame, optional
        ``indicators.parquet`` (the scope only): its sums are added to the reference for the
        scope's units; see :func:`limit_to_scope` for the references it cannot give.
    """
    scope = commune_profile(
        units,
        ages=ages,
        zonage=zonage,
        finess=finess,
        indicators=indicators,
        professions=professions,
    )
    reference = commune_profile(national, ages=ages, zonage=zonage, finess=finess)
    if finess_whole is not None and len(finess_whole):
        parents = units["code_commune_parent"].to_numpy()
        unknown = np.isin(parents, finess_whole.index.to_numpy())
        scope.loc[unknown, FINESS_SUMS] = np.nan
        first = national.drop_duplicates("code_commune_parent").set_index("code_commune_parent")
        whole = finess_whole[finess_whole.index.isin(first.index)]
        extra = pd.DataFrame(
            {
                "code_commune": whole.index.to_numpy(),
                "code_departement": first.loc[whole.index, "code_departement"].to_numpy(),
                "code_region": first.loc[whole.index, "code_region"].to_numpy(),
                "population": 0.0,
                "population_finess": 0.0,
                **{c: whole[c].to_numpy(dtype=float) for c in FINESS_SUMS[1:]},
            }
        )
        reference = pd.concat([reference, extra], ignore_index=True)
    supply = [c for c in scope.columns if c not in reference.columns]
    if supply:
        reference = reference.merge(scope[["code_commune", *supply]], on="code_commune", how="left")
    return scope, reference


def limit_to_scope(
    compared: pd.DataFrame, *, supply: list[str], regions: set[str], france: bool
) -> pd.DataFrame:
    """Supply ratios (practitioners, APL: computed for the scope only) lose the references the
    scope does not contain whole: the région's unless the scope holds all of it, France's unless
    the scope is France (a département is always whole in a scope).
    """
    out = compared.copy()
    for name in supply:
        if f"{name}_region" in out:
            out.loc[~out["code_region"].isin(regions), f"{name}_region"] = np.nan
        if f"{name}_france" in out and not france:
            out[f"{name}_france"] = np.nan
    return out


def supply_ratio_names(compared: pd.DataFrame, professions) -> list[str]:
    """The supply ratios present in a :func:`compare` table."""
    return [n for n in indicator_ratios(professions) if n in compared.columns]


def groups_by_kind(
    coverage: pd.DataFrame, territories: pd.DataFrame, members: pd.DataFrame
) -> dict[str, pd.DataFrame]:
    """``group, code_commune`` per kind of :data:`KINDS`: white zones (their communes), existing
    CPTS, candidates and extensions (:func:`pipeline.analysis.territories.territory_communes`).
    """
    from .territories import territory_communes

    white = coverage[coverage["id_zone_blanche"].fillna("") != ""]
    out = {
        "zone_blanche": pd.DataFrame(
            {"group": white["id_zone_blanche"].to_numpy(), "code_commune": white["code_commune"]}
        )
    }
    rows = territory_communes(coverage, territories, members)
    kind = dict(zip(territories["id_territoire"], territories["type_territoire"]))
    rows = rows.assign(kind=rows["id_territoire"].map(kind))
    for name in KINDS[1:]:
        part = rows[rows["kind"] == name]
        out[name] = pd.DataFrame(
            {"group": part["id_territoire"].to_numpy(), "code_commune": part["code_commune"]}
        )
    return out


def territory_profiles(
    scope: pd.DataFrame,
    reference: pd.DataFrame,
    groups: dict[str, pd.DataFrame],
    *,
    limit=None,
    references: dict | None = None,
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Sums and comparisons of each group of each kind (``references``: the
    :func:`reference_ratios` of ``reference``, when already computed).

    Returns
    -------
    table : DataFrame
        ``id_territoire, type_territoire`` (a code of :data:`KINDS`), the sums of
        :func:`group_profile` and the columns of :func:`compare` — one row per group, by kind then
        id.
    sums : dict
        The :func:`group_profile` of each kind (indexed by id), for the priority.
    """
    tables, sums = [], {}
    references = references if references is not None else reference_ratios(reference)
    for kind, members in groups.items():
        if members.empty:
            continue
        grouped = group_profile(scope, members)
        compared = compare(grouped, references=references)
        if limit is not None:
            compared = limit(compared)
        sums[kind] = grouped
        columns = [c for c in grouped.columns if c not in compared.columns]
        table = grouped[columns].join(compared)
        table.insert(0, "type_territoire", kind)
        tables.append(table.rename_axis("id_territoire").reset_index())
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(), sums


def ald_columns(table: pd.DataFrame, ald) -> pd.DataFrame:
    """The ALD-without-médecin-traitant rate of each row's département, région and France (the
    département is the finest level published: context, labelled as such), or NaN without the file.
    """
    from ..sources.ald import ald_context

    out = table.copy()
    levels = ("departement", "region", "france")
    if ald is None:
        for level in levels:
            out[f"taux_ald_sans_mt_{level}"] = np.nan
        out["annee_ald"] = pd.array([pd.NA] * len(out), dtype="Int64")
        return out
    contexts = [ald_context(ald, d, r) for d, r in zip(out["code_departement"], out["code_region"])]
    for level in levels:
        out[f"taux_ald_sans_mt_{level}"] = [c[level] for c in contexts]
    out["annee_ald"] = pd.array([c["annee"] for c in contexts], dtype="Int64")
    return out
