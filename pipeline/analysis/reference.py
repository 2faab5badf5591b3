"""The size a candidate territory should have: the CPTS professionals formed around it.

CPTS size follows density (a mountain CPTS of 12,000 inhabitants spans as much land as a city
one of 120,000), so the reference is taken among comparable territories: each commune's
*neighbourhood density* (inhabitants per km² of the communes whose centre lies within
:data:`DENSITY_RADIUS_KM`) puts it in a density class (:data:`DENSITY_CLASSES`, the classes of the
published PACA figures), and its reference size is the median population of the existing CPTS of
the same class, taken from the nearest level that has at least :data:`MIN_CPTS` of them:

1. the CPTS of the commune's département (a CPTS belongs to the département holding most of its
   population),
2. else those of its région,
3. else every CPTS of the perimeter file,
4. else the national reference (:data:`NATIONAL_REFERENCE`: the FCPTS's average of 82,000
   inhabitants, February 2024), with how many comparable CPTS the file has (fewer than
   :data:`MIN_CPTS`); the only figure when the perimeters are EXAMPLE ones (never used as a
   reference: they are not real CPTS).

When a class has fewer than :data:`FEW_CPTS` comparable CPTS at that level (their median would be
the middle one of three), its size is read instead on the robust (Theil–Sen) line of log
population against log density fitted on every CPTS of the level, at the comparable CPTS' median
density — size follows density, and all the level's CPTS tell how.

:func:`reference_sizes` returns the size per commune and the :class:`Reference` rows that explain
each (value, level, class, how many CPTS), for the summary, the run's message and the reports.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree
from scipy.stats import theilslopes

from .coverage import cpts_rows
from .indicators import indicator_text

# Neighbourhood of a commune for its density: about the reach of a CPTS (a disc of ~300 km²).
DENSITY_RADIUS_KM = 10.0
# Density classes (inhabitants / km²): upper bounds, with the French label of each class.
DENSITY_CLASSES = (
    (50.0, "peu denses (moins de 50 hab./km²)"),
    (150.0, "de densité intermédiaire (50 à 150 hab./km²)"),
    (500.0, "denses (150 à 500 hab./km²)"),
    (np.inf, "très denses (plus de 500 hab./km²)"),
)
MIN_CPTS = 3  # fewest comparable CPTS for a level to give the reference
# Below this many comparable CPTS, their median is too noisy (3 CPTS: the middle one): the size
# is read instead on the line of log size against log density fitted on every CPTS of the level
# (at least POOL_CPTS of them), at the comparable CPTS' median density.
FEW_CPTS = 5
POOL_CPTS = 8
NATIONAL_REFERENCE = 82_000.0
NATIONAL_SOURCE = "moyenne nationale des CPTS (FCPTS, février 2024 : 738 CPTS, 82 000 hab.)"
LEVELS = ("departement", "region", "fichier", "national", "reglage")
LEVEL_FR = {
    "departement": "du département",
    "region": "de la région",
    "fichier": "du fichier de périmètres",
}


@dataclass(frozen=True)
class Reference:
    """One reference size and where it comes from.

    Attributes
    ----------
    population : float
        The reference size (inhabitants).
    level : str
        One of :data:`LEVELS` (codes for logic; French at rendering, :meth:`text`).
    density_class : int
        Index in :data:`DENSITY_CLASSES`; for the national reference, the class the file has too
        few CPTS of (-1 with EXAMPLE perimeters or none at all, and for the user's reference).
    n_cpts : int
        How many CPTS the median is taken over; for the national reference, how many comparable
        CPTS the file has (fewer than :data:`MIN_CPTS`); 0 for the user's reference.
    area : str
        The département or région code the CPTS were taken from ("" otherwise).
    pooled : int
        When the comparable CPTS were too few for their median (fewer than :data:`FEW_CPTS`):
        how many CPTS of the level the size–density line was fitted on (0 otherwise).
    """

    population: float
    level: str
    density_class: int = -1
    n_cpts: int = 0
    area: str = ""
    pooled: int = 0

    def text(self) -> str:
        """French description, e.g. "taille visée : 55 000 hab., médiane des 12 CPTS denses
        (150 à 500 hab./km²) du département 84".
        """
        return f"taille visée : {indicator_text(self.population, decimals=0)} hab., {self.source()}"

    def source(self) -> str:
        """Where the size comes from, in French (:meth:`text` without the size), e.g. "médiane
        des 12 CPTS denses (150 à 500 hab./km²) du département 84".
        """
        if self.level == "national":
            if self.density_class < 0:
                return NATIONAL_SOURCE
            label = DENSITY_CLASSES[self.density_class][1]
            have = {0: "aucune", 1: "qu'une"}.get(self.n_cpts, f"que {self.n_cpts}")
            return (
                f"{NATIONAL_SOURCE}, faute de {MIN_CPTS} CPTS {label} dans le fichier de "
                f"périmètres (il n'y en a {have})"
            )
        if self.level == "reglage":
            return "fixée dans les réglages ([territories])"
        where = LEVEL_FR[self.level] + (f" {self.area}" if self.area else "")
        label = DENSITY_CLASSES[self.density_class][1]
        if self.pooled:
            return (
                f"taille des CPTS à la densité des {self.n_cpts} CPTS {label} {where}, lue sur la "
                f"relation taille–densité de ses {self.pooled} CPTS"
            )
        return f"médiane des {self.n_cpts} CPTS {label} {where}"


def neighbourhood_density(
    x: np.ndarray, y: np.ndarray, population: np.ndarray, area_km2: np.ndarray
) -> np.ndarray:
    """Inhabitants per km² of the communes whose centre lies within :data:`DENSITY_RADIUS_KM` of
    each commune's centre (itself included); coordinates in metres.
    """
    points = np.c_[x, y]
    tree = cKDTree(points)
    pairs = tree.query_pairs(DENSITY_RADIUS_KM * 1000.0, output_type="ndarray")
    a, b = np.r_[pairs[:, 0], pairs[:, 1]], np.r_[pairs[:, 1], pairs[:, 0]]
    pop = population + np.bincount(a, weights=population[b], minlength=len(x))
    area = area_km2 + np.bincount(a, weights=area_km2[b], minlength=len(x))
    return pop / np.maximum(area, 1e-6)


def density_class(density: np.ndarray) -> np.ndarray:
    """Index of each density in :data:`DENSITY_CLASSES`."""
    bounds = np.array([upper for upper, _ in DENSITY_CLASSES[:-1]])
    return np.searchsorted(bounds, density, side="right")


def cpts_table(
    coverage: pd.DataFrame, area_km2: np.ndarray, region_of: dict[str, str]
) -> pd.DataFrame:
    """Each existing CPTS of ``coverage`` with its population, area and density within the scope,
    its density class, main département (holding most of its population) and région.
    """
    rows = cpts_rows(coverage[["cpts_ids", "code_departement", "population"]].assign(area=area_km2))
    if rows.empty:
        return pd.DataFrame(
            columns=["population", "area", "density", "classe", "departement", "region"]
        )
    sums = rows.groupby("cpts_id")[["population", "area"]].sum()
    by_dep = rows.groupby(["cpts_id", "code_departement"])["population"].sum().reset_index()
    by_dep = by_dep.sort_values(
        ["cpts_id", "population", "code_departement"], ascending=[True, False, True]
    ).drop_duplicates("cpts_id")
    sums["departement"] = by_dep.set_index("cpts_id")["code_departement"]
    sums["region"] = sums["departement"].map(region_of).fillna("")
    sums["density"] = sums["population"] / sums["area"].clip(lower=1e-6)
    sums["classe"] = density_class(sums["density"].to_numpy())
    return sums


def level_reference(
    chosen: pd.DataFrame, pool: pd.DataFrame, level: str, cls: int, area: str
) -> Reference:
    """The reference of a density class from its comparable CPTS ``chosen`` (at least
    :data:`MIN_CPTS`) among the CPTS ``pool`` of the level: their median population, or, when
    they are fewer than :data:`FEW_CPTS` and the level has at least :data:`POOL_CPTS`, the size the
    line of log population against log density of the pool gives at their median density.
    """
    if len(chosen) >= FEW_CPTS or len(pool) < POOL_CPTS:
        return Reference(float(chosen["population"].median()), level, cls, len(chosen), area)
    slope, intercept, _, _ = theilslopes(
        np.log(pool["population"].to_numpy(dtype=float).clip(min=1.0)),
        np.log(pool["density"].to_numpy(dtype=float)),
    )
    at = float(np.median(np.log(chosen["density"].to_numpy(dtype=float))))
    size = float(np.exp(intercept + slope * at))
    return Reference(round(size), level, cls, len(chosen), area, pooled=len(pool))


def reference_sizes(
    coverage: pd.DataFrame,
    x: np.ndarray,
    y: np.ndarray,
    area_km2: np.ndarray,
    *,
    example: bool,
    fixed: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, list[Reference]]:
    """Reference size of a territory around each commune of ``coverage``.

    Parameters
    ----------
    coverage : DataFrame
        Output of the coverage stage (``code_departement``, ``code_region``, ``population``,
        ``cpts_ids``).
    x, y, area_km2 : arrays
        Projected centre (m) and area (km²) of each commune.
    example : bool
        The perimeters are EXAMPLE ones: their CPTS are never a reference (the national one is
        used).
    fixed : float
        A reference set by the user (> 0): used everywhere.

    Returns
    -------
    sizes : ndarray
        Reference population per commune.
    which : ndarray of int
        Index in ``references`` of each commune's reference.
    references : list of Reference
        The distinct references used, in a stable order.
    """
    n = len(coverage)
    if fixed > 0:
        return np.full(n, float(fixed)), np.zeros(n, int), [Reference(float(fixed), "reglage")]
    national = Reference(NATIONAL_REFERENCE, "national")
    pop = coverage["population"].fillna(0).to_numpy(dtype=float)
    deps = coverage["code_departement"].to_numpy().astype(str)
    regions = coverage["code_region"].to_numpy().astype(str)
    region_of = dict(zip(deps, regions))
    cpts = pd.DataFrame() if example else cpts_table(coverage, area_km2, region_of)
    if cpts.empty:
        return np.full(n, NATIONAL_REFERENCE), np.zeros(n, int), [national]
    density = neighbourhood_density(x, y, pop, area_km2)
    classes = density_class(density)
    references: dict[Reference, int] = {}
    which = np.empty(n, dtype=np.int64)
    for key in sorted(set(zip(classes.tolist(), deps.tolist()))):
        cls, dep = key
        levels = (
            ("departement", dep, cpts[cpts["departement"] == dep]),
            ("region", region_of[dep], cpts[cpts["region"] == region_of[dep]]),
            ("fichier", "", cpts),
        )
        for level, area, pool in levels:
            chosen = pool[pool["classe"] == cls]
            if len(chosen) >= MIN_CPTS:
                ref = level_reference(chosen, pool, level, int(cls), area)
                break
        else:  # the last level is the whole file: ``chosen`` holds its comparable CPTS
            ref = Reference(NATIONAL_REFERENCE, "national", int(cls), len(chosen))
        number = references.setdefault(ref, len(references))
        which[(classes == cls) & (deps == dep)] = number
    refs = list(references)
    sizes = np.array([r.population for r in refs])[which]
    return sizes, which, refs
