"""A minimal training loop with hooks, and the plain and mixed-precision trainers built on it."""

from __future__ import annotations

import logging
import math
import time
import weakref
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import nn

from ovvision.utils import comm
from ovvision.utils.events import EventStorage

logger = logging.getLogger(__name__)


class HookBase:
    """Called by the trainer around training and around each step.

    ``self.trainer`` is set when the hook is registered. A hook with state to resume returns it
    from ``state_dict`` (saved with the trainer).
    """

    trainer: TrainerBase

    def before_train(self) -> None:
        pass

    def after_train(self) -> None:
        pass

    def before_step(self) -> None:
        pass

    def after_step(self) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class TrainerBase:
    """Runs ``before_step / run_step / after_step`` from ``start_iter`` to ``max_iter - 1``.

    After a run that completes, ``self.iter == max_iter``; after one that raised,
    ``self.iter`` is the iteration that failed.
    """

    def __init__(self) -> None:
        self._hooks: list[HookBase] = []
        self.iter = 0
        self.start_iter = 0
        self.max_iter = 0
        self.storage: EventStorage

    def register_hooks(self, hooks: Iterable[HookBase | None]) -> None:
        """Append hooks (None entries are skipped); they run in registration order."""
        for h in hooks:
            if h is None:
                continue
            h.trainer = weakref.proxy(self)
            self._hooks.append(h)

    @property
    def completed(self) -> bool:
        """True once every iteration up to ``max_iter`` has run."""
        return self.iter >= self.max_iter

    def train(self, start_iter: int, max_iter: int) -> None:
        logger.info("Starting training from iteration %d", start_iter)
        self.iter = self.start_iter = start_iter
        self.max_iter = max_iter
        with EventStorage(start_iter) as self.storage:
            try:
                self.before_train()
                for self.iter in range(start_iter, max_iter):
                    self.before_step()
                    self.run_step()
                    self.after_step()
                self.iter = max_iter
            except Exception:
                logger.exception("Exception during training at iteration %d", self.iter)
                raise
            finally:
                self.after_train()

    def before_train(self) -> None:
        for h in self._hooks:
            h.before_train()

    def after_train(self) -> None:
        self.storage.iter = self.iter
        for h in self._hooks:
            h.after_train()

    def before_step(self) -> None:
        self.storage.iter = self.iter
        for h in self._hooks:
            h.before_step()

    def after_step(self) -> None:
        for h in self._hooks:
            h.after_step()

    def run_step(self) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        hooks = {type(h).__qualname__: h.state_dict() for h in self._hooks if h.state_dict()}
        return {"iteration": self.iter, "hooks": hooks}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.iter = state["iteration"]
        for h in self._hooks:
            key = type(h).__qualname__
            if key in state.get("hooks", {}):
                h.load_state_dict(state["hooks"][key])


