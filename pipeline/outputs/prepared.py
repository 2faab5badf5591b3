"""The processed outputs the export reads (:class:`Outputs`) and the map geometry prepared
once per run from them (:class:`Level`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..analysis.coverage import cpts_rows
from ..config import Scope
from ..geo import by_zone, geometry_key, pack_geometries, polygonal, unpack_geometries
from ..io import cached_arrays, code_fingerprint, read_csv, read_geoparquet
from . import maps
from .profile_report import ProfileOutputs
from .summary import Provenance, RunSummary

DENSITY_LABEL = "Densité de population (hab./km²)"
DENSITY_COLUMN = "densite_hab_km2"
E2SFCA_LABEL = "Accessibilité aux médecins généralistes (E2SFCA, pour 10 000 hab.)"
UNAVAILABLE = "indisponible (aucun fichier de praticiens fourni)"


@dataclass
class Outputs:
    """The processed outputs the export reads."""

    coverage: gpd.GeoDataFrame
    cpts: gpd.GeoDataFrame
    white_zones: gpd.GeoDataFrame
    overlaps: pd.DataFrame
    territories: gpd.GeoDataFrame
    members: pd.DataFrame
    example: bool
    indicators: pd.DataFrame  # per commune, same order as coverage
    professions: list
    vintage: str = ""  # the population's vintage ("population légale en vigueur en 2026 …")
    profile: ProfileOutputs | None = None  # the profile stage's outputs
    summary: RunSummary | None = None  # the run at a glance (without the départements' names)

    @classmethod
    def read(
        cls,
        coverage_paths: dict,
        territory_paths: dict,
        source_path: Path,
        indicators_path: Path,
        *,
        professions: list[str],
        profile_paths: dict | None = None,
        settings=None,
    ) -> Outputs:
        """Read the outputs of the stages before the export.

        Parameters
        ----------
        coverage_paths, territory_paths : dict
            As :func:`pipeline.stages.coverage_paths` and :func:`pipeline.stages.territory_paths`.
        source_path, indicators_path : Path
            ``perimetres_source.json`` and ``indicators.parquet``.
        professions : list of str
            The professions of the supply indicators.
        profile_paths : dict, optional
            The profile stage's outputs.
        settings : pipeline.config.Settings, optional
            The run's settings: the data vintages and fingerprint of the summary's provenance
            (:meth:`pipeline.outputs.summary.Provenance.of`).

        Returns
        -------
        Outputs
        """
        members = read_csv(territory_paths["members"])
        members["population"] = members["population"].astype("int64")
        coverage = read_geoparquet(coverage_paths["coverage"])
        indicators = (
            pd.read_parquet(indicators_path).set_index("code_commune").loc[coverage["code_commune"]]
        )
        source = json.loads(Path(source_path).read_text(encoding="utf-8"))
        return cls(
            coverage,
            read_geoparquet(coverage_paths["cpts"]),
            read_geoparquet(coverage_paths["white_zones"]),
            read_csv(coverage_paths["overlaps"]),
            read_geoparquet(territory_paths["territories"]),
            members,
            bool(source["exemple"]),
            indicators.reset_index().set_index(coverage.index),
            list(professions),
            source.get("population_millesime", ""),
            ProfileOutputs.read(profile_paths) if profile_paths else None,
            run_summary(coverage_paths, source, settings),
        )

    @cached_property
    def supply_known(self) -> bool:
        """Whether a practitioner file was given (supply indicators known for some unit)."""
        return bool(self.indicators["n_medecin_generaliste"].notna().any())

    def choropleth(self) -> tuple[pd.Series, str]:
        """The map's indicator: E2SFCA accessibility when practitioners are known, else density."""
        if self.supply_known:
            return self.indicators["e2sfca_mg_10k"].astype(float), E2SFCA_LABEL
        return self.density, DENSITY_LABEL

    @cached_property
    def area_km2(self) -> pd.Series:
        """Area (km²) of each commune, measured in its zone's CRS (NaN for an empty shape)."""
        area = np.full(len(self.coverage), np.nan)
        for _epsg, rows, geoms in self.zones:
            area[rows] = shapely.area(geoms) / 1e6
        area[area == 0] = np.nan
        return pd.Series(area, index=self.coverage.index)

    @cached_property
    def density(self) -> pd.Series:
        """Population density (inhabitants per km²) of each commune, measured in its zone's CRS."""
        return self.coverage["population"].astype(float) / self.area_km2

    def cpts_density(self) -> pd.Series:
        """Population density (inhabitants per km²) of each existing CPTS, by ``cpts_id``: its
        communes of the scope (a commune shared by two CPTS counts in both).
        """
        rows = cpts_rows(
            pd.DataFrame(
                {
                    "cpts_ids": self.coverage["cpts_ids"].to_numpy(),
                    "population": self.coverage["population"].astype(float).to_numpy(),
                    "area": self.area_km2,
                }
            )
        )
        sums = rows.groupby("cpts_id")[["population", "area"]].sum()
        return sums["population"] / sums["area"]

    @cached_property
    def zones(self) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """``(epsg, row positions, geometries projected to that zone)`` per zone, projected once."""
        position = pd.Series(np.arange(len(self.coverage)), index=self.coverage.index)
        return [
            (epsg, position[zone.index].to_numpy(), zone.geometry.to_numpy())
            for epsg, zone in by_zone(self.coverage)
        ]


