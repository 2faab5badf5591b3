"""Stage ``territories``: candidate CPTS territories for the white zones.

From the coverage table (white-zone communes and their patches), the existing CPTS and the
adjacency:

* white-zone communes are grouped into contiguous candidates within [floor, ceiling]: by default
  (``objective = "realistic"``) sized like the existing CPTS around them
  (:func:`pipeline.analysis.reference.reference_sizes`) and built from whole EPCIs
  (:func:`pipeline.analysis.realistic.realistic_regions`); with ``objective = "max_count"``, as
  many as the floor allows (:func:`pipeline.analysis.regionalize.regionalize`);
* a whole patch below the floor is not forced into a fake territory: it is proposed as an
  *extension* of the bordering existing CPTS that shares the longest border with it and stays under
  the ceiling, or flagged "sous le seuil" with the reason;
* a single commune above the ceiling is split into contiguous IRIS-based candidates when IRIS data
  is given, else it stays one candidate with the reason;
* every territory gets its ACI tier and envelope and quality figures (population, communes,
  compactness, longest internal distance), and every candidate its explanation
  (:class:`pipeline.analysis.explanation.Describer`: pôle, EPCIs whole or in part, farthest
  commune, reference size).

Invariants checked on every run: every white-zone commune is in exactly one territory or flagged,
and every candidate is contiguous.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..aci import envelopes
from ..errors import PipelineError
from ..geo import by_zone, union_groups
from ..sources.iris import iris_of_commune
from .adjacency import Adjacency, build_adjacency, components, shared_border_length
from .coverage import cpts_rows
from .explanation import COLUMNS as DESCRIPTION_COLUMNS
from .explanation import EMPTY as EMPTY_DESCRIPTION
from .explanation import Describer
from .realistic import RESCUE_DIAMETER, SPLIT_FACTOR, SPLIT_LEAST, realistic_regions
from .reference import reference_sizes
from .regionalize import Reason, centroids_and_areas, regionalize
from .regions import Regions, diameter_km, width_text

KINDS = ("cpts_existante", "candidate", "extension")
TERRITORY_COLUMNS = [
    "id_territoire",
    "type_territoire",
    "nom",
    "exemple",
    "population",
    "population_hors_champ",
    "n_communes",
    "departements",
    "palier",
    "enveloppe_eur",
    "supplement_snp_eur",
    "dans_les_bornes",
    "motif",
    "id_zone_blanche",
    "cpts_id",
    "ile",
    "compacite",
    "plus_grande_distance_km",
    *DESCRIPTION_COLUMNS,
    "geometry",
]
MEMBER_COLUMNS = [
    "id_territoire",
    "type_territoire",
    "code_commune",
    "code_iris",
    "population",
    "signalement",
]


@dataclass(frozen=True)
class Bounds:
    """Settings of the regionalization (``[territories]``)."""

    floor: float
    ceiling: float
    max_diameter_km: float
    epci_penalty: float
    cross_departements: bool
    target_population: float = 0.0
    trees: int = 12
    objective: str = "realistic"
    reference_population: float = 0.0

    @classmethod
    def from_settings(cls, cfg: dict) -> Bounds:
        """The bounds of the ``[territories]`` settings section ``cfg``."""
        return cls(
            float(cfg["floor"]),
            float(cfg["ceiling"]),
            float(cfg["max_diameter_km"]),
            float(cfg["epci_penalty"]),
            bool(cfg["cross_departements"]),
            float(cfg.get("target_population", 0)),
            int(cfg.get("trees", 12)),
            str(cfg.get("objective", "realistic")),
            float(cfg.get("reference_population", 0)),
        )

    @property
    def realistic(self) -> bool:
        """Whether the realistic objective cuts the white zones (else max-p or the bisection)."""
        return self.objective == "realistic" and self.target_population <= 0

    def options(self) -> dict:
        """Keyword options of :func:`pipeline.analysis.regionalize.regionalize`."""
        return dict(
            floor=self.floor,
            ceiling=self.ceiling,
            max_diameter_km=self.max_diameter_km,
            target_population=self.target_population,
            trees=self.trees,
        )


def shape_metrics(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Polsby-Popper compactness (4πA/P², 1 for a disc) and longest internal distance (km, convex
    hull diameter) of projected geometries.
    """
    area, perimeter = shapely.area(geoms), shapely.length(geoms)
    compact = np.where(perimeter > 0, 4 * np.pi * area / np.maximum(perimeter, 1e-9) ** 2, 0.0)
    longest = np.zeros(len(geoms))
    for k, geom in enumerate(geoms):
        if geom is None or geom.is_empty:
            continue
        pts = shapely.get_coordinates(shapely.convex_hull(geom))
        d = np.sqrt(((pts[:, None, :] - pts[None, :, :]) ** 2).sum(-1))
        longest[k] = d.max() / 1000.0
    return np.round(compact, 4), np.round(longest, 2)


