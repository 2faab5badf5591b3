"""Reading CPTS perimeter files as people have them: tables (CSV/XLSX) and polygons.

* a table (``.csv``/``.xlsx``): CPTS id, name, commune INSEE code, optionally a signature date and a
  status. CSV files may be UTF-8 or latin-1 and use ``,``, ``;``, tab or ``|``; codes that lost
  their leading zero in a spreadsheet (``1001``) are padded;
* polygons (``.gpkg``/``.geojson``/``.shp``): a commune belongs to a CPTS when at least
  ``min_area_share`` of its area lies inside the polygon.

The columns of the membership and issue tables are defined here; :mod:`.perimeters` resolves the
rows read to units of coverage and checks them.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..errors import PipelineError
from ..geo import by_zone, polygonal
from ..sources.names import plain_key
from ..sources.rawdata import (
    describe_row,
    excel_date,
    find_header,
    read_text_rows,
    read_vector,
    read_workbook_rows,
    refuse_ragged_rows,
    rows_to_frame,
)

# Header aliases, compared once normalised by :func:`_key` (case, accents, spaces, punctuation).
ALIASES = {
    "cpts_id": (
        "cpts_id",
        "id_cpts",
        "identifiant_cpts",
        "identifiant_de_la_cpts",
        "code_cpts",
        "numero_cpts",
        "identifiant",
        "id",
    ),
    "cpts_nom": (
        "cpts_nom",
        "nom_cpts",
        "nom_de_la_cpts",
        "libelle_cpts",
        "denomination_cpts",
        "cpts",
        "nom",
        "name",
        "libelle",
    ),
    "code_commune": (
        "code_commune",
        "code_insee",
        "code_commune_insee",
        "code_insee_commune",
        "insee",
        "code_insee_de_la_commune",
        "n_insee",
        "numero_insee",
        "codgeo",
        "code_geographique",
        "com",
        "depcom",
    ),
    "date_signature": ("date_signature", "date_de_signature", "signature", "date"),
    "statut": ("statut", "status", "etat"),
    "nom_commune": (
        "nom_commune",
        "commune",
        "libelle_commune",
        "libelle_de_la_commune",
        "nom_de_la_commune",
        "ville",
        "libgeo",
    ),
    "departement": ("departement", "departements", "code_departement", "dep", "dept"),
    "partie": ("partie", "partie_de_commune", "quartier", "partiel"),
    "code_iris": ("code_iris", "codes_iris", "iris"),
}
MEMBERS = [
    "cpts_id",
    "cpts_nom",
    "code_commune",
    "date_signature",
    "statut",
    "source_feuille",
    "source_ligne",
    "correspondance",
    "partiel",
    "code_iris",
    "population_partielle",
]
OUTSIDE = ["cpts_id", "cpts_nom", "code_commune", "population", "source_feuille", "source_ligne"]
NAMES = [
    "source_feuille",
    "source_ligne",
    "cpts_id",
    "nom_publie",
    "departements",
    "code_commune",
    "correspondance",
    "candidats",
]
# An issue row: its level, its code (what the logic reads: :data:`ISSUE_CODES`), where it is in
# the file, the code or name as published, and the French message people read.
ISSUES = ["niveau", "code", "cpts_id", "source_feuille", "source_ligne", "code_publie", "message"]
LEVELS = ("erreur", "avertissement", "info")
# Every issue code, with what it means (the README lists them for people reading the file).
ISSUE_CODES = {
    "feuille_ignoree": "a workbook sheet without a perimeter header",
    "entete_decale": "title rows above the header",
    "id_depuis_nom": "no CPTS id column: ids derived from the names",
    "ligne_incomplete": "a row without CPTS or commune",
    "code_inconnu": "a commune code no source knows",
    "nom_ambigu": "a commune name shared by several communes",
    "nom_inconnu": "a name that is no commune of the départements given",
    "ancienne_commune": "a former commune no source maps to a current one",
    "code_contredit_nom": "a code that is another commune than the name on its row",
    "code_converti": "a code of an older vintage mapped to the current commune",
    "partie_de_commune": "a part of a commune (IRIS or quartier)",
    "iris_inconnu": "IRIS codes missing from the IRIS population file",
    "noms_multiples": "one CPTS id with several names",
    "doublon": "a commune listed twice for a CPTS",
    "arrondissement_ailleurs": "a whole commune whose arrondissement another CPTS lists",
    "hors_champ": "units of a CPTS outside the scope",
    "sans_commune": "CPTS with no commune of the scope",
    "plusieurs_departements": "CPTS across départements",
    "morceaux": "a CPTS in separate pieces",
    "noms_proches": "CPTS names equal but for case, accents or articles",
    "communes_non_citees": "units of a département no row mentions",
    "geometrie_vide": "a perimeter feature without geometry",
    "pas_un_polygone": "a perimeter feature that is no polygon",
    "polygones_gardes": "a geometry collection whose polygons are kept, its points and lines not",
    "feuille_masquee": "a hidden workbook sheet, skipped",
    "cellules_fusionnees": "merged cells filled down with their first value",
    "iris_mal_forme": "an IRIS code that is not the commune's code and 4 digits",
    "polygone_invalide": "an invalid perimeter polygon, repaired",
    "polygone_sans_commune": "a perimeter polygon covering no commune of the scope",
}


def header_mapping(fields: list[str]) -> dict[str, str]:
    """The file's header → canonical column, for the headers that have an alias (first one wins)."""
    keys: dict[str, str] = {}
    for field in fields:
        keys.setdefault(plain_key(field), field)
    mapping = {}
    for canonical, aliases in ALIASES.items():
        found = next((keys[a] for a in aliases if a in keys and keys[a] not in mapping), None)
        if found is not None:
            mapping[found] = canonical
    return mapping


