"""Checks of setting values, used by the settings schema (:data:`pipeline.config.SCHEMA`), and
the relations between keys (:data:`RELATIONS`).

Each check takes a well-typed value and returns the problem as a phrase that completes
``[section] key = value: …`` (saying what to write), or None when the value is fine.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Check = Callable[[Any], "str | None"]


def at_least(low: float, *, strict: bool = False) -> Check:
    """The check ``check(value) -> str | None`` that a number is at least ``low``.

    Parameters
    ----------
    low : float
        The bound.
    strict : bool
        Refuse ``low`` itself: the number must be greater.
    """

    def check(value):
        if strict and not value > low:
            return f"must be greater than {low:g}"
        if not strict and not value >= low:
            return f"must be {low:g} or more"
        return None

    return check


def between(low: float, high: float, *, low_open: bool = False) -> Check:
    """The check ``check(value) -> str | None`` that a number lies between ``low`` and ``high``.

    Parameters
    ----------
    low, high : float
        The bounds, both accepted unless ``low_open``.
    low_open : bool
        Refuse ``low`` itself (``]low, high]``).
    """

    def check(value):
        if (value <= low if low_open else value < low) or value > high:
            return f"must be {'above' if low_open else 'at least'} {low:g} and at most {high:g}"
        return None

    return check


def hex64(value: str) -> str | None:
    """The problem with a text that should be a sha256 (64 lowercase hex digits), or None."""
    return (
        None
        if re.fullmatch(r"[0-9a-f]{64}", value)
        else "must be a sha256: 64 lowercase hexadecimal characters"
    )


def increasing_positive(values: list) -> str | None:
    """The problem with a list that should be positive and strictly increasing, or None."""
    if not values or any(v <= 0 for v in values) or list(values) != sorted(set(values)):
        return "must be positive and strictly increasing, e.g. [7.0, 10.5, 14.0]"
    return None


def fractions(values: list) -> str | None:
    """The problem with a list of weights that should each lie in [0, 1], or None."""
    return None if all(0 <= v <= 1 for v in values) else "every weight must lie between 0 and 1"


def one_of(*allowed: str) -> Check:
    """The check ``check(value) -> str | None`` that a text is one of ``allowed``."""

    def check(value):
        return None if value in allowed else f"must be one of {', '.join(repr(a) for a in allowed)}"

    return check


def non_empty(value) -> str | None:
    """The problem with an empty list, text or table, or None."""
    return None if len(value) else "must not be empty"


def _crs_problem(code: int, example: str) -> str | None:
    import pyproj

    try:
        crs = pyproj.CRS.from_epsg(code)
    except pyproj.exceptions.CRSError:
        return f"EPSG:{code} is not a known EPSG code; write a projected CRS in metres, {example}"
    if not crs.is_projected:
        return (
            f"EPSG:{code} ({crs.name}) is not a projected CRS in metres, and areas, distances and "
            f"adjacency are measured in metres; write a projected CRS, {example}"
        )
    return None


def projected_crs(value: int) -> str | None:
    """The problem with an EPSG code that should name a projected CRS in metres, or None.

    A geographic CRS (degrees, e.g. 4326) or a code unknown to PROJ is refused, with what to
    write instead (2154, Lambert-93, for metropolitan France).
    """
    return _crs_problem(value, "e.g. 2154 (Lambert-93) for metropolitan France")


def projected_crs_table(values: dict) -> str | None:
    """Like :func:`projected_crs` for each value of a table (``[communes] crs_drom``), or None."""
    for key, code in values.items():
        problem = _crs_problem(code, "e.g. 5490 for the Antilles, 2975 for La Réunion")
        if problem:
            return f"{key}: {problem}"
    return None


# Relations between keys, checked once every key is well typed: (section path, key named, check,
# fix).
RELATIONS: list[tuple[str, str, Callable[[dict], bool], str]] = [
    (
        "territories",
        "ceiling",
        lambda s: s["floor"] < s["ceiling"],
        "floor ({floor:g}) must be below ceiling ({ceiling:g}), e.g. floor = 20000, ceiling = "
        "200000",
    ),
    (
        "territories",
        "target_population",
        lambda s: s["target_population"] == 0 or s["target_population"] >= s["floor"],
        "target_population ({target_population:g}) is below floor ({floor:g}): write 0 (as many "
        "candidates as possible) or a population of at least the floor, e.g. target_population = "
        "50000",
    ),
    (
        "territories",
        "target_population",
        lambda s: s["target_population"] == 0 or s["objective"] == "max_count",
        'target_population ({target_population:g}) applies to objective = "max_count" (the '
        'bisection); set objective = "max_count", or target_population = 0 and, to fix the size '
        "the realistic objective aims at, reference_population",
    ),
    (
        "territories",
        "iris_population",
        lambda s: bool(s["iris_contours"]) == bool(s["iris_population"]),
        "give both iris_contours and iris_population, or neither",
    ),
    (
        "indicators.e2sfca",
        "weights",
        lambda s: len(s["bands_km"]) == len(s["weights"]),
        "bands_km and weights need the same number of values, one weight per band",
    ),
    (
        "indicators",
        "professions",
        lambda s: "medecin_generaliste" in s["professions"],
        'keep medecin_generaliste (the RPPS code of médecins, e.g. "10")',
    ),
    (
        "priority.weights",
        "population",
        lambda s: any(v > 0 for v in s.values()),
        "every weight is 0; give at least one criterion a positive weight (e.g. population = 1.0)",
    ),
]
