"""Start one process per device (``--num-gpus``) on torch.distributed, or join a torchrun job.

NCCL is used on CUDA and gloo on CPU, so ``--num-gpus 2 MODEL.DEVICE cpu`` trains with two CPU
processes. Under ``torchrun`` (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` set), the processes already
exist and :func:`launch` only initialises the process group in each.

Several machines (``--num-machines N --machine-rank R --dist-url tcp://HOST:PORT``, the same URL
on every machine: the address of machine rank 0) meet before any worker starts. Machine 0's
launcher hosts the job's key-value store at HOST:PORT and every machine's launcher joins it,
registers its rank and its layout, and waits for machine 0's go-ahead; workers then join the
same store. An unreachable address, a machine that never comes, two machines with one rank, or
machines that disagree on ``--num-machines``/``--num-gpus`` end the launch with a
:class:`LaunchError` that says which, after at most ``OVVISION_RENDEZVOUS_TIMEOUT`` seconds
(default 600; the ``rendezvous_timeout`` argument of :func:`launch` overrides it), rather than a
hang. The collective-operation timeout of the running job is separate (``timeout``, 30 min).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ovvision.utils import comm

from .defaults import exit_with_error

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = timedelta(minutes=30)
RENDEZVOUS_TIMEOUT_ENV = "OVVISION_RENDEZVOUS_TIMEOUT"
DEFAULT_RENDEZVOUS_TIMEOUT = timedelta(minutes=10)
_KEY = "ovvision/launch"  # prefix of the launcher's keys in the job's store


class LaunchError(RuntimeError):
    """The job's layout is invalid, or its machines could not meet; the message says which."""


def resolve_backend(backend: str) -> str:
    """``"auto"`` → NCCL where CUDA is available, else gloo."""
    if backend == "auto":
        return "nccl" if torch.cuda.is_available() else "gloo"
    if backend not in ("nccl", "gloo"):
        raise ValueError(f"backend must be 'auto', 'nccl' or 'gloo', not {backend!r}")
    return backend


def launched_by_torchrun() -> bool:
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


