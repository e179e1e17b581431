"""Models: ``build_model(cfg)`` and the component families it assembles.

Each family has a registry and a ``build_*`` function; the imports below register every
component, so any name a config uses is known once ``ovvision.modeling`` is imported.
"""

from .backbone import (
    BACKBONE_REGISTRY,
    Backbone,
    ClipImageBackbone,
    TimmFPNBackbone,
    build_backbone,
)
from .mask_heads import ROI_MASK_HEAD_REGISTRY, ClassAgnosticMaskHead, build_mask_head
from .meta_arch import META_ARCH_REGISTRY, OVRCNN, build_model, vocabulary_for_dataset
from .postprocessing import detector_postprocess
from .proposals import PROPOSAL_GENERATOR_REGISTRY, RPN, build_proposal_generator
from .region_heads import (
    ROI_HEADS_REGISTRY,
    ClipRegionHead,
    OpenVocabROIHeads,
    RegionClipEmbedder,
    build_roi_heads,
)

__all__ = [
    "BACKBONE_REGISTRY",
    "META_ARCH_REGISTRY",
    "OVRCNN",
    "PROPOSAL_GENERATOR_REGISTRY",
    "ROI_HEADS_REGISTRY",
    "ROI_MASK_HEAD_REGISTRY",
    "RPN",
    "Backbone",
    "ClassAgnosticMaskHead",
    "ClipImageBackbone",
    "ClipRegionHead",
    "OpenVocabROIHeads",
    "RegionClipEmbedder",
    "TimmFPNBackbone",
    "build_backbone",
    "build_mask_head",
    "build_model",
    "build_proposal_generator",
    "build_roi_heads",
    "detector_postprocess",
    "vocabulary_for_dataset",
]
