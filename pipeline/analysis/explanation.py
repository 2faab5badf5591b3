"""What each proposed territory is made of, in words a task force reads: the EPCIs it takes
whole or in part, its pôle (most populous commune), its farthest commune from the pôle, and its
size against the reference size of the CPTS around it (realistic objective) — with, when its
communes have different references, how its own reference size combines them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .indicators import indicator_text
from .reference import Reference

COLUMNS = [
    "pole",
    "epci_entiers",
    "epci_partiels",
    "commune_la_plus_eloignee",
    "distance_pole_km",
    "taille_visee",
    "rapport_taille_visee",
    "reference",
    "composition_taille_visee",
]
EMPTY = {c: "" for c in COLUMNS} | {
    "distance_pole_km": np.nan,
    "taille_visee": np.nan,
    "rapport_taille_visee": np.nan,
}


def composed_text(target: float, parts: list[tuple[Reference, float]]) -> str:
    """The reference size ``target`` of a territory whose communes have different references, in
    French: each reference (``parts``: the reference and the share of the territory's inhabitants
    it applies to, largest first) with its share, e.g. "taille visée : 27 310 hab., combinant
    celles de ses communes selon leurs habitants — 77 % : 17 418 hab., médiane des 10 CPTS peu
    denses (moins de 50 hab./km²) de la région 93 — 23 % : 56 926 hab., médiane …".
    """
    items = [
        (indicator_text(100 * share, " %", decimals=0) if share >= 0.005 else "moins de 1 %")
        + f" : {indicator_text(ref.population, decimals=0)} hab., {ref.source()}"
        for ref, share in parts
    ]
    return (
        f"taille visée : {indicator_text(target, decimals=0)} hab., combinant celles de ses "
        "communes selon leurs habitants — " + " — ".join(items)
    )


def _epci_label(code: str, names: dict[str, str]) -> str:
    name = names.get(code) or ""
    return f"{name} ({code})" if name else code


class Describer:
    """The :data:`COLUMNS` of territories made of communes of ``coverage`` (call it with the row
    numbers of one territory's communes).

    Parameters
    ----------
    coverage : DataFrame
        Communes, with ``nom``, ``code_commune``, ``population``, ``code_epci`` and, when known,
        ``nom_epci``.
    x, y : arrays
        Projected commune centres (m).
    reference, which, references : optional
        Output of :func:`pipeline.analysis.reference.reference_sizes` (realistic objective): the
        size against the reference and the description of the reference holding most of the
        territory's inhabitants are then filled in, and how its size combines its communes'
        references when they differ (``composition_taille_visee``, else "").
    """

    def __init__(
        self,
        coverage: pd.DataFrame,
        x: np.ndarray,
        y: np.ndarray,
        *,
        reference: np.ndarray | None = None,
        which: np.ndarray | None = None,
        references: list[Reference] | None = None,
    ):
        """Read the commune arrays once (see the class docstring)."""
        self.pop = coverage["population"].fillna(0).to_numpy(dtype=float)
        self.names = coverage["nom"].to_numpy(dtype=object)
        self.codes = coverage["code_commune"].to_numpy(dtype=object)
        epci = coverage["code_epci"].astype(object).where(coverage["code_epci"].notna(), "")
        self.epci = epci.astype(str).to_numpy()
        self.epci_names = (
            dict(zip(self.epci, coverage["nom_epci"].fillna("").astype(str)))
            if "nom_epci" in coverage
            else {}
        )
        self.epci_codes, self.epci_id = np.unique(self.epci, return_inverse=True)
        self.epci_total = np.bincount(self.epci_id)
        # an EPCI across a border: its communes in each département (the blocks of the cut)
        self.deps = (
            coverage["code_departement"].astype(str).to_numpy()
            if "code_departement" in coverage
            else np.full(len(coverage), "", dtype=object)
        )
        pairs = pd.Series(1, index=pd.MultiIndex.from_arrays([self.epci_id, self.deps]))
        self.epci_dep_total = pairs.groupby(level=[0, 1]).sum().to_dict()
        self.x, self.y = x, y
        self.reference, self.which, self.references = reference, which, references

    def _whole_share(self, members: np.ndarray, k: int, n: int) -> str:
        """The note ' (toutes ses communes du 05)' when the ``n`` communes of the EPCI numbered
        ``k`` (in ``epci_codes``) among ``members`` are all its communes of one département (an
        EPCI across a border is cut there), else ''.
        """
        deps = set(self.deps[members][self.epci_id[members] == k].tolist())
        if len(deps) == 1:
            dep = deps.pop()
            if dep and self.epci_dep_total.get((k, dep), -1) == n:
                return f" (toutes ses communes du {dep})"
        return ""

    def __call__(self, members: np.ndarray) -> dict:
        """The description of the territory made of the rows ``members``."""
        if not len(members):
            return dict(EMPTY)
        pop, codes, names = self.pop, self.codes, self.names
        order = sorted(members.tolist(), key=lambda k: (-pop[k], codes[k]))
        pole = order[0]
        dist = np.hypot(self.x[members] - self.x[pole], self.y[members] - self.y[pole]) / 1000.0
        far = int(members[np.lexsort((codes[members].astype(str), -dist))[0]])
        ids, counts = np.unique(self.epci_id[members], return_counts=True)
        named = self.epci_codes[ids] != ""
        ids, counts = ids[named], counts[named]
        full = counts == self.epci_total[ids]
        whole = self.epci_codes[ids[full]].tolist()
        part = list(
            zip(
                ids[~full].tolist(),
                counts[~full].tolist(),
                self.epci_total[ids[~full]].tolist(),
            )
        )
        out = dict(EMPTY)
        out.update(
            pole=f"{names[pole]} ({codes[pole]})",
            epci_entiers="; ".join(_epci_label(c, self.epci_names) for c in whole),
            epci_partiels="; ".join(
                f"{_epci_label(self.epci_codes[k], self.epci_names)} : {n} commune(s) sur {total}"
                + self._whole_share(members, k, n)
                for k, n, total in part
            ),
            commune_la_plus_eloignee=f"{names[far]} ({codes[far]})" if far != pole else "",
            distance_pole_km=round(float(dist.max()), 1),
        )
        if self.reference is not None and self.references is not None:
            size = float(pop[members].sum())
            load = float((pop[members] / np.maximum(self.reference[members], 1.0)).sum())
            target = size / load if load > 0 else float(np.median(self.reference[members]))
            share = np.bincount(
                self.which[members], weights=pop[members], minlength=len(self.references)
            )
            order = np.argsort(-share, kind="stable")  # ties: the first reference
            main = self.references[int(order[0])]
            used = [int(k) for k in order if share[k] > 0]
            out.update(
                taille_visee=round(target),
                rapport_taille_visee=round(size / target, 2) if target else np.nan,
                reference=main.text(),
            )
            if len(used) > 1 and round(target) != round(main.population):
                parts = [(self.references[k], float(share[k] / share.sum())) for k in used]
                out["composition_taille_visee"] = composed_text(target, parts)
        return out
