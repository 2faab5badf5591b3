"""Messages and progress bars on the terminal (stderr), through rich.

Progress bars are drawn only on an interactive terminal; in CI and logs a stage prints its
one-line summaries only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

console = Console(stderr=True, highlight=False, soft_wrap=True)


def log(message: str) -> None:
    """Print one progress message."""
    console.print(message, markup=False)


@contextlib.contextmanager
def progress_bar(
    description: str, *, total: float | None = None
) -> Iterator[Callable[[float], None]]:
    """Yield an ``advance(n)`` function that moves a progress bar (a no-op off a terminal)."""
    if not console.is_terminal:
        yield lambda _n: None
        return
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


@contextlib.contextmanager
def step(description: str) -> Iterator[None]:
    """Show a spinner with ``description`` while a long step runs (on a terminal)."""
    if not console.is_terminal:
        yield
        return
    with console.status(description):
        yield


# --------------------------------------------------------------------------- stage times

STAGE_TIMES: dict[str, tuple[float, bool]] = {}


def reset_stage_times() -> None:
    """Forget the stage times recorded so far (a new run starts)."""
    STAGE_TIMES.clear()


def record_stage_time(name: str, seconds: float, *, ran: bool) -> None:
    """Remember how long a stage took in this process (``ran`` False: it was up to date)."""
    STAGE_TIMES[name] = (seconds, ran)


def timing_table() -> str:
    """The stages of this process with their wall time, one line each, and the total."""
    lines = ["stage times:"]
    for name, (seconds, ran) in STAGE_TIMES.items():
        lines.append(f"  {name:<12} {seconds:8.2f} s  {'rebuilt' if ran else 'up to date'}")
    lines.append(f"  {'total':<12} {sum(s for s, _ in STAGE_TIMES.values()):8.2f} s")
    return "\n".join(lines)


def print_timings() -> None:
    """Print :func:`timing_table` once the stages are done (nothing when no stage ran)."""
    if STAGE_TIMES:
        log(timing_table())