def dissolve_with_metrics(frame: gpd.GeoDataFrame, key: str) -> gpd.GeoDataFrame:
    """Union of ``frame``'s geometries per ``key`` with shape metrics measured in each zone's CRS;
    returned in ``frame``'s CRS, sorted by key.
    """
    parts = []
    for _epsg, zone in by_zone(frame[[key, "epsg", "geometry"]]):
        zone = zone[zone.geometry.notna()]
        if zone.empty:
            continue
        keys, unions = union_groups(zone.geometry.to_numpy(), zone[key].to_numpy())
        compact, longest = shape_metrics(unions)
        merged = gpd.GeoDataFrame(
            {"compacite": compact, "plus_grande_distance_km": longest},
            index=pd.Index(keys, name=key),
            geometry=unions,
            crs=zone.crs,
        ).to_crs(frame.crs)
        parts.append(merged[["compacite", "plus_grande_distance_km", "geometry"]])
    if not parts:
        return gpd.GeoDataFrame(
            {"compacite": [], "plus_grande_distance_km": []}, geometry=[], crs=frame.crs
        )
    return gpd.GeoDataFrame(pd.concat(parts), crs=frame.crs).sort_index()


def extension_choice(
    region: np.ndarray,
    coverage: gpd.GeoDataFrame,
    neighbours: list[np.ndarray],
    cpts_pop: dict,
    *,
    ceiling: float,
    tolerance_m: float,
    near: dict[str, float] | None = None,
) -> tuple[str, str]:
    """Best bordering CPTS for a white patch below the floor: (cpts_id, reason) — cpts_id empty when
    flagged. Longest shared border first among those that stay under the ceiling and, with
    ``near`` (CPTS id → the size it should stay under: :data:`~pipeline.analysis.realistic
    .SPLIT_FACTOR` times its reference size), first among those that stay near their reference
    size. ``neighbours`` is :meth:`Adjacency.neighbours` of ``coverage``'s rows.
    """
    cpts_of = coverage["cpts_ids"].to_numpy()
    inside = set(region.tolist())
    pairs = [(v, u) for v in region for u in neighbours[v] if u not in inside and cpts_of[u]]
    population = int(coverage["population"].fillna(0).to_numpy()[region].sum())
    if not pairs:
        return (
            "",
            "sous le seuil : aucune CPTS limitrophe (île, bord du périmètre ou géométrie absente)",
        )
    lengths = shared_border_length(
        coverage,
        np.array([p[0] for p in pairs]),
        np.array([p[1] for p in pairs]),
        tolerance_m=tolerance_m,
    )
    border: dict[str, float] = {}
    for (_, u), length in zip(pairs, lengths):
        for cid in cpts_of[u].split(";"):
            border[cid] = border.get(cid, 0.0) + length
    fitting = sorted((-border[c], c) for c in border if cpts_pop.get(c, 0) + population <= ceiling)
    sized = [f for f in fitting if near is None or cpts_pop.get(f[1], 0) + population <= near[f[1]]]
    if sized:
        return sized[0][1], "zone blanche sous le plancher : extension de la CPTS limitrophe"
    if fitting:
        return fitting[0][1], (
            "zone blanche sous le plancher : extension de la CPTS limitrophe (chaque CPTS "
            "limitrophe qui peut l'absorber dépasse alors deux fois sa taille visée)"
        )
    return "", (
        "sous le seuil : toute CPTS limitrophe dépasserait le plafond en l'absorbant "
        f"({', '.join(sorted(border))})"
    )


