"""torch.distributed set-up for `torchrun`: the same command runs single-process or as one DDP rank."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_from_env(device: torch.device) -> DistInfo:
    """Join the process group torchrun describes in WORLD_SIZE/RANK/LOCAL_RANK (gloo on CPU, nccl on CUDA)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank)


def shutdown(info: DistInfo, clean: bool = True) -> None:
    """Leave the process group. After a normal end every rank first meets the others at a barrier: a rank
    that tears its gloo pairs down while a peer is still finishing the last collective can make the
    peer's transport thread abort the process ("terminate called without an active exception").
    After an error (`clean=False`) the peers may never arrive, so no barrier is attempted."""
    if not (info.enabled and dist.is_initialized()):
        return
    if clean:
        dist.barrier()
    dist.destroy_process_group()


def gather_objects(info: DistInfo, obj: Any) -> list[Any]:
    """Every rank's `obj`, in rank order (a one-element list without DDP)."""
    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_flag(info: DistInfo, flag: bool) -> bool:
    """True on every rank if any rank says True (used for stop requests and NaN detection)."""
    if not info.enabled:
        return flag
    t = torch.tensor([1 if flag else 0], dtype=torch.int32)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def sync_buffers(info: DistInfo, modules: dict[str, torch.nn.Module]) -> None:
    """Give every rank rank 0's buffers (BatchNorm running statistics).

    DDP broadcasts buffers from rank 0 at the start of each forward, so between forwards each rank holds
    the statistics of its own last shard; syncing before a checkpoint makes the saved state the one DDP
    would continue with, on every rank.
    """
    if not info.enabled:
        return
    for module in modules.values():
        for buffer in module.buffers():
            dist.broadcast(buffer.data, src=0)


def broadcast_modules(info: DistInfo, modules: dict[str, torch.nn.Module]) -> None:
    """Give every rank rank 0's parameters and buffers.

    Ranks are seeded differently (they draw different noise), so their freshly built networks differ.
    DDP broadcasts the parameters it wraps, but not the copies it does not see: a generator EMA, or the
    layers of a growing network that a later phase will train.
    """
    if not info.enabled:
        return
    for module in modules.values():
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, src=0)
