"""Train a search run and read its family: op counts under the paper's probe vectors, accuracy
at uniform s and at s_dev, seconds per epoch, and the latency range the family spans.

    .venv/bin/python benchmarks/search_op_control.py [--table T] [--sampling hard] [--kappa K] ...

Without --table it writes a synthetic exp1 table (`hwnas.latency.model.synthetic`) and
uses that. The op-control claim holds when every op's 0.7-penalty vector gives fewer edges
of that op than the uniform vector.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from search_common import benchmark_table

from hwnas.arch.space import SearchSpace
from hwnas.search.config import BACKENDS, SAMPLINGS, SearchConfig
from hwnas.search.data.dataset import load_dataset
from hwnas.search.family import members as family
from hwnas.search.family.derive import member_accuracy
from hwnas.search.supernet.loop import SearchResult, run_search


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default=None)
    defaults = SearchConfig("")
    for name in ("kappa", "beta", "sigma", "lr_hypernet", "lr_weights"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=float,
                            default=getattr(defaults, name))
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--limit-train", type=int, default=None)
    parser.add_argument("--sampling", choices=SAMPLINGS, default=defaults.sampling)
    parser.add_argument("--backend", choices=BACKENDS, default=defaults.backend)
    args = parser.parse_args()
    table, table_path = benchmark_table(args.table)
    config = SearchConfig(str(table_path), kappa=args.kappa, beta=args.beta, sigma=args.sigma,
                          lr_hypernet=args.lr_hypernet, lr_weights=args.lr_weights,
                          epochs=args.epochs, seed=args.seed, limit_train=args.limit_train,
                          sampling=args.sampling, backend=args.backend,
                          out=tempfile.mkdtemp(prefix="hwnas-op-control-"))
    print(f"config: sampling={config.sampling} backend={config.backend} kappa={config.kappa} "
          f"beta={config.beta} sigma={config.sigma} lr_hypernet={config.lr_hypernet} "
          f"epochs={config.epochs} seed={config.seed} table={table_path}")
    started = time.perf_counter()
    result = run_search(config, table, progress=lambda m: print(
        f"  epoch {m.epoch}: loss {m.loss:.3f} ce {m.task_loss:.3f} t {m.temperature:.2f} "
        f"acc(uniform) {m.val_acc_uniform:.3f} acc(s_dev) {m.val_acc_dev:.3f} "
        f"ms(s_dev) {m.arch_ms_dev:.3f} train {m.train_s:.1f}s", flush=True))
    print(f"seconds per epoch (training steps, median): "
          f"{statistics.median(m.train_s for m in result.metrics):.1f}; whole run with data "
          f"loading and validation: {time.perf_counter() - started:.0f} s")
    report_family(config, table.space, result)


def report_family(config: SearchConfig, space: SearchSpace, result: SearchResult) -> None:
    state, terms = result.state, result.terms
    data = load_dataset(config.dataset, space, val_fraction=config.val_fraction)
    vectors = {"uniform": family.uniform_penalty(space),
               "s_dev": terms.s_dev,
               **{f"0.7 on {op}": family.penalty_on(space, op) for op in space.ops}}
    print(f"{'vector':<22} {'s':<22} {'acc':>6} {'ms':>7}  " + " ".join(
        f"{op:>13}" for op in space.ops))
    counts = {}
    with torch.no_grad():
        for label, s in vectors.items():
            logits = state.hypernet(s)
            genotype = family.genotype(space, logits)
            counts[label] = family.op_counts(space, genotype)
            arch = family.one_hot(logits)
            acc = member_accuracy(space, genotype, state.supernet, data)
            s_text = ",".join(f"{x:.2f}" for x in s.tolist())
            print(f"{label:<22} {s_text:<22} {acc:6.3f} {float(terms.expected_ms(arch)):7.3f}  "
                  + " ".join(f"{counts[label][op]:>13}" for op in space.ops))
        holds = [op for op in space.ops if counts[f"0.7 on {op}"][op] < counts["uniform"][op]]
        print(f"op control holds for {len(holds)}/{len(space.ops)} ops: {', '.join(holds)}")
        grid = family.simplex_grid(len(space.ops), 10)
        members = {family.genotype(space, state.hypernet(s)) for s in grid}
        arch_ms = [float(terms.expected_ms(family.one_hot(state.hypernet(s)))) for s in grid]
    cheapest = terms.fixed_ms + float(terms.edge_ms.min(dim=-1).values.sum())
    dearest = terms.fixed_ms + float(terms.edge_ms.max(dim=-1).values.sum())
    print(f"family over a {len(grid)}-point simplex grid: {len(members)} distinct members, "
          f"latency {min(arch_ms):.3f}–{max(arch_ms):.3f} ms; the space spans "
          f"{cheapest:.3f}–{dearest:.3f} ms")


if __name__ == "__main__":
    main()
