"""Auxiliary losses on region embeddings: ViLD distillation, proxy-novel classwise mixup,
caption grounding."""

from .build import (
    AUXILIARY_LOSS_REGISTRY,
    AuxiliaryLoss,
    RegionLossInputs,
    build_auxiliary_losses,
)
from .caption_grounding import CaptionGroundingLoss
from .proxy_mixup import ProxyNovelMixupLoss
from .vild_distillation import ViLDDistillationLoss

__all__ = [
    "AUXILIARY_LOSS_REGISTRY",
    "AuxiliaryLoss",
    "CaptionGroundingLoss",
    "ProxyNovelMixupLoss",
    "RegionLossInputs",
    "ViLDDistillationLoss",
    "build_auxiliary_losses",
]
