"""Helpers for code that runs in one process or in many (torch.distributed, gloo or NCCL)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.distributed as dist

# The gloo group for object collectives when the default group is NCCL; None until first needed.
_CPU_GROUP: dist.ProcessGroup | None = None
_LOCAL_RANK: int = 0
_LOCAL_SIZE: int = 1


def is_distributed() -> bool:
    """True when a default process group is initialised."""
    return dist.is_available() and dist.is_initialized()


def get_world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def get_rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def get_local_rank() -> int:
    """Rank of this process among the processes of its machine."""
    return _LOCAL_RANK if is_distributed() else 0


def get_local_size() -> int:
    """Number of processes on this machine."""
    return _LOCAL_SIZE if is_distributed() else 1


def is_main_process() -> bool:
    return get_rank() == 0


def set_local_process_info(local_rank: int, local_size: int) -> None:
    """Record this process's place on its machine (called by :func:`ovvision.engine.launch`)."""
    global _LOCAL_RANK, _LOCAL_SIZE
    _LOCAL_RANK, _LOCAL_SIZE = int(local_rank), int(local_size)


def synchronize() -> None:
    """Barrier across all processes; a no-op in a single process."""
    if get_world_size() == 1:
        return
    if dist.get_backend() == dist.Backend.NCCL and torch.cuda.is_available():
        dist.barrier(device_ids=[torch.cuda.current_device()])
    else:
        dist.barrier()


def _cpu_group() -> dist.ProcessGroup:
    """A gloo group for Python objects, so object collectives never touch GPU memory.

    Only the extra group made for NCCL jobs is kept here, and :func:`destroy_process_group` drops
    it: a reference held past the job would keep a destroyed group, and its worker threads, alive
    until interpreter shutdown.
    """
    global _CPU_GROUP
    if dist.get_backend() == "gloo":
        return dist.group.WORLD
    if _CPU_GROUP is None:
        _CPU_GROUP = dist.new_group(backend="gloo")
    return _CPU_GROUP


def destroy_process_group() -> None:
    """Destroy the default process group and the groups made from it, and join their threads.

    Every reference this module holds is dropped first, so the groups are freed here, while
    Python still runs, rather than at interpreter shutdown. A gloo worker thread that releases
    its last collective's tensors during shutdown needs the GIL, which a finalizing interpreter
    no longer grants (the thread is force-unwound through a ``noexcept`` destructor and the
    process aborts with "terminate called without an active exception").
    """
    global _CPU_GROUP
    _CPU_GROUP = None
    if is_distributed():
        dist.destroy_process_group()


def all_gather(data: Any) -> list[Any]:
    """Gather a picklable object from every rank; returns the list ordered by rank."""
    world = get_world_size()
    if world == 1:
        return [data]
    out: list[Any] = [None] * world
    dist.all_gather_object(out, data, group=_cpu_group())
    return out


def gather(data: Any, dst: int = 0) -> list[Any]:
    """Gather a picklable object on rank ``dst``; other ranks get ``[]``."""
    world = get_world_size()
    if world == 1:
        return [data]
    out: list[Any] | None = [None] * world if get_rank() == dst else None
    dist.gather_object(data, out, dst=dst, group=_cpu_group())
    return out if out is not None else []


def shared_random_seed() -> int:
    """A random int drawn on rank 0 and shared by all ranks."""
    return int(all_gather(int(np.random.randint(2**31)))[0])


def reduce_dict(values: dict[str, torch.Tensor], average: bool = True) -> dict[str, torch.Tensor]:
    """Sum (or average) scalar tensors over all ranks; keys must match across ranks."""
    world = get_world_size()
    if world == 1:
        return values
    with torch.no_grad():
        names = sorted(values)
        stacked = torch.stack([values[k] for k in names])
        dist.all_reduce(stacked)
        if average:
            stacked /= world
        return dict(zip(names, stacked))
