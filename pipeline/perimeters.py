"""Stage ``perimeters``: existing CPTS perimeters as a membership table (CPTS × commune).

Perimeters come as people have them:

* a table (``.csv``/``.xlsx``): CPTS id, name, commune INSEE code, optionally a signature date and a
  status. CSV files may be UTF-8 or latin-1 and use ``,``, ``;``, tab or ``|``; codes that lost their
  leading zero in a spreadsheet (``1001``) are padded;
* polygons (``.gpkg``/``.geojson``/``.shp``): a commune belongs to a CPTS when at least
  ``min_area_share`` of its area lies inside the polygon.

Codes of an older COG vintage (communes since merged, arrondissements municipaux) are mapped to the
current commune through the parent links of the raw data; codes that cannot be mapped, rows without
a code, duplicates and codes outside the scope are reported in ``perimeter_issues.csv``, never
dropped silently. Without a perimeter file the run builds EXAMPLE perimeters from real EPCIs.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import unicodedata
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .adjacency import Adjacency
from .errors import PipelineError
from .geo import by_zone
from .rawdata import read_text, read_vector

EXAMPLE_PREFIX = "EXEMPLE"
EXAMPLE_FILE = "exemple_perimetres_cpts.csv"

ALIASES = {
    "cpts_id": ("cpts_id", "id_cpts", "identifiant_cpts", "identifiant", "id"),
    "cpts_nom": ("cpts_nom", "nom_cpts", "nom", "name", "cpts", "libelle"),
    "code_commune": ("code_commune", "code_insee", "insee", "codgeo", "code_commune_insee", "com", "depcom"),
    "date_signature": ("date_signature", "signature", "date"),
    "statut": ("statut", "status", "etat"),
    "nom_commune": ("nom_commune", "commune", "libelle_commune", "ville", "nom_de_la_commune"),
    "departement": ("departement", "departements", "code_departement", "dep"),
    "partie": ("partie", "partie_de_commune", "quartier", "partiel"),
    "code_iris": ("code_iris", "codes_iris", "iris"),
}
REQUIRED = ("cpts_id", "cpts_nom")
MEMBERS = ["cpts_id", "cpts_nom", "code_commune", "date_signature", "statut", "source_ligne", "correspondance",
           "partiel", "code_iris", "population_partielle"]
NAMES = ["source_ligne", "cpts_id", "nom_publie", "departements", "code_commune", "correspondance", "candidats"]
ISSUES = ["niveau", "cpts_id", "source_ligne", "code_publie", "message"]


def _key(text: str) -> str:
    text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode().strip().lower()
    return "_".join(text.replace("'", " ").replace("-", " ").split())


def _rename(frame: pd.DataFrame, path: Path, *, required=REQUIRED) -> pd.DataFrame:
    """Map the file's headers to the canonical names; missing required columns raise one error."""
    keys = {_key(c): c for c in frame.columns}
    mapping = {}
    for canonical, aliases in ALIASES.items():
        found = next((keys[a] for a in aliases if a in keys), None)
        if found is not None:
            mapping[found] = canonical
    missing = [c for c in required if c not in mapping.values()]
    if missing:
        raise PipelineError(
            f"{path}: missing column(s) {', '.join(missing)} (found: {', '.join(map(str, frame.columns))}); "
            f"name them e.g. {', '.join(ALIASES[c][0] for c in missing)}")
    return frame.rename(columns=mapping)[[c for c in ALIASES if c in mapping.values()]]


