"""Run by tests/test_distributed.py under torchrun (one process or several):

- `search`: a tiny search on every rank, then each rank dumps its own supernet and
  hypernetwork parameters, its batch-norm buffers, its per-epoch losses and the family it
  sweeps;
- `steps`: a few `train_step`s on fixed global batches with batch-norm in eval mode (running
  statistics, so no per-shard statistics) and plain SGD, which on any number of ranks must
  give the one-process parameters to float rounding: it checks the loss scaling and the
  gradient all-reduce.

    python -m torch.distributed.run --nproc-per-node 2 tests/workers/search_ranks.py \\
        MODE TABLE OUT DUMP SAMPLING LIMIT_TRAIN
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from hwnas.latency.model.table import read_table
from hwnas.search import distributed
from hwnas.search.config import SearchConfig
from hwnas.search.data.dataset import load_dataset
from hwnas.search.family.sweep import LoadedRun, sweep
from hwnas.search.supernet.latency_terms import latency_terms
from hwnas.search.supernet.loop import build_state, epoch_generator, run_search, train_step
from hwnas.search.supernet.objective import Objective


def main() -> None:
    mode, table_path, out, dump, sampling, limit_train = sys.argv[1:7]
    config = SearchConfig(table_path, limit_train=int(limit_train), batch_size=16, epochs=2,
                          val_fraction=0.05, out=out, name="tiny", sampling=sampling, seed=3)
    found = search(config) if mode == "search" else steps(config)
    torch.save({**found, "world": distributed.world()},
               Path(dump) / f"rank{distributed.rank()}.pt")
    distributed.finish()


def search(config: SearchConfig) -> dict[str, object]:
    table = read_table(config.table_path)
    result = run_search(config, table)
    state = result.state
    run = LoadedRun(result.run_dir, config.resolved(), {}, table, state.supernet.eval(),
                    state.hypernet.eval())
    return {"supernet": dict(state.supernet.named_parameters()),
            "hypernet": dict(state.hypernet.named_parameters()),
            "buffers": dict(state.supernet.named_buffers()),
            "family": [(m["genotype"], m["accuracy"]) for m in sweep(run)],
            "losses": [m.loss for m in result.metrics]}


def steps(config: SearchConfig) -> dict[str, object]:
    table = read_table(config.table_path)
    device = distributed.start("cpu", config.batch_size)
    data = load_dataset(config.dataset, table.space, limit_train=config.limit_train)
    state = build_state(config, table.space, device)
    state.supernet.eval()
    # plain SGD: a parameter then moves by lr × its gradient, so float rounding in the
    # all-reduce stays at rounding level (Adam would blow a rounding difference in a
    # near-zero gradient up to a step of lr)
    state.optimizer_weights = torch.optim.SGD(state.supernet.parameters(), lr=0.1)
    state.optimizer_hypernet = torch.optim.SGD(state.hypernet.parameters(), lr=0.1)
    objective = Objective(latency_terms(table, config.backend), config.kappa, config.beta,
                          config.latency_weight)
    generator = epoch_generator(config.seed, 0, device)
    losses = []
    world, rank = distributed.world(), distributed.rank()
    for step, (images, labels) in enumerate(data.train.batches(config.batch_size, generator,
                                                                rank, world)):
        global_batch = distributed.global_count(step, config.batch_size, len(data.train))
        share = train_step(state, objective, images, labels, 1.0, generator, config.sampling,
                           global_batch)
        losses.append(float(distributed.sum_across(share)[0]))
    return {"supernet": dict(state.supernet.named_parameters()),
            "hypernet": dict(state.hypernet.named_parameters()), "losses": losses}


if __name__ == "__main__":
    main()
