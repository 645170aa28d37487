"""What the hypernetwork and the cost add to a training step, against a bare Gumbel supernet.

    .venv/bin/python benchmarks/search_overhead.py [--steps 10] [--rounds 7] [--table T]

Bare step: fixed logits α (one parameter tensor) → Gumbel-softmax → supernet → cross-entropy
→ backward → Adam. Full step (hwnas.search.supernet.loop.train_step): s ~ Dirichlet → hypernetwork
α(s) →
the same, plus κ·Cost and the expected latency. The two alternate in rounds on the same
batch; the script prints the median seconds per step of each and the overhead.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from search_common import benchmark_table

from hwnas.search.config import SearchConfig
from hwnas.search.data.dataset import load_dataset
from hwnas.search.supernet.latency_terms import NORMAL, REDUCE, latency_terms
from hwnas.search.supernet.loop import SearchState, build_state, train_step
from hwnas.search.supernet.objective import Objective, gumbel_softmax, sample_penalty


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default=None)
    parser.add_argument("--steps", type=int, default=10, help="steps per timed block")
    parser.add_argument("--rounds", type=int, default=7, help="alternating blocks of each")
    args = parser.parse_args()
    table, table_path = benchmark_table(args.table)
    config = SearchConfig(str(table_path))
    space = table.space
    terms = latency_terms(table, config.backend)
    objective = Objective(terms, config.kappa, config.beta, config.latency_weight)
    images, labels = next(load_dataset("digits", space).train.batches(config.batch_size))
    generator = torch.Generator().manual_seed(0)

    full = build_state(config, space, torch.device("cpu"))
    bare = build_state(config, space, torch.device("cpu"))
    logits = torch.nn.Parameter(torch.zeros(2, space.edges_per_cell, len(space.ops)))
    bare_optimizer = torch.optim.Adam([logits], lr=config.lr_hypernet)

    def bare_step() -> None:
        gamma = gumbel_softmax(logits, 1.0, generator)
        loss = F.cross_entropy(bare.supernet(images, gamma[NORMAL], gamma[REDUCE]), labels)
        bare.optimizer_weights.zero_grad(set_to_none=True)
        bare_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        bare.optimizer_weights.step()
        bare_optimizer.step()

    def full_step() -> None:
        train_step(full, objective, images, labels, 1.0, generator, config.sampling)

    steps = {"bare Gumbel supernet": bare_step, "hypernetwork + cost": full_step}
    for step in steps.values():  # warm-up
        block(step, 2)
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            times[name].append(block(step, args.steps) / args.steps)
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, median in medians.items():
        print(f"{name:<22} median {median * 1e3:7.1f} ms/step  (blocks: "
              + ", ".join(f"{t * 1e3:.0f}" for t in times[name]) + ")")
    base, extra = medians["bare Gumbel supernet"], medians["hypernetwork + cost"]
    print(f"overhead: {100 * (extra / base - 1):+.1f}%  (batch {config.batch_size}, "
          f"space {space.name}, {torch.get_num_threads()} threads)")
    head_s = isolated_overhead(full, objective, len(space.ops), args.steps * args.rounds)
    print(f"hypernetwork + cost alone (forward and backward, no supernet): "
          f"{head_s * 1e3:.2f} ms/step = {100 * head_s / base:.2f}% of a bare step")


def isolated_overhead(state: SearchState, objective: Objective, k: int, repeats: int) -> float:
    """Median seconds of the added work by itself: s, α(s), cost, expected latency, backward."""
    generator = torch.Generator().manual_seed(1)

    def added() -> None:
        s = sample_penalty(k, generator)
        penalty, _ = objective.penalty(state.hypernet(s), s, 1.0)
        penalty.backward()

    return statistics.median(block(added, 1) for _ in range(repeats))


def block(step: Callable[[], None], n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        step()
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
