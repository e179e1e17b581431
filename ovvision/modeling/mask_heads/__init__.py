"""Mask heads."""

from .mask_head import (
    ROI_MASK_HEAD_REGISTRY,
    ClassAgnosticMaskHead,
    build_mask_head,
    mask_loss,
    mask_targets,
)

__all__ = [
    "ROI_MASK_HEAD_REGISTRY",
    "ClassAgnosticMaskHead",
    "build_mask_head",
    "mask_loss",
    "mask_targets",
]
