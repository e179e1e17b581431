"""An interrupted-and-resumed run equals an uninterrupted one (RELIABILITY 22)."""

from __future__ import annotations

import json

import pytest
import torch

from ovvision.engine import HookBase, resume_or_load
from ovvision.utils.env import seed_all_rng

from .toy import build_toy_trainer, toy_cfg


class _CrashAt(HookBase):
    def __init__(self, iteration: int):
        self.iteration = iteration

    def before_step(self) -> None:
        if self.trainer.iter == self.iteration:
            raise KeyboardInterrupt("simulated crash")


def _run(output_dir: str, crash_at: int | None = None, resume: bool = False):
    cfg = toy_cfg(output_dir)
    seed_all_rng(cfg.SEED)
    trainer, checkpointer, model = build_toy_trainer(cfg)
    if crash_at is not None:
        trainer.register_hooks([_CrashAt(crash_at)])
    start_iter = 0
    if resume:
        start_iter = resume_or_load(checkpointer, "", resume=True)
    trainer.train(start_iter, cfg.SOLVER.MAX_ITER)
    return trainer, model


def test_resume_matches_uninterrupted_run(tmp_path):
    full_trainer, full_model = _run(str(tmp_path / "full"))
    crashed = tmp_path / "crashed"
    with pytest.raises(KeyboardInterrupt):
        _run(str(crashed), crash_at=12)  # 12 iterations done; checkpoint at 10 (model_0000009)
    assert (crashed / "last_checkpoint").read_text() == "model_0000009.pth"
    assert not (crashed / "model_final.pth").exists()

    resumed_trainer, resumed_model = _run(str(crashed), resume=True)

    assert resumed_trainer.start_iter == 10
    assert resumed_trainer.iter == full_trainer.iter == 20
    for (name, a), (_, b) in zip(
        full_model.state_dict().items(), resumed_model.state_dict().items()
    ):
        assert torch.equal(a, b), name
    full_opt = full_trainer.optimizer.state_dict()
    resumed_opt = resumed_trainer.optimizer.state_dict()
    assert full_opt["param_groups"] == resumed_opt["param_groups"]  # includes the LR
    for k, state in full_opt["state"].items():
        assert torch.equal(state["momentum_buffer"], resumed_opt["state"][k]["momentum_buffer"])
    assert full_trainer.state_dict()["hooks"] == resumed_trainer.state_dict()["hooks"]


def test_metrics_jsonl_and_final_checkpoint(tmp_path):
    trainer, _ = _run(str(tmp_path))
    assert (tmp_path / "model_final.pth").is_file()
    assert (tmp_path / "last_checkpoint").read_text() == "model_final.pth"
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    iterations = [r["iteration"] for r in rows]
    assert iterations == sorted(iterations) and iterations[-1] == 19
    last = rows[-1]
    for key in ("total_loss", "loss_mse", "loss_l1", "lr", "time", "data_time"):
        assert key in last, key
    assert last["lr"] == pytest.approx(0.05 * 0.01)  # two multistep drops of 0.1
