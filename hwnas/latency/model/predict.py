"""End-to-end latency of a discrete architecture from the table, and its calibration.

The model, per backend (docs/latency-model.md says why each part is there):

    predicted = F + c0 + Σ_m a_m · L_m

- `F`: the fixed parts (stem, preprocessing, node sums, concatenations, head), the same for
  every architecture of a space.
- `L_m`: the summed latency of the edges whose op is m, at each edge's shape.
- For a backend that runs the whole network as one call (ONNX Runtime: one session), every
  isolated entry paid the backend's per-call overhead that the fused network pays once:
  it is subtracted from each entry and added back once. Eager PyTorch really dispatches every
  module, so its entries are used as measured.
- A fused backend also computes a parameter-free op (pooling, identity) only once per source
  node: edges from one node with the same parameter-free op are the same computation, and ONNX
  Runtime's common-subexpression elimination merges them. Those edges count once.
- `c0`, `a_m`: the calibration, fitted on whole networks measured the same way a deployed model
  runs; without calibration `c0 = 0`, `a_m = 1` (the corrected sum) and a warning says so.
- ONNX Runtime only, when the calibration has them: `+ Σ_t b_t · n_t`, the Add and layout
  reorder nodes its optimised graph keeps (`hwnas.latency.model.ort_graph` counts them from the
  genotype),
  at a fitted cost each. The differentiable latency of search cannot count nodes: it adds
  their average cost over the calibration networks instead (`constant_ms`).
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from hwnas.arch import keys
from hwnas.arch.registry import edge_op
from hwnas.arch.space import SearchSpace, cell_edges, cell_plans, edge_key, fixed_entries
from hwnas.latency.model import ort_graph
from hwnas.latency.model.table import CalibrationRecord, LatencyTable

if TYPE_CHECKING:
    from hwnas.arch.genotypes import Genotype

FUSED_BACKENDS = frozenset({"onnxruntime"})  # the whole network is one call


class UncalibratedWarning(UserWarning):
    """The table has no calibration for this backend: predictions are the corrected sum."""


@dataclass(frozen=True)
class Calibration:
    """The fitted correction of one backend: `c0` and one scale per operation."""

    intercept_ms: float = 0.0
    op_scale: dict[str, float] = field(default_factory=dict)  # missing op: scale 1
    networks: int = 0  # whole networks it was fitted on (left-out ones not counted)
    fit_mape_pct: float | None = None  # mean |error| on those networks after fitting
    # ONNX Runtime's graph terms (none in tables written before them): ms per node of each
    # of ort_graph.TERMS, the NCHWc block they were counted with, and their mean cost over
    # the calibration networks (what the differentiable search latency adds instead).
    node_ms: dict[str, float] = field(default_factory=dict)
    nchwc_block: int = 1
    node_mean_ms: float = 0.0
    left_out: list[int] = field(default_factory=list)  # calibration networks seen as disturbed

    def to_dict(self) -> CalibrationRecord:
        return {"intercept_ms": self.intercept_ms, "op_scale": self.op_scale,
                "networks": self.networks, "fit_mape_pct": self.fit_mape_pct,
                "node_ms": self.node_ms, "nchwc_block": self.nchwc_block,
                "node_mean_ms": self.node_mean_ms, "left_out": self.left_out}

    @classmethod
    def from_dict(cls, data: CalibrationRecord) -> Calibration:
        return cls(float(data["intercept_ms"]), dict(data["op_scale"]),
                   int(data["networks"]), data.get("fit_mape_pct"),
                   dict(data.get("node_ms") or {}),
                   int(data.get("nchwc_block", 1)),
                   float(data.get("node_mean_ms", 0.0)),
                   list(data.get("left_out") or []))


@dataclass(frozen=True)
class LatencyModel:
    """Everything needed to predict one backend's latency for any genotype of the space."""

    space: SearchSpace
    backend: str
    fixed_ms: float  # F
    edge_ms: list[list[dict[str, float]]]  # [cell][edge][op] -> corrected entry latency
    calibration: Calibration | None
    shared: frozenset[tuple[str, int]] = frozenset()  # (op, stride) computed once per source

    @property
    def calibrated(self) -> bool:
        return self.calibration is not None

    def op_sums_ms(self, genotype: Genotype) -> dict[str, float]:
        """L_m: summed corrected latency of the edges carrying each op."""
        sums = dict.fromkeys(self.space.ops, 0.0)
        edges = cell_edges(self.space.nodes)
        for plan, cell in zip(cell_plans(self.space), self.edge_ms, strict=True):
            computed = set()
            for index, choices in enumerate(cell):
                op, source = genotype.for_cell(plan)[index], edges[index][0]
                if (op, plan.edge_stride(edges[index])) in self.shared:
                    if (source, op) in computed:
                        continue
                    computed.add((source, op))
                sums[op] += choices[op]
        return sums

    def predict_ms(self, genotype: Genotype) -> float:
        return self.combine_ms(self.op_sums_ms(genotype)) + self.nodes_ms(genotype)

    def nodes_ms(self, genotype: Genotype) -> float:
        """Σ b_t n_t: the cost of the graph nodes the calibration prices (0 without them)."""
        calibration = self.calibration or Calibration()
        if not calibration.node_ms:
            return 0.0
        counts = ort_graph.counts(self.space, genotype, calibration.nchwc_block)
        return sum(calibration.node_ms[term] * n
                   for term, n in zip(ort_graph.TERMS, counts, strict=True))

    def combine_ms(self, op_sums_ms: dict[str, float]) -> float:
        """F + c0 + Σ a_m L_m for given per-op sums (also used on expected sums in search)."""
        calibration = self.calibration or Calibration()
        return (self.fixed_ms + calibration.intercept_ms
                + sum(calibration.op_scale.get(op, 1.0) * total
                      for op, total in op_sums_ms.items()))

    def scaled_edge_ms(self) -> list[list[dict[str, float]]]:
        """a_m × corrected latency for every cell, edge and op: the per-edge terms whose
        γ-weighted sum plus `constant_ms` is the (differentiable) expected latency."""
        calibration = self.calibration or Calibration()
        return [[{op: calibration.op_scale.get(op, 1.0) * ms for op, ms in choices.items()}
                 for choices in cell] for cell in self.edge_ms]

    @property
    def constant_ms(self) -> float:
        """F + c0, plus the graph nodes' mean cost: a soft architecture has no nodes to count."""
        calibration = self.calibration or Calibration()
        return self.fixed_ms + calibration.intercept_ms + calibration.node_mean_ms


