"""Latency, in milliseconds, of the architecture a set of edge weights describes.

The one place where search meets latency prediction: `hwnas.latency.model.predict`'s model (per-call
overhead corrected, calibrated when the table carries a calibration) laid out as tensors,
giving the per-edge latencies the cost is weighted by, the differentiable expected latency
of a soft or one-hot architecture, and the device's own penalty vector s_dev.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hwnas.arch.keys import EntryKey, call_overhead_key
from hwnas.arch.space import SearchSpace, cell_plans, enumerate_entries
from hwnas.errors import UserError
from hwnas.latency.model.penalty import device_penalty
from hwnas.latency.model.predict import FUSED_BACKENDS, latency_model
from hwnas.latency.model.table import LatencyTable

NORMAL, REDUCE = 0, 1  # index of a cell type in the (cell types, edges, ops) logit tensors
CELL_TYPES = 2


@dataclass(frozen=True)
class LatencyTerms:
    """The latency model laid out as tensors, built once per run."""

    edge_ms: torch.Tensor  # (cells, edges, ops): ℓ_m^e of op m on edge e of each cell, in ms
    cell_types: torch.Tensor  # (cells,) long: NORMAL or REDUCE, which logits a cell uses
    fixed_ms: float  # the same for every architecture: fixed parts + calibration intercept
    s_dev: torch.Tensor  # (ops,): each op's latency share if it sat on every edge; sums to 1

    def per_cell(self, weights: torch.Tensor) -> torch.Tensor:
        """(cell types, edges, ops) weights → (cells, edges, ops), one row per network cell."""
        return weights[self.cell_types]

    def expected_ms(self, weights: torch.Tensor) -> torch.Tensor:
        """Differentiable latency (ms) of the network whose edges mix ops by `weights`.

        With one-hot weights this is the model's prediction for that discrete architecture,
        up to what only a discrete genotype shows on a fused backend: `LatencyModel.predict_ms`
        counts a parameter-free op shared by edges from one node once, and prices ONNX
        Runtime's graph nodes by their count where this adds their mean cost.
        """
        return self.fixed_ms + (self.per_cell(weights) * self.edge_ms).sum()

    def to(self, device: torch.device) -> LatencyTerms:
        return LatencyTerms(self.edge_ms.to(device), self.cell_types.to(device), self.fixed_ms,
                            self.s_dev.to(device))


def latency_terms(table: LatencyTable, backend: str) -> LatencyTerms:
    """The table's latency model for `backend` on its space; a missing backend or entry
    raises UserError."""
    space = table.space
    if backend not in table.backends:
        raise UserError(f"the table has no {backend} measurements (it has "
                        f"{', '.join(table.backends)}): pass --backend "
                        f"{table.backends[0]} or profile with the {backend} backend")
    needed = enumerate_entries(space)
    if backend in FUSED_BACKENDS:  # the model removes the per-call overhead measured here
        needed.append(call_overhead_key(space.batch_size, space.dtype))
    _require(table, backend, space, needed)
    model = latency_model(table, backend, warn=False)
    edge_ms = torch.tensor([[[choices[op] for op in space.ops] for choices in cell]
                            for cell in model.scaled_edge_ms()])
    cell_types = torch.tensor([REDUCE if plan.reduction else NORMAL
                               for plan in cell_plans(space)])
    shares = device_penalty(table, backend)
    s_dev = torch.tensor([shares[op] for op in space.ops])
    return LatencyTerms(edge_ms, cell_types, model.constant_ms, s_dev)


def _require(table: LatencyTable, backend: str, space: SearchSpace,
             needed: list[EntryKey]) -> None:
    missing = list(dict.fromkeys(key for key in needed if not table.has(backend, key)))
    if missing:
        raise UserError(f"the table lacks {len(missing)} {backend} entr"
                        f"{'y' if len(missing) == 1 else 'ies'} that space {space.name!r} needs "
                        f"(first: {missing[0].label()}); it was profiled for another space: "
                        f"re-run `hwnas profile` for this space")
