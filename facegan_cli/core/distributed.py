"""torch.distributed set-up for `torchrun`: the same command runs single-process or as one rank of several.

Training (train/loop.py) runs DDP on it; metrics and sampling shard their work with it: `shard` gives each
rank whole batches of the rows (so every batch is the one a single process would compute), and
`all_gather_rows` puts the ranks' results back together in row order on every rank.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from facegan_cli.core.launch import env_rank as env_rank  # where callers import it from

if TYPE_CHECKING:  # imported where used: core.outputs (and so the CLI) imports this module
    import numpy as np
    import torch


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
    import torch
    import torch.distributed as dist

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(rank_device(DistInfo(rank, world_size, local_rank), device))
        dist.init_process_group(backend=backend)
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank)


def rank_device(info: DistInfo, device: torch.device) -> torch.device:
    """The device of this rank: under torchrun each rank of a node takes the GPU of its local rank."""
    import torch

    if info.enabled and device.type == "cuda":
        return torch.device("cuda", info.local_rank)
    return device


@contextlib.contextmanager
def process_group(device: torch.device) -> Iterator[DistInfo]:
    """The process group of one command (one process without torchrun), left cleanly at its end: the
    barrier of `shutdown` after success, none after an error (the peers may never arrive). Inside a group
    that already exists (a script running several commands in one), it is that group, left as it is."""
    import torch.distributed as dist

    joined = dist.is_available() and dist.is_initialized()
    info = init_from_env(device)
    clean = False
    try:
        yield info
        clean = True
    finally:
        if not joined:
            shutdown(info, clean)


def shutdown(info: DistInfo, clean: bool = True) -> None:
    """Leave the process group. After a normal end every rank first meets the others at a barrier: a rank
    that tears its gloo pairs down while a peer is still finishing the last collective can make the
    peer's transport thread abort the process ("terminate called without an active exception").
    After an error (`clean=False`) the peers may never arrive, so no barrier is attempted."""
    import torch.distributed as dist

    if not (info.enabled and dist.is_initialized()):
        return
    if clean:
        dist.barrier()
    dist.destroy_process_group()


def gather_objects(info: DistInfo, obj: Any) -> list[Any]:
    """Every rank's `obj`, in rank order (a one-element list without DDP)."""
    import torch.distributed as dist

    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_flag(info: DistInfo, flag: bool) -> bool:
    """True on every rank if any rank says True (used for stop requests and NaN detection)."""
    import torch
    import torch.distributed as dist

    if not info.enabled:
        return flag
    t = torch.tensor([1 if flag else 0], dtype=torch.int32)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def barrier(info: DistInfo) -> None:
    import torch.distributed as dist

    if info.enabled:
        dist.barrier()


def sync_buffers(info: DistInfo, modules: dict[str, torch.nn.Module]) -> None:
    """Give every rank rank 0's buffers (BatchNorm running statistics).

    DDP broadcasts buffers from rank 0 at the start of each forward, so between forwards each rank holds
    the statistics of its own last shard; syncing before a checkpoint makes the saved state the one DDP
    would continue with, on every rank.
    """
    import torch.distributed as dist

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
    import torch.distributed as dist

    if not info.enabled:
        return
    for module in modules.values():
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, src=0)


def broadcast_object(info: DistInfo, obj: Any) -> Any:
    """Rank 0's `obj` on every rank (a small picklable value: a flag, names, a path)."""
    import torch.distributed as dist

    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0, device=_collective_device())
    return box[0]


def shard(n: int, batch_size: int, info: DistInfo) -> range:
    """The rows of `n` this rank works on: a contiguous run of whole `batch_size` batches (the last batch
    may be short), so each rank computes exactly the batches one process would, and rank order is row
    order. All rows without torchrun."""
    if not info.enabled:
        return range(n)
    batches = -(-n // batch_size)
    first = info.rank * batches // info.world_size
    last = (info.rank + 1) * batches // info.world_size
    return range(min(first * batch_size, n), min(last * batch_size, n))


def all_gather_rows(info: DistInfo, rows: np.ndarray) -> np.ndarray:
    """Every rank's `rows` (N_r x ..., one dtype and trailing shape on all ranks), concatenated in rank
    order, on every rank. Tensors travel through the backend's own collective (NCCL on the GPU), padded
    to the longest share."""
    import numpy as np
    import torch
    import torch.distributed as dist

    if not info.enabled:
        return rows
    counts = gather_objects(info, int(rows.shape[0]))
    device = _collective_device()
    padded = torch.zeros((max(counts), *rows.shape[1:]), dtype=torch.from_numpy(rows[:0]).dtype, device=device)
    padded[: rows.shape[0]] = torch.from_numpy(np.ascontiguousarray(rows)).to(device)
    parts = [torch.empty_like(padded) for _ in range(info.world_size)]
    dist.all_gather(parts, padded)
    return np.concatenate([part[:count].cpu().numpy() for part, count in zip(parts, counts, strict=True)])


def broadcast_rows(info: DistInfo, rows: np.ndarray) -> np.ndarray:
    """Rank 0's `rows` on every rank (the others pass any array of the same dtype and trailing shape)."""
    import numpy as np
    import torch
    import torch.distributed as dist

    if not info.enabled:
        return rows
    count = broadcast_object(info, int(rows.shape[0]))
    device = _collective_device()
    out = torch.empty((count, *rows.shape[1:]), dtype=torch.from_numpy(rows[:0]).dtype, device=device)
    if info.is_main:
        out.copy_(torch.from_numpy(np.ascontiguousarray(rows)))
    dist.broadcast(out, src=0)
    return out.cpu().numpy()


def current() -> DistInfo:
    """The process group this process is in now (`init_from_env` made it), or a single process."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return DistInfo()
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def _collective_device() -> torch.device:
    import torch
    import torch.distributed as dist

    # NCCL moves only CUDA tensors (on this rank's current GPU); gloo only CPU ones.
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
