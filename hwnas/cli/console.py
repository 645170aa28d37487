"""What every command shares: the consoles and the progress bar its long work draws."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.console import Console

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from hwnas.hooks import Hooks

# Errors and warnings go to stderr; results to stdout.
err_console = Console(stderr=True)
# Piped output (logs, CI, tests) gets a fixed, readable width instead of rich's 80 columns.
console = Console(width=None if sys.stdout.isatty() else 120)


@contextmanager
def progress_hooks() -> Iterator[Hooks]:
    """Hooks drawn as a transient progress bar on stderr, one task per phase. rich.progress is
    imported here, not at the top: a cached `pick` draws no bar and answers sooner without it."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("{task.description:>10}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn(), TextColumn("[dim]{task.fields[label]}"))
    with Progress(*columns, console=err_console, transient=True) as progress:
        yield RichHooks(progress).hooks()


class RichHooks:
    """Hooks drawn as a rich progress bar, one task per phase."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None

    def start(self, phase: str, total: int) -> None:
        if self.task is not None:
            self.progress.update(self.task, visible=False)
        self.task = self.progress.add_task(phase, total=total, label="")

    def advance(self, label: str) -> None:
        assert self.task is not None
        task = self.progress.tasks[self.task]
        if task.total is not None and task.completed + 1 > task.total:
            # noisy entries need more rounds than the minimum: grow the bar, keep the rate
            self.progress.update(self.task, total=task.total + 1)
        self.progress.update(self.task, advance=1, label=label)

    def hooks(self) -> Hooks:
        from hwnas.hooks import Hooks

        return Hooks(warn, self.start, self.advance)


def warn(message: str) -> None:
    """One yellow warning line on stderr."""
    err_console.print(f"[yellow]warning:[/] {message}", soft_wrap=True)


def note(message: str) -> None:
    """One yellow note line on stderr: something the user should know, not a problem."""
    err_console.print(f"[yellow]note:[/] {message}", soft_wrap=True)