def _is_header(fields: list[str]) -> bool:
    found = set(header_mapping(fields).values())
    return bool(found & {"cpts_id", "cpts_nom"}) and bool(found & {"code_commune", "nom_commune"})


def _rename(frame: pd.DataFrame, path: Path, *, required=("cpts_id", "cpts_nom")) -> pd.DataFrame:
    """Map the headers of a polygon layer's attributes to the canonical names; missing required
    columns raise one error.
    """
    mapping = header_mapping(list(map(str, frame.columns)))
    missing = [c for c in required if c not in mapping.values()]
    if missing:
        raise PipelineError(
            f"{path}: missing column(s) {', '.join(missing)} (found: "
            f"{', '.join(map(str, frame.columns))}); name them e.g. "
            f"{', '.join(ALIASES[c][0] for c in missing)}"
        )
    return frame.rename(columns=mapping)[[c for c in ALIASES if c in mapping.values()]]


def name_id(name: str) -> str:
    """A stable CPTS id derived from its name, for tables without an id column
    ("CPTS du Gapençais" → ``cpts-du-gapencais``).
    """
    return plain_key(name).replace("_", "-")


def _sheets(path: Path, notes: list) -> tuple[list[tuple[str, list]], str]:
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        book = read_workbook_rows(
            path, what="perimeter file", setting="[perimeters] file", notes=notes
        )
        return book, "xlsx"
    rows, how = read_text_rows(path, what="perimeter file", setting="[perimeters] file")
    return [("", rows)], how


