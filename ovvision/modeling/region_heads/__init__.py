"""Second-stage heads: ROI sampling and pooling, the CLIP-aligned region classifier, fusion."""

from .clip_region_head import ClipRegionHead
from .federated_loss import FederatedClassSampler
from .pooling import build_roi_pooler
from .region_clip import RegionClipEmbedder, build_region_clip, clip_class_probs, fuse_scores
from .roi_heads import (
    ROI_HEADS_REGISTRY,
    DetectionSettings,
    Distillation,
    OpenVocabROIHeads,
    ProposalSampling,
    ScoreFusion,
    build_roi_heads,
)

__all__ = [
    "ROI_HEADS_REGISTRY",
    "ClipRegionHead",
    "DetectionSettings",
    "Distillation",
    "FederatedClassSampler",
    "OpenVocabROIHeads",
    "ProposalSampling",
    "RegionClipEmbedder",
    "ScoreFusion",
    "build_roi_heads",
    "build_region_clip",
    "build_roi_pooler",
    "clip_class_probs",
    "fuse_scores",
]