def rendezvous_timeout_from_env() -> timedelta:
    """``OVVISION_RENDEZVOUS_TIMEOUT`` (seconds), or 10 minutes where it is unset."""
    text = os.environ.get(RENDEZVOUS_TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_RENDEZVOUS_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0:
        raise LaunchError(
            f"{RENDEZVOUS_TIMEOUT_ENV} must be a positive number of seconds, got {text!r}"
        )
    return timedelta(seconds=seconds)


def launch(
    main_func: Callable[..., Any],
    num_gpus_per_machine: int,
    num_machines: int = 1,
    machine_rank: int = 0,
    dist_url: str | None = None,
    args: tuple = (),
    timeout: timedelta = DEFAULT_TIMEOUT,
    backend: str = "auto",
    rendezvous_timeout: timedelta | None = None,
) -> None:
    """Run ``main_func(*args)`` in every process of a (possibly single-process) job.

    Args:
        main_func: the function each process runs.
        num_gpus_per_machine: processes per machine (GPUs, or CPU workers with gloo).
        num_machines: machines in the job.
        machine_rank: this machine's index, in ``[0, num_machines)``.
        dist_url: rendezvous URL: ``tcp://host:port`` (machine rank 0's address, the same on
            every machine) or ``file://path`` (a shared file system); None or "auto" picks a
            free local port (single machine only).
        args: arguments of ``main_func``.
        timeout: collective-operation timeout of the running job.
        backend: "auto", "nccl" or "gloo".
        rendezvous_timeout: how long machines wait for each other before the job starts (tcp://
            only); None reads ``OVVISION_RENDEZVOUS_TIMEOUT`` (seconds, default 600).

    Raises:
        LaunchError: a layout argument is out of range, or the machines could not meet within
            ``rendezvous_timeout``.
    """
    if launched_by_torchrun():
        _run_under_torchrun(main_func, args, timeout, resolve_backend(backend))
        return
    _check_layout(num_gpus_per_machine, num_machines, machine_rank)
    world_size = num_machines * num_gpus_per_machine
    if world_size <= 1:
        main_func(*args)
        return
    if dist_url in (None, "auto"):
        if num_machines != 1:
            raise LaunchError("--dist-url auto only works on one machine; pass tcp://host:port")
        dist_url = "tcp://127.0.0.1:0"  # the store picks a free port and keeps it
    store = None
    if dist_url.startswith("file://"):
        if num_machines > 1:
            logger.warning("file:// rendezvous across machines needs a shared file system")
        rendezvous: tuple[str, ...] = ("url", dist_url)
    else:
        host, port = _parse_tcp_url(dist_url)
        wait = rendezvous_timeout or rendezvous_timeout_from_env()
        store = _meet(host, port, dist_url, num_machines, num_gpus_per_machine, machine_rank, wait)
        rendezvous = ("tcp", host, str(store.port))
    try:
        mp.start_processes(
            _distributed_worker,
            nprocs=num_gpus_per_machine,
            args=(
                main_func,
                world_size,
                num_gpus_per_machine,
                machine_rank,
                rendezvous,
                args,
                timeout,
                resolve_backend(backend),
            ),
            daemon=False,
            start_method="spawn",
        )
    finally:
        del store  # machine 0 stops serving the store now, not at interpreter shutdown


def launch_from_args(main_func: Callable[[Any], Any], args: Any) -> None:
    """:func:`launch` ``main_func(args)`` as detectron2's flags in ``args`` describe.

    The backend is gloo when the config (``--config-file`` plus ``opts``) puts the model on the
    CPU, so ``--num-gpus 2 MODEL.DEVICE cpu`` runs two CPU processes even on a GPU machine. A
    :class:`LaunchError` ends the program with a one-line ``prog: error: ...`` and exit code 2.
    """
    from ovvision.config import load_config

    device = load_config(args.config_file, args.opts or []).MODEL.DEVICE
    try:
        launch(
            main_func,
            args.num_gpus,
            num_machines=args.num_machines,
            machine_rank=args.machine_rank,
            dist_url=args.dist_url,
            args=(args,),
            backend="gloo" if device == "cpu" else "auto",
        )
    except LaunchError as e:
        exit_with_error(e)


def _check_layout(num_gpus_per_machine: int, num_machines: int, machine_rank: int) -> None:
    if num_gpus_per_machine < 1:
        raise LaunchError(f"--num-gpus must be at least 1, got {num_gpus_per_machine}")
    if num_machines < 1:
        raise LaunchError(f"--num-machines must be at least 1, got {num_machines}")
    if not 0 <= machine_rank < num_machines:
        raise LaunchError(
            f"--machine-rank {machine_rank} is out of range for --num-machines {num_machines} "
            f"(machine ranks are 0 to {num_machines - 1})"
        )


def _parse_tcp_url(dist_url: str) -> tuple[str, int]:
    parsed = urlparse(dist_url)
    try:
        port = parsed.port
    except ValueError:
        port = None
    if parsed.scheme != "tcp" or not parsed.hostname or port is None:
        raise LaunchError(
            f"--dist-url must be tcp://host:port, file://path or auto, got {dist_url!r}"
        )
    return parsed.hostname, port


def _meet(
    host: str,
    port: int,
    dist_url: str,
    num_machines: int,
    num_gpus_per_machine: int,
    machine_rank: int,
    rendezvous_timeout: timedelta,
) -> dist.TCPStore:
    """Host (machine 0) or join the job's store and agree on the layout; returns the store."""
    deadline = time.monotonic() + rendezvous_timeout.total_seconds()
    within = f"within {rendezvous_timeout.total_seconds():g} s ({RENDEZVOUS_TIMEOUT_ENV})"
    if machine_rank == 0:
        try:
            store = dist.TCPStore(
                host, port, num_machines, True, rendezvous_timeout, wait_for_workers=False
            )
        except dist.DistError as e:
            raise LaunchError(f"machine rank 0 cannot serve --dist-url {dist_url}: {e}") from None
    else:
        _wait_until_reachable(host, port, deadline, f"--dist-url {dist_url} {within}")
        left = timedelta(seconds=max(deadline - time.monotonic(), 1.0))
        try:
            store = dist.TCPStore(host, port, None, False, left)
        except dist.DistError as e:
            raise LaunchError(f"cannot join the job at --dist-url {dist_url}: {e}") from None
    # The layout, then who this launcher is (the token tells two launchers of one process apart).
    me = f"{num_machines} {num_gpus_per_machine} {socket.gethostname()}:{os.getpid()} "
    me += secrets.token_hex(4)
    holder = store.compare_set(f"{_KEY}/machine{machine_rank}", "", me).decode()
    if holder != me:
        raise LaunchError(
            f"--machine-rank {machine_rank} is already taken by {holder.split()[2]} in the job "
            f"at {dist_url}; give each machine its own rank"
        )
    if machine_rank == 0:
        verdict = _approve_layout(store, dist_url, num_machines, deadline, within)
    else:
        try:
            verdict = _wait_for_key(store, f"{_KEY}/verdict", deadline)
            store.add(f"{_KEY}/heard", 1)
        except dist.DistError as e:
            raise LaunchError(f"lost machine rank 0 at --dist-url {dist_url}: {e}") from None
    if verdict is None:
        raise LaunchError(f"machine rank 0 at --dist-url {dist_url} gave no go-ahead {within}")
    if verdict != "ok":
        raise LaunchError(verdict)
    return store


def _approve_layout(
    store: dist.TCPStore, dist_url: str, num_machines: int, deadline: float, within: str
) -> str:
    """Machine 0: wait for every machine rank, then publish and return "ok" or what is wrong.

    A refusal is served until every machine that joined has read it (a few seconds at most), so
    that they stop with the same message rather than with a lost connection.
    """
    keys = [f"{_KEY}/machine{r}" for r in range(num_machines)]
    while not store.check(keys) and time.monotonic() < deadline:
        time.sleep(0.05)
    joined = [r for r, key in enumerate(keys) if store.check([key])]
    missing = sorted(set(range(num_machines)) - set(joined))
    verdict = "ok"
    if missing:
        verdict = (
            f"machine rank(s) {', '.join(map(str, missing))} did not join the job at "
            f"--dist-url {dist_url} {within}; start every machine with the same --dist-url "
            "and --num-machines"
        )
    else:
        layouts = [store.get(key).decode().split()[:2] for key in keys]
        if any(layout != layouts[0] for layout in layouts):
            seen = "; ".join(f"rank {r}: {m} x {g}" for r, (m, g) in enumerate(layouts))
            verdict = (
                f"machines disagree on --num-machines x --num-gpus ({seen}); pass the same "
                "values on every machine"
            )
    store.set(f"{_KEY}/verdict", verdict)
    if verdict != "ok":
        others, until = len(joined) - 1, time.monotonic() + 5.0
        while store.add(f"{_KEY}/heard", 0) < others and time.monotonic() < until:
            time.sleep(0.05)
    return verdict


def _wait_for_key(store: dist.TCPStore, key: str, deadline: float) -> str | None:
    while not store.check([key]):
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)
    return store.get(key).decode()