def moved_bytes(key: keys.EntryKey) -> int:
    """Bytes a call of this entry takes in and gives back."""
    element = 2 if key.dtype in ("float16", "bfloat16") else 4
    inputs = key.n_inputs * key.c_in * key.h * key.w
    output = key.c_out if key.op == keys.HEAD else key.c_out * key.h_out * key.w_out
    return key.batch * element * (inputs + output)


def call_overhead_fit(table: LatencyTable, backend: str) -> tuple[float, float]:
    """(ms per call, ms per moved byte) of an empty call: a line through the table's
    call_overhead rows (a constant when it holds only one)."""
    rows = [row for row in table.records
            if row["backend"] == backend and row["op"] == keys.CALL_OVERHEAD]
    moved = np.array([moved_bytes(keys.EntryKey.from_row(row)) for row in rows])
    latency = np.array([row["latency_ms"] for row in rows], dtype=float)
    if len(set(moved)) < 2:
        return float(latency.min()), 0.0
    slope, intercept = np.polyfit(moved, latency, 1)
    return float(intercept), max(float(slope), 0.0)


def uncalibrated_model(table: LatencyTable, backend: str) -> LatencyModel:
    """The corrected sum, before any calibration is applied."""
    space = table.space
    fused = backend in FUSED_BACKENDS
    per_call_ms, per_byte_ms = call_overhead_fit(table, backend) if fused else (0.0, 0.0)

    def corrected(key: keys.EntryKey) -> float:
        overhead = per_call_ms + per_byte_ms * moved_bytes(key)
        return max(table.latency_ms(backend, key) - overhead, 0.0)

    fixed = sum(corrected(key) for key in fixed_entries(space)) + per_call_ms
    edge_ms = [[{op: corrected(edge_key(space, plan, edge, op)) for op in space.ops}
                for edge in cell_edges(space.nodes)] for plan in cell_plans(space)]
    shared = frozenset((op, stride) for op in space.ops for stride in (1, 2)
                       if fused and edge_op(op).parameter_free(stride))
    return LatencyModel(space, backend, fixed, edge_ms, None, shared)


def latency_model(table: LatencyTable, backend: str, warn: bool = True) -> LatencyModel:
    """The table's model for `backend`, calibrated when the table carries a calibration."""
    model = uncalibrated_model(table, backend)
    stored = table.calibration(backend)
    if stored is None:
        if warn:
            warnings.warn(f"table has no calibration for {backend}: latency predictions are "
                          f"the uncalibrated sum of entries; re-run `hwnas profile` to "
                          f"calibrate", UncalibratedWarning, stacklevel=2)
        return model
    return dataclasses.replace(model, calibration=Calibration.from_dict(stored))


