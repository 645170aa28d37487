"""Genotypes in one place: the type, the samplers that draw them, and named reference
genotypes as plain data (the way DARTS keeps its `genotypes.py`).

Torch-free, so a table, a run or a cached pick can read a genotype without torch; only
`random_genotype` imports torch, when called. The samplers' draws are fixed by their seeds:
a table's calibration networks are re-drawn, not stored, so never change what a seed gives.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np

from hwnas.arch.space import CellPlan, SearchSpace
from hwnas.errors import UserError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Genotype:
    """One operation name per edge, for the normal and the reduction cell type."""

    normal: tuple[str, ...]
    reduce: tuple[str, ...]

    def for_cell(self, plan: CellPlan) -> tuple[str, ...]:
        return self.reduce if plan.reduction else self.normal

    def to_json(self) -> str:
        return json.dumps({"normal": list(self.normal), "reduce": list(self.reduce)})

    @classmethod
    def from_picks(cls, space: SearchSpace, normal: Iterable[int],
                   reduce: Iterable[int]) -> Genotype:
        """The genotype whose edges carry `space.ops[i]` for each picked op index `i`."""
        return cls(tuple(space.ops[i] for i in normal), tuple(space.ops[i] for i in reduce))

    @classmethod
    def from_json(cls, text: str) -> Genotype:
        data = json.loads(text)
        return cls(tuple(data["normal"]), tuple(data["reduce"]))

    def check(self, space: SearchSpace) -> None:
        """Raise UserError unless every cell type names one of the space's ops per edge."""
        edges = space.edges_per_cell
        for cell_type, names in (("normal", self.normal), ("reduce", self.reduce)):
            if len(names) != edges:
                raise UserError(f"genotype {cell_type} cell has {len(names)} ops, the space "
                                f"{space.name!r} has {edges} edges per cell")
            unknown = sorted(set(names) - set(space.ops))
            if unknown:
                raise UserError(f"genotype {cell_type} cell uses {', '.join(unknown)}, not in "
                                f"space {space.name!r} ops {', '.join(space.ops)}")


def single_op(op: str, edges: int) -> Genotype:
    """`op` on every one of `edges` edges of both cell types: a corner of the op simplex."""
    return Genotype((op,) * edges, (op,) * edges)


# Named reference genotypes of the presets (4 intermediate nodes: 14 edges per cell).
PRESET_EDGES = 14
ALL_CONV_3X3 = single_op("conv_3x3", PRESET_EDGES)
ALL_SEP_CONV_3X3 = single_op("sep_conv_3x3", PRESET_EDGES)
ALL_MAX_POOL_3X3 = single_op("max_pool_3x3", PRESET_EDGES)
ALL_SKIP = single_op("skip_connect", PRESET_EDGES)
_PAPER_CORNERS = {"all_conv": ALL_CONV_3X3, "all_pool": ALL_MAX_POOL_3X3, "all_skip": ALL_SKIP}
# Per preset: its all-convolution, all-pooling and all-identity architecture (darts has no
# plain convolution: its all-conv is the separable one).
REFERENCES: dict[str, dict[str, Genotype]] = {
    "exp1": _PAPER_CORNERS,
    "exp2": _PAPER_CORNERS,
    "exp3": _PAPER_CORNERS,
    "darts": {**_PAPER_CORNERS, "all_conv": ALL_SEP_CONV_3X3},
}


def pure_genotypes(space: SearchSpace) -> list[Genotype]:
    """One single-op genotype per op of the space, in the space's op order."""
    return [single_op(op, space.edges_per_cell) for op in space.ops]


def random_genotype(space: SearchSpace, generator: torch.Generator) -> Genotype:
    """A uniformly random operation on every edge of both cell types."""
    import torch

    edges = space.edges_per_cell
    picks = torch.randint(len(space.ops), (2, edges), generator=generator).tolist()
    return Genotype.from_picks(space, picks[0], picks[1])


def mixture_genotypes(space: SearchSpace, count: int, generator: np.random.Generator,
                      include_pure: bool) -> list[Genotype]:
    """Architectures with varied op mixtures: each draws its op probabilities from a flat
    Dirichlet, then every edge from them. Uniform per-edge sampling would give nearly the same
    mixture every time and leave the latency model's per-op scales unidentifiable.
    `include_pure` starts with `pure_genotypes` (the corners of the mixture simplex)."""
    k, edges = len(space.ops), space.edges_per_cell
    found: list[Genotype] = pure_genotypes(space)[:count] if include_pure else []
    while len(found) < count:
        probabilities = generator.dirichlet(np.ones(k))
        picks = generator.choice(k, size=(2, edges), p=probabilities)
        genotype = Genotype.from_picks(space, picks[0], picks[1])
        if genotype not in found:
            found.append(genotype)
    return found


# Calibration and validation draw architectures from separate streams of the same seed.
CALIBRATION_STREAM = 0xCA11B
VALIDATION_STREAM = 0x7A11D


def calibration_genotypes(space: SearchSpace, count: int, seed: int) -> list[Genotype]:
    """The networks `hwnas profile` calibrates on: one per op, then varied mixtures."""
    rng = np.random.default_rng([seed, CALIBRATION_STREAM])
    return mixture_genotypes(space, count, rng, include_pure=True)


def validation_genotypes(space: SearchSpace, count: int, seed: int,
                         exclude: list[Genotype]) -> list[Genotype]:
    """`count` varied architectures, none of them one that calibration used."""
    rng = np.random.default_rng([seed, VALIDATION_STREAM])
    found: list[Genotype] = []
    while len(found) < count:
        for genotype in mixture_genotypes(space, count, rng, include_pure=False):
            if genotype not in exclude and genotype not in found and len(found) < count:
                found.append(genotype)
    return found


def read_genotype(genotype: Genotype | Mapping[str, object] | str | Path,
                  where: str = "the genotype") -> Genotype:
    """A Genotype from the object itself, a mapping with "normal" and "reduce" op lists (or
    holding one under "genotype", as `pick --json` and an export's genotype.json do), or the
    path of a JSON file holding either; anything else raises UserError in one line, naming
    `where` the genotype came from (a file is named by its path)."""
    if isinstance(genotype, Genotype):
        return genotype
    if isinstance(genotype, str | Path):
        where = str(genotype)
        try:
            genotype = json.loads(Path(genotype).read_text())
        except FileNotFoundError:
            raise UserError(f"genotype file {where} not found") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UserError(f"genotype file {where} is not readable JSON ({exc})") from None
    if isinstance(genotype, Mapping) and isinstance(genotype.get("genotype"), Mapping):
        genotype = genotype["genotype"]  # type: ignore[assignment]  # checked just above
    lists = [genotype.get(cell) if isinstance(genotype, Mapping) else None
             for cell in ("normal", "reduce")]
    if not all(isinstance(ops, list) for ops in lists):
        raise UserError(f"{where} holds no genotype: give {{\"normal\": [...], \"reduce\": "
                        f"[...]}} op lists, or a genotype.json `hwnas pick --export` wrote")
    # each is a list (checked above), which the checker cannot narrow through all()
    normal, reduce = (tuple(map(str, cast("list[object]", ops))) for ops in lists)
    return Genotype(normal, reduce)
