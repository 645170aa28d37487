"""The trade-off picture: the family's accuracy against predicted latency, its Pareto front,
the budget and the pick; and the picked architecture's operation counts per cell type (like
the paper's Figure 2)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from hwnas.arch.space import SearchSpace
from hwnas.latency.model.table import Record
from hwnas.latency.runner.files import atomic_write
from hwnas.search.family.pick import genotype_of


def pareto_front(members: pd.DataFrame, column: str) -> pd.DataFrame:
    """Members no other member beats on both latency (lower) and accuracy (higher)."""
    ordered = members.sort_values([column, "accuracy"], ascending=[True, False])
    front, best = [], -1.0
    for _, row in ordered.iterrows():
        if row["accuracy"] > best:
            front.append(row)
            best = row["accuracy"]
    return pd.DataFrame(front)


def plot_family(family: list[Record], space: SearchSpace,
                panels: list[tuple[str, str, float | None]], pick: Record, path: Path,
                title: str) -> None:
    """One trade-off panel per device (title, the members' latency column, its budget), and
    the pick's operation counts."""
    import matplotlib

    members = pd.DataFrame.from_records(family)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(panels) + 1, figsize=(5.5 * len(panels) + 4.5, 4.5),
                                gridspec_kw={"width_ratios": [3] * len(panels) + [2]})
    for trade_off, (device, column, budget_ms) in zip(axes, panels, strict=False):
        trade_off.scatter(members[column], members["accuracy"], s=18, color="tab:gray",
                          label=f"family ({len(members)} architectures)")
        front = pareto_front(members, column)
        trade_off.step(front[column], front["accuracy"], where="post", color="tab:blue",
                       label="Pareto front")
        if budget_ms is not None:
            trade_off.axvline(budget_ms, color="tab:red", linestyle="--",
                              label=f"budget {budget_ms:g} ms")
        trade_off.scatter([pick[column]], [pick["accuracy"]], s=90, marker="*",
                          color="tab:red", zorder=3, label="pick")
        trade_off.set(xlabel=f"predicted latency on {device} (ms)",
                      ylabel="validation accuracy", title=title)
        trade_off.legend(loc="lower right")
    counts = axes[-1]
    genotype = genotype_of(pick)
    width = 0.4
    positions = range(len(space.ops))
    for offset, (name, ops) in zip((-width / 2, width / 2),
                                   (("normal cell", genotype.normal),
                                    ("reduction cell", genotype.reduce)), strict=True):
        counts.bar([p + offset for p in positions], [ops.count(op) for op in space.ops],
                   width, label=name)
    counts.set_xticks(list(positions), space.ops, rotation=20)
    counts.set(ylabel="edges", title="operations of the pick")
    counts.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=110))
    plt.close(figure)
