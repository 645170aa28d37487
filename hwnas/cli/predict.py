"""`hwnas predict`: options → `hwnas.api.predict_latency` → a genotype's predicted latency on a
table's device, the figure `pick` reports for it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from hwnas.cli.console import console, warn


def predict(
    table: Annotated[Path, typer.Option(
        help="The latency table of the device (`hwnas profile` or `hwnas table import`).")],
    genotype: Annotated[Path, typer.Option(
        help="A genotype JSON file: {\"normal\": [...], \"reduce\": [...]}, or one holding it "
             "under \"genotype\" (`pick --json`'s output, an export's genotype.json).")],
    backend: Annotated[str | None, typer.Option(
        help="Whose latency: torch or onnxruntime (default: onnxruntime when the table has "
             "it, as `hwnas search` does, else the table's only backend).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Predict a genotype's end-to-end latency on the table's device, as `pick` does."""
    from hwnas.api import predict_latency

    prediction = predict_latency(genotype, table, backend, warn)
    if json_output:
        typer.echo(json.dumps({"predicted_latency_ms": prediction.latency_ms,
                               "backend": prediction.backend, "device": prediction.device,
                               "table_fingerprint": prediction.table_fingerprint,
                               "calibrated": prediction.calibrated,
                               "genotype": json.loads(prediction.genotype.to_json())}))
        return
    console.print(f"{prediction.latency_ms:.3f} ms predicted on {prediction.device} "
                  f"({prediction.backend}{'' if prediction.calibrated else ', uncalibrated'}, "
                  f"table {prediction.table_fingerprint})")
