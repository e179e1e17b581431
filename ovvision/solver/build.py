"""Build the optimizer and LR scheduler from the config."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

from ovvision.config import CfgNode

from .lr_scheduler import LRMultiplier, build_lr_multiplier

_NORM_TYPES = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.SyncBatchNorm,
    nn.GroupNorm,
    nn.InstanceNorm2d,
    nn.LayerNorm,
    nn.LocalResponseNorm,
)


def get_param_groups(
    model: nn.Module,
    weight_decay: float,
    weight_decay_norm: float,
    weight_decay_bias: float | None = None,
) -> list[dict]:
    """Parameter groups with their own weight decay for normalisation layers and biases.

    Every trainable parameter appears exactly once, even when modules share it.
    """
    if weight_decay_bias is None:
        weight_decay_bias = weight_decay
    groups: dict[float, list[nn.Parameter]] = {}
    seen: set[int] = set()
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            if isinstance(module, _NORM_TYPES):
                wd = weight_decay_norm
            elif name == "bias":
                wd = weight_decay_bias
            else:
                wd = weight_decay
            groups.setdefault(wd, []).append(p)
    return [{"params": ps, "weight_decay": wd} for wd, ps in groups.items()]


def build_optimizer(cfg: CfgNode, model: nn.Module) -> torch.optim.Optimizer:
    """SGD or AdamW over the model's trainable parameters, as ``cfg.SOLVER`` describes."""
    s = cfg.SOLVER
    groups = get_param_groups(model, s.WEIGHT_DECAY, s.WEIGHT_DECAY_NORM, s.WEIGHT_DECAY_BIAS)
    if not groups:
        raise ValueError("build_optimizer: the model has no trainable parameters")
    if s.OPTIMIZER == "SGD":
        return torch.optim.SGD(groups, lr=s.BASE_LR, momentum=s.MOMENTUM, nesterov=s.NESTEROV)
    if s.OPTIMIZER == "AdamW":
        return torch.optim.AdamW(groups, lr=s.BASE_LR, betas=tuple(s.BETAS))
    raise ValueError(f"SOLVER.OPTIMIZER must be 'SGD' or 'AdamW', not {s.OPTIMIZER!r}")


def build_lr_scheduler(cfg: CfgNode, optimizer: torch.optim.Optimizer) -> LRMultiplier:
    """The per-iteration LR schedule of ``cfg.SOLVER`` (multistep or cosine, with warmup)."""
    s = cfg.SOLVER
    multiplier = build_lr_multiplier(
        s.LR_SCHEDULER_NAME,
        s.MAX_ITER,
        steps=tuple(s.STEPS),
        gamma=s.GAMMA,
        cosine_end_factor=s.COSINE_END_LR_FACTOR,
        warmup_iters=s.WARMUP_ITERS,
        warmup_factor=s.WARMUP_FACTOR,
        warmup_method=s.WARMUP_METHOD,
    )
    return LRMultiplier(optimizer, multiplier, s.MAX_ITER)


def build_gradient_clipper(cfg: CfgNode) -> Callable[[Iterable[nn.Parameter]], None] | None:
    """A function clipping gradients in place as ``cfg.SOLVER.CLIP_GRADIENTS`` says, or None."""
    c = cfg.SOLVER.CLIP_GRADIENTS
    if not c.ENABLED:
        return None
    if c.CLIP_TYPE == "norm":
        return lambda params: nn.utils.clip_grad_norm_(
            list(params), c.CLIP_VALUE, norm_type=c.NORM_TYPE
        )
    if c.CLIP_TYPE == "value":
        return lambda params: nn.utils.clip_grad_value_(list(params), c.CLIP_VALUE)
    raise ValueError(
        f"SOLVER.CLIP_GRADIENTS.CLIP_TYPE must be 'norm' or 'value', not {c.CLIP_TYPE!r}"
    )
