"""Data-parallel training on torch.distributed, started by `torchrun`: every rank holds the
whole supernet (or network) and trains on its shard of each global batch.

What keeps every rank's run one run:
- every random draw (batch order, s, Gumbel noise, augmentation) comes from (seed, epoch), so
  every rank draws the same; each rank then takes its contiguous shard of the global batch
  (`torch.tensor_split`, as `Split.batches` does);
- each rank's loss is scaled so that the all-reduced *sum* of the gradients is the gradient of
  the one-process loss on the whole global batch (`shard_mean`, `shared_term`);
- batch-norm normalises each shard with its own statistics (synchronised batch-norm runs on
  CUDA only in PyTorch); the running statistics are averaged across ranks after every epoch,
  so checkpoints and members do not depend on the rank that wrote them.

Without torchrun (`WORLD_SIZE` unset or 1) nothing here talks to anyone: `world()` is 1 and
every function returns its input.
"""

from __future__ import annotations

import atexit
import signal
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from hwnas.errors import UserError
from hwnas.search.launch import Launch

T = TypeVar("T")


def start(device: str, batch_size: int, batch_option: str = "--batch-size") -> torch.device:
    """The device this process trains on, after joining torchrun's process group (gloo on the
    CPU, nccl with `device` cuda, each rank on its LOCAL_RANK GPU). Every check comes before
    the group is joined, so a refused start leaves no rank waiting for another."""
    launch = Launch.from_environment()
    if launch.world == 1:
        if device == "cuda" and not torch.cuda.is_available():
            raise UserError("--device cuda but no CUDA GPU is visible to PyTorch: use "
                            "--device cpu")
        return torch.device(device)
    if batch_size % launch.world:
        raise UserError(f"{batch_option} {batch_size} is the global batch, split evenly across "
                        f"{launch.world} ranks: use a multiple of {launch.world}")
    if device == "cuda":
        if not torch.cuda.is_available():
            raise UserError("--device cuda under torchrun uses nccl, which needs CUDA GPUs, and "
                            "none is visible to PyTorch: use --device cpu (gloo)")
        if torch.cuda.device_count() < launch.local_world:
            raise UserError(f"--device cuda with {launch.local_world} ranks on this node but "
                            f"{torch.cuda.device_count()} GPU(s): pass --nproc-per-node "
                            f"{torch.cuda.device_count()} or fewer")
        torch.cuda.set_device(launch.local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device == "cuda" else "gloo")
        atexit.register(_leave)  # after a failure; a finished command calls `finish`
        # torchrun stops its workers with SIGTERM (on Ctrl-C or a failed peer): end like Ctrl-C,
        # so the last finished epoch is kept and the user is told to --resume
        signal.signal(signal.SIGTERM, _interrupt)
    return torch.device("cuda", launch.local_rank) if device == "cuda" else torch.device("cpu")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def finish() -> None:
    """Leave the process group together, once every rank's work is done. Left to the C++
    destructors at exit, a gloo group aborted a finished rank in about one 2-rank run in four
    ("terminate called without an active exception"); a barrier, then leaving, did not in 14.
    The command that owns the process calls this (the CLI's `search` and `train`): a library
    caller may go on using the group after `run_search`."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _leave() -> None:
    """At exit after a failure, when the other ranks may not come to a barrier."""
    if dist.is_initialized():
        dist.destroy_process_group()


def world() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def is_writer() -> bool:
    """Rank 0 alone writes run folders, checkpoints, metrics and progress (known from
    torchrun's environment before the process group is joined)."""
    return rank() == 0 if dist.is_initialized() else Launch.from_environment().is_writer


def on_writer(action: Callable[[], T]) -> T:
    """`action` on rank 0, its result (or its UserError) handed to every rank: checks that
    read or create the run folder run once, and a refusal stops every rank, not just one."""
    if world() == 1:
        return action()
    outcome: list[tuple[str, Any] | None] = [None]
    if is_writer():
        try:
            outcome[0] = ("ok", action())
        except UserError as exc:
            outcome[0] = ("error", str(exc))
    dist.broadcast_object_list(outcome, src=0)
    assert outcome[0] is not None  # rank 0 has just sent it
    kind, value = outcome[0]
    if kind == "error":
        raise UserError(str(value))
    result: T = value
    return result


def check_same_world(label: str, trained_on: int) -> None:
    """A run resumes on as many ranks as it was trained on (`trained_on`; 1 for runs from
    before torchrun support): batch-norm normalises each rank's shard of a batch by itself,
    so another count would continue another run."""
    if trained_on != world():
        how = ("without torchrun" if trained_on == 1
               else f"under torchrun with {trained_on} ranks in all")
        raise UserError(f"{label} was trained on {trained_on} process(es), this resume has "
                        f"{world()}: resume it {how}")


def global_count(step: int, batch_size: int, total: int) -> int:
    """Images in the global batch of step `step` (counting from 0) of a split of `total`."""
    return min(batch_size, total - step * batch_size)


def shard_start(batch: int, rank: int, world: int) -> int:
    """Where rank `rank`'s images start in a global batch of `batch` (the contiguous shards of
    `torch.tensor_split`, as `Split.batches` cuts them: the first `batch % world` shards hold
    one image more)."""
    return sum(batch // world + (r < batch % world) for r in range(rank))


def shard_mean(loss: Callable[..., torch.Tensor], global_batch: int) -> torch.Tensor:
    """The loss of this rank's shard as its share of the global batch's mean; `loss` takes a
    `reduction=` (a partial of `F.cross_entropy`). One process: `loss(reduction="mean")`,
    exactly as always. Under torchrun: `loss(reduction="sum") / global_batch`, so the
    all-reduced sum of the ranks' gradients is the gradient of the mean over the whole
    batch."""
    if world() == 1:
        return loss(reduction="mean")
    return loss(reduction="sum") / global_batch


def shared_term(term: torch.Tensor) -> torch.Tensor:
    """A term every rank computes alike (the penalty): its gradient is summed `world` times."""
    return term / world() if world() > 1 else term


def average_gradients(modules: Iterable[nn.Module]) -> None:
    """Sum every existing gradient across ranks in one all-reduce. Every rank has gradients
    for the same parameters (the same ops are sampled on every rank), so the flat buffers
    line up."""
    if world() == 1:
        return
    grads = [p.grad for module in modules for p in module.parameters() if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    offset = 0
    for grad in grads:
        grad.copy_(flat[offset:offset + grad.numel()].view_as(grad))
        offset += grad.numel()


def average_buffers(module: nn.Module) -> None:
    """Average floating-point buffers (batch-norm running statistics) across ranks."""
    if world() == 1:
        return
    for buffer in module.buffers():
        if buffer.is_floating_point():
            dist.all_reduce(buffer)
            buffer.div_(world())


def sum_across(values: torch.Tensor) -> torch.Tensor:
    """`values` summed over ranks (the tensor itself with one rank)."""
    if world() > 1:
        dist.all_reduce(values)
    return values


def parameter_bytes(modules: Iterable[nn.Module]) -> int:
    """Bytes one step's gradient all-reduce carries per rank (every parameter, soft sampling)."""
    return sum(p.numel() * p.element_size() for module in modules for p in module.parameters())
