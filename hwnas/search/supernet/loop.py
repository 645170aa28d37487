"""One search run: train the supernet's weights and the hypernetwork together, one penalty
vector s per step, checkpointing every epoch (`run_search`, the one training function).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from hwnas.arch.network import Network
from hwnas.arch.space import SearchSpace
from hwnas.hooks import Hooks
from hwnas.latency.model.table import LatencyTable
from hwnas.search import distributed
from hwnas.search.config import SearchConfig
from hwnas.search.data.dataset import Dataset, load_dataset
from hwnas.search.family import members as family
from hwnas.search.family.derive import member_accuracy
from hwnas.search.peak_memory import peak_mb, reset_peak
from hwnas.search.supernet.hypernet import Hypernetwork, reference_points
from hwnas.search.supernet.latency_terms import (
    CELL_TYPES,
    NORMAL,
    REDUCE,
    LatencyTerms,
    latency_terms,
)
from hwnas.search.supernet.mixed_network import build_supernet, hard_sample
from hwnas.search.supernet.objective import Objective, gumbel_softmax, sample_penalty
from hwnas.search.supernet.run_folder import RunFolder, open_run


@dataclass(frozen=True)
class EpochMetrics:
    """One row of metrics.csv, and what the progress callback receives."""

    epoch: int  # epochs finished, counting from 1
    loss: float  # mean objective per step: cross-entropy + penalty
    task_loss: float  # mean cross-entropy per step
    temperature: float  # Gumbel-softmax temperature used in this epoch
    val_acc_uniform: float  # validation accuracy of arch(uniform s), as `pick` reports it
    val_acc_dev: float  # validation accuracy of arch(s_dev), as `pick` reports it
    expected_ms_dev: float  # differentiable expected latency at s_dev, in ms (soft γ̃)
    arch_ms_dev: float  # table latency of the discrete arch(s_dev), in ms
    train_s: float  # wall time of the epoch's training steps, in seconds
    # peak memory of the epoch (training and validation), in MiB: process RSS on the CPU, the
    # tensors' on CUDA (`hwnas.search.peak_memory`); NaN in runs from before it was recorded
    peak_memory_mb: float = math.nan


@dataclass
class SearchState:
    """What a checkpoint holds besides the epoch count."""

    supernet: Network
    hypernet: Hypernetwork
    optimizer_weights: torch.optim.Optimizer
    optimizer_hypernet: torch.optim.Optimizer

    def state_dict(self) -> dict[str, object]:
        return {name: getattr(self, name).state_dict()
                for name in ("supernet", "hypernet", "optimizer_weights", "optimizer_hypernet")}

    def load_state_dict(self, states: dict[str, Any]) -> None:
        for name, state in states.items():
            getattr(self, name).load_state_dict(state)


@dataclass(frozen=True)
class SearchResult:
    run_dir: Path
    metrics: list[EpochMetrics]
    state: SearchState
    terms: LatencyTerms


Progress = Callable[[EpochMetrics], None]


def run_search(config: SearchConfig, table: LatencyTable,
               progress: Progress | None = None, hooks: Hooks | None = None) -> SearchResult:
    """Train (or resume) the run `config` describes on `table`'s space and latencies;
    `hooks` see the data being read (a big folder takes a while) and the epochs. The run
    records its paths resolved, so `pick` finds them from any working directory.

    Under torchrun every rank runs this function on its shard of each global batch
    (`hwnas.search.distributed`); rank 0 alone writes, and only it calls `progress` and
    `hooks`."""
    if not distributed.is_writer() or hooks is None:
        hooks = Hooks()
    if not distributed.is_writer():
        progress = None
    config = config.resolved()
    device = distributed.start(config.device, config.batch_size)
    space = table.space
    terms = latency_terms(table, config.backend).to(device)
    data = load_dataset(config.dataset, space, config.data_dir, config.download,
                        config.val_fraction, config.limit_train, hooks).to(device)
    # only after every check: a failed start writes nothing
    run = distributed.on_writer(lambda: open_run(config, table))

    state = build_state(config, space, device)
    metrics: list[EpochMetrics] = []
    checkpoint = run.load_checkpoint()
    if checkpoint is not None:  # the checkpoint, not metrics.csv, is the source of truth
        distributed.check_same_world(f"run {run.path}", checkpoint.get("world", 1))
        state.load_state_dict(checkpoint["state"])
        metrics = [EpochMetrics(**row) for row in checkpoint["metrics"]]
    objective = Objective(terms, config.kappa, config.beta, config.latency_weight)
    hooks.start("epochs", config.epochs - len(metrics))
    for epoch in range(len(metrics), config.epochs):
        row = train_epoch(state, objective, data, config, space, epoch)
        metrics.append(row)
        if distributed.is_writer():
            save(run, state, metrics)
        hooks.advance(f"epoch {epoch + 1}")
        if progress is not None:
            progress(row)
    return SearchResult(run.path, metrics, state, terms)


def memory_format(config: SearchConfig) -> torch.memory_format:
    """The layout the supernet trains in: its weights, and every batch it is fed."""
    return torch.channels_last if config.channels_last else torch.contiguous_format


def build_state(config: SearchConfig, space: SearchSpace, device: torch.device) -> SearchState:
    """Fresh supernet and hypernetwork (initialised from the seed) and their Adam optimisers."""
    torch.manual_seed(config.seed)
    supernet = build_supernet(space).to(device).to(memory_format=memory_format(config))
    references = reference_points(len(space.ops)).to(device)
    hypernet = Hypernetwork(references, CELL_TYPES, space.edges_per_cell, config.sigma).to(device)
    return SearchState(supernet, hypernet,
                       torch.optim.Adam(supernet.parameters(), lr=config.lr_weights),
                       torch.optim.Adam(hypernet.parameters(), lr=config.lr_hypernet))


def temperature(epoch: int, config: SearchConfig) -> float:
    """Linear from temperature_start at the first epoch to temperature_end at the last."""
    if config.epochs == 1:
        return config.temperature_start
    fraction = epoch / (config.epochs - 1)
    return config.temperature_start + fraction * (config.temperature_end - config.temperature_start)


def epoch_generator(seed: int, epoch: int, device: torch.device) -> torch.Generator:
    """Every random draw of an epoch (order, s, Gumbel noise) comes from (seed, epoch), on the
    training device, so a resumed run replays exactly what an uninterrupted one would have
    drawn (on the same kind of device: each device has its own random stream)."""
    return torch.Generator(device=device).manual_seed(seed * 1_000_003 + epoch)


def train_step(state: SearchState, objective: Objective, images: torch.Tensor,
               labels: torch.Tensor, t: float, generator: torch.Generator,
               sampling: str, global_batch: int | None = None) -> torch.Tensor:
    """One step on one s ~ Dirichlet(1..1); returns (objective, cross-entropy) as a detached
    (2,) tensor on the training device, so the step waits for nothing on the host. Under
    torchrun `images` is this rank's shard of a batch of `global_batch` images, and the
    returned figures are this rank's shares of the batch's."""
    k = objective.terms.edge_ms.shape[-1]
    s = sample_penalty(k, generator).to(images.device)
    logits = state.hypernet(s)
    gamma = gumbel_softmax(logits, t, generator)
    normal, reduce = (gamma[NORMAL], gamma[REDUCE]) if sampling == "soft" else hard_sample(gamma)
    outputs = state.supernet(images, normal, reduce)
    task_loss = distributed.shard_mean(partial(F.cross_entropy, outputs, labels),
                                       global_batch or len(labels))
    penalty = distributed.shared_term(objective.penalty(logits, s, t)[0])
    loss = task_loss + penalty
    state.optimizer_weights.zero_grad(set_to_none=True)
    state.optimizer_hypernet.zero_grad(set_to_none=True)
    loss.backward()
    distributed.average_gradients([state.supernet, state.hypernet])
    state.optimizer_weights.step()
    state.optimizer_hypernet.step()
    return torch.stack([loss.detach(), task_loss.detach()])


def train_epoch(state: SearchState, objective: Objective, data: Dataset, config: SearchConfig,
                space: SearchSpace, epoch: int) -> EpochMetrics:
    t = temperature(epoch, config)
    device = data.train.device
    generator = epoch_generator(config.seed, epoch, device)
    reset_peak(device)
    state.supernet.train()
    started = time.perf_counter()
    totals, steps = torch.zeros(2, device=device), 0
    layout = memory_format(config)
    rank, world = distributed.rank(), distributed.world()
    for images, labels in data.train.batches(config.batch_size, generator, rank, world):
        global_batch = distributed.global_count(steps, config.batch_size, len(data.train))
        totals += train_step(state, objective, images.contiguous(memory_format=layout), labels,
                             t, generator, config.sampling, global_batch)
        steps += 1
    # the epoch's one wait for the device (and, under torchrun, for the other ranks)
    loss, task_loss = (distributed.sum_across(totals) / steps).tolist()
    distributed.average_buffers(state.supernet)
    train_s = time.perf_counter() - started
    s_dev = objective.terms.s_dev
    with torch.no_grad():
        logits_dev = state.hypernet(s_dev)
        logits_uniform = state.hypernet(torch.full_like(s_dev, 1.0 / len(s_dev)))
        soft_dev = torch.softmax(logits_dev / t, dim=-1)
        arch_dev = family.one_hot(logits_dev)
        return EpochMetrics(
            epoch=epoch + 1,
            loss=loss,
            task_loss=task_loss,
            temperature=t,
            val_acc_uniform=member_accuracy(space, family.genotype(space, logits_uniform),
                                            state.supernet, data),
            val_acc_dev=member_accuracy(space, family.genotype(space, logits_dev),
                                        state.supernet, data),
            expected_ms_dev=float(objective.terms.expected_ms(soft_dev)),
            arch_ms_dev=float(objective.terms.expected_ms(arch_dev)),
            train_s=train_s,
            peak_memory_mb=peak_mb(device))  # after the validation above: arguments run in order


def save(run: RunFolder, state: SearchState, metrics: list[EpochMetrics]) -> None:
    """Checkpoint (with the metrics), then metrics.csv and the LATEST pointer; each atomically."""
    rows = [asdict(row) for row in metrics]
    run.save_epoch({"epoch": len(metrics), "state": state.state_dict(), "metrics": rows,
                    "world": distributed.world()}, rows)
