"""A non-finite loss stops training with the iteration and losses, leaving checkpoints intact."""

from __future__ import annotations

import os

import pytest
import torch

from ovvision.checkpoint import Checkpointer
from ovvision.utils.env import seed_all_rng

from .toy import ToyModel, build_toy_trainer, toy_cfg


def test_nan_loss_raises_with_iteration_and_keeps_last_checkpoint(tmp_path):
    cfg = toy_cfg(str(tmp_path), max_iter=20, period=5)
    seed_all_rng(0)
    trainer, checkpointer, model = build_toy_trainer(cfg)
    model.nan_at = 7  # steps 0..6 are finite; iteration 7 produces NaN
    with pytest.raises(FloatingPointError, match=r"iteration=7") as info:
        trainer.train(0, cfg.SOLVER.MAX_ITER)
    assert "loss_mse" in str(info.value)
    assert checkpointer.get_checkpoint_file().endswith("model_0000004.pth")
    assert not os.path.exists(tmp_path / "model_final.pth")

    saved = torch.load(tmp_path / "model_0000004.pth", weights_only=True)
    assert saved["iteration"] == 4
    fresh = ToyModel()
    Checkpointer(fresh).load_model_state(saved["model"])
    for p in fresh.parameters():
        assert torch.isfinite(p).all()
    # The failing step did not update the weights.
    for p in model.parameters():
        assert torch.isfinite(p).all()
