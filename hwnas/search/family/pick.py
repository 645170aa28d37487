"""Choosing from the family: the most accurate member under a latency budget, or the member
at a given penalty vector (the paper's query mode), and parsing `--penalty`.

Members are plain records (`hwnas.latency.model.table.Record`: one dict per architecture). Budget
mode on a
cached family runs without torch and without pandas (each is imported only where a network, a
tensor or a table of figures is needed), so a second pick answers in well under a second."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hwnas.arch.space import SearchSpace
from hwnas.errors import UserError
from hwnas.latency.model.table import Record

if TYPE_CHECKING:
    import torch

    from hwnas.arch.genotypes import Genotype


def latency_column(backend: str) -> str:
    return f"predicted_ms_{backend}"


@dataclass(frozen=True)
class Budget:
    """A latency budget on one device: the members' column of its predicted latency."""

    name: str  # the device's table, as the user named it
    backend: str
    budget_ms: float
    column: str


def _fits(member: Record, budget: Budget) -> bool:
    return member[budget.column] <= budget.budget_ms


def best_within(members: list[Record], budgets: list[Budget]) -> Record:
    """Highest accuracy among members predicted within every budget; ties: lower latency on
    the first, then the earlier member. When none fits, the error names the budget that binds
    and its fastest member."""
    return ranked_within(members, budgets)[0]


def ranked_within(members: list[Record], budgets: list[Budget]) -> list[Record]:
    """Every member predicted within every budget, best first as `best_within` chooses (the
    finalists of `pick --rerank`). When none fits, the error names the budget that binds."""
    fitting = [m for m in members if all(_fits(m, budget) for budget in budgets)]
    if not fitting:
        raise UserError(_binding(members, budgets))
    return sorted(fitting, key=lambda m: (-m["accuracy"], m[budgets[0].column]))


def _binding(members: list[Record], budgets: list[Budget]) -> str:
    """The message when no member fits: the budget fewest members fit binds."""
    counts = [sum(_fits(m, budget) for m in members) for budget in budgets]
    budget = budgets[counts.index(min(counts))]
    fastest = min(members, key=lambda m: m[budget.column])
    if len(budgets) == 1:
        return (f"no member of the family is predicted under {budget.budget_ms:g} ms on "
                f"{budget.backend}: the fastest takes {fastest[budget.column]:.3f} ms (accuracy "
                f"{fastest['accuracy']:.3f}); raise the budget")
    return (f"no member of the family fits every budget: {budget.name} ({budget.backend}, "
            f"{budget.budget_ms:g} ms) binds; the fastest member there takes "
            f"{fastest[budget.column]:.3f} ms (accuracy {fastest['accuracy']:.3f}); raise "
            f"that budget")


def parse_budget(text: str) -> tuple[str, float]:
    """`--budget TABLE=MS` → (TABLE, MS), MS a positive number."""
    table, sep, value = text.rpartition("=")
    if not sep or not table:
        raise UserError(f"--budget {text}: write TABLE=MS, e.g. --budget "
                        f"tables/board.parquet=12")
    try:
        budget_ms = float(value)
    except ValueError:
        budget_ms = math.nan
    if not math.isfinite(budget_ms) or budget_ms <= 0:
        raise UserError(f"--budget {text}: {value!r} is not a positive number of milliseconds")
    return table, budget_ms


def rescaled(members: list[Record], columns: list[str], factor: float) -> list[Record]:
    """The members with the predictions in `columns` scaled by `factor`: the machine's drift
    since the profile, measured by `pick --recalibrate`."""
    return [{**member, **{column: member[column] * factor for column in columns}}
            for member in members]


def parse_penalty(text: str, space: SearchSpace) -> tuple[torch.Tensor, str | None]:
    """`op=value,...` (every op of the space named once) or values in the space's op order.
    Returns the vector on the simplex and a note when it had to be normalised."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    ops = space.ops
    if parts and all("=" in part for part in parts):
        values: dict[str, float] = {}
        for part in parts:
            name, _, value = part.partition("=")
            if name.strip() not in ops:
                raise UserError(f"--penalty names {name.strip()!r}, not an op of space "
                                f"{space.name!r}: use {', '.join(ops)}")
            values[name.strip()] = _number(value)
        missing = [op for op in ops if op not in values]
        if missing:
            raise UserError(f"--penalty leaves out {', '.join(missing)}: give a value for "
                            f"every op ({', '.join(ops)})")
        vector = [values[op] for op in ops]
    elif any("=" in part for part in parts):
        raise UserError("--penalty mixes op=value and bare values: use one form")
    else:
        vector = [_number(part) for part in parts]
        if len(vector) != len(ops):
            raise UserError(f"--penalty has {len(vector)} values, space {space.name!r} has "
                            f"{len(ops)} ops ({', '.join(ops)}, in this order)")
    if any(v < 0 for v in vector):
        raise UserError(f"--penalty values must be non-negative, got {vector}")
    total = sum(vector)
    if total <= 0:
        raise UserError("--penalty values sum to 0: penalise at least one op")
    import torch

    note = None
    if abs(total - 1.0) > 1e-6:
        note = f"--penalty summed to {total:g}; normalised to sum to 1"
    return torch.tensor([v / total for v in vector], dtype=torch.float32), note


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise UserError(f"--penalty value {text.strip()!r} is not a number") from None


def member_row(members: list[Record], genotype: Genotype) -> Record | None:
    """The family's member `genotype`, if the sweep met it."""
    text = genotype.to_json()
    return next((member for member in members if member["genotype"] == text), None)


def genotype_of(row: Mapping[str, object]) -> Genotype:
    from hwnas.arch.genotypes import Genotype

    return Genotype.from_json(str(row["genotype"]))


def row_op_counts(row: Mapping[str, Any], space: SearchSpace) -> dict[str, int]:
    return {op: int(row[f"count_{op}"]) for op in space.ops}


def summary(row: Mapping[str, Any], space: SearchSpace, backend: str) -> dict[str, object]:
    """What `pick --json` prints (`accuracy` is the validation accuracy, as it always was;
    `val_accuracy` says so by name; the CLI adds `test_accuracy`)."""
    return {"genotype": json.loads(str(row["genotype"])),
            "s": {op: float(v) for op, v in zip(space.ops, row["s"], strict=True)},
            "predicted_latency_ms": float(row[latency_column(backend)]),
            "accuracy": float(row["accuracy"]), "val_accuracy": float(row["accuracy"]),
            "params": int(row["params"]),
            "op_counts": row_op_counts(row, space), "backend": backend}
