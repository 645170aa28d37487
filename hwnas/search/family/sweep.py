"""The trained family: load a run, query the hypernetwork over the simplex, keep the distinct
architectures, and describe each (accuracy, parameters, op counts, predicted latency).

The family is cached in the run folder (`search/family_cache.py`), so a second `pick` with
another budget, or with another device's table, reads it instead of sweeping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
import torch

from hwnas.arch.genotypes import Genotype
from hwnas.arch.network import Network
from hwnas.arch.space import SearchSpace
from hwnas.errors import UserError
from hwnas.hooks import Hooks
from hwnas.latency.model.penalty import device_penalty
from hwnas.latency.model.table import LatencyTable, Record
from hwnas.search.config import SearchConfig
from hwnas.search.data.dataset import Dataset, load_dataset
from hwnas.search.family.cache import read_cached, write_cache, write_test_accuracy
from hwnas.search.family.derive import accuracy, member, member_network, parameter_count
from hwnas.search.family.members import genotype as arch_at
from hwnas.search.family.members import op_counts, penalty_on, simplex_grid, uniform_penalty
from hwnas.search.family.pricing import priced
from hwnas.search.supernet.hypernet import Hypernetwork, reference_points
from hwnas.search.supernet.latency_terms import CELL_TYPES
from hwnas.search.supernet.mixed_network import build_supernet
from hwnas.search.supernet.run_folder import RunFolder, read_run_record

GRID_POINTS = 66  # at most this many simplex-grid points (resolution 10 for 3 ops)
DIRICHLET_POINTS = 64


@dataclass
class LoadedRun:
    """A search run's settings, table, and trained supernet and hypernetwork."""

    path: Path
    config: SearchConfig
    record: dict[str, object]
    table: LatencyTable
    supernet: Network
    hypernet: Hypernetwork
    _data: Dataset | None = field(default=None, repr=False)

    @property
    def space(self) -> SearchSpace:
        return self.table.space

    def arch(self, s: torch.Tensor) -> Genotype:
        """arch(s): the argmax op of every edge at penalty vector s."""
        with torch.no_grad():
            return arch_at(self.space, self.hypernet(s))

    def data(self, hooks: Hooks | None = None) -> Dataset:
        """The run's data set, read once (a big folder of images takes a while)."""
        if self._data is None:
            config = self.config
            self._data = load_dataset(config.dataset, self.space, config.data_dir,
                                      config.download, config.val_fraction, config.limit_train,
                                      hooks)
        return self._data


def load_run(path: Path) -> LoadedRun:
    """Read a run folder; every problem (not a run, table gone or changed, no finished
    epoch) raises UserError with the fix."""
    record, table = read_run_record(path)
    checkpoint = RunFolder(path).load_checkpoint()
    if checkpoint is None:
        raise UserError(f"run {path} has not finished an epoch yet: continue it with "
                        f"`hwnas search --resume`")
    # config.json's "config" is SearchConfig.to_dict() (run_folder.run_record)
    config = SearchConfig.from_dict(cast("dict[str, object]", record["config"]))
    space = table.space
    supernet = build_supernet(space)
    hypernet = Hypernetwork(reference_points(len(space.ops)), CELL_TYPES, space.edges_per_cell,
                            config.sigma)
    states = checkpoint["state"]
    supernet.load_state_dict(states["supernet"])
    hypernet.load_state_dict(states["hypernet"])
    return LoadedRun(path, config, record, table, supernet.eval(), hypernet.eval())


def query_points(run: LoadedRun) -> torch.Tensor:
    """Where the family is read (N, k): the vertices, the centre, the paper's probe vectors,
    the device's own s_dev for every backend, a simplex grid and Dirichlet samples."""
    space = run.space
    k = len(space.ops)
    resolution = max(r for r in range(1, 41) if math.comb(r + k - 1, k - 1) <= GRID_POINTS)
    samples = np.random.default_rng(run.config.seed).dirichlet(np.ones(k), DIRICHLET_POINTS)
    named = [*torch.eye(k), uniform_penalty(space), *(penalty_on(space, op) for op in space.ops),
             *(torch.tensor(list(device_penalty(run.table, b).values()), dtype=torch.float32)
               for b in run.table.backends)]
    return torch.cat([torch.stack(named), simplex_grid(k, resolution),
                      torch.tensor(samples, dtype=torch.float32)])


def sweep(run: LoadedRun, hooks: Hooks | None = None) -> list[Record]:
    """One record per distinct architecture of the family (fields: see `describe`)."""
    hooks = hooks or Hooks()
    points = query_points(run)
    first_s: dict[Genotype, torch.Tensor] = {}
    hits: dict[Genotype, int] = {}
    for s in points:
        genotype = run.arch(s)
        first_s.setdefault(genotype, s)
        hits[genotype] = hits.get(genotype, 0) + 1
    data = run.data(hooks)
    hooks.start("evaluating", len(first_s))
    rows = []
    for genotype, s in first_s.items():
        rows.append({**describe(run, genotype, s, data), "query_points": hits[genotype]})
        hooks.advance(f"{len(rows)}/{len(first_s)}")
    return rows


def describe(run: LoadedRun, genotype: Genotype, s: torch.Tensor,
             data: Dataset) -> dict[str, object]:
    """Accuracy, size and op counts of one member (`hwnas.search.family.pricing` adds its
    latencies)."""
    network, accuracy = member_network(run.space, genotype, run.supernet, data)
    row: dict[str, object] = {"genotype": genotype.to_json(), "s": [float(v) for v in s],
                              "accuracy": accuracy, "params": parameter_count(network)}
    for op, count in op_counts(run.space, genotype).items():
        row[f"count_{op}"] = count
    return row


def family(run: LoadedRun, hooks: Hooks | None = None,
           table: LatencyTable | None = None) -> tuple[list[Record], bool]:
    """The family priced on `table` (default: the run's): the cached members when they match
    this checkpoint, else a fresh sweep (written to the cache). Returns (family,
    members_came_from_cache)."""
    members = read_cached(run.path, run.table.fingerprint)
    cached = members is not None
    if members is None:
        members = sweep(run, hooks)
        write_cache(run.path, run.table.fingerprint, members)
    return priced(run.path, members, table or run.table), cached


def member_test_accuracy(run: LoadedRun, genotype: Genotype) -> float:
    """A member's accuracy on the test split, stored beside the family (`pick_test.json`):
    for reporting a pick only; `pick` chooses on validation, never on this figure."""
    data = run.data()
    value = accuracy(member(run.space, genotype, run.supernet, data.train), data.test)
    write_test_accuracy(run.path, genotype.to_json(), value)
    return value