def _wait_until_reachable(host: str, port: int, deadline: float, what: str) -> None:
    """Retry a plain TCP connection until it succeeds or ``deadline`` passes.

    Checked in Python first because torch's store client logs a C++ stack trace for each failed
    attempt.
    """
    while True:
        left = deadline - time.monotonic()
        try:
            with socket.create_connection((host, port), timeout=max(min(left, 5.0), 0.1)):
                return
        except OSError as e:
            if time.monotonic() >= deadline:
                reason = e.strerror or type(e).__name__
                raise LaunchError(f"machine rank 0 was not reachable at {what}: {reason}") from None
        time.sleep(max(min(0.2, deadline - time.monotonic()), 0.0))


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
    rendezvous: tuple[str, ...],
    args: tuple,
    timeout: timedelta,
    backend: str,
) -> None:
    """One spawned worker: join the process group (through the launcher's store) and run."""
    _prepare_process(backend, local_rank, num_gpus_per_machine)
    rank = machine_rank * num_gpus_per_machine + local_rank
    group: dict[str, Any] = {"world_size": world_size, "rank": rank, "timeout": timeout}
    if rendezvous[0] == "tcp":
        group["store"] = dist.TCPStore(rendezvous[1], int(rendezvous[2]), None, False, timeout)
    else:
        group["init_method"] = rendezvous[1]
    dist.init_process_group(backend=backend, **group)
    del group
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