def read_perimeter_table(path: str | Path) -> tuple[pd.DataFrame, str, list[tuple]]:
    """Read a CSV/XLSX perimeter table as people publish it.

    The header is found below title rows (the first row naming a CPTS column and a commune
    column); every sheet of a workbook with such a header is read and the sheets concatenated
    (sheets without one, e.g. "Lisez-moi", are skipped and said so); a row longer than its header
    is refused with its line number, never shifted; without an id column, the CPTS name is the key.

    Returns
    -------
    table : DataFrame
        ``cpts_id, cpts_nom, code_publie, nom_commune, departement, date_signature, statut, partie,
        code_iris, source_feuille, source_ligne`` (strings, except the line number).
    how : str
        How the file was read (encoding and separator, sheets), for the report.
    notes : list of tuple
        Issue rows (:data:`ISSUES`) about the reading itself (skipped sheets, derived ids).

    Raises
    ------
    PipelineError
        No header found, ragged rows (all listed at once), or no data row.
    """
    path = Path(path)
    read: list[tuple[str, str, str]] = []  # what reading the workbook did (merged, hidden)
    sheets, how = _sheets(path, read)
    frames, problems, used = [], [], []
    notes = [issue("info", code, message, sheet=sheet) for sheet, code, message in read]
    for sheet, rows in sheets:
        where = location(path.name, sheet, "")
        header = find_header(rows, _is_header)
        if header is None:
            if rows and len(sheets) > 1:
                notes.append(
                    issue(
                        "info",
                        "feuille_ignoree",
                        f"{where} : pas d'en-tête de périmètre (une colonne CPTS et une colonne "
                        "commune) dans ses 30 premières lignes ; feuille ignorée",
                        sheet=sheet,
                    )
                )
            continue
        frame, ragged = rows_to_frame(rows, header, where=where)
        problems += ragged
        if header:
            notes.append(
                issue(
                    "info",
                    "entete_decale",
                    f"{where} : en-tête trouvé ligne {rows[header][0]} ; "
                    f"{header} ligne(s) de titre au-dessus ignorée(s)",
                    sheet=sheet,
                    line=rows[header][0],
                )
            )
        mapping = header_mapping([c for c in frame.columns if c != "source_ligne"])
        frame = frame.rename(columns=mapping)[
            ["source_ligne"] + [c for c in ALIASES if c in mapping.values()]
        ]
        frames.append(frame.assign(source_feuille=sheet))
        used.append(sheet)
    if not frames:
        first = next((fields for _, rows in sheets for _, fields in rows[:1]), [])
        raise PipelineError(
            f"{path}: no header row naming a CPTS column (cpts_id, CPTS, Nom de la CPTS…) and a "
            "commune column (code_insee, Code commune INSEE, commune, Libellé commune…) in the "
            f"first 30 rows (first row, {describe_row(first)}); add or rename the header"
        )
    refuse_ragged_rows(path, problems)
    table = pd.concat(frames, ignore_index=True)
    for column in (
        "cpts_id",
        "cpts_nom",
        "code_commune",
        "nom_commune",
        "departement",
        "date_signature",
        "statut",
        "partie",
        "code_iris",
    ):
        table[column] = table[column].fillna("").astype(str).str.strip() if column in table else ""
    table["date_signature"] = table["date_signature"].map(excel_date)  # a day number of Excel
    if table.empty:
        raise PipelineError(f"{path}: has a header but no rows; export the perimeter table again")
    if not table["cpts_id"].str.len().any():
        table["cpts_id"] = table["cpts_nom"].map(name_id)
        notes.append(
            issue(
                "info",
                "id_depuis_nom",
                f"{path.name} : pas de colonne d'identifiant CPTS ; chaque CPTS est identifiée "
                "par son nom (identifiant tiré du nom, p. ex. « CPTS du Gapençais » → "
                "cpts-du-gapencais)",
            )
        )
    elif not table["cpts_nom"].str.len().any():
        table["cpts_nom"] = table["cpts_id"]
    if len(used) > 1:
        how += f", {len(used)} sheets ({', '.join(used)})"
    table = table.rename(columns={"code_commune": "code_publie"})
    return table, how, notes


def location(source: str, sheet: str, line) -> str:
    """Where a row is, in French: the file, its sheet and its line (« p.xlsx, feuille « 13 »,
    ligne 4 »).

    Parameters
    ----------
    source : str
        The file name.
    sheet : str
        The sheet name (``""`` for a CSV).
    line : int or str
        The line number (``""`` when the issue is about the whole file or sheet).

    Returns
    -------
    str
    """
    return (
        f"{source}"
        + (f", feuille « {sheet} »" if sheet else "")
        + (f", ligne {line}" if line != "" else "")
    )


def issue(
    level: str,
    code: str,
    message: str,
    *,
    cpts_id: str = "",
    sheet: str = "",
    line="",
    published: str = "",
) -> tuple:
    """An issue row (:data:`ISSUES`).

    Parameters
    ----------
    level : str
        One of :data:`LEVELS`.
    code : str
        One of :data:`ISSUE_CODES`: what any logic reads (never the message).
    message : str
        What people read, in French.
    cpts_id, sheet, line, published : str
        The CPTS, the sheet and line of the row, and the code or name as the file publishes it
        (empty for an issue about a whole CPTS or file).

    Returns
    -------
    tuple
    """
    assert level in LEVELS and code in ISSUE_CODES, (level, code)
    return (level, code, cpts_id, sheet, line, published, message)


def cpts_issue(level: str, code: str, cpts_id: str, message: str) -> tuple:
    """An issue row (:data:`ISSUES`) about a whole CPTS or file: no sheet, line or code.

    Parameters
    ----------
    level, code, message : str
        As in :func:`issue`.
    cpts_id : str
        The CPTS (``;``-joined when the issue names several).

    Returns
    -------
    tuple
    """
    return issue(level, code, message, cpts_id=cpts_id)


