"""Turn user mistakes and interruptions into one line and an exit code, never a traceback."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer

from hwnas.cli.console import err_console
from hwnas.errors import UserError
from hwnas.search.launch import Launch

P = ParamSpec("P")
R = TypeVar("R")


EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def user_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Wrap a typer command: UserError -> `error: ...` and exit 2; Ctrl-C -> exit 130."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            _refuse_non_finite(kwargs)
            return command(*args, **kwargs)
        except UserError as exc:
            if Launch.from_environment().is_writer:  # under torchrun every rank refuses alike
                err_console.print(f"[bold red]error:[/] {exc}", highlight=False,
                                  soft_wrap=True)
            raise typer.Exit(EXIT_USER_ERROR) from None
        except KeyboardInterrupt:
            if Launch.from_environment().is_writer:
                err_console.print("[yellow]interrupted[/]: what was finished is kept; run the "
                                  "same command with --resume to continue", soft_wrap=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None

    return wrapper


def _refuse_non_finite(options: dict[str, object]) -> None:
    """NaN and ±inf pass typer's float parsing and every `x < 0` check: refuse them once, here,
    for every number option of every command."""
    for name, value in options.items():
        values = value if isinstance(value, list | tuple) else [value]
        for item in values:
            if isinstance(item, float) and not math.isfinite(item):
                option = "--" + name.replace("_", "-")
                raise UserError(f"{option} {item}: must be a finite number")
