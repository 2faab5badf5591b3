"""Stage ``export`` (pure parts): what the users see — maps, white-zone reports, GIS layers.

The stage function in :mod:`pipeline.stages` reads the processed outputs into :class:`Outputs` and
writes what these functions return.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..analysis.indicators import indicator_text
from ..geo import WGS84
from . import gpkg, maps, palette
from .maps import euros, people
from .prepared import (
    KIND_FR,
    SEP,
    STATUS_FR,
    UNAVAILABLE,
    Level,
    Outputs,
    build_level,
    scope_label,
    simplified,
)
from .profile_report import profile_layer
from .zone_reports import ZoneReports

# what the stage and the tests read here (Outputs, scope_label and simplified live in .prepared)
__all__ = [
    "MapSource",
    "Outputs",
    "gis_layers",
    "run_tasks",
    "scope_label",
    "simplified",
    "write_all",
]


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
        """Prepare the geometries of both kinds of map and the display columns, once."""
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
    zone_reports = ZoneReports(
        source.outputs,
        title=title,
        geometry=source.levels["departement"],
        names=source.names.get("departements"),
    )
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
    reports = _SHARED["reports"]  # also gives every map the run at a glance
    if kind == "zone":
        return reports.write(key, target)
    if kind == "overview":
        page = source.page(
            np.arange(len(source.outputs.coverage)),
            level="overview",
            title=title,
            summary_html=reports.summary(),
        )
        write_text(target, maps.render_page(page, leaflet=leaflet))
        return None
    rows = np.flatnonzero((source.outputs.coverage["code_departement"] == key).to_numpy())
    page = source.page(
        rows,
        level="departement",
        departement=key,
        title=f"Diagnostic CPTS – {source._departement_label(key)}",
        summary_html=reports.summary([key]),
    )
    write_text(target / f"carte_{key}.html", maps.render_page(page, leaflet=leaflet))
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


def gis_layers(outputs: Outputs) -> dict[str, gpd.GeoDataFrame]:
    """Every layer for QGIS, in one GeoPackage: metropolitan features in Lambert-93, each overseas
    zone in a layer of its own and CRS, valid geometries, French labels beside the codes
    (:func:`pipeline.outputs.gpkg.projected_layers`).

    Parameters
    ----------
    outputs : Outputs

    Returns
    -------
    dict of GeoDataFrame

    Raises
    ------
    PipelineError
        A geometry that stays invalid after repair.
    """
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
    return gpkg.projected_layers(layers, outputs.coverage)
