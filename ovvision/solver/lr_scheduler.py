"""Learning-rate schedules: fvcore's parameter schedulers with warmup, driven per iteration."""

from __future__ import annotations

import torch
from fvcore.common.param_scheduler import (
    CompositeParamScheduler,
    ConstantParamScheduler,
    CosineParamScheduler,
    LinearParamScheduler,
    MultiStepParamScheduler,
    ParamScheduler,
)


class WarmupParamScheduler(CompositeParamScheduler):
    """Prepend a warmup of ``warmup_length`` (fraction of training) to a schedule.

    Args:
        scheduler: the schedule after warmup, as a multiplier of the base LR.
        warmup_factor: multiplier at the start of warmup.
        warmup_length: warmup duration as a fraction of the whole run, in [0, 1).
        warmup_method: "linear" (ramp to the schedule's value) or "constant".
    """

    def __init__(
        self,
        scheduler: ParamScheduler,
        warmup_factor: float,
        warmup_length: float,
        warmup_method: str = "linear",
    ):
        end_value = scheduler(warmup_length)
        start_value = warmup_factor * scheduler(0.0)
        if warmup_method == "linear":
            warmup: ParamScheduler = LinearParamScheduler(start_value, end_value)
        elif warmup_method == "constant":
            warmup = ConstantParamScheduler(start_value)
        else:
            raise ValueError(
                f"SOLVER.WARMUP_METHOD must be 'linear' or 'constant', not {warmup_method}"
            )
        super().__init__(
            [warmup, scheduler],
            interval_scaling=["rescaled", "fixed"],
            lengths=[warmup_length, 1 - warmup_length],
        )


class LRMultiplier(torch.optim.lr_scheduler.LRScheduler):
    """Set each param group's LR to ``base_lr * multiplier(iteration / max_iter)`` every step.

    Its state is only ``base_lrs`` and ``last_epoch`` (plain numbers), so checkpoints holding it
    load with ``torch.load(weights_only=True)``.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        multiplier: ParamScheduler,
        max_iter: int,
        last_iter: int = -1,
    ):
        self._multiplier = multiplier
        self._max_iter = max_iter
        super().__init__(optimizer, last_epoch=last_iter)

    def state_dict(self) -> dict:
        return {"base_lrs": list(self.base_lrs), "last_epoch": self.last_epoch}

    def get_lr(self) -> list[float]:
        multiplier = self._multiplier(min(self.last_epoch / self._max_iter, 1.0 - 1e-9))
        return [base_lr * multiplier for base_lr in self.base_lrs]


def build_lr_multiplier(
    name: str,
    max_iter: int,
    steps: tuple[int, ...] = (),
    gamma: float = 0.1,
    cosine_end_factor: float = 0.0,
    warmup_iters: int = 0,
    warmup_factor: float = 0.001,
    warmup_method: str = "linear",
) -> ParamScheduler:
    """The LR multiplier schedule named ``name`` over ``max_iter`` iterations, with warmup."""
    if name == "WarmupMultiStepLR":
        steps = tuple(s for s in steps if s <= max_iter)
        sched: ParamScheduler = MultiStepParamScheduler(
            values=[gamma**k for k in range(len(steps) + 1)],
            milestones=list(steps),
            num_updates=max_iter,
        )
    elif name == "WarmupCosineLR":
        sched = CosineParamScheduler(1.0, cosine_end_factor)
    else:
        raise ValueError(
            "SOLVER.LR_SCHEDULER_NAME must be 'WarmupMultiStepLR' or 'WarmupCosineLR', "
            f"not {name!r}"
        )
    if warmup_iters <= 0:
        return sched
    return WarmupParamScheduler(
        sched, warmup_factor, min(warmup_iters / max_iter, 1.0 - 1e-6), warmup_method
    )