def run_summary(coverage_paths: dict, source: dict, settings=None) -> RunSummary | None:
    """The run at a glance from the coverage stage's summary and rates (None when they are not
    among ``coverage_paths``).

    Parameters
    ----------
    coverage_paths : dict
        As :func:`pipeline.stages.coverage_paths` (``summary``, ``rates``).
    source : dict
        The parsed ``perimetres_source.json``.
    settings : pipeline.config.Settings, optional
        For the full provenance (:meth:`Provenance.of`).

    Returns
    -------
    RunSummary or None
    """
    if not {"summary", "rates"} <= set(coverage_paths):
        return None
    provenance = Provenance.of(settings, source) if settings else Provenance.read(source)
    return RunSummary.of(
        json.loads(Path(coverage_paths["summary"]).read_text(encoding="utf-8")),
        pd.read_csv(coverage_paths["rates"], dtype={"code": str}),
        provenance=provenance,
    )


def scope_label(scope: Scope, names: dict | None = None) -> str:
    """The scope in French, by names when ``names`` (``regions``, ``departements``: code -> name)
    are given: "Occitanie", "Aude (11), Hérault (34)"; by codes otherwise.
    """
    if scope.kind == "france":
        return "France entière"
    if names is None:
        if scope.kind == "region":
            return f"région {scope.codes[0]}"
        return "département(s) " + ", ".join(scope.codes)
    if scope.kind == "region":
        return names["regions"].get(scope.codes[0], f"région {scope.codes[0]}")
    return ", ".join(f"{names['departements'].get(c, c)} ({c})" for c in scope.codes)


SEP = "\x1f"  # joins a group id and a département code in the keys of département-level shapes
STATUS_FR = {
    "couverte": "couverte",
    "zone_blanche": "zone blanche",
    "chevauchement": "chevauchement",
}
KIND_FR = {"candidate": "candidat", "extension": "extension de CPTS"}


@dataclass
class Level:
    r"""The geometries of one kind of map (overview or département), simplified and unioned once
    per run.

    ``shapes[layer][key]`` is a WGS84 union of simplified communes; at the département level the key
    is ``<id>\x1f<département>`` (the part of the group inside the département).
    """

    decimals: int
    projected: np.ndarray  # per coverage row, in its zone's projected CRS
    wgs84: np.ndarray  # per coverage row
    shapes: dict


def simplified(
    geoms: np.ndarray, epsg: int, *, tolerance_m: float, cache: Path | None
) -> tuple[np.ndarray, np.ndarray]:
    """The coverage simplification of one zone's communes, projected and in WGS84; kept in the
    folder ``cache`` (keyed by the geometries, tolerance and code) for the next run on the same
    communes.
    """
    key = geometry_key(geoms, "simplified", epsg, tolerance_m, code_fingerprint())

    def compute() -> dict[str, np.ndarray]:
        simple = maps.simplify_coverage(geoms, tolerance_m)
        wgs84 = maps.to_wgs84(simple, epsg)
        return {
            f"{k}_{part}": a
            for k, g in (("projected", simple), ("wgs84", wgs84))
            for part, a in pack_geometries(g).items()
        }

    arrays = cached_arrays(compute, cache=cache, name=f"carte-{tolerance_m:g}m", key=key, keep=16)
    return tuple(
        unpack_geometries({part: arrays[f"{k}_{part}"] for part in ("wkb", "lengths")})
        for k in ("projected", "wgs84")
    )


def build_level(
    outputs: Outputs,
    groups: dict[str, pd.Series],
    *,
    tolerance_m: float,
    decimals: int,
    by_departement: bool,
    cache: Path | None = None,
) -> Level:
    """Simplify every commune once (per zone, shared borders kept; see :func:`simplified`),
    project to WGS84 and union each group (``groups``: ``;``-joined labels per commune).
    """
    n = len(outputs.coverage)
    projected, wgs84 = np.empty(n, dtype=object), np.empty(n, dtype=object)
    shapes: dict[str, dict] = {code: {} for code in groups}
    departements = outputs.coverage["code_departement"].to_numpy()
    for epsg, rows, geoms in outputs.zones:
        simple, wgs84[rows] = simplified(geoms, epsg, tolerance_m=tolerance_m, cache=cache)
        projected[rows] = simple
        for code, labels in groups.items():
            if code == "regions":
                continue
            exploded = pd.Series(labels.to_numpy()[rows]).str.split(";").explode()
            exploded = exploded[exploded.fillna("") != ""]
            local = exploded.index.to_numpy()
            keys = exploded.to_numpy(dtype=object)
            if by_departement and code != "departements":
                keys = keys + SEP + departements[rows][local]
            merged = maps.dissolve(simple, local, keys)
            for key, geom in zip(
                merged, maps.to_wgs84(np.array(list(merged.values()), dtype=object), epsg)
            ):
                if key in shapes[code]:  # a group spanning two zones: keep both parts
                    geom = polygonal(np.array([shapes[code][key], geom], dtype=object))[0]
                shapes[code][key] = geom
    if "regions" in groups:  # from the départements' unions: far fewer, larger pieces
        region_of = dict(zip(outputs.coverage["code_departement"], groups["regions"]))
        deps = list(shapes["departements"])
        parts = pd.Series(deps).groupby([region_of[d] for d in deps]).agg(list)
        shapes["regions"] = {
            r: maps.union(np.array([shapes["departements"][d] for d in deps], dtype=object))
            for r, deps in sorted(parts.items())
        }
    return Level(decimals, projected, wgs84, shapes)
