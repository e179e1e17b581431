"""Auxiliary losses on region embeddings: ViLD distillation (and, next, mixup and captions)."""

from .build import (
    AUXILIARY_LOSS_REGISTRY,
    AuxiliaryLoss,
    RegionLossInputs,
    build_auxiliary_losses,
)
from .vild_distillation import ViLDDistillationLoss

__all__ = [
    "AUXILIARY_LOSS_REGISTRY",
    "AuxiliaryLoss",
    "RegionLossInputs",
    "ViLDDistillationLoss",
    "build_auxiliary_losses",
]
