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
from ..geo import by_zone
from ..sources.names import plain_key
from ..sources.rawdata import (
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
ISSUES = ["niveau", "cpts_id", "source_feuille", "source_ligne", "code_publie", "message"]
LEVELS = ("erreur", "avertissement", "info")


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


def _sheets(path: Path) -> tuple[list[tuple[str, list]], str]:
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return read_workbook_rows(path, what="perimeter file", setting="[perimeters] file"), "xlsx"
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
    sheets, how = _sheets(path)
    frames, notes, problems, used = [], [], [], []
    for sheet, rows in sheets:
        where = f"{path.name}" + (f" sheet {sheet!r}" if sheet else "")
        header = find_header(rows, _is_header)
        if header is None:
            if rows and len(sheets) > 1:
                notes.append(
                    (
                        "info",
                        "",
                        sheet,
                        "",
                        "",
                        f"{where}: no perimeter header (a CPTS column and a commune "
                        "column) in its first 30 rows; sheet skipped",
                    )
                )
            continue
        frame, ragged = rows_to_frame(rows, header, where=where)
        problems += ragged
        if header:
            notes.append(
                (
                    "info",
                    "",
                    sheet,
                    rows[header][0],
                    "",
                    f"{where}: header found on line {rows[header][0]}; "
                    f"{header} title row(s) above it skipped",
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
            f"first 30 rows (first row: {', '.join(first[:8]) or 'empty'}); add or rename the "
            "header"
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
    if table.empty:
        raise PipelineError(f"{path}: has a header but no rows; export the perimeter table again")
    if not table["cpts_id"].str.len().any():
        table["cpts_id"] = table["cpts_nom"].map(name_id)
        notes.append(
            cpts_issue(
                "info",
                "",
                f"{path.name}: no CPTS id column; each CPTS is identified by its "
                "name (id derived from the name, e.g. 'CPTS du Gapençais' → cpts-du-gapencais)",
            )
        )
    elif not table["cpts_nom"].str.len().any():
        table["cpts_nom"] = table["cpts_id"]
    if len(used) > 1:
        how += f", {len(used)} sheets ({', '.join(used)})"
    table = table.rename(columns={"code_commune": "code_publie"})
    return table, how, notes


def location(source: str, sheet: str, line) -> str:
    return (
        f"{source}"
        + (f" sheet {sheet!r}" if sheet else "")
        + (f" line {line}" if line != "" else "")
    )


def cpts_issue(level: str, cpts_id: str, message: str) -> tuple:
    """An issue row (:data:`ISSUES`) about a whole CPTS or file: no sheet, line or code."""
    return (level, cpts_id, "", "", "", message)


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
    for k in np.flatnonzero(pd.isna(geoms) | shapely.is_empty(geoms)):
        issues.append(
            (
                "erreur",
                polygons["cpts_id"].iloc[k],
                "",
                k + 1,
                "",
                f"{path.name} feature {k + 1}: empty geometry; draw the perimeter or delete the "
                "feature",
            )
        )
    lines = np.flatnonzero(
        ~pd.isna(geoms) & ~shapely.is_empty(geoms) & ~np.isin(shapely.get_type_id(geoms), [3, 6, 7])
    )  # not (multi)polygon/collection
    for k in lines:
        issues.append(
            (
                "erreur",
                polygons["cpts_id"].iloc[k],
                k + 1,
                "",
                f"{path.name} feature {k + 1}: a {geoms[k].geom_type}, not a polygon; draw the "
                "perimeter as an area or delete the feature",
            )
        )
    geoms[lines] = None
    bad = ~pd.isna(geoms) & ~shapely.is_valid(geoms)
    for k in np.flatnonzero(bad):
        issues.append(
            (
                "avertissement",
                polygons["cpts_id"].iloc[k],
                "",
                k + 1,
                "",
                f"{path.name} feature {k + 1}: invalid polygon "
                f"({shapely.is_valid_reason(geoms[k])}); repaired with make_valid",
            )
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
                (
                    "avertissement",
                    rec.cpts_id,
                    "",
                    rec.source_ligne,
                    "",
                    f"{path.name} feature {rec.source_ligne}: covers no commune of the scope at "
                    f"{min_area_share:.0%} of its area",
                )
            )
    return members.fillna({"date_signature": "", "statut": ""}), pd.DataFrame(
        issues, columns=ISSUES
    )
