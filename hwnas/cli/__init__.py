"""The `hwnas` command line: typer commands only; the work is in `hwnas.latency` and
`hwnas.search`. One module per command, each parsing options, calling one library function
and printing."""

from __future__ import annotations

import typer

from hwnas.cli import pick, predict, profile, search, table, train, validate
from hwnas.cli.errors import user_errors

app = typer.Typer(help="Hardware-aware neural architecture search: measure your device, search "
                       "once, pick under a latency budget.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
table_app = typer.Typer(help="Inspect, import and compare latency tables.",
                        no_args_is_help=True)

app.command("profile")(user_errors(profile.profile))
app.command("validate")(user_errors(validate.validate))
app.command("search")(user_errors(search.search))
app.command("pick")(user_errors(pick.pick))
app.command("predict")(user_errors(predict.predict))
app.command("train")(user_errors(train.train))
table_app.command("show")(user_errors(table.show))
table_app.command("import")(user_errors(table.import_results))
table_app.command("compare")(user_errors(table.compare))
app.add_typer(table_app, name="table")
