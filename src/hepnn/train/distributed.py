"""Distributed data parallel through ``torchrun``: no home-made engine.

``torchrun --standalone --nproc_per_node=N -m hepnn.cli train CFG`` sets RANK/WORLD_SIZE; we join the
process group (gloo on CPU, nccl on GPU), wrap the model in DDP, and each rank reads its own shard
of the jets. Outside torchrun everything is a no-op. A group joined here is left with ``leave()``: a
rank that exits with the group alive can abort (SIGABRT from gloo's threads at interpreter shutdown).
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn

_joined = False  # init_from_env made the process group, so leave() destroys it


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


def init_from_env(device: torch.device) -> bool:
    """Join the process group when started by torchrun; returns True if distributed."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available():
        return False
    global _joined
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
        _joined = True
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return True


def barrier() -> None:
    """Wait for every rank (no-op outside DDP). Called when training ends: while this rank waits, with
    the GIL released, gloo's worker threads drop the last collectives' tensors. A rank that exits
    with such a drop pending aborts (the thread takes the GIL during interpreter shutdown: SIGABRT,
    "terminate called without an active exception"), as rank 1 did in 1 of ~5 runs."""
    if world_size() > 1:
        dist.barrier()


def leave() -> None:
    """Destroy the process group ``init_from_env`` made (a caller's own group is left alone).

    Local, no collective: a rank that finished training leaves while rank 0 still evaluates.
    """
    global _joined
    if _joined and dist.is_initialized():
        dist.destroy_process_group()
    _joined = False


def wrap_ddp(model: nn.Module, device: torch.device) -> nn.Module:
    """DDP-wrap ``model`` when a process group is active, else return it unchanged."""
    if world_size() <= 1 or not any(p.requires_grad for p in model.parameters()):
        return model
    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def shard(indices, n_shards: int | None = None, index: int | None = None):
    """This rank's share of ``indices`` (strided, so shards differ in size by at most one)."""
    n_shards = world_size() if n_shards is None else n_shards
    index = rank() if index is None else index
    return indices[index::n_shards]


def agree(value: int, op: str, device: torch.device) -> int:
    """``value`` reduced over ranks with ``op`` ("min" or "max"); ``value`` itself outside DDP.

    Every rank must take the same number of training steps, or DDP's gradient all-reduce waits
    forever for the rank that stopped: the engine agrees on each epoch's batch count (the smallest
    shard's, as ``DistributedSampler(drop_last=True)`` does) and on stopping for a time budget (one
    rank's clock crossing it stops all).
    """
    if world_size() == 1:
        return value
    t = torch.tensor([value], dtype=torch.int64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN if op == "min" else dist.ReduceOp.MAX)
    return int(t.item())
