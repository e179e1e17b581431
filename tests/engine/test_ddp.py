"""Two gloo processes on CPU train in lock-step, and comm helpers see every rank."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch
from torch import nn

from ovvision.checkpoint import Checkpointer
from ovvision.engine import PeriodicCheckpointer, SimpleTrainer, create_ddp_model, launch
from ovvision.solver import build_optimizer
from ovvision.utils import comm

from .toy import toy_cfg


class _Regressor(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"loss": ((self.net(batch["x"]).squeeze(1) - batch["y"]) ** 2).mean()}


def _rank_batches():
    """Different data on each rank, so only gradient averaging keeps weights equal."""
    g = torch.Generator().manual_seed(100 + comm.get_rank())
    while True:
        x = torch.randn(8, 4, generator=g)
        yield {"x": x, "y": x.sum(1)}


def _worker(output_dir: str) -> None:
    torch.manual_seed(comm.get_rank())  # different init per rank; DDP broadcasts rank 0's
    cfg = toy_cfg(output_dir, max_iter=6, period=3)
    cfg.SOLVER.WARMUP_ITERS = 0
    model = create_ddp_model(_Regressor())
    optimizer = build_optimizer(cfg, model)
    trainer = SimpleTrainer(model, _rank_batches(), optimizer)
    checkpointer = Checkpointer(model, output_dir, trainer=trainer)
    trainer.register_hooks([PeriodicCheckpointer(checkpointer, 3)])
    trainer.train(0, cfg.SOLVER.MAX_ITER)
    flat = torch.cat([p.detach().flatten() for p in model.parameters()]).tolist()
    gathered = comm.all_gather({"rank": comm.get_rank(), "params": flat})
    if comm.is_main_process():
        with open(os.path.join(output_dir, "result.json"), "w") as f:
            json.dump({"gathered": gathered, "world": comm.get_world_size()}, f)


def test_two_gloo_processes_end_with_identical_parameters(tmp_path):
    launch(_worker, num_gpus_per_machine=2, args=(str(tmp_path),), backend="gloo")
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["world"] == 2
    gathered = result["gathered"]
    assert [g["rank"] for g in gathered] == [0, 1]
    assert gathered[0]["params"] == gathered[1]["params"]
    # Checkpoints were written once (rank 0) and hold both ranks' RNG states.
    saved = torch.load(tmp_path / "model_final.pth", weights_only=True)
    assert len(saved["rng"]) == 2
    assert not torch.equal(saved["rng"][0]["torch"], saved["rng"][1]["torch"])


def test_comm_helpers_in_one_process():
    assert comm.get_world_size() == 1 and comm.get_rank() == 0
    assert comm.all_gather({"a": 1}) == [{"a": 1}]
    comm.synchronize()


def test_launch_joins_a_torchrun_job(tmp_path):
    """The job's output is right, and every worker exits 0 because its process group is freed.

    A process group that outlived :func:`launch` (the gloo group used to be cached in
    ``comm``) kept its worker threads until interpreter shutdown, where one of them, releasing
    the tensors of the last collective, could not take the GIL and aborted the process
    ("terminate called without an active exception", about 1 run in 30): the weak reference
    below shows the group is gone when ``launch`` returns, on every run.
    """
    script = tmp_path / "job.py"
    script.write_text(
        "import json, sys, weakref\n"
        "import torch.distributed as dist\n"
        "from ovvision.engine import launch\n"
        "from ovvision.utils import comm\n"
        "groups = []\n"
        "def main(out):\n"
        "    groups.append(weakref.ref(dist.group.WORLD))\n"
        "    got = comm.all_gather(comm.get_rank() * 10)\n"
        "    if comm.is_main_process():\n"
        "        json.dump({'got': got, 'local': comm.get_local_size()}, open(out, 'w'))\n"
        "launch(main, 1, args=(sys.argv[1],), backend='gloo')\n"
        "assert not dist.is_initialized()\n"
        "if groups[0]() is not None:\n"
        "    sys.exit('the process group outlived launch()')\n"
    )
    out = tmp_path / "out.json"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "--tee", "3", str(script), str(out)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, (proc.stdout.decode() + proc.stderr.decode())[-3000:]
    assert json.loads(out.read_text()) == {"got": [0, 10], "local": 2}
