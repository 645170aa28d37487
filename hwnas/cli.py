"""The `hwnas` command line: typer commands only; the work is in latency/ and search/."""

from __future__ import annotations

import typer

from hwnas import pick_cmd, profile_cmd, search_cmd, table_cmd, train_cmd, validate_cmd
from hwnas.errors import user_errors

app = typer.Typer(help="Hardware-aware neural architecture search: measure your device, search "
                       "once, pick under a latency budget.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
table_app = typer.Typer(help="Inspect, import and compare latency tables.",
                        no_args_is_help=True)

app.command("profile")(user_errors(profile_cmd.profile))
app.command("validate")(user_errors(validate_cmd.validate))
app.command("search")(user_errors(search_cmd.search))
app.command("pick")(user_errors(pick_cmd.pick))
app.command("train")(user_errors(train_cmd.train))
table_app.command("show")(user_errors(table_cmd.show))
table_app.command("import")(user_errors(table_cmd.import_results))
table_app.command("compare")(user_errors(table_cmd.compare))
app.add_typer(table_app, name="table")
