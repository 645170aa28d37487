"""Turn user mistakes and interruptions into one line and an exit code, never a traceback."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console

from latency.errors import UserError

P = ParamSpec("P")
R = TypeVar("R")

err_console = Console(stderr=True)

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def user_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Wrap a typer command: UserError -> `error: ...` and exit 2; Ctrl-C -> exit 130."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except UserError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_USER_ERROR) from None
        except KeyboardInterrupt:
            err_console.print("[yellow]interrupted[/]: what was finished is kept; run the "
                              "same command with --resume to continue", soft_wrap=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None

    return wrapper
