"""What the export shows of the ``profile`` stage: the "Profil" and "Priorité" sections of a
white-zone page, the priority columns and the "Méthode" and FINESS sections of the index, the
profile sheets of the XLSX reports, the profile columns of the GeoPackage and the map's "Profil"
layer.

Reads the stage's outputs once (:class:`ProfileOutputs`); every missing value prints
*indisponible*, never 0, and a page says which files would complete it.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd

from ..analysis.indicators import indicator_text
from ..analysis.priority import CRITERIA, method_table
from ..analysis.profile import LEVELS, SOURCES_FR, comparison_table, label_fr
from ..io import read_csv
from ..sources.ald import LABEL_FR as ALD_LABEL
from ..sources.zonage import LABELS_FR as ZONAGE_FR
from ..sources.zonage import Zonage
from . import reports
from .palette import priority_colour

UNAVAILABLE = "indisponible"
# The ratios a zone page shows, in order (the others stay in the data tables).
SHOWN = [
    "part_0014",
    "part_1529",
    "part_3044",
    "part_4559",
    "part_6074",
    "part_75p",
    "part_zip",
    "part_zac",
    "msp_10k",
    "centres_sante_10k",
    "pharmacies_10k",
    "densite_medecin_generaliste_10k",
    "apl_mg",
    "part_sous_dotee",
]
# Profile columns added to the GeoPackage layers and the per-commune report tables.
GIS_RATIOS = [
    "part_75p",
    "part_zip",
    "part_zip_zac",
    "msp_10k",
    "centres_sante_10k",
    "pharmacies_10k",
]
COMMUNE_COLUMNS = ["part_75p", "zonage", "n_msp", "n_centre_sante", "n_pharmacie"]
LEVELS_FR = {"valeur": "Zone", "departement": "Département", "region": "Région", "france": "France"}


def number_text(value, decimals: int = 1) -> str:
    """A number in French display (space thousands, decimal comma), *indisponible* when NaN."""
    return indicator_text(value, decimals=decimals)


def zonage_text(code) -> str:
    """The French label of a zonage code, *indisponible* when missing."""
    return ZONAGE_FR[Zonage(code)] if isinstance(code, str) and code else UNAVAILABLE


@dataclass
class ProfileOutputs:
    """The ``profile`` stage's outputs, as the export reads them."""

    communes: pd.DataFrame  # profile_communes.parquet (one row per unit)
    territories: pd.DataFrame  # profile_territories.parquet
    priority: pd.DataFrame  # priority.csv, indexed by id_zone_blanche
    check: pd.DataFrame  # finess_cpts_check.csv
    summary: dict  # profile_summary.json
    # COMMUNE_COLUMNS by unit code (FINESS counts as whole numbers), built once, before the export's
    # workers fork, for every page
    by_code: pd.DataFrame = field(init=False, repr=False)

    def __post_init__(self) -> None:
        """Index the communes' profile columns by code, counts as nullable integers."""
        out = self.communes.set_index("code_commune")[COMMUNE_COLUMNS].copy()
        counts = ["n_msp", "n_centre_sante", "n_pharmacie"]
        out[counts] = out[counts].round().astype("Int64")
        self.by_code = out

    @classmethod
    def read(cls, paths: dict) -> ProfileOutputs:
        """Read the profile stage's outputs (``paths`` as :func:`pipeline.stages.profile_paths`)."""
        priority = pd.read_csv(
            paths["priority"], dtype={"id_zone_blanche": str, "criteres_absents": str}
        )
        priority["criteres_absents"] = priority["criteres_absents"].fillna("")
        return cls(
            pd.read_parquet(paths["communes"]),
            pd.read_parquet(paths["territories"]),
            priority.set_index("id_zone_blanche", drop=False),
            read_csv(paths["finess_check"]),
            json.loads(Path(paths["summary"]).read_text(encoding="utf-8")),
        )

    @cached_property
    def zones(self) -> pd.DataFrame:
        """The white zones' rows of ``territories``, indexed by zone id."""
        rows = self.territories[self.territories["type_territoire"] == "zone_blanche"]
        return rows.set_index("id_territoire")

    @cached_property
    def weights(self) -> dict:
        """The priority weights of the run, by criterion."""
        return dict(self.summary["poids_priorite"])

    @property
    def missing(self) -> list[str]:
        """French descriptions of the sources not given
        (:data:`pipeline.analysis.profile.SOURCES_FR`).
        """
        return [SOURCES_FR[k] for k in self.summary["sources_absentes"]]

    # ----------------------------------------------------------------- the index

    def index_columns(self, zone: str) -> dict:
        """The priority columns of a zone's row in the index (value and ``__v`` sort key)."""
        row = self.priority.loc[zone]
        out = {
            "Rang": str(int(row["rang"])),
            "Rang__v": int(row["rang"]),
            "Score de priorité": number_text(row["score"]),
            "Score de priorité__v": "" if pd.isna(row["score"]) else float(row["score"]),
        }
        for name, criterion in CRITERIA.items():
            if name == "population":  # the index has its population column
                continue
            out[criterion.label] = criterion_text(name, row[name])
            out[criterion.label + "__v"] = "" if pd.isna(row[name]) else float(row[name])
        return out

    def index_sections(self) -> str:
        """The "Méthode" section, the sources missing and the FINESS cross-check (HTML)."""
        method = method_table(self.weights)
        rows = pd.DataFrame(
            {
                "Critère": method["libelle"],
                "Poids": method["poids"].map(lambda v: number_text(v, 2)),
                "Part du poids (%)": method["part_du_poids"].map(number_text),
                "Sens": method["sens"],
                "Pourquoi": method["raison"],
            }
        )
        missing = self.missing
        absent = (
            "<p>Fichiers non fournis (leurs critères sont laissés de côté, jamais comptés comme "
            "zéro) : " + "; ".join(html.escape(m) for m in missing) + ".</p>"
            if missing
            else ""
        )
        check = self.check
        cross = (
            "<ul>" + "".join(f"<li>{html.escape(m)}</li>" for m in check["message"]) + "</ul>"
            if len(check)
            else f"<p>{html.escape(self.summary['verification_finess'])}.</p>"
        )
        return (
            "<h2>Méthode de la priorité</h2>"
            "<p>Chaque critère est ramené à une note entre 0 (la valeur la plus faible parmi les "
            "zones blanches de ce diagnostic) et 1 (la plus forte ; inversé quand une valeur plus "
            "basse est plus urgente). Le score est la moyenne des notes pondérée par les poids "
            "ci-dessous (réglables dans <code>pipeline.toml</code>, "
            "<code>[priority.weights]</code>), × 100, calculée sur les seuls critères connus pour "
            "la zone : un critère dont la donnée manque est laissé de côté et signalé, jamais "
            "compté comme zéro. Les scores sont "
            "relatifs aux zones blanches de ce diagnostic : ils changent avec le périmètre "
            "étudié.</p>"
            + reports.table(rows)
            + absent
            + "<h2>Vérification avec FINESS</h2>"
            + cross
        )

    # ----------------------------------------------------------------- a zone's page

    def zone_sections(self, zone: str, codes) -> str:
        """The "Priorité" and "Profil" sections of a white zone's page (HTML); ``codes``: its
        units.
        """
        row = self.priority.loc[zone]
        count = len(self.priority)
        criteria = pd.DataFrame(
            {
                "Critère": [c.label for c in CRITERIA.values()],
                "Valeur": [criterion_text(n, row[n]) for n in CRITERIA],
                "Note (0 à 1)": [
                    "—" if pd.isna(row[f"note_{n}"]) else number_text(row[f"note_{n}"], 2)
                    for n in CRITERIA
                ],
                "Poids": [number_text(self.weights[n], 2) for n in CRITERIA],
            }
        )
        absent = [CRITERIA[c].label for c in row["criteres_absents"].split(";") if c]
        absent_text = (
            "<p>Critères laissés de côté faute de données : "
            + html.escape(", ".join(absent))
            + ".</p>"
            if absent
            else ""
        )
        profile = self.zones.loc[zone]
        table = comparison_table(compared_part(profile))
        table = table[table["indicateur"].isin(SHOWN)]
        table = table.set_index("indicateur").loc[
            [n for n in SHOWN if n in set(table["indicateur"])]
        ]
        shown = pd.DataFrame(
            {
                "Indicateur": table["libelle"].to_numpy(),
                **{
                    LEVELS_FR[level]: [
                        number_text(v, 2 if name.endswith("_10k") else 1)
                        for name, v in table[level].items()
                    ]
                    for level in ("valeur", *LEVELS)
                },
            }
        )
        if profile[[f"taux_ald_sans_mt_{level}" for level in LEVELS]].notna().any():
            ald = pd.DataFrame(
                {
                    "Indicateur": [ALD_LABEL],
                    "Zone": ["non publié à cette échelle"],
                    **{
                        LEVELS_FR[level]: [number_text(profile[f"taux_ald_sans_mt_{level}"])]
                        for level in LEVELS
                    },
                }
            )
            shown = pd.concat([shown, ald], ignore_index=True)
        known = shown.drop(columns="Indicateur").ne(UNAVAILABLE).any(axis=1)
        profile_table = (
            reports.table(shown[known])
            if known.any()
            else f"<p>Aucun indicateur du profil disponible ({UNAVAILABLE}).</p>"
        )
        zonage = self.communes.loc[self.communes["code_commune"].isin(set(codes)), "zonage"]
        zonage_line = (
            "Zonage médecin des communes : "
            + ", ".join(
                f"{ZONAGE_FR[Zonage(c)]} : {n} commune(s)"
                for c, n in zonage.dropna().value_counts().sort_index().items()
            )
            + (f" ; non listées : {int(zonage.isna().sum())}" if zonage.isna().any() else "")
            if zonage.notna().any()
            else f"Zonage médecin : {UNAVAILABLE}"
        )
        partial = [
            f"{what} pour {int(profile['communes'] - profile[column])} commune(s) sur "
            f"{int(profile['communes'])}"
            for source, column, what in (
                ("population_age", "communes_sans_age", "population par âge connue"),
                ("zonage", "communes_sans_zonage", "zonage connu"),
            )
            if source in self.summary["sources"] and profile[column] > 0
        ]
        partial_text = (
            '<p class="muted">Les taux de la zone portent sur les seules communes que le fichier '
            "couvre : " + html.escape("; ".join(partial)) + ".</p>"
            if partial
            else ""
        )
        missing = self.missing
        complete = (
            '<p class="muted">Ces données compléteraient la page : '
            + "; ".join(html.escape(m) for m in missing)
            + ".</p>"
            if missing
            else ""
        )
        return (
            f"<h2>Priorité</h2><p>Rang <b>{int(row['rang'])}</b> sur {count} zone(s) blanche(s) "
            f"du diagnostic, score <b>{number_text(row['score'])}</b> sur 100 (voir la méthode "
            'dans <a href="../index.html">l\'index</a>).</p>'
            + reports.table(criteria)
            + absent_text
            + "<h2>Profil</h2><p>La zone comparée à son département "
            f"({html.escape(str(profile['code_departement']))}), sa région "
            f"({html.escape(str(profile['code_region']))}) et la France. "
            f"<i>{UNAVAILABLE}</i> : donnée absente, jamais zéro.</p>"
            + profile_table
            + partial_text
            + f"<p>{html.escape(zonage_line)}.</p>"
            + '<p class="muted">Le taux de patients en ALD sans médecin traitant n\'est publié '
            "qu'à l'échelle du département : il décrit le contexte de la zone, pas la zone.</p>"
            + complete
        )

    def zone_sheets(self, zone: str) -> dict[str, pd.DataFrame]:
        """The ``profil`` and ``priorite`` sheets of a zone's XLSX report."""
        table = comparison_table(compared_part(self.zones.loc[zone]))
        row = self.priority.loc[zone]
        priority = pd.DataFrame(
            {
                "critere": list(CRITERIA),
                "libelle": [c.label for c in CRITERIA.values()],
                "valeur": [row[n] for n in CRITERIA],
                "note": [row[f"note_{n}"] for n in CRITERIA],
                "poids": [self.weights[n] for n in CRITERIA],
            }
        )
        # the labels people read first, the codes last
        return {
            "profil": table[[*table.columns.drop("indicateur"), "indicateur"]],
            "priorite": priority[[*priority.columns.drop("critere"), "critere"]],
        }

    def commune_columns(self, codes: pd.Series) -> pd.DataFrame:
        """:data:`COMMUNE_COLUMNS` for the units ``codes`` (same order)."""
        return self.by_code.reindex(codes.to_numpy()).reset_index(drop=True).set_axis(codes.index)

    @property
    def numeric_columns(self) -> tuple[str, ...]:
        """The index columns :meth:`index_columns` adds (sorted by their value)."""
        return (
            "Rang",
            "Score de priorité",
            *(c.label for n, c in CRITERIA.items() if n != "population"),
        )

    # ----------------------------------------------------------------- GeoPackage

    def gis_layers(self, layers: dict) -> dict:
        """The profile columns joined to the ``zones_blanches``, ``territoires`` and
        ``communes_statut`` layers (every unit: zonage, FINESS counts, :data:`GIS_RATIOS` with
        their references; the whole profile is in ``profile_communes.parquet``), without a second
        copy of the communes' geometry.
        """
        zones = layers["zones_blanches"].merge(
            self.gis_columns(None), left_on="id_zone_blanche", right_index=True, how="left"
        )
        territories = layers["territoires"].merge(
            self.gis_columns("territoires"), left_on="id_territoire", right_index=True, how="left"
        )
        columns = ["population_age", *COMMUNE_COLUMNS[1:], *gis_ratio_columns()]
        own = layers["communes_statut"]
        added = [c for c in columns if c in self.communes.columns and c not in own.columns]
        communes = own.merge(self.communes[["code_commune", *added]], on="code_commune", how="left")
        return {"zones_blanches": zones, "territoires": territories, "communes_statut": communes}

    def gis_columns(self, kind: str | None) -> pd.DataFrame:
        """:data:`GIS_RATIOS` with their references, by id, for white zones (``kind`` None, with
        the priority) or territories.
        """
        columns = gis_ratio_columns() + [f"taux_ald_sans_mt_{level}" for level in LEVELS]
        rows = self.territories
        rows = (
            rows[rows["type_territoire"] == "zone_blanche"]
            if kind is None
            else rows[rows["type_territoire"] != "zone_blanche"]
        )
        out = rows.set_index("id_territoire")[[c for c in columns if c in rows.columns]]
        if kind is None:
            out = out.join(self.priority[["rang", "score", "criteres_absents"]])
        return out


