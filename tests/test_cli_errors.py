"""The shared error wrapper: user mistakes become one line and exit 2, for every command."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from hwnas.cli import app
from hwnas.cli.errors import EXIT_USER_ERROR


@pytest.mark.parametrize("args", [
    ["search", "--table", "t.parquet", "--kappa", "nan"],
    ["search", "--table", "t.parquet", "--sigma", "inf"],
    ["search", "--table", "t.parquet", "--latency-weight", "-inf"],
    ["pick", "--max-latency-ms", "inf"],
])
def test_non_finite_numbers_are_refused_before_any_work(args: list[str]) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == EXIT_USER_ERROR, result.output
    option, value = args[-2:]
    assert f"{option} {float(value)}: must be a finite number" in result.output
    assert "Traceback" not in result.output
