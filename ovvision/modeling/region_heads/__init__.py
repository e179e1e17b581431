"""Second stage: ROI sampling and pooling, classification, boxes and masks (OpenVocabROIHeads)."""

from .pooling import build_roi_pooler
from .roi_heads import (
    ROI_HEADS_REGISTRY,
    DetectionSettings,
    OpenVocabROIHeads,
    ProposalSampling,
    build_roi_heads,
)

__all__ = [
    "ROI_HEADS_REGISTRY",
    "DetectionSettings",
    "OpenVocabROIHeads",
    "ProposalSampling",
    "build_roi_heads",
    "build_roi_pooler",
]