def cpts_limits(coverage: pd.DataFrame, reference: np.ndarray) -> dict[str, float]:
    """The size each existing CPTS should stay under to remain near its reference size:
    :data:`~pipeline.analysis.realistic.SPLIT_FACTOR` times the median reference size of its
    communes (:func:`pipeline.analysis.reference.reference_sizes`), by CPTS id.
    """
    rows = cpts_rows(pd.DataFrame({"cpts_ids": coverage["cpts_ids"].to_numpy(), "r": reference}))
    return (SPLIT_FACTOR * rows.groupby("cpts_id")["r"].median()).to_dict()


def width_remark(
    regions: Regions, label: int, nodes: np.ndarray, x: np.ndarray, y: np.ndarray, bounds: Bounds
) -> str:
    """The remark of a candidate wider than ``max_diameter_km`` (between its farthest commune
    centres), with the cause its objective gave; "" when within.
    """
    km = diameter_km(x[nodes], y[nodes])
    if km <= bounds.max_diameter_km:
        return ""
    return width_text(
        regions.wide.get(label),
        km=km,
        limit=bounds.max_diameter_km,
        floor=bounds.floor,
        tier=SPLIT_LEAST,
        stretch=RESCUE_DIAMETER,
    )


def main_departement(deps: np.ndarray, pop: np.ndarray) -> str:
    """The département holding most of the population of a territory's communes (ties: the
    smallest code): the one its id names, ``CAND-<département>-NNN``.
    """
    names, inverse = np.unique(np.asarray(deps, dtype=str), return_inverse=True)
    return str(names[int(np.argmax(np.bincount(inverse, weights=np.asarray(pop, dtype=float))))])


