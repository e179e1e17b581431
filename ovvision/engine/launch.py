"""Start one process per device (``--num-gpus``) on torch.distributed, or join a torchrun job.

NCCL is used on CUDA and gloo on CPU, so ``--num-gpus 2 MODEL.DEVICE cpu`` trains with two CPU
processes. Under ``torchrun`` (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` set), the processes already
exist and :func:`launch` only initialises the process group in each.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ovvision.utils import comm

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = timedelta(minutes=30)


def _find_free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def resolve_backend(backend: str) -> str:
    """``"auto"`` → NCCL where CUDA is available, else gloo."""
    if backend == "auto":
        return "nccl" if torch.cuda.is_available() else "gloo"
    if backend not in ("nccl", "gloo"):
        raise ValueError(f"backend must be 'auto', 'nccl' or 'gloo', not {backend!r}")
    return backend


def launched_by_torchrun() -> bool:
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


def launch(
    main_func: Callable[..., Any],
    num_gpus_per_machine: int,
    num_machines: int = 1,
    machine_rank: int = 0,
    dist_url: str | None = None,
    args: tuple = (),
    timeout: timedelta = DEFAULT_TIMEOUT,
    backend: str = "auto",
) -> None:
    """Run ``main_func(*args)`` in every process of a (possibly single-process) job.

    Args:
        main_func: the function each process runs.
        num_gpus_per_machine: processes per machine (GPUs, or CPU workers with gloo).
        num_machines: machines in the job.
        machine_rank: this machine's index.
        dist_url: rendezvous URL, e.g. ``tcp://host:port``; None or "auto" picks a free local
            port (single machine only).
        args: arguments of ``main_func``.
        timeout: collective-operation timeout.
        backend: "auto", "nccl" or "gloo".
    """
    if launched_by_torchrun():
        _run_under_torchrun(main_func, args, timeout, resolve_backend(backend))
        return
    world_size = num_machines * num_gpus_per_machine
    if world_size <= 1:
        main_func(*args)
        return
    if dist_url in (None, "auto"):
        if num_machines != 1:
            raise ValueError("dist_url='auto' only works on one machine; pass tcp://host:port")
        dist_url = f"tcp://127.0.0.1:{_find_free_port()}"
    if num_machines > 1 and dist_url.startswith("file://"):
        logger.warning("file:// rendezvous across machines needs a shared file system")
    mp.start_processes(
        _distributed_worker,
        nprocs=num_gpus_per_machine,
        args=(
            main_func,
            world_size,
            num_gpus_per_machine,
            machine_rank,
            dist_url,
            args,
            timeout,
            resolve_backend(backend),
        ),
        daemon=False,
        start_method="spawn",
    )


def launch_from_args(main_func: Callable[[Any], Any], args: Any) -> None:
    """:func:`launch` ``main_func(args)`` as detectron2's flags in ``args`` describe.

    The backend is gloo when the config (``--config-file`` plus ``opts``) puts the model on the
    CPU, so ``--num-gpus 2 MODEL.DEVICE cpu`` runs two CPU processes even on a GPU machine.
    """
    from ovvision.config import load_config

    device = load_config(args.config_file, args.opts or []).MODEL.DEVICE
    launch(
        main_func,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
        backend="gloo" if device == "cpu" else "auto",
    )


def _prepare_process(backend: str, local_rank: int, local_size: int) -> None:
    if backend == "nccl":
        if local_rank >= torch.cuda.device_count():
            raise RuntimeError(
                f"local rank {local_rank} has no GPU ({torch.cuda.device_count()} visible)"
            )
        torch.cuda.set_device(local_rank)
    else:  # CPU workers share the machine's cores instead of each using all of them
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_size))
    comm.set_local_process_info(local_rank, local_size)


def _distributed_worker(
    local_rank: int,
    main_func: Callable[..., Any],
    world_size: int,
    num_gpus_per_machine: int,
    machine_rank: int,
    dist_url: str,
    args: tuple,
    timeout: timedelta,
    backend: str,
) -> None:
    _prepare_process(backend, local_rank, num_gpus_per_machine)
    rank = machine_rank * num_gpus_per_machine + local_rank
    dist.init_process_group(
        backend=backend, init_method=dist_url, world_size=world_size, rank=rank, timeout=timeout
    )
    try:
        comm.synchronize()
        main_func(*args)
    finally:
        comm.destroy_process_group()


def _run_under_torchrun(
    main_func: Callable[..., Any], args: tuple, timeout: timedelta, backend: str
) -> None:
    local_size = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ["WORLD_SIZE"]))
    _prepare_process(backend, int(os.environ["LOCAL_RANK"]), local_size)
    dist.init_process_group(backend=backend, init_method="env://", timeout=timeout)
    try:
        comm.synchronize()
        main_func(*args)
    finally:
        comm.destroy_process_group()
