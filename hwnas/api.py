"""hwnas from Python: read a table, predict a genotype's latency, load a run and its family,
pick under one or several budgets, train a genotype. torch and pandas are imported inside the
functions that need them, so `import hwnas` stays instant (docs/api.md has a worked example)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hwnas.arch.genotypes import Genotype
    from hwnas.hooks import Hooks
    from hwnas.latency.model.table import LatencyTable, Record
    from hwnas.search.family.choose import Pick
    from hwnas.search.family.sweep import LoadedRun
    from hwnas.search.retrain.job import TrainResult
    from hwnas.search.retrain.recipe import Recipe


def read_table(path: str | Path) -> LatencyTable:
    """The latency table `hwnas profile` (or `hwnas table import`) wrote at `path`."""
    from hwnas.latency.model.table import read_table as read

    return read(path)


@dataclass(frozen=True)
class Prediction:
    """A genotype's predicted end-to-end latency on one backend of a table's device."""

    genotype: Genotype
    latency_ms: float
    backend: str
    device: str  # the table's device (cpu, cuda:0, or a bundle's target)
    table_fingerprint: str
    calibrated: bool  # False: the uncalibrated sum of entries (docs/latency-model.md)


def predict_latency(genotype: Genotype | Mapping[str, object] | str | Path,
                    table: LatencyTable | str | Path, backend: str | None = None,
                    warn: Callable[[str], None] = lambda message: None) -> Prediction:
    """`genotype`'s latency as `pick` predicts it, on `backend` (default: the search's,
    ONNX Runtime, when the table has it, else the table's only backend). A genotype of another
    space, or a backend the table lacks, raises UserError; `warn` hears when the table has no
    calibration for the backend."""
    from hwnas.hooks import Hooks
    from hwnas.latency.model.predict import latency_model
    from hwnas.search.config import SearchConfig
    from hwnas.search.family.choose import table_backend

    name = str(table) if isinstance(table, str | Path) else "the table"
    table = read_table(table) if isinstance(table, str | Path) else table
    chosen = table_backend(table, name, backend, SearchConfig.backend, Hooks(warn=warn))
    parsed = as_genotype(genotype)
    parsed.check(table.space)
    model = latency_model(table, chosen, warn=False)
    return Prediction(parsed, model.predict_ms(parsed), chosen, table.device, table.fingerprint,
                      model.calibrated)


def as_genotype(genotype: Genotype | Mapping[str, object] | str | Path) -> Genotype:
    """A Genotype from the object itself, a mapping with "normal" and "reduce" op lists (or
    holding one under "genotype", as `pick --json` and an export's genotype.json do), or the
    path of a JSON file holding either. A missing or unreadable file, or one holding no
    genotype, raises UserError in one line."""
    from hwnas.arch.genotypes import read_genotype

    return read_genotype(genotype)


def load_run(run: str | Path) -> LoadedRun:
    """A search run (or a runs root's latest run): its settings, table, and trained supernet
    and hypernetwork. `run.arch(s)` is the architecture at penalty vector s."""
    from hwnas.search.family.sweep import load_run as load
    from hwnas.search.supernet.run_folder import resolve_run

    return load(resolve_run(Path(run))[0])


def load_family(run: LoadedRun | str | Path, table: LatencyTable | str | Path | None = None,
                hooks: Hooks | None = None) -> list[Record]:
    """The run's family, one record per distinct architecture (genotype, s, accuracy on the
    validation split, params, count_<op>, predicted_ms_<backend>), priced on `table` (default:
    the run's own). Swept once, then read from the run folder's cache."""
    from hwnas.search.family.sweep import family

    loaded = load_run(run) if isinstance(run, str | Path) else run
    priced_on = read_table(table) if isinstance(table, str | Path) else table
    return family(loaded, hooks, priced_on)[0]


def pick(run: str | Path, max_latency_ms: float | None = None,
         budgets: Mapping[str | Path, float] | None = None, *, table: str | Path | None = None,
         backend: str | None = None, penalty: str | None = None, export: str | Path | None = None,
         verify: bool = False, recalibrate: bool = False, plot: str | Path | None = None,
         rerank: int | None = None, rerank_epochs: int | None = None,
         hooks: Hooks | None = None) -> Pick:
    """The most accurate member of the run's family predicted within `max_latency_ms` (on
    `table`'s device, default the run's), or within every budget of `budgets` (table path →
    ms, one per device), or the member at `penalty`; what `hwnas pick` does, as one call.
    `rerank` K > 0 fine-tunes the K best members under the budget for `rerank_epochs` each and
    chooses by validation accuracy after it (`Pick.rerank`; the export keeps inherited
    weights); None: the defaults of `hwnas.search.family.choose`."""
    from hwnas.search.family.choose import PickRequest
    from hwnas.search.family.choose import pick as choose

    request = PickRequest(
        run=Path(run), max_latency_ms=max_latency_ms,
        budgets=tuple((str(name), ms) for name, ms in (budgets or {}).items()),
        penalty=penalty, table=_path(table), backend=backend, export=_path(export),
        verify=verify, recalibrate=recalibrate, plot=_path(plot), rerank=rerank,
        rerank_epochs=rerank_epochs)
    return choose(request, hooks)


def train(genotype: Genotype | Mapping[str, object] | str | Path, table: str | Path,
          out: str | Path, *, backend: str | None = None, dataset: str = "digits",
          epochs: int | None = None, seed: int = 0, limit_train: int | None = None,
          device: str = "cpu", recipe: Recipe | None = None) -> TrainResult:
    """Train `genotype` (of `table`'s space) from scratch into `out` as `hwnas train
    --genotype` does: model.onnx, model.pt, genotype.json, metrics.csv and record.json.
    `epochs` None: the recipe's default (`hwnas.search.retrain.recipe.DEFAULT_EPOCHS`)."""
    from hwnas.search.retrain.job import TrainJob
    from hwnas.search.retrain.job import train as run_training
    from hwnas.search.retrain.recipe import DEFAULT_EPOCHS, Recipe
    from hwnas.search.retrain.source import TrainSource

    priced_on = read_table(table)
    prediction = predict_latency(genotype, priced_on, backend)
    provenance: dict[str, object] = {
        "source": str(genotype) if isinstance(genotype, str | Path) else "python",
        "genotype": json.loads(prediction.genotype.to_json()),
        "table_path": str(Path(table).resolve()), "table_fingerprint": prediction.table_fingerprint,
        "device": prediction.device, "backend": prediction.backend,
        "predicted_latency_ms": prediction.latency_ms}
    source = TrainSource(prediction.genotype, priced_on.space, dataset, prediction.backend,
                         prediction.latency_ms, provenance, None)
    job = TrainJob(out=Path(out), epochs=DEFAULT_EPOCHS if epochs is None else epochs, seed=seed,
                   limit_train=limit_train, device=device, recipe=recipe or Recipe())
    return run_training(source, job)


def _path(value: str | Path | None) -> Path | None:
    return None if value is None else Path(value)
