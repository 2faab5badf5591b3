"""Domain errors raised by the pipeline.

Every error a user can meet is a :class:`PipelineError`: the CLI prints its message on one line
(a :class:`ValidationError` with several problems: one line per problem) and exits with a non-zero
status. Messages name the file, the row or feature, and what to do.
"""

from __future__ import annotations

from collections.abc import Iterable


class PipelineError(Exception):
    """An error the user can act on (bad input, missing file, wrong setting).

    The command line prints its message and exits with :attr:`exit_code`.
    """

    exit_code = 2


class StrictError(PipelineError):
    """Warnings met by a run under ``--strict`` (``Settings.strict``): the run fails with exit 1."""

    exit_code = 1


class OutputsBusy(PipelineError):
    """The output folders are in use by another run: exit 3, as for a folder that cannot be
    written (:func:`pipeline.io.output_lock`).
    """

    exit_code = 3


class InputChanged(PipelineError):
    """An input file changed while a stage read it: the stage is not recorded as up to date."""


class ValidationError(PipelineError):
    """Several problems found while validating one input, reported together.

    Parameters
    ----------
    source : str
        The file (or setting) that was validated.
    problems : iterable of str
        One message per problem, each telling the user what to fix.
    """

    def __init__(self, source: str, problems: Iterable[str]):
        """Keep ``source`` and ``problems``; the message lists every problem."""
        self.source = str(source)
        self.problems = list(problems)
        if len(self.problems) == 1:
            super().__init__(f"{self.source}: {self.problems[0]}")
        else:
            lines = "\n".join(f"  - {p}" for p in self.problems)
            super().__init__(f"{self.source}: {len(self.problems)} problems:\n{lines}")


class Problems:
    """Collects validation problems and raises them all at once.

    Examples
    --------
    >>> problems = Problems("perimeters.csv")
    >>> problems.add("row 3: unknown commune code '99999'; fix the code or remove the row")
    >>> problems.raise_if_any()  # doctest: +SKIP
    """

    def __init__(self, source: str):
        """Start an empty list of problems about ``source``."""
        self.source = str(source)
        self.items: list[str] = []

    def add(self, message: str) -> None:
        """Collect one problem (a message naming what to fix)."""
        self.items.append(message)

    def __bool__(self) -> bool:
        """True when at least one problem was collected."""
        return bool(self.items)

    def raise_if_any(self) -> None:
        """Raise a :class:`ValidationError` listing every problem collected, if any."""
        if self.items:
            raise ValidationError(self.source, self.items)