def candidate_territories(
    coverage: gpd.GeoDataFrame,
    adjacency: Adjacency,
    cpts: gpd.GeoDataFrame,
    aci: dict,
    bounds: Bounds,
    *,
    tolerance_m: float = 20.0,
    iris: tuple[gpd.GeoDataFrame, pd.DataFrame] | None = None,
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Candidate territories, extensions and existing CPTS.

    Parameters
    ----------
    coverage : GeoDataFrame
        Output of the coverage stage (one row per commune, ``statut``, ``cpts_ids``,
        ``id_zone_blanche``).
    adjacency : Adjacency
        Adjacency of ``coverage``'s rows.
    cpts : GeoDataFrame
        Existing CPTS (coverage stage), with ``population`` and ``exemple``.
    aci : dict
        ``[aci]`` settings.
    bounds : Bounds
    iris : (contours, population), optional
        IRIS data used to split single communes above the ceiling.

    Returns
    -------
    territories : GeoDataFrame
        Columns :data:`TERRITORY_COLUMNS`.
    members : DataFrame
        Columns :data:`MEMBER_COLUMNS`: every white-zone commune once (or once per IRIS part).
    """
    white = (coverage["statut"] == "zone_blanche").to_numpy()
    example = bool(cpts["exemple"].any()) if len(cpts) else False
    x, y, area = centroids_and_areas(coverage)
    sizing: dict = {}
    if bounds.realistic:
        sizes, which, references = reference_sizes(
            coverage, x, y, area, example=example, fixed=bounds.reference_population
        )
        sizing = dict(reference=sizes, which=which, references=references)
        regions = realistic_regions(
            coverage,
            adjacency,
            white,
            sizes,
            floor=bounds.floor,
            ceiling=bounds.ceiling,
            max_diameter_km=bounds.max_diameter_km,
            same_departement=not bounds.cross_departements,
            centres=(x, y, area),
        )
    else:
        regions = regionalize(
            coverage,
            adjacency,
            white,
            epci_penalty=bounds.epci_penalty,
            same_departement=not bounds.cross_departements,
            centres=(x, y, area),
            **bounds.options(),
        )
    codes = coverage["code_commune"].to_numpy()
    deps = coverage["code_departement"].to_numpy()
    pop = coverage["population"].fillna(0).astype("int64").to_numpy()
    patch = coverage["id_zone_blanche"].to_numpy()
    cpts_pop = dict(zip(cpts["cpts_id"], cpts["population"]))

    rows, members = [], []
    counters: dict[str, int] = {}
    neighbours, near = None, None
    for label in range(regions.labels.max() + 1):
        region = np.flatnonzero(regions.labels == label)
        reason, code = regions.reasons.get(label, ""), regions.codes.get(label)
        main_dep = main_departement(deps[region], pop[region])
        if code == Reason.WHOLE_PATCH_BELOW_FLOOR:
            neighbours = adjacency.neighbours() if neighbours is None else neighbours
            if bounds.realistic and near is None:
                near = cpts_limits(coverage, sizing["reference"])
            cid, why = extension_choice(
                region,
                coverage,
                neighbours,
                cpts_pop,
                ceiling=bounds.ceiling,
                tolerance_m=tolerance_m,
                near=near,
            )
            if cid:
                tid = f"EXT-{patch[region[0]]}"
                rows.append(
                    dict(
                        id_territoire=tid,
                        type_territoire="extension",
                        cpts_id=cid,
                        motif=why,
                        members=region,
                        population=int(pop[region].sum()) + int(cpts_pop[cid]),
                    )
                )
                members += [(tid, "extension", codes[k], "", int(pop[k]), "") for k in region]
            else:
                members += [("", "signalee", codes[k], "", int(pop[k]), why) for k in region]
            continue
        if code == Reason.SINGLE_UNIT_ABOVE_CEILING and iris is not None:
            rows_iris, members_iris = _split_by_iris(
                coverage.iloc[region[0]],
                iris,
                coverage.crs,
                bounds,
                counters,
                tolerance_m=tolerance_m,
            )
            rows += rows_iris
            members += members_iris
            continue
        counters[main_dep] = counters.get(main_dep, 0) + 1
        tid = f"CAND-{main_dep}-{counters[main_dep]:03d}"
        rows.append(
            dict(
                id_territoire=tid,
                type_territoire="candidate",
                cpts_id="",
                motif=" ; ".join(
                    filter(None, [reason, width_remark(regions, label, region, x, y, bounds)])
                ),
                members=region,
                population=int(pop[region].sum()),
            )
        )
        members += [(tid, "candidate", codes[k], "", int(pop[k]), "") for k in region]

    describe = Describer(coverage, x, y, **sizing)
    for row in rows:
        row["description"] = describe(row["members"])
    members_frame = pd.DataFrame(members, columns=MEMBER_COLUMNS)
    check_members(coverage, members_frame)
    check_contiguity(adjacency, members_frame, codes)
    territories = _assemble(rows, coverage, cpts, aci, bounds, example)
    return territories, members_frame


def _split_by_iris(
    commune: pd.Series, iris, crs, bounds: Bounds, counters: dict, *, tolerance_m: float
):
    """Candidates made of the IRIS of one commune above the ceiling."""
    contours, population = iris
    parts = iris_of_commune(contours, population, commune, epsg=int(commune["epsg"]))
    adjacency = build_adjacency(parts, tolerance_m=tolerance_m, island_link_max_km=5.0)
    if components(adjacency).max() > 0:
        raise PipelineError(
            f"IRIS of commune {commune['code_commune']} are not contiguous in the IRIS file; "
            "check the contours"
        )
    regions = regionalize(
        parts, adjacency, np.ones(len(parts), bool), epci_penalty=1.0, **bounds.options()
    )
    rows, members = [], []
    dep = commune["code_departement"]
    for label in range(regions.labels.max() + 1):
        region = np.flatnonzero(regions.labels == label)
        counters[dep] = counters.get(dep, 0) + 1
        tid = f"CAND-{dep}-{counters[dep]:03d}"
        geom = shapely.union_all(parts.geometry.to_numpy()[region])
        compact, longest = shape_metrics(np.array([geom]))
        rows.append(
            dict(
                id_territoire=tid,
                type_territoire="candidate",
                cpts_id="",
                members=np.array([], dtype=np.int64),
                motif=" ".join(
                    filter(
                        None,
                        [
                            f"partie de la commune {commune['code_commune']} découpée par IRIS",
                            regions.reasons.get(label, ""),
                        ],
                    )
                ),
                population=int(parts["population"].to_numpy()[region].sum()),
                shape=dict(
                    geometry=gpd.GeoSeries([geom], crs=parts.crs).to_crs(crs).iloc[0],
                    compacite=compact[0],
                    plus_grande_distance_km=longest[0],
                    departements=dep,
                    id_zone_blanche=commune["id_zone_blanche"],
                    n_communes=1,
                    ile=False,
                    nom=f"Territoire candidat – {commune['nom']} (IRIS, partie {len(rows) + 1})",
                ),
            )
        )
        members += [
            (
                tid,
                "candidate",
                commune["code_commune"],
                parts["code_iris"].iloc[k],
                int(parts["population"].iloc[k]),
                "",
            )
            for k in region
        ]
    return rows, members


def _assemble(rows, coverage, cpts, aci, bounds: Bounds, example: bool) -> gpd.GeoDataFrame:
    key = np.full(len(coverage), "", dtype=object)
    for row in rows:
        key[row["members"]] = row["id_territoire"]
    tagged = coverage.assign(_territory=key)
    tagged = tagged[tagged["_territory"] != ""]
    shapes = dissolve_with_metrics(tagged, "_territory")
    names = (
        tagged.sort_values(["population", "code_commune"], ascending=[False, True])
        .groupby("_territory")["nom"]
        .first()
    )
    cpts_by_id = cpts.set_index("cpts_id") if len(cpts) else None
    deps = coverage["code_departement"].to_numpy()
    zones = coverage["id_zone_blanche"].to_numpy()
    island = coverage["ile"].fillna(False).to_numpy(dtype=bool)
    out = []
    for row in rows:
        tid = row["id_territoire"]
        if "shape" in row:
            shape = row["shape"]
        else:
            members = row["members"]
            shape = dict(
                geometry=shapes.geometry.get(tid),
                compacite=shapes["compacite"].get(tid),
                plus_grande_distance_km=shapes["plus_grande_distance_km"].get(tid),
                departements=";".join(sorted(set(deps[members].tolist()))),
                id_zone_blanche=zones[members[0]],
                n_communes=len(members),
                ile=bool(island[members].any()),
                nom=f"Territoire candidat – {names[tid]}",
            )
        if row["type_territoire"] == "extension":
            base = cpts_by_id.loc[row["cpts_id"]]
            shape = shape | dict(
                geometry=shapely.union_all([shape["geometry"], base.geometry]),
                nom=f"Extension de {base['cpts_nom']}",
                n_communes=shape["n_communes"] + int(base["n_communes"]),
            )
        out.append(
            dict(
                id_territoire=tid,
                type_territoire=row["type_territoire"],
                exemple=example if row["type_territoire"] == "extension" else False,
                population_hors_champ=int(cpts_by_id.loc[row["cpts_id"], "population_hors_champ"])
                if row["type_territoire"] == "extension"
                else 0,
                population=row["population"],
                dans_les_bornes=bounds.floor <= row["population"] <= bounds.ceiling,
                motif=row["motif"],
                cpts_id=row["cpts_id"],
                **shape,
                **row.get("description", EMPTY_DESCRIPTION),
            )
        )
    existing = _existing(coverage, cpts, bounds)
    frame = pd.concat([existing, pd.DataFrame(out)], ignore_index=True) if out else existing
    money = envelopes(frame["population"].to_numpy(), aci)
    frame["palier"] = money["palier"].to_numpy()
    frame["enveloppe_eur"] = money["enveloppe_eur"].to_numpy()
    frame["supplement_snp_eur"] = money["supplement_snp_eur"].to_numpy()
    frame = gpd.GeoDataFrame(frame, geometry="geometry", crs=coverage.crs)
    return frame[TERRITORY_COLUMNS].reset_index(drop=True)


def _existing(coverage: gpd.GeoDataFrame, cpts: gpd.GeoDataFrame, bounds: Bounds) -> pd.DataFrame:
    if not len(cpts):
        return pd.DataFrame(columns=TERRITORY_COLUMNS)
    shapes = cpts_shape_metrics(coverage, cpts)
    return pd.DataFrame(
        {
            "id_territoire": cpts["cpts_id"],
            "type_territoire": "cpts_existante",
            "nom": cpts["cpts_nom"],
            "exemple": cpts["exemple"],
            "population": cpts["population"],
            "population_hors_champ": cpts["population_hors_champ"],
            "n_communes": cpts["n_communes"],
            "departements": cpts["departements"],
            "dans_les_bornes": (cpts["population"] >= bounds.floor)
            & (cpts["population"] <= bounds.ceiling),
            "motif": "",
            "id_zone_blanche": "",
            "cpts_id": cpts["cpts_id"],
            "ile": False,
            **EMPTY_DESCRIPTION,
            "compacite": cpts["cpts_id"].map(shapes["compacite"]).to_numpy(),
            "plus_grande_distance_km": cpts["cpts_id"]
            .map(shapes["plus_grande_distance_km"])
            .to_numpy(),
            "geometry": cpts.geometry.to_numpy(),
        }
    )


def cpts_shape_metrics(coverage: gpd.GeoDataFrame, cpts: gpd.GeoDataFrame) -> pd.DataFrame:
    """Compactness and longest internal distance of each existing CPTS (index ``cpts_id``),
    measured on its geometry from the coverage stage (the union of its communes in the scope)
    projected to its zone's CRS (that of its first commune).
    """
    zone = cpts_rows(coverage[["cpts_ids", "epsg"]]).drop_duplicates("cpts_id")
    zone = zone.set_index("cpts_id")["epsg"]
    frame = gpd.GeoDataFrame(
        {"cpts_id": cpts["cpts_id"].to_numpy(), "epsg": cpts["cpts_id"].map(zone).to_numpy()},
        geometry=cpts.geometry.to_numpy(),
        crs=cpts.crs,
    )
    frame = frame[frame["epsg"].notna() & frame.geometry.notna()]
    frame = frame.assign(epsg=frame["epsg"].astype("int64"))
    parts = []
    for _epsg, part in by_zone(frame):
        compact, longest = shape_metrics(part.geometry.to_numpy())
        parts.append(
            pd.DataFrame(
                {"compacite": compact, "plus_grande_distance_km": longest},
                index=pd.Index(part["cpts_id"].to_numpy(), name="cpts_id"),
            )
        )
    if not parts:
        return pd.DataFrame({"compacite": [], "plus_grande_distance_km": []})
    return pd.concat(parts).sort_index()


def check_members(coverage: pd.DataFrame, members: pd.DataFrame) -> None:
    """Every white-zone commune is in exactly one territory or flagged (IRIS parts: one commune, one
    territory per part); no other commune appears.
    """
    white = set(coverage.loc[coverage["statut"] == "zone_blanche", "code_commune"])
    whole = members[members["code_iris"] == ""]
    split = members[members["code_iris"] != ""]
    if whole["code_commune"].duplicated().any() or set(whole["code_commune"]) & set(
        split["code_commune"]
    ):
        raise PipelineError("internal check failed: a white-zone commune is in two territories")
    if set(members["code_commune"]) != white:
        missing = sorted(white - set(members["code_commune"]))[:5]
        raise PipelineError(
            f"internal check failed: white-zone communes missing from territories: {missing}"
        )
    if split["code_iris"].duplicated().any():
        raise PipelineError("internal check failed: an IRIS is in two territories")


def check_contiguity(adjacency: Adjacency, members: pd.DataFrame, codes: np.ndarray) -> None:
    """Every candidate or extension built from whole communes is contiguous."""
    whole = members[(members["code_iris"] == "") & (members["id_territoire"] != "")]
    label = np.full(len(codes), "", dtype=object)
    index = {c: k for k, c in enumerate(codes)}
    label[[index[c] for c in whole["code_commune"]]] = whole["id_territoire"].to_numpy()
    same = (label[adjacency.i] == label[adjacency.j]) & (label[adjacency.i] != "")
    sub = Adjacency(
        adjacency.n,
        adjacency.i[same],
        adjacency.j[same],
        adjacency.island_link[same],
        adjacency.island,
    )
    parts = components(sub, label != "")
    n_territories = whole["id_territoire"].nunique()
    if parts.max() + 1 != n_territories:
        raise PipelineError(
            f"internal check failed: {parts.max() + 1 - n_territories} territory(ies) not "
            "contiguous"
        )


def summarize(
    territories: gpd.GeoDataFrame, members: pd.DataFrame, bounds: Bounds, seconds: float
) -> dict:
    """``territories_summary.json``: counts, bounds, sizes, tiers, the objective and the reference
    sizes the candidates aimed at (with how many candidates each), and the regionalization time.
    """
    cand = territories[territories["type_territoire"] == "candidate"]
    return {
        "candidats": int(len(cand)),
        "extensions": int((territories["type_territoire"] == "extension").sum()),
        "cpts_existantes": int((territories["type_territoire"] == "cpts_existante").sum()),
        "communes_signalees": int((members["type_territoire"] == "signalee").sum()),
        "population_signalee": int(
            members.loc[members["type_territoire"] == "signalee", "population"].sum()
        ),
        "part_candidats_dans_les_bornes": round(
            float(cand["dans_les_bornes"].mean()) if len(cand) else 1.0, 4
        ),
        "candidats_hors_bornes": cand.loc[
            ~cand["dans_les_bornes"], ["id_territoire", "population", "motif"]
        ].to_dict("records"),
        "compacite_moyenne_candidats": round(
            float(cand["compacite"].mean()) if len(cand) else 0.0, 4
        ),
        "population_candidats": {
            "min": int(cand["population"].min()) if len(cand) else 0,
            "mediane": float(cand["population"].median()) if len(cand) else 0,
            "max": int(cand["population"].max()) if len(cand) else 0,
        },
        "bornes": {"plancher": bounds.floor, "plafond": bounds.ceiling},
        "objectif": bounds.objective if bounds.realistic else "max_count",
        "tailles_visees": [
            {"reference": text, "candidats": int(n)}
            for text, n in cand.loc[cand["reference"] != "", "reference"]
            .value_counts()
            .sort_index()
            .items()
        ],
        "paliers_candidats": {
            tier: int(n) for tier, n in cand["palier"].value_counts().sort_index().items()
        },
        "secondes_regionalisation": round(seconds, 3),
    }


def territory_communes(
    coverage: pd.DataFrame, territories: pd.DataFrame, members: pd.DataFrame
) -> pd.DataFrame:
    """``territory_id, code_commune`` of every territory made of whole communes: existing CPTS
    (their communes), candidates and extensions (their white-zone communes) and, for an extension,
    the communes of the CPTS it extends. IRIS-based parts are left out (practitioners and shapes are
    known by commune, not by IRIS).
    """
    cpts = cpts_rows(coverage[["code_commune", "cpts_ids"]], "id_territoire")
    cpts = cpts[["id_territoire", "code_commune"]]
    whole = members.loc[
        (members["id_territoire"] != "") & (members["code_iris"].fillna("") == ""),
        ["id_territoire", "code_commune"],
    ]
    extended = territories.loc[
        territories["type_territoire"] == "extension", ["id_territoire", "cpts_id"]
    ]
    extension = extended.merge(cpts.rename(columns={"id_territoire": "cpts_id"}), on="cpts_id")
    rows = pd.concat([cpts, whole, extension[["id_territoire", "code_commune"]]], ignore_index=True)
    return (
        rows.drop_duplicates()
        .sort_values(["id_territoire", "code_commune"], kind="stable")
        .reset_index(drop=True)
    )


def with_indicators(
    territories: gpd.GeoDataFrame,
    members: pd.DataFrame,
    coverage: pd.DataFrame,
    indicators: pd.DataFrame,
    *,
    professions: list[str],
) -> gpd.GeoDataFrame:
    """Territories with their supply indicators (sums, densities, population-weighted
    accessibility).
    """
    from .indicators import aggregate

    groups = territory_communes(coverage, territories, members).rename(
        columns={"id_territoire": "group"}
    )
    table = aggregate(indicators, groups, professions=professions)
    return territories.merge(table, left_on="id_territoire", right_index=True, how="left")
