"""``python -m pipeline``: the command line (:func:`pipeline.cli.entry`)."""

from .cli import entry

entry()
