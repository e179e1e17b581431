"""A toy model and data stream for engine tests (a fixture, not a product feature)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import torch
from torch import nn

from ovvision.checkpoint import Checkpointer
from ovvision.config import CfgNode, get_cfg
from ovvision.engine import SimpleTrainer, default_hooks
from ovvision.solver import build_lr_scheduler, build_optimizer


class ToyModel(nn.Module):
    """A small regressor with dropout and batch norm, so RNG and buffers matter on resume."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 1)
        )
        self.nan_at: int | None = None  # make the loss NaN when the step counter reaches this
        self.steps = 0

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        pred = self.net(batch["x"]).squeeze(1)
        loss = ((pred - batch["y"]) ** 2).mean()
        self.steps += 1
        if self.nan_at is not None and self.steps > self.nan_at:
            loss = loss * float("nan")
        return {"loss_mse": loss, "loss_l1": 0.1 * (pred - batch["y"]).abs().mean()}


def toy_batches(batch_size: int = 8) -> Iterator[dict[str, torch.Tensor]]:
    """Batches drawn from the global torch RNG (so resuming must restore it)."""
    for _ in itertools.count():
        x = torch.randn(batch_size, 4)
        yield {"x": x, "y": x.sum(1) + 0.1 * torch.randn(batch_size)}


def toy_cfg(output_dir: str, max_iter: int = 20, period: int = 10) -> CfgNode:
    cfg = get_cfg()
    cfg.OUTPUT_DIR = output_dir
    cfg.SEED = 7
    cfg.SOLVER.BASE_LR = 0.05
    cfg.SOLVER.MAX_ITER = max_iter
    cfg.SOLVER.STEPS = (8, 15)
    cfg.SOLVER.WARMUP_ITERS = 3
    cfg.SOLVER.CHECKPOINT_PERIOD = period
    cfg.LOG_PERIOD = 5
    return cfg


def build_toy_trainer(cfg: CfgNode, model: ToyModel | None = None) -> tuple:
    """(trainer, checkpointer, model) wired with the default hooks."""
    model = model or ToyModel()
    optimizer = build_optimizer(cfg, model)
    scheduler = build_lr_scheduler(cfg, optimizer)
    trainer = SimpleTrainer(model, toy_batches(), optimizer)
    checkpointer = Checkpointer(model, cfg.OUTPUT_DIR, trainer=trainer, optimizer=optimizer)
    trainer.register_hooks(default_hooks(cfg, optimizer, scheduler, checkpointer))
    return trainer, checkpointer, model
