"""Hooks for the training loop: timing, LR schedule, checkpoints, evaluation, metric writers."""

from __future__ import annotations

import datetime
import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import torch

from ovvision.checkpoint import Checkpointer
from ovvision.utils import comm
from ovvision.utils.events import EventWriter

from .train_loop import HookBase

logger = logging.getLogger(__name__)


class IterationTimer(HookBase):
    """Record each step's duration as ``time`` and log the total at the end."""

    def __init__(self) -> None:
        self._step_start = 0.0
        self._train_start = 0.0

    def before_train(self) -> None:
        self._train_start = time.perf_counter()

    def before_step(self) -> None:
        self._step_start = time.perf_counter()

    def after_step(self) -> None:
        self.trainer.storage.put_scalar("time", time.perf_counter() - self._step_start)

    def after_train(self) -> None:
        total = time.perf_counter() - self._train_start
        steps = self.trainer.iter - self.trainer.start_iter
        if steps > 0:
            logger.info(
                "Total training time: %s (%.4f s / it over %d iterations)",
                datetime.timedelta(seconds=int(total)),
                total / steps,
                steps,
            )


class LRScheduler(HookBase):
    """Log the learning rate and step the per-iteration scheduler after each step.

    The scheduler's state is saved and resumed with the trainer.
    """

    def __init__(
        self, optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LRScheduler
    ):
        self.optimizer = optimizer
        self.scheduler = scheduler

    def after_step(self) -> None:
        lr = max(g["lr"] for g in self.optimizer.param_groups)
        self.trainer.storage.put_scalar("lr", lr, smoothing_hint=False)
        self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scheduler.load_state_dict(state)


class PeriodicCheckpointer(HookBase):
    """Save ``{prefix}_{iter:07d}`` every ``period`` iterations and ``{prefix}_final`` at the end.

    Each checkpoint records the iteration it was taken after; register the trainer with the
    checkpointer (``Checkpointer(model, dir, trainer=trainer, ...)``) so hook states such as the
    LR schedule are saved too. The final checkpoint is saved after the last step (not in
    ``after_train``), so a run that fails never writes one. ``max_to_keep > 0`` deletes the
    oldest periodic checkpoints.
    """

    def __init__(
        self,
        checkpointer: Checkpointer,
        period: int,
        max_to_keep: int = 0,
        file_prefix: str = "model",
    ):
        self.checkpointer = checkpointer
        self.period = period
        self.max_to_keep = max_to_keep
        self.file_prefix = file_prefix
        self._recent: list[str] = []

    def after_step(self) -> None:
        it = self.trainer.iter
        if self.period > 0 and (it + 1) % self.period == 0:
            path = self.checkpointer.save(f"{self.file_prefix}_{it:07d}", iteration=it)
            self._forget_old(path)
        if it + 1 >= self.trainer.max_iter:
            self.checkpointer.save(f"{self.file_prefix}_final", iteration=it)

    def _forget_old(self, path: str | None) -> None:
        if path is None or self.max_to_keep <= 0:
            return
        self._recent.append(path)
        while len(self._recent) > self.max_to_keep:
            old = self._recent.pop(0)
            if os.path.exists(old) and old != self.checkpointer.get_checkpoint_file():
                os.remove(old)


class EvalHook(HookBase):
    """Run ``eval_function()`` every ``period`` iterations and after the last one.

    The function returns a (possibly nested) dict of metrics; they are recorded in the event
    storage as ``task/metric`` scalars. It must be called on all processes.
    """

    def __init__(self, period: int, eval_function: Callable[[], Mapping[str, Any]]):
        self.period = period
        self.eval_function = eval_function
        self.latest_results: Mapping[str, Any] = {}

    def _do_eval(self) -> None:
        results = self.eval_function() or {}
        self.latest_results = results
        for name, value in _flatten(results).items():
            self.trainer.storage.put_scalar(name, value, smoothing_hint=False)
        comm.synchronize()

    def after_step(self) -> None:
        next_iter = self.trainer.iter + 1
        if self.period > 0 and next_iter % self.period == 0 and next_iter < self.trainer.max_iter:
            self._do_eval()

    def after_train(self) -> None:
        if self.trainer.completed:
            self._do_eval()


def _flatten(results: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    flat: dict[str, float] = {}
    for k, v in results.items():
        key = f"{prefix}/{k}" if prefix else str(k)
        if isinstance(v, Mapping):
            flat.update(_flatten(v, key))
        elif isinstance(v, int | float):
            flat[key] = float(v)
    return flat


class PeriodicWriter(HookBase):
    """Call writers every ``period`` iterations and after the last one; close them at the end."""

    def __init__(self, writers: list[EventWriter], period: int = 20):
        self.writers = writers
        self.period = period

    def after_step(self) -> None:
        it = self.trainer.iter
        if (it + 1) % self.period == 0 or it + 1 >= self.trainer.max_iter:
            for w in self.writers:
                w.write()

    def after_train(self) -> None:
        for w in self.writers:
            w.write()
            w.close()
