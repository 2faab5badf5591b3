"""White-zone reports for the task forces (French, print-friendly, self-contained).

``reports/index.html`` lists the white zones (sortable by population, communes, bordering CPTS);
``reports/zones_blanches/<id>.html`` is one page per zone: a map extract (inline SVG drawn from the
simplified geometries, no network), its communes with population and indicators, the bordering
CPTS, the territories proposed with their ACI tier and envelope, and the recommended action. Each
page's tables are also written as CSV and XLSX.
"""

from __future__ import annotations

import html

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..analysis.indicators import PROFESSIONS_FR
from ..sources.zonage import LABELS_FR as ZONAGE_FR
from .maps import euros, people

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;margin:24px auto;\
max-width:1100px;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:22px 0 6px;border-bottom:1px solid #ccc}
table{border-collapse:collapse;width:100%;margin:6px 0}\
th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f1f1f1;cursor:pointer}td.n{text-align:right;white-space:nowrap}
td.id{white-space:nowrap}td.wide{min-width:36ch}
.example{background:#fde8e8;border:1px solid #b00;color:#b00;padding:6px 10px;font-weight:bold;\
margin:8px 0}
.action{background:#eef6ee;border-left:4px solid #33a02c;padding:8px 12px;margin:8px 0}
.built{margin:4px 0 8px;padding-left:18px}.built li{margin:2px 0}
.muted{color:#666}.figure{border:1px solid #ccc;margin:8px 0;max-width:100%;height:auto}
@page{size:A4;margin:12mm}
@media print{body{margin:0;max-width:none;font-size:10px;line-height:1.3}\
a{color:#222;text-decoration:none}
 h1{font-size:16px}h2{font-size:12.5px;margin:10px 0 4px;break-after:avoid}
 th,td{padding:1px 4px}th{cursor:auto}.noprint{display:none}
 table{break-inside:auto}tr{break-inside:avoid}thead{display:table-header-group}
 .figure{max-height:95mm;width:auto}.action{padding:4px 8px;margin:4px 0}}
"""

SORT_JS = """document.querySelectorAll("table.sortable th").forEach(function (th, col) {
  th.addEventListener("click", function () {
    var body = th.closest("table").tBodies[0], rows = Array.from(body.rows), \
asc = th.dataset.asc !== "1";
    rows.sort(function (a, b) {
      var x = a.cells[col].dataset.v || a.cells[col].textContent, \
y = b.cells[col].dataset.v || b.cells[col].textContent;
      var nx = parseFloat(x), ny = parseFloat(y);
      var r = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y, "fr");
      return asc ? r : -r;
    });
    th.dataset.asc = asc ? "1" : "0";
    rows.forEach(function (r) { body.appendChild(r); });
  });
});"""

EXAMPLE_NOTE = (
    "EXEMPLE : les périmètres CPTS de ce rapport sont fictifs, construits à partir des EPCI pour "
    "illustrer la méthode. Ce ne sont pas des CPTS réelles."
)


def page(title: str, body: str, *, example: bool, vintage: str = "") -> str:
    """A report page: the EXAMPLE banner when the perimeters are examples, the population's vintage
    in the footer.
    """
    banner = f'<div class="example">{EXAMPLE_NOTE}</div>' if example else ""
    footer = (
        '<footer class="vintage">Population : '
        f"{html.escape(vintage or 'millésime non précisé')}.</footer>"
    )
    return (
        '<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<style>{CSS}</style></head>"
        f"<body>{banner}{body}{footer}<script>{SORT_JS}</script></body></html>\n"
    )


def available(frame: pd.DataFrame, known: dict[str, pd.Series]) -> tuple[pd.DataFrame, list[str]]:
    """A display table without the columns whose data is missing on every row, and their names.

    Parameters
    ----------
    frame : DataFrame
        Display strings (with ``<column>__v`` sort keys).
    known : dict of Series
        Display column → its data (or sort key): the column is dropped when all of it is missing
        (NaN or ``""``). Columns not listed are kept.

    Returns
    -------
    frame : DataFrame
        ``frame`` without those columns (and their ``__v``).
    dropped : list of str
        The dropped columns, in order: for the one note that replaces them (:func:`absent_note`).
    """
    dropped = [
        c
        for c, values in known.items()
        if c in frame.columns and pd.Series(values).replace("", np.nan).isna().all()
    ]
    return frame.drop(
        columns=[c for c in frame.columns if c.removesuffix("__v") in dropped]
    ), dropped


def absent_note(dropped: list[str], *, where: str, why: str) -> str:
    """The one note (HTML) that replaces columns unavailable on every row.

    Parameters
    ----------
    dropped : list of str
        The columns (:func:`available`).
    where : str
        For which rows (« toutes les zones blanches »).
    why : str
        Why they are unavailable (« fichiers non fournis »).

    Returns
    -------
    str
        ``""`` when nothing was dropped.
    """
    if not dropped:
        return ""
    return (
        f'<p class="muted">Non disponibles pour {html.escape(where)} ({html.escape(why)}), donc '
        f"non affichés : {html.escape(' ; '.join(dropped))}.</p>"
    )


def table(
    frame: pd.DataFrame,
    *,
    numeric: tuple[str, ...] = (),
    links: dict[str, str] | None = None,
    hidden: tuple[str, ...] = (),
    ids: tuple[str, ...] = (),
    wide: tuple[str, ...] = (),
) -> str:
    """An HTML table (sortable) from a frame of display strings.

    Parameters
    ----------
    frame : DataFrame
        Display strings; ``<column>__v`` columns hold the sort keys of ``numeric`` columns.
    numeric : tuple of str
        Columns right-aligned, never wrapped, sorted by the value in ``data-v``.
    links : dict, optional
        Column → the column holding the address it links to.
    hidden : tuple of str
        Columns not shown.
    ids : tuple of str
        Identifier columns, never wrapped.
    wide : tuple of str
        Text columns given room (at least 36 characters wide).

    Returns
    -------
    str
    """
    shown = [c for c in frame.columns if not c.endswith("__v") and c not in hidden]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in shown)
    columns = []
    for c in shown:
        texts = [html.escape(str(v)) for v in frame[c].tolist()]
        if links and c in links:
            texts = [
                f'<a href="{html.escape(str(link))}">{t}</a>'
                for t, link in zip(texts, frame[links[c]].tolist())
            ]
        if c in numeric:
            values = frame[c + "__v"].tolist() if c + "__v" in frame.columns else [""] * len(frame)
            columns.append([f'<td class="n" data-v="{v}">{t}</td>' for t, v in zip(texts, values)])
        else:
            cell = '<td class="id">' if c in ids else '<td class="wide">' if c in wide else "<td>"
            columns.append([f"{cell}{t}</td>" for t in texts])
    rows = "".join("<tr>" + "".join(cells) + "</tr>" for cells in zip(*columns))
    return f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def svg_extract(
    layers: list[tuple[gpd.GeoSeries, str, str, float]], *, width: int = 720, height: int = 480
) -> str:
    """An inline SVG map of projected geometries: ``(geoms, fill, stroke, fill_opacity)`` per layer,
    drawn in order, fitted to the first layer's extent with a margin. Coordinates are tenths of a
    pixel (integers; the view box is ten times the displayed size).
    """
    minx, miny, maxx, maxy = layers[0][0].total_bounds
    pad = 0.15 * max(maxx - minx, maxy - miny, 1.0)
    minx, miny, maxx, maxy = minx - pad, miny - pad, maxx + pad, maxy + pad
    scale = min(width / (maxx - minx), height / (maxy - miny))
    paths = []
    for geoms, fill, stroke, opacity in layers:
        geoms = np.asarray(geoms, dtype=object)
        geoms = geoms[~pd.isna(geoms)]
        geoms = geoms[~shapely.is_empty(geoms)]
        if len(geoms) == 0:
            continue
        parts, index = shapely.get_parts(geoms, return_index=True)
        _kind, xy, (ring_off, poly_off, geom_off) = shapely.to_ragged_array(
            shapely.multipolygons(parts, indices=index)
        )
        pixels = np.round(
            np.column_stack([(xy[:, 0] - minx) * scale * 10, (maxy - xy[:, 1]) * scale * 10])
        )
        numbers = pixels.astype(np.int64).astype(str)
        tokens = np.char.add(np.char.add(numbers[:, 0], " "), numbers[:, 1]).tolist()
        rings = [
            "M" + " ".join(tokens[ring_off[r] : ring_off[r + 1] - 1]) + "Z"
            for r in range(len(ring_off) - 1)
        ]
        for g in range(len(geom_off) - 1):
            first, last = poly_off[geom_off[g]], poly_off[geom_off[g + 1]]
            paths.append(
                f'<path d="{"".join(rings[first:last])}" fill="{fill}" fill-opacity="{opacity}" '
                f'stroke="{stroke}" stroke-width="8" fill-rule="evenodd"/>'
            )
    w, h = (maxx - minx) * scale, (maxy - miny) * scale
    return (
        '<svg class="figure" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {w * 10:.0f} {h * 10:.0f}" '
        f'width="{w:.0f}" height="{h:.0f}" role="img" aria-label="Extrait de carte">'
        f"{''.join(paths)}</svg>"
    )


def recommended_action(zone: pd.Series, proposals: pd.DataFrame, flagged: pd.DataFrame) -> str:
    """The action a task force should take for a white zone (French)."""
    cand = proposals[proposals["type_territoire"] == "candidate"]
    ext = proposals[proposals["type_territoire"] == "extension"]
    parts = []
    if len(cand):
        total = int(cand["enveloppe_eur"].sum())
        parts.append(
            f"Accompagner la création de {len(cand)} CPTS sur les territoires candidats ci-dessous "
            f"(enveloppe ACI annuelle maximale cumulée : {euros(total)}, "
            "hors supplément soins non programmés)."
        )
    for row in ext.itertuples():
        parts.append(
            f"Proposer à « {row.cpts_nom} » d'étendre son territoire à cette zone "
            f"(population résultante {people(row.population)} habitants, palier {row.palier}, "
            f"enveloppe maximale {euros(row.enveloppe_eur)})."
        )
    if len(flagged):
        parts.append(
            "Zone sous le seuil sans rattachement possible : "
            + flagged["signalement"].iloc[0]
            + ". Étudier au cas par cas un rattachement ou une CPTS inter-départementale."
        )
    return " ".join(parts) or "Aucune action proposée."


def action_summary(proposals: pd.DataFrame, flagged: pd.DataFrame) -> str:
    """The recommended action in a few words, for the index (French): what
    :func:`recommended_action` details on the zone's page.

    Parameters
    ----------
    proposals : DataFrame
        The zone's proposed territories (``type_territoire``, ``cpts_nom``, ``palier``,
        ``enveloppe_eur``).
    flagged : DataFrame
        The zone's communes below the floor with no territory.

    Returns
    -------
    str
    """
    cand = proposals[proposals["type_territoire"] == "candidate"]
    ext = proposals[proposals["type_territoire"] == "extension"]
    parts = []
    if len(cand):
        parts.append(
            f"Créer {len(cand)} CPTS ({euros(int(cand['enveloppe_eur'].sum()))} par an au plus)"
        )
    parts += [f"Étendre « {row.cpts_nom} » ({row.palier})" for row in ext.itertuples()]
    if len(flagged):
        parts.append("Étudier un rattachement (sous le seuil)")
    return " ; ".join(parts) or "Aucune action proposée"


def zone_tables(
    zone: pd.Series,
    coverage: gpd.GeoDataFrame,
    territories: gpd.GeoDataFrame,
    assignment: pd.DataFrame,
    cpts: gpd.GeoDataFrame,
    indicator: pd.Series,
    indicator_label: str,
):
    """The three tables of a zone's report as data: communes, bordering CPTS, proposals.

    ``assignment``: the territory members, one row per commune, indexed by ``code_commune``.
    """
    inside = coverage["id_zone_blanche"] == zone["id_zone_blanche"]
    communes = coverage.loc[
        inside, ["code_commune", "nom", "code_departement", "population"]
    ].copy()
    communes[indicator_label] = indicator[inside].round(1).to_numpy()
    communes["territoire_propose"] = (
        communes["code_commune"].map(assignment["id_territoire"]).replace("", np.nan)
    )
    communes["signalement"] = communes["code_commune"].map(assignment["signalement"]).fillna("")
    bordering_ids = [c for c in str(zone["cpts_limitrophes"]).split(";") if c]
    bordering = cpts[cpts["cpts_id"].isin(bordering_ids)][
        ["cpts_id", "cpts_nom", "population", "palier", "enveloppe_eur"]
    ]
    proposals = territories[
        (territories["id_zone_blanche"] == zone["id_zone_blanche"])
        & (territories["type_territoire"] != "cpts_existante")
    ]
    proposals = proposals.merge(cpts[["cpts_id", "cpts_nom"]], on="cpts_id", how="left")
    return communes, bordering, proposals


# The labels people read in the report tables (CSV, XLSX), with units; the data tables in
# data/processed keep the column codes (see "Column names" in the README).
COLUMN_LABELS = {
    "zone_blanche": "Zone blanche",
    "code_commune": "Code commune (INSEE)",
    "nom": "Nom",
    "code_departement": "Département",
    "population": "Population (hab.)",
    "densite_hab_km2": "Densité (hab./km²)",
    "e2sfca_mg_10k": "Accessibilité E2SFCA aux médecins généralistes (pour 10 000 hab.)",
    "apl_mg": "APL aux médecins généralistes (consultations/an/hab.)",
    "sous_dotee": "Sous-dotée (APL < seuil)",
    "territoire_propose": "Territoire proposé",
    "palier_aci": "Palier ACI",
    "palier": "Palier ACI",
    "enveloppe_eur": "Enveloppe annuelle max. (€)",
    "supplement_snp_eur": "Supplément soins non programmés max. (€)",
    "signalement": "Signalement",
    "cpts_id": "Identifiant CPTS",
    "cpts_nom": "CPTS",
    "id_territoire": "Territoire",
    "type_territoire": "Type",
    "dans_les_bornes": "Population dans les bornes",
    "motif": "Remarque",
    "compacite": "Compacité (Polsby-Popper, 1 = disque)",
    "plus_grande_distance_km": "Plus grande distance interne (km)",
    "pole": "Pôle (commune la plus peuplée)",
    "epci_entiers": "EPCI pris en entier",
    "epci_partiels": "EPCI pris en partie",
    "commune_la_plus_eloignee": "Commune la plus éloignée du pôle",
    "distance_pole_km": "Distance de cette commune au pôle (km)",
    "taille_visee": "Taille visée (hab.)",
    "rapport_taille_visee": "Population / taille visée",
    "reference": "Référence principale de la taille visée",
    "composition_taille_visee": "Taille visée combinant les références de ses communes",
    "part_75p": "Part des 75 ans et plus (%)",
    "zonage": "Zonage médecin",
    "n_msp": "Maisons de santé (nombre, FINESS)",
    "n_centre_sante": "Centres de santé (nombre, FINESS)",
    "n_pharmacie": "Pharmacies (nombre, FINESS)",
    "indicateur": "Code de l'indicateur",
    "libelle": "Indicateur",
    "valeur": "Valeur",
    "departement": "Département",
    "region": "Région",
    "france": "France",
    "critere": "Code du critère",
    "note": "Note (0 à 1)",
    "poids": "Poids",
}
VALUE_LABELS = {
    "type_territoire": {
        "candidate": "candidat",
        "extension": "extension de CPTS",
        "cpts_existante": "CPTS existante",
    },
    "dans_les_bornes": {True: "oui", False: "non"},
    "sous_dotee": {True: "oui", False: "non"},
    "zonage": {z.value: label for z, label in ZONAGE_FR.items()},
}


def column_label(name: str) -> str:
    """The French label, with its unit, of a column code (the code itself when it has none)."""
    for prefix, template in (("n_", "{} (nombre)"), ("densite_", "{} pour 10 000 hab.")):
        code = name[len(prefix) :].removesuffix("_10k")
        if name.startswith(prefix) and code in PROFESSIONS_FR:
            return template.format(PROFESSIONS_FR[code])
    return COLUMN_LABELS.get(name, name)


def for_people(frame: pd.DataFrame) -> pd.DataFrame:
    """A table as people read it: French labels with units as headers, codes turned into words."""
    out = frame.copy()
    for column, words in VALUE_LABELS.items():
        if column in out:
            out[column] = out[column].map(lambda v, w=words: w.get(v, v) if pd.notna(v) else v)
    return out.rename(columns={c: column_label(c) for c in out.columns})
