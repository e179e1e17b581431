"""Hooks and trainers: evaluation schedule, progress line, AMP on CPU, gradient clipping."""

from __future__ import annotations

import logging

import pytest
import torch

from ovvision.engine import AMPTrainer, EvalHook, PeriodicWriter, SimpleTrainer, default_writers
from ovvision.solver import build_gradient_clipper, build_optimizer
from ovvision.utils.env import seed_all_rng
from ovvision.utils.events import CommonMetricPrinter, EventStorage

from .toy import ToyModel, toy_batches, toy_cfg


def _trainer(cls=SimpleTrainer, **kwargs):
    cfg = toy_cfg("", max_iter=10)
    seed_all_rng(0)
    model = ToyModel()
    return cls(model, toy_batches(), build_optimizer(cfg, model), **kwargs), model


def test_eval_hook_runs_periodically_and_at_the_end():
    calls = []
    trainer, _ = _trainer()
    trainer.register_hooks([EvalHook(4, lambda: calls.append(trainer.iter) or {"bbox": {"AP": 1}})])
    trainer.train(0, 10)
    assert calls == [3, 7, 10]
    assert trainer.storage.latest()["bbox/AP"][0] == 1.0


def test_eval_hook_skips_final_evaluation_after_a_failure():
    calls = []
    trainer, model = _trainer()
    model.nan_at = 5
    trainer.register_hooks([EvalHook(0, lambda: calls.append(1) or {})])
    with pytest.raises(FloatingPointError):
        trainer.train(0, 10)
    assert calls == []


class _AutocastRecorder(ToyModel):
    """Records the CPU autocast state and the first layer's output dtype of every forward."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[bool, torch.dtype]] = []

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        self.seen.append((torch.is_autocast_enabled("cpu"), self.net[0](batch["x"]).dtype))
        return super().forward(batch)


def test_amp_trainer_on_cpu_runs_the_forward_in_bfloat16():
    cfg = toy_cfg("", max_iter=10)
    seed_all_rng(0)
    model = _AutocastRecorder()
    amp = AMPTrainer(model, toy_batches(), build_optimizer(cfg, model))
    assert not amp.use_cuda_amp and amp.precision == torch.bfloat16
    before = [p.detach().clone() for p in model.parameters()]
    amp.train(0, 6)
    assert model.seen == [(True, torch.bfloat16)] * 6
    # float32 parameters, updated, and the losses of the same data as full precision within
    # bfloat16's resolution
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(not torch.equal(b, p) for b, p in zip(before, model.parameters()))
    simple, reference = _trainer()
    simple.train(0, 6)
    for a, b in zip(reference.parameters(), model.parameters()):
        torch.testing.assert_close(a, b, rtol=0.05, atol=0.02)
    assert "grad_scaler" in amp.state_dict()
    model.seen.clear()
    SimpleTrainer(model, toy_batches(), build_optimizer(cfg, model)).train(0, 1)
    assert model.seen == [(False, torch.float32)]  # no autocast outside AMPTrainer


def test_amp_trainer_trains_in_float32_on_a_cpu_without_native_bfloat16(monkeypatch, caplog):
    from ovvision.engine import train_loop

    monkeypatch.setattr(train_loop, "cpu_has_fast_bfloat16", lambda: False)
    cfg = toy_cfg("", max_iter=10)
    model = _AutocastRecorder()
    with caplog.at_level(logging.WARNING):
        amp = AMPTrainer(model, toy_batches(), build_optimizer(cfg, model))
    assert "no native bfloat16" in caplog.text and not amp.autocast
    amp.train(0, 2)
    assert model.seen == [(False, torch.float32)] * 2


def test_gradient_clipping_bounds_the_update():
    cfg = toy_cfg("")
    cfg.SOLVER.CLIP_GRADIENTS.ENABLED = True
    cfg.SOLVER.CLIP_GRADIENTS.CLIP_VALUE = 1e-3
    clip = build_gradient_clipper(cfg)
    model = ToyModel()
    loss = model(next(toy_batches()))["loss_mse"] * 1000
    loss.backward()
    clip(model.parameters())
    total = torch.norm(torch.stack([p.grad.norm() for p in model.parameters()]))
    assert total.item() == pytest.approx(1e-3, rel=1e-3)
    cfg.SOLVER.CLIP_GRADIENTS.CLIP_TYPE = "bogus"
    with pytest.raises(ValueError, match="CLIP_TYPE"):
        build_gradient_clipper(cfg)


def test_progress_line_shows_bar_eta_losses_and_lr():
    printer = CommonMetricPrinter(max_iter=200)
    with EventStorage(49) as storage:
        storage.put_scalars(loss_cls=0.5, loss_box=0.25)
        storage.put_scalar("time", 0.1)
        storage.put_scalar("lr", 0.01, smoothing_hint=False)
        line = printer.progress_line(storage)
    assert line.startswith("iter 50/200 [#####...............]  25%")
    assert "eta 0:00:15" in line and "loss_box 0.25" in line and "lr 0.01" in line
    with EventStorage(200) as storage:  # after the last step, as the final write sees it
        storage.put_scalar("time", 0.1)
        assert "eta 0:00:00" in printer.progress_line(storage)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_writers_log_progress_and_tensorboard(tmp_path):
    trainer, _ = _trainer()
    writers = default_writers(str(tmp_path), 10, tensorboard=True)
    trainer.register_hooks([PeriodicWriter(writers, period=5)])
    progress = logging.getLogger("ovvision.progress")
    handler = _Collect()
    progress.addHandler(handler)
    progress.setLevel(logging.INFO)
    try:
        trainer.train(0, 10)
    finally:
        progress.removeHandler(handler)
    assert any(m.startswith("iter 10/10") for m in handler.messages)
    assert list(tmp_path.glob("events.out.tfevents.*"))
    assert (tmp_path / "metrics.jsonl").read_text().count("\n") == 2
