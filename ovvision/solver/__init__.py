"""Optimizers and learning-rate schedules."""

from .build import build_gradient_clipper, build_lr_scheduler, build_optimizer, get_param_groups
from .lr_scheduler import LRMultiplier, WarmupParamScheduler, build_lr_multiplier

__all__ = [
    "LRMultiplier",
    "WarmupParamScheduler",
    "build_gradient_clipper",
    "build_lr_multiplier",
    "build_lr_scheduler",
    "build_optimizer",
    "get_param_groups",
]