class SimpleTrainer(TrainerBase):
    """One optimizer step per batch: losses from the model, summed, finite-checked, backpropagated.

    Args:
        model: in training mode, ``model(batch)`` returns a dict of named scalar losses.
        data_loader: an iterable yielding batches forever.
        optimizer: the optimizer of the model's parameters.
        grad_clip: optional callable applied to the model's parameters after backward (e.g.
            from :func:`build_gradient_clipper`).
    """

    def __init__(
        self,
        model: nn.Module,
        data_loader: Iterable,
        optimizer: torch.optim.Optimizer,
        grad_clip: Any = None,
    ):
        super().__init__()
        model.train()
        self.model = model
        self.data_loader = data_loader
        self._data_loader_iter_obj: Iterator | None = None
        self.optimizer = optimizer
        self.grad_clip = grad_clip

    @property
    def _data_loader_iter(self) -> Iterator:
        if self._data_loader_iter_obj is None:  # created lazily so workers start at train()
            self._data_loader_iter_obj = iter(self.data_loader)
        return self._data_loader_iter_obj

    def _next_batch(self) -> tuple[Any, float]:
        start = time.perf_counter()
        data = next(self._data_loader_iter)
        return data, time.perf_counter() - start

    def _losses(self, data: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss_dict = self.model(data)
        if isinstance(loss_dict, torch.Tensor):
            loss_dict = {"total_loss": loss_dict}
        if not loss_dict:
            raise ValueError(f"the model returned no losses at iteration {self.iter}")
        return sum(loss_dict.values()), loss_dict

    def run_step(self) -> None:
        data, data_time = self._next_batch()
        losses, loss_dict = self._losses(data)
        self._check_and_log(loss_dict, data_time)
        self.optimizer.zero_grad(set_to_none=True)
        losses.backward()
        if self.grad_clip is not None:
            self.grad_clip(self.model.parameters())
        self.optimizer.step()

    def _check_and_log(self, loss_dict: dict[str, torch.Tensor], data_time: float) -> None:
        """Gather every rank's losses; raise on any non-finite total before weights change."""
        local = {k: float(v.detach()) for k, v in loss_dict.items()}
        per_rank = comm.all_gather(local)
        for rank, metrics in enumerate(per_rank):
            if not math.isfinite(sum(metrics.values())):
                raise FloatingPointError(
                    f"Loss became infinite or NaN at iteration={self.iter} on rank {rank}!\n"
                    f"loss_dict = {metrics}"
                )
        keys = sorted({k for m in per_rank for k in m})
        mean = {k: sum(m[k] for m in per_rank if k in m) / len(per_rank) for k in keys}
        self.storage.put_scalar("total_loss", sum(mean.values()))
        self.storage.put_scalars(**mean)
        self.storage.put_scalar("data_time", data_time)


def cpu_has_fast_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 natively through oneDNN (AVX-512 or AMX); on others
    (AVX2 only) bfloat16 autocast is emulated and slower than float32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


class AMPTrainer(SimpleTrainer):
    """:class:`SimpleTrainer` with automatic mixed precision.

    On CUDA the forward runs under autocast in ``precision`` (float16 with gradient scaling, or
    bfloat16); on CPU under bfloat16 autocast (the half type CPUs compute fast, with AMX or
    AVX-512), which needs no gradient scaling, or in float32 with a warning on a CPU without
    native bfloat16 (:func:`cpu_has_fast_bfloat16`). Parameters, optimizer state and the
    backward's gradients stay float32 either way.
    """

    def __init__(
        self,
        model: nn.Module,
        data_loader: Iterable,
        optimizer: torch.optim.Optimizer,
        grad_clip: Any = None,
        precision: torch.dtype = torch.float16,
    ):
        super().__init__(model, data_loader, optimizer, grad_clip)
        self.device_type = next(model.parameters()).device.type
        self.use_cuda_amp = self.device_type == "cuda"
        self.precision = precision if self.use_cuda_amp else torch.bfloat16
        self.autocast = self.use_cuda_amp or cpu_has_fast_bfloat16()
        if not self.autocast:
            logger.warning(
                "SOLVER.AMP.ENABLED: this CPU has no native bfloat16 (AVX-512 or AMX), where "
                "autocast would be slower than float32: training in float32"
            )
        self.grad_scaler = torch.amp.GradScaler(
            "cuda", enabled=self.use_cuda_amp and self.precision == torch.float16
        )

    def run_step(self) -> None:
        data, data_time = self._next_batch()
        with torch.autocast(self.device_type, dtype=self.precision, enabled=self.autocast):
            losses, loss_dict = self._losses(data)
        self._check_and_log(loss_dict, data_time)
        self.optimizer.zero_grad(set_to_none=True)
        self.grad_scaler.scale(losses).backward()
        if self.grad_clip is not None:
            self.grad_scaler.unscale_(self.optimizer)
            self.grad_clip(self.model.parameters())
        self.grad_scaler.step(self.optimizer)
        self.grad_scaler.update()

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["grad_scaler"] = self.grad_scaler.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if "grad_scaler" in state:
            self.grad_scaler.load_state_dict(state["grad_scaler"])
