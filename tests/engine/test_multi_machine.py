"""Two "machines" on the loopback address: two tools/train_net.py processes, one machine rank
each, train one model together; the training images each rank reads and the checkpoint files
each rank writes are recorded by an audit hook in every process (rank of the writer included)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ..tools import test_train_net_and_demo as train_net_tests

CONFIG, ROOT, _opts = train_net_tests.CONFIG, train_net_tests.ROOT, train_net_tests._opts
tiny_ov_shapes = train_net_tests.tiny_ov_shapes  # the module-scoped tiny OV-Shapes fixture

# Imported by every Python process started with it on PYTHONPATH (spawned workers included): it
# logs "rank<TAB>read|write<TAB>path" for each training image opened and each checkpoint
# file opened for writing, with the torch.distributed rank of the process.
_AUDIT_HOOK = textwrap.dedent(
    """
    import os, sys

    _LOG = os.environ["OVVISION_TEST_IO_LOG"]
    _IMAGES = os.environ["OVVISION_TEST_IMAGE_DIR"]
    _busy = False

    def _rank():
        dist = sys.modules.get("torch.distributed")
        if dist is None or not dist.is_available() or not dist.is_initialized():
            return None
        return dist.get_rank()

    def _hook(event, args):
        global _busy
        if _busy or event != "open" or not isinstance(args[0], (str, os.PathLike)):
            return
        path, flags = os.fspath(args[0]), args[2]
        writing = bool(flags & (os.O_WRONLY | os.O_RDWR))
        if writing and ".pth" in os.path.basename(path):
            kind = "write"
        elif not writing and path.startswith(_IMAGES):
            kind = "read"
        else:
            return
        _busy = True
        try:
            with open(os.path.join(_LOG, f"{os.getpid()}.tsv"), "a") as f:
                f.write(f"{_rank()}\\t{kind}\\t{path}\\n")
        finally:
            _busy = False

    sys.addaudithook(_hook)
    """
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _train_net(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "w") as f:
        return subprocess.Popen(
            [sys.executable, str(ROOT / "tools" / "train_net.py"), *args],
            env=env, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def _wait_all(procs: list[subprocess.Popen], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    try:
        return [p.wait(max(deadline - time.monotonic(), 1)) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def _machine_args(rank: int, port: int) -> list[str]:
    return ["--config-file", str(CONFIG), "--num-machines", "2", "--machine-rank", str(rank),
            "--num-gpus", "1", "--dist-url", f"tcp://127.0.0.1:{port}"]  # fmt: skip


@pytest.mark.slow  # four processes (two launchers, two workers) each import torch
def test_two_machines_train_on_different_images_and_checkpoint_once(tiny_ov_shapes, tmp_path):
    root, env = tiny_ov_shapes
    hook_dir, io_log = tmp_path / "hook", tmp_path / "io"
    hook_dir.mkdir()
    io_log.mkdir()
    (hook_dir / "sitecustomize.py").write_text(_AUDIT_HOOK)
    images = root / "ov_shapes" / "train"
    env = {
        **env,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(hook_dir), env.get("PYTHONPATH")])),
        "OVVISION_TEST_IO_LOG": str(io_log),
        "OVVISION_TEST_IMAGE_DIR": str(images) + os.sep,
    }
    steps, port = 4, _free_port()  # SOLVER.STEPS is (3,)
    # Each machine has its own output folder, as it would have its own disk.
    outs = [tmp_path / "machine0", tmp_path / "machine1"]
    procs = [
        _train_net(
            [
                *_machine_args(rank, port),
                *_opts(root, outs[rank], steps),
                "MODEL.DEVICE",
                "cpu",
                "DATASETS.TEST",
                "()",
            ],
            env,
            tmp_path / f"machine{rank}.log",
        )  # fmt: skip
        for rank in (0, 1)
    ]
    codes = _wait_all(procs, timeout=900)
    logs = [(tmp_path / f"machine{r}.log").read_text() for r in (0, 1)]
    assert codes == [0, 0], "\n\n".join(log[-3000:] for log in logs)

    records = [
        line.split("\t") for tsv in io_log.glob("*.tsv") for line in tsv.read_text().splitlines()
    ]
    reads = {r: {Path(p).name for rank, kind, p in records if kind == "read" and rank == r}
             for r in ("0", "1")}  # fmt: skip
    # Every training read happened inside the job, on rank 0 or 1; one image per rank per step
    # (IMS_PER_BATCH 2 over 2 ranks), each from its own shard of the sampler's stream.
    assert {rank for rank, kind, _ in records if kind == "read"} == {"0", "1"}
    assert len(reads["0"]) >= steps and len(reads["1"]) >= steps, reads
    assert not reads["0"] & reads["1"], reads
    # Checkpoints: written by rank 0 only, model_final once, nothing on machine 1's disk.
    writes = [(rank, Path(p).name) for rank, kind, p in records if kind == "write"]
    assert writes and {rank for rank, _ in writes} == {"0"}, writes
    assert sum(name.startswith(".model_final.pth.") for _, name in writes) == 1, writes
    assert (outs[0] / "model_final.pth").is_file()
    assert (outs[0] / "last_checkpoint").read_text() == "model_final.pth"
    assert not list(outs[1].glob("*.pth")) and not (outs[1] / "last_checkpoint").exists()
    assert (outs[1] / "log.txt.rank1").is_file()  # rank 1 did run on machine 1


def test_a_wrong_machine_rank_is_a_one_line_error(tiny_ov_shapes, tmp_path):
    root, env = tiny_ov_shapes
    args = [*_machine_args(2, _free_port()), *_opts(root, tmp_path / "out", 1)]
    proc = _train_net(args, env, tmp_path / "log")
    assert _wait_all([proc], timeout=300) == [2]
    out = (tmp_path / "log").read_text()
    assert out.strip().splitlines()[-1] == (
        "train_net.py: error: --machine-rank 2 is out of range for --num-machines 2 "
        "(machine ranks are 0 to 1)"
    ), out[-3000:]
    assert "Traceback" not in out


def test_an_unreachable_machine_zero_ends_within_the_rendezvous_timeout(tiny_ov_shapes, tmp_path):
    root, env = tiny_ov_shapes
    port = _free_port()  # nobody listens there: machine rank 1 starts alone
    env = {**env, "OVVISION_RENDEZVOUS_TIMEOUT": "5"}
    args = [*_machine_args(1, port), *_opts(root, tmp_path / "out", 1)]
    start = time.monotonic()
    proc = _train_net(args, env, tmp_path / "log")
    assert _wait_all([proc], timeout=300) == [2]
    elapsed = time.monotonic() - start
    out = (tmp_path / "log").read_text()
    assert out.strip().splitlines()[-1] == (
        f"train_net.py: error: machine rank 0 was not reachable at --dist-url "
        f"tcp://127.0.0.1:{port} within 5 s (OVVISION_RENDEZVOUS_TIMEOUT): Connection refused"
    ), out[-3000:]
    assert "Traceback" not in out
    assert elapsed >= 5, elapsed  # it did wait for machine 0, for the configured time