def read_perimeter_polygons(
    path: str | Path, communes: gpd.GeoDataFrame, *, min_area_share: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Turn CPTS polygons into a membership table by area share.

    Raises
    ------
    PipelineError
        Unreadable file, missing id/name columns, no CRS, coordinates out of range for the declared
        CRS (metres declared as degrees), no polygon in the layer (points or lines).
    """
    path = Path(path)
    polygons = read_vector(
        path,
        what="CPTS perimeter",
        setting="[perimeters] file",
        fix="export it again as GeoPackage",
        polygons=True,
    )
    attrs = _rename(
        pd.DataFrame(polygons.drop(columns="geometry")), path, required=("cpts_id", "cpts_nom")
    )
    polygons = gpd.GeoDataFrame(
        attrs.astype(str), geometry=polygons.geometry.to_numpy(), crs=polygons.crs
    )
    issues = []
    geoms = polygons.geometry.to_numpy()

    def feature(level: str, code: str, k: int, text: str) -> None:
        issues.append(
            issue(
                level,
                code,
                f"{path.name}, objet {k + 1} : {text}",
                cpts_id=polygons["cpts_id"].iloc[k],
                line=k + 1,
            )
        )

    for k in np.flatnonzero(pd.isna(geoms) | shapely.is_empty(geoms)):
        feature(
            "erreur",
            "geometrie_vide",
            k,
            "géométrie vide ; dessiner le périmètre ou supprimer l'objet",
        )
    present = ~pd.isna(geoms) & ~shapely.is_empty(geoms)
    lines = np.flatnonzero(present & ~np.isin(shapely.get_type_id(geoms), [3, 6]))
    kinds = [geoms[k].geom_type for k in lines]
    geoms[lines] = polygonal(geoms[lines])  # a collection keeps its polygons; points, lines: none
    for k, kind in zip(lines, kinds):
        kept = geoms[k] is not None
        feature(
            "avertissement" if kept else "erreur",
            "polygones_gardes" if kept else "pas_un_polygone",
            k,
            f"un objet {kind}"
            + (
                " : ses polygones sont gardés, ses points et lignes laissés de côté"
                if kept
                else ", pas un polygone ; dessiner le périmètre comme une surface ou supprimer "
                "l'objet"
            ),
        )
    bad = ~pd.isna(geoms) & ~shapely.is_valid(geoms)
    for k in np.flatnonzero(bad):
        feature(
            "avertissement",
            "polygone_invalide",
            k,
            f"polygone invalide ({shapely.is_valid_reason(geoms[k])}) ; réparé (make_valid)",
        )
    geoms[bad] = shapely.make_valid(geoms[bad])
    polygons = polygons.set_geometry(geoms)[~(pd.isna(geoms) | shapely.is_empty(geoms))]
    polygons["source_ligne"] = polygons.index + 1
    rows = []
    for epsg, part in by_zone(communes):
        part = part[part.geometry.notna()]
        local = polygons.to_crs(epsg)
        c_geoms, p_geoms = part.geometry.to_numpy(), local.geometry.to_numpy()
        ci, pi = shapely.STRtree(p_geoms).query(c_geoms, predicate="intersects")
        share = shapely.area(shapely.intersection(c_geoms[ci], p_geoms[pi])) / shapely.area(
            c_geoms[ci]
        )
        keep = share >= min_area_share
        for c, p, s in zip(ci[keep], pi[keep], share[keep]):
            poly = local.iloc[p]
            rows.append(
                (
                    poly["cpts_id"],
                    poly["cpts_nom"],
                    part["code_commune"].iloc[c],
                    poly.get("date_signature", ""),
                    poly.get("statut", ""),
                    "",
                    int(poly["source_ligne"]),
                    f"polygone, {s:.0%} de la surface",
                    False,
                    "",
                    np.nan,
                )
            )
    members = pd.DataFrame(rows, columns=MEMBERS).sort_values(
        ["cpts_id", "code_commune"], kind="stable"
    )
    members = members.drop_duplicates(["cpts_id", "code_commune"]).reset_index(drop=True)
    for rec in polygons.itertuples():
        if rec.cpts_id not in set(members["cpts_id"]):
            issues.append(
                issue(
                    "avertissement",
                    "polygone_sans_commune",
                    f"{path.name}, objet {rec.source_ligne} : ne couvre aucune commune du "
                    f"périmètre du diagnostic à {min_area_share:.0%} de sa surface".replace(
                        "%", " %"
                    ),
                    cpts_id=rec.cpts_id,
                    line=rec.source_ligne,
                )
            )
    return members.fillna({"date_signature": "", "statut": ""}), pd.DataFrame(
        issues, columns=ISSUES
    )