def read_text_table(path: Path, *, what: str = "perimeter file",
                    setting: str = "[perimeters] file") -> tuple[pd.DataFrame, str]:
    """Read a delimited text file whatever its encoding (UTF-8, else latin-1) and delimiter."""
    text, encoding = read_text(path, what=what, setting=setting, again="export the file again")
    encoding = encoding.lower() if encoding == "UTF-8" else encoding
    first = text.splitlines()[0]
    try:
        delimiter = csv.Sniffer().sniff(first, delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = ","
    frame = pd.read_csv(io.StringIO(text), sep=delimiter, dtype=str, keep_default_na=False)
    return frame, f"{encoding}, separator {delimiter!r}"


def normalise_code(value: str) -> str:
    """INSEE code as published → 5 characters (``1001`` and ``1001.0`` → ``01001``, ``2a004`` → ``2A004``)."""
    text = str(value).strip().upper()
    if text.endswith(".0") and text[:-2].isdigit():
        text = text[:-2]
    return text.zfill(5) if text.isdigit() and len(text) == 4 else text


def read_perimeter_table(path: str | Path) -> tuple[pd.DataFrame, str]:
    """Read a CSV/XLSX perimeter table into canonical columns with the source line of each row.

    Returns
    -------
    table : DataFrame
        ``cpts_id, cpts_nom, code_publie, date_signature, statut, source_ligne`` (strings).
    how : str
        How the file was read (encoding and separator), for the report.
    """
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: perimeter file not found; fix [perimeters] file in pipeline.toml")
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        try:
            frame = pd.read_excel(path, dtype=str, keep_default_na=False)
        except Exception as exc:  # openpyxl raises many kinds
            raise PipelineError(f"{path}: not a readable xlsx workbook ({exc}); save it again as .xlsx") from exc
        how, first_line = "xlsx, first sheet", 2
    else:
        frame, how = read_text_table(path)
        first_line = 2
    frame = _rename(frame, path)
    if "code_commune" not in frame and "nom_commune" not in frame:
        raise PipelineError(f"{path}: needs a column of commune codes (code_commune, code_insee…) or of commune "
                            f"names (nom_commune, commune…); found: {', '.join(map(str, frame.columns))}")
    frame = frame.apply(lambda s: s.astype(str).str.strip())
    frame["source_ligne"] = np.arange(first_line, first_line + len(frame))
    frame = frame.rename(columns={"code_commune": "code_publie"})
    for optional in ("date_signature", "statut", "code_publie", "nom_commune", "departement", "partie", "code_iris"):
        if optional not in frame:
            frame[optional] = ""
    if frame.empty:
        raise PipelineError(f"{path}: has a header but no rows; export the perimeter table again")
    return frame, how


def code_lookup(raw_communes: pd.DataFrame) -> dict[str, tuple[str, str]]:
    """Every code of the raw data → (current commune code, how it maps).

    Current communes map to themselves; communes déléguées/associées (older codes of merged
    communes) and arrondissements municipaux map to their parent commune.
    """
    com = raw_communes[raw_communes["type"] == "COM"]
    lookup = {code: (code, "code actuel") for code in com["code"]}
    parent_code = dict(zip(com["id"], com["code"]))
    labels = {"COMD": "ancien code (commune déléguée)", "COMA": "ancien code (commune associée)",
              "ARM": "arrondissement municipal", "SRM": "secteur municipal"}
    others = raw_communes[raw_communes["type"].isin(labels) & raw_communes["commune_parent_id"].notna()]
    for code, kind, parent in sorted(zip(others["code"], others["type"], others["commune_parent_id"])):
        if code not in lookup and parent in parent_code:
            lookup[code] = (parent_code[parent], f"{labels[kind]} → {parent_code[parent]}")
    return lookup


def resolve_members(table: pd.DataFrame, *, lookup: dict[str, tuple[str, str]], scope_codes: set[str],
                    source: str, names=None, context: list[str] | None = None,
                    events: dict[str, tuple[list[str], str]] | None = None,
                    geography: dict[str, tuple[str, str]] | None = None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Map published codes or names to current communes of the scope.

    Parameters
    ----------
    table : DataFrame
        From :func:`read_perimeter_table`.
    lookup : dict
        Code → (current code, how): :func:`code_lookup`.
    scope_codes : set
        Current codes of the scope.
    source : str
        File name for the messages.
    names : NameIndex, optional
        Needed when rows give commune names.
    context : list of str
        Départements where names are looked up when a row gives none (default: the scope's).
    events : dict, optional
        Older code → (current codes, how) from INSEE's events file (:func:`pipeline.names.event_lookup`).
    geography : dict, optional
        Current code → (département, région), to report perimeters crossing borders.

    Returns
    -------
    members : DataFrame
        Columns :data:`MEMBERS`, one row per (CPTS, commune), sorted.
    issues : DataFrame
        Columns :data:`ISSUES`.
    resolved_names : DataFrame
        Columns :data:`NAMES`: each published name, the code found and how (for a person to check).
    """
    issues: list[tuple] = []
    rows, named = [], []
    for rec in table.itertuples(index=False):
        iris = ";".join(sorted(c.strip() for c in re.split(r"[;, ]+", rec.code_iris) if c.strip()))
        partial = bool(iris) or (bool(rec.partie) and rec.partie.lower() not in ("0", "non", "false", "no"))
        published = rec.code_publie or rec.nom_commune
        if not rec.cpts_id or not published:
            issues.append(("erreur", rec.cpts_id, rec.source_ligne, published,
                           f"{source} line {rec.source_ligne}: empty CPTS id or commune (code or name); fill it or delete the row"))
            continue
        targets: list[tuple[str, str]] = []
        if rec.code_publie:
            code = normalise_code(rec.code_publie)
            if code in lookup:
                targets = [lookup[code]]
            elif events and code in events:
                codes, how = events[code]
                targets = [(c, how) for c in codes]
            else:
                issues.append(("erreur", rec.cpts_id, rec.source_ligne, rec.code_publie,
                               f"{source} line {rec.source_ligne}: unknown commune code {code!r}; check it against the "
                               "current COG (a typo, or a code of another vintage: give INSEE's events file "
                               "as [perimeters] cog_events)"))
                continue
        else:
            if names is None:
                raise PipelineError(f"{source}: rows name communes but no name index was given")
            deps = [d.strip().upper() for d in re.split(r"[;,/ ]+", rec.departement) if d.strip()] or list(context or [])
            deps = [d.zfill(2) if d.isdigit() and len(d) == 1 else d for d in deps]
            found = names.resolve(rec.nom_commune, deps)
            named.append((rec.source_ligne, rec.cpts_id, rec.nom_commune, ";".join(deps), found.code, found.how,
                          " ; ".join(found.candidates)))
            if not found.ok:
                what = "is ambiguous: which one?" if found.how == "ambigu" else "is not a commune of"
                issues.append(("erreur", rec.cpts_id, rec.source_ligne, rec.nom_commune,
                               f"{source} line {rec.source_ligne}: name {rec.nom_commune!r} {what} "
                               f"{'' if found.how == 'ambigu' else 'département(s) ' + ', '.join(deps)}; "
                               f"candidates: {', '.join(found.candidates) or 'none'}; give the INSEE code or the "
                               "département to decide"))
                continue
            targets = [(found.code, found.how)]
        for current, how in targets:
            if current not in scope_codes:
                issues.append(("info", rec.cpts_id, rec.source_ligne, published,
                               f"{source} line {rec.source_ligne}: commune {current} is outside the scope; ignored"))
                continue
            if how not in ("code actuel", "nom de commune"):
                issues.append(("info", rec.cpts_id, rec.source_ligne, published,
                               f"{source} line {rec.source_ligne}: {published} is a {how}"))
            if partial:
                issues.append(("info", rec.cpts_id, rec.source_ligne, published,
                               f"{source} line {rec.source_ligne}: only part of commune {current} "
                               f"({rec.partie or 'IRIS ' + iris}); counted once, flagged 'partiel', its population "
                               "not counted twice"))
            rows.append((rec.cpts_id, rec.cpts_nom, current, rec.date_signature, rec.statut, rec.source_ligne, how,
                         partial, iris, np.nan))
    members = pd.DataFrame(rows, columns=MEMBERS)
    names_frame = members.groupby("cpts_id")["cpts_nom"].agg(lambda s: sorted(set(s)))
    for cpts_id, distinct in names_frame.items():
        if len(distinct) > 1:
            issues.append(("avertissement", cpts_id, "", "", f"{source}: CPTS {cpts_id} has several names "
                           f"{distinct}; the first line's name is used"))
    members["cpts_nom"] = members.groupby("cpts_id")["cpts_nom"].transform("first")
    # a commune listed twice for one CPTS counts once; whole beats partial
    members = members.sort_values(["cpts_id", "code_commune", "partiel", "source_ligne"], kind="stable")
    dup = members.duplicated(["cpts_id", "code_commune"], keep="first")
    for rec in members[dup].itertuples(index=False):
        issues.append(("info", rec.cpts_id, rec.source_ligne, rec.code_commune,
                       f"{source} line {rec.source_ligne}: commune {rec.code_commune} listed twice for CPTS "
                       f"{rec.cpts_id}; counted once"))
    members = members[~dup].reset_index(drop=True)
    if geography:
        for cpts_id, codes in members.groupby("cpts_id")["code_commune"]:
            deps = sorted({geography[c][0] for c in codes if c in geography})
            regions = sorted({geography[c][1] for c in codes if c in geography})
            if len(deps) > 1:
                issues.append(("info", cpts_id, "", "", f"{source}: CPTS {cpts_id} spans départements "
                               f"{', '.join(deps)}" + (f" and régions {', '.join(regions)}" if len(regions) > 1 else "")
                               + "; accepted"))
    return members, pd.DataFrame(issues, columns=ISSUES), pd.DataFrame(named, columns=NAMES)


def read_perimeter_polygons(path: str | Path, communes: gpd.GeoDataFrame, *,
                            min_area_share: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Turn CPTS polygons into a membership table by area share.

    Raises
    ------
    PipelineError
        Unreadable file, missing id/name columns, no CRS, coordinates out of range for the declared
        CRS (metres declared as degrees), no polygon in the layer (points or lines).
    """
    path = Path(path)
    polygons = read_vector(path, what="CPTS perimeter", setting="[perimeters] file",
                           fix="export it again as GeoPackage", polygons=True)
    attrs = _rename(pd.DataFrame(polygons.drop(columns="geometry")), path, required=("cpts_id", "cpts_nom"))
    polygons = gpd.GeoDataFrame(attrs.astype(str), geometry=polygons.geometry.to_numpy(), crs=polygons.crs)
    issues = []
    geoms = polygons.geometry.to_numpy()
    for k in np.flatnonzero(pd.isna(geoms) | shapely.is_empty(geoms)):
        issues.append(("erreur", polygons["cpts_id"].iloc[k], k + 1, "",
                       f"{path.name} feature {k + 1}: empty geometry; draw the perimeter or delete the feature"))
    lines = np.flatnonzero(~pd.isna(geoms) & ~shapely.is_empty(geoms)
                           & ~np.isin(shapely.get_type_id(geoms), [3, 6, 7]))  # not (multi)polygon/collection
    for k in lines:
        issues.append(("erreur", polygons["cpts_id"].iloc[k], k + 1, "",
                       f"{path.name} feature {k + 1}: a {geoms[k].geom_type}, not a polygon; draw the perimeter "
                       "as an area or delete the feature"))
    geoms[lines] = None
    bad = ~pd.isna(geoms) & ~shapely.is_valid(geoms)
    for k in np.flatnonzero(bad):
        issues.append(("avertissement", polygons["cpts_id"].iloc[k], k + 1, "",
                       f"{path.name} feature {k + 1}: invalid polygon ({shapely.is_valid_reason(geoms[k])}); "
                       "repaired with make_valid"))
    geoms[bad] = shapely.make_valid(geoms[bad])
    polygons = polygons.set_geometry(geoms)[~(pd.isna(geoms) | shapely.is_empty(geoms))]
    polygons["source_ligne"] = polygons.index + 1
    rows = []
    for epsg, part in by_zone(communes):
        part = part[part.geometry.notna()]
        local = polygons.to_crs(epsg)
        c_geoms, p_geoms = part.geometry.to_numpy(), local.geometry.to_numpy()
        ci, pi = shapely.STRtree(p_geoms).query(c_geoms, predicate="intersects")
        share = shapely.area(shapely.intersection(c_geoms[ci], p_geoms[pi])) / shapely.area(c_geoms[ci])
        keep = share >= min_area_share
        for c, p, s in zip(ci[keep], pi[keep], share[keep]):
            poly = local.iloc[p]
            rows.append((poly["cpts_id"], poly["cpts_nom"], part["code_commune"].iloc[c],
                         poly.get("date_signature", ""), poly.get("statut", ""), int(poly["source_ligne"]),
                         f"polygone, {s:.0%} de la surface", False, "", np.nan))
    members = pd.DataFrame(rows, columns=MEMBERS).sort_values(["cpts_id", "code_commune"], kind="stable")
    members = members.drop_duplicates(["cpts_id", "code_commune"]).reset_index(drop=True)
    for rec in polygons.itertuples():
        if rec.cpts_id not in set(members["cpts_id"]):
            issues.append(("avertissement", rec.cpts_id, rec.source_ligne, "",
                           f"{path.name} feature {rec.source_ligne}: covers no commune of the scope at "
                           f"{min_area_share:.0%} of its area"))
    return members.fillna({"date_signature": "", "statut": ""}), pd.DataFrame(issues, columns=ISSUES)


# --------------------------------------------------------------------------- example perimeters

def example_perimeters(communes: gpd.GeoDataFrame, adjacency: Adjacency, *, share: int = 75) -> pd.DataFrame:
    """EXAMPLE perimeters built from real EPCIs, deterministically — not real CPTS.

    About ``share`` % of the scope's EPCIs (chosen by a hash of their code, so the choice is stable)
    become one example CPTS each; the others are left as white zones. One deliberate overlap: the
    first pair of neighbouring example CPTS (by code) gets up to three border communes of the second
    added to the first.

    Returns
    -------
    DataFrame
        Perimeter table in the accepted layout: ``cpts_id, cpts_nom, code_commune``.
    """
    epci = communes[["code_epci", "nom_epci"]].dropna().drop_duplicates().sort_values("code_epci")
    chosen = [c for c in epci["code_epci"] if int(hashlib.sha256(c.encode()).hexdigest()[:8], 16) % 100 < share]
    names = dict(zip(epci["code_epci"], epci["nom_epci"]))
    rows = [(f"{EXAMPLE_PREFIX}-{code}", f"CPTS {EXAMPLE_PREFIX} – {names[code]}", commune)
            for code, commune in zip(communes["code_epci"], communes["code_commune"]) if code in chosen]
    epci_of = communes["code_epci"].to_numpy()
    codes = communes["code_commune"].to_numpy()
    chosen_set = set(chosen)
    pairs = sorted({(epci_of[a], epci_of[b], codes[b]) if epci_of[a] < epci_of[b] else (epci_of[b], epci_of[a], codes[a])
                    for a, b in zip(adjacency.i, adjacency.j)
                    if epci_of[a] != epci_of[b] and epci_of[a] in chosen_set and epci_of[b] in chosen_set})
    if pairs:
        first, second = pairs[0][:2]
        border = sorted({c for a, b, c in pairs if (a, b) == (first, second)})[:3]
        rows += [(f"{EXAMPLE_PREFIX}-{first}", f"CPTS {EXAMPLE_PREFIX} – {names[first]}", c) for c in border]
    return pd.DataFrame(sorted(rows), columns=["cpts_id", "cpts_nom", "code_commune"])


def iris_part_population(members: pd.DataFrame, communes: pd.DataFrame, iris_population: pd.DataFrame,
                         *, source: str) -> tuple[pd.DataFrame, list[tuple]]:
    """Population of the parts of communes given as IRIS codes: INSEE's IRIS populations of the
    commune apportioned to its population (largest remainder), summed over the listed IRIS."""
    from .iris import apportion

    members = members.copy()
    issues = []
    population = dict(zip(communes["code_commune"], communes["population"].fillna(0).astype(int)))
    for k in np.flatnonzero(members["code_iris"].astype(str).str.len().to_numpy() > 0):
        row = members.iloc[k]
        listed = row["code_iris"].split(";")
        of_commune = iris_population[iris_population["code_commune"] == row["code_commune"]].sort_values("code_iris")
        unknown = sorted(set(listed) - set(of_commune["code_iris"]))
        if unknown or of_commune.empty:
            issues.append(("erreur", row["cpts_id"], row["source_ligne"], row["code_iris"],
                           f"{source} line {row['source_ligne']}: IRIS {', '.join(unknown or listed)} not in the IRIS "
                           f"population file for commune {row['code_commune']}; counted as a part of commune"))
            continue
        shares = apportion(of_commune["population_iris"].to_numpy(), int(population[row["code_commune"]]))
        members.iloc[k, members.columns.get_loc("population_partielle")] = int(
            shares[of_commune["code_iris"].isin(listed).to_numpy()].sum())
    return members, issues