# A fit with graph terms matches clean networks to about 2%, so one measured during a burst
# of interference stands out: networks further than OUTLIER_SDS robust standard deviations
# (at least OUTLIER_FLOOR of their latency) from the first fit are left out of the second.
# Only with at least OUTLIER_MIN_RATIO networks per fitted parameter: with fewer, the first
# fit nearly interpolates, its residuals say nothing about noise, and clean networks were
# dropped (two of six in a test profile).
OUTLIER_SDS = 3.0
OUTLIER_FLOOR = 0.01
OUTLIER_MIN_RATIO = 2


def fit_calibration(model: LatencyModel, genotypes: list[Genotype],
                    measured_ms: list[float], ridge: float = 0.05,
                    nchwc_block: int | None = None) -> Calibration:
    """Least squares on relative error of `c0` and `a_m` (each a_m ≥ 0), lightly pulled toward
    the uncalibrated model (c0 = 0, a = 1) so an op the networks barely vary stays sensible.
    With `nchwc_block` (ONNX Runtime on this machine) also a cost (≥ 0) per Add and per
    reorder node of its optimised graph, pulled toward 0, refitted without the networks
    the first fit shows as disturbed (recorded in `left_out`) when there are enough networks
    to tell (see OUTLIER_MIN_RATIO)."""
    ops = list(model.space.ops)
    y = np.asarray(measured_ms, dtype=float)
    sums = np.array([[model.op_sums_ms(g)[op] for op in ops] for g in genotypes])
    block = nchwc_block if nchwc_block is not None and ort_graph.models(model.space) else None
    graph_terms = block is not None
    nodes = (np.array([ort_graph.counts(model.space, g, block) for g in genotypes],
                      dtype=float) if block is not None else np.zeros((len(y), 0)))
    features = np.column_stack([np.ones(len(y)), sums, nodes])
    kept = np.ones(len(y), dtype=bool)
    params = _solve(features, y, model.fixed_ms, len(ops), ridge)
    if graph_terms and len(y) >= OUTLIER_MIN_RATIO * features.shape[1]:
        relative = (model.fixed_ms + features @ params - y) / y
        off = np.abs(relative - np.median(relative))
        kept = off <= OUTLIER_SDS * max(1.4826 * float(np.median(off)), OUTLIER_FLOOR)
        params = _solve(features[kept], y[kept], model.fixed_ms, len(ops), ridge)
    node_ms = (dict(zip(ort_graph.TERMS, map(float, params[1 + len(ops):]), strict=True))
               if graph_terms else {})
    calibration = Calibration(
        float(params[0]), dict(zip(ops, map(float, params[1:1 + len(ops)]), strict=True)),
        int(kept.sum()), node_ms=node_ms, nchwc_block=nchwc_block or 1,
        node_mean_ms=float(np.mean(nodes[kept] @ params[1 + len(ops):])) if graph_terms
        else 0.0, left_out=[int(i) for i in np.flatnonzero(~kept)])
    fitted = dataclasses.replace(model, calibration=calibration)
    errors = [abs(fitted.predict_ms(g) - m) / m
              for g, m, used in zip(genotypes, y, kept, strict=True) if used]
    return dataclasses.replace(calibration, fit_mape_pct=round(100 * float(np.mean(errors)), 2))


def _solve(features: np.ndarray, y: np.ndarray, fixed_ms: float, n_ops: int,
           ridge: float) -> np.ndarray:
    """[c0, a_m…, b_t…] minimising the relative error of `fixed_ms + features @ params`
    against `y`, with the ridge pull toward c0 = 0, a = 1, b = 0."""
    n_nodes = features.shape[1] - 1 - n_ops
    design = features / y[:, None]
    target = (y - fixed_ms) / y
    prior = np.array([0.0] + [1.0] * n_ops + [0.0] * n_nodes)
    # intercept and node costs in ms: pulled relative to the networks' mean latency
    scale = np.array([1.0 / float(np.mean(y))] + [1.0] * n_ops
                     + list(features[:, 1 + n_ops:].mean(axis=0) / float(np.mean(y))))
    rows = np.vstack([design, ridge * np.diag(scale)])
    rhs = np.concatenate([target, ridge * scale * prior])
    # No op and no node costs less than nothing: a few noisy networks could otherwise trade
    # an op's scale against the node counts that go with it, down to a negative scale that
    # would also break the search's per-op shares (hwnas.latency.model.penalty).
    lower = np.array([-np.inf] + [0.0] * (n_ops + n_nodes))
    from scipy.optimize import lsq_linear  # 0.4 s to import: only a fit needs it

    return lsq_linear(rows, rhs, bounds=(lower, np.inf)).x
