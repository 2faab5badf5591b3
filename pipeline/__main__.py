"""``python -m pipeline``: :func:`pipeline.cli.entry`, with a Ctrl-C while it loads ending in one
line and exit 130 (as everywhere else), not a traceback.
"""

try:
    from .cli import entry
except KeyboardInterrupt:
    import sys

    sys.stderr.write("interrupted during start-up; nothing was written\n")
    sys.exit(130)

entry()