def gis_ratio_columns() -> list[str]:
    """:data:`GIS_RATIOS` each followed by its département, région and France references."""
    return [f"{r}{s}" for r in GIS_RATIOS for s in ("", *(f"_{level}" for level in LEVELS))]


def compared_part(row: pd.Series) -> pd.Series:
    """The :func:`pipeline.analysis.profile.compare` columns of a profile row (each ratio with its
    references), for :func:`pipeline.analysis.profile.comparison_table`.
    """
    names = [c for c in row.index if f"{c}_france" in row.index and c != "taux_ald_sans_mt"]
    keep = [f"{n}{s}" for n in names for s in ("", *(f"_{level}" for level in LEVELS))]
    return row[["code_departement", "code_region", *keep]]


def criterion_text(name: str, value) -> str:
    """A criterion's value for people (``sans_msp``: oui/non)."""
    if value is None or pd.isna(value):
        return UNAVAILABLE
    if name == "sans_msp":
        return "oui (aucune MSP)" if value else "non"
    if name == "population":
        return reports.people(value)
    return number_text(value)


def map_columns(profile: ProfileOutputs, coverage: pd.DataFrame) -> pd.DataFrame:
    """The tooltip texts of the map's "Profil" layer, one row per unit of ``coverage``: share
    aged 75+, zonage category, MSP / centres de santé / pharmacies, the white zone's priority rank
    (and ``_colour``, its fill: the quarter of the ranking the zone falls in).
    """
    table = profile.commune_columns(coverage["code_commune"])
    zone = coverage["id_zone_blanche"].fillna("")
    rank = zone.map(profile.priority["rang"]) if len(profile.priority) else zone.map({})
    count = len(profile.priority)

    counts = table[["n_msp", "n_centre_sante", "n_pharmacie"]]
    finess = [
        UNAVAILABLE if pd.isna(m) else f"{int(m)} / {int(c)} / {int(p)}"
        for m, c, p in counts.itertuples(index=False)
    ]

    return pd.DataFrame(
        {
            "nom": coverage["nom"].to_numpy(),
            "_colour": [priority_colour(r, count) for r in rank],
            "zone_txt": [
                f"{z} (rang {int(r)} sur {count})" if z and pd.notna(r) else "—"
                for z, r in zip(zone, rank)
            ],
            "age_txt": table["part_75p"].map(number_text).to_numpy(),
            "zonage_txt": table["zonage"].map(zonage_text).to_numpy(),
            "finess_txt": finess,
        }
    )


MAP_FIELDS = {
    "nom": "Commune",
    "zone_txt": "Zone blanche (priorité)",
    "age_txt": label_fr("part_75p"),
    "zonage_txt": "Zonage médecin",
    "finess_txt": "MSP / centres de santé / pharmacies",
}


def profile_layer(profile: ProfileOutputs, coverage: pd.DataFrame, geometry):
    """The map's "Profil" layer (off by default): the white-zone units of ``coverage`` (a map's
    rows, ``geometry`` their WGS84 shapes) with :func:`map_columns` as tooltips.
    """
    from .maps import Layer
    from .palette import style

    white = (coverage["id_zone_blanche"].fillna("") != "").to_numpy()
    return Layer(
        "profile",
        "Profil des communes en zone blanche (âge, zonage, FINESS, priorité)",
        geometry[white],
        map_columns(profile, coverage[white]),
        MAP_FIELDS,
        style("profile"),
        show=False,
    )
