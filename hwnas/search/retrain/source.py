"""What `hwnas train` starts from: a folder `hwnas pick --export` wrote (its genotype.json
names the run, table, space and data set), or a genotype file with a latency table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from hwnas.arch.genotypes import Genotype, read_genotype
from hwnas.arch.space import SearchSpace, SpaceError
from hwnas.errors import UserError
from hwnas.search.family.export import GENOTYPE_FILE, WEIGHTS_FILE

# What an export's genotype.json must hold for `train` to rebuild and describe the network.
EXPORT_FIELDS = ("genotype", "space", "dataset", "backend", "predicted_latency_ms")


@dataclass(frozen=True)
class TrainSource:
    """The architecture to train, where it came from, and its predicted latency."""

    genotype: Genotype
    space: SearchSpace
    dataset: str  # the data set the search ran on (the default for training)
    backend: str  # whose predicted latency is quoted
    predicted_latency_ms: float  # unchanged by training: the architecture is the same
    provenance: dict[str, object]  # run, table, ... as the export or the table gives them
    weights: Path | None  # the export's model.pt (for --init inherited), when it has one


def from_export(folder: Path) -> TrainSource:
    """Read a `pick --export` folder; anything else raises UserError naming the fix."""
    path = folder / GENOTYPE_FILE
    fix = "pass the folder `hwnas pick --export DIR` wrote, or --genotype FILE --table TABLE"
    if not path.is_file():
        raise UserError(f"{folder} is not a `hwnas pick --export` folder (no {GENOTYPE_FILE}):"
                        f" {fix}")
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path} is unreadable ({exc}): {fix}") from None
    missing = [k for k in EXPORT_FIELDS if not isinstance(record, dict) or k not in record]
    if missing:
        raise UserError(f"{path} lacks {', '.join(missing)}, so {folder} is not a `hwnas pick "
                        f"--export` folder: {fix}")
    try:
        space = SearchSpace.from_dict(record["space"])
        genotype = read_genotype(record["genotype"], where=str(path))
    except SpaceError as exc:
        raise UserError(f"{path} holds an unusable space ({exc}): {fix}") from None
    genotype.check(space)
    weights = folder / WEIGHTS_FILE
    provenance = {k: v for k, v in record.items() if k not in ("space",)}
    return TrainSource(genotype, space, str(record["dataset"]), str(record["backend"]),
                       float(record["predicted_latency_ms"]), {"source": str(folder),
                                                               **provenance},
                       weights if weights.is_file() else None)


def from_genotype_file(path: Path, table_path: Path, backend: str | None,
                       dataset: str) -> TrainSource:
    """A genotype file (`{"normal": [...], "reduce": [...]}` or any JSON holding one under
    "genotype", such as an export's genotype.json) priced on `table_path`."""
    from hwnas.latency.model.predict import latency_model
    from hwnas.latency.model.table import TableError, read_table

    genotype = read_genotype(path)
    try:
        table = read_table(table_path)
    except TableError as exc:
        raise UserError(f"--table {table_path} is unusable ({exc}): pass a table `hwnas "
                        f"profile` wrote") from None
    genotype.check(table.space)
    chosen = backend or table.backends[0]
    if chosen not in table.backends:
        raise UserError(f"--backend {chosen}: the table has {', '.join(table.backends)}")
    predicted = latency_model(table, chosen, warn=False).predict_ms(genotype)
    provenance = {"source": str(path), "genotype": json.loads(genotype.to_json()),
                  "table_path": str(table_path.resolve()), "table_fingerprint": table.fingerprint,
                  "device": table.device, "backend": chosen, "predicted_latency_ms": predicted}
    return TrainSource(genotype, table.space, dataset, chosen, predicted, provenance, None)

