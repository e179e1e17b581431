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
from .classifiers import (
    REGION_CLASSIFIER_REGISTRY,
    ZeroShotRegionClassifier,
    build_region_classifier,
)
from .clip_regions import ClipBoxEmbedder, ClipScoreFusion
from .losses import AUXILIARY_LOSS_REGISTRY, ViLDDistillationLoss, build_auxiliary_losses
from .mask_heads import ROI_MASK_HEAD_REGISTRY, ClassAgnosticMaskHead, build_mask_head
from .meta_arch import META_ARCH_REGISTRY, OVRCNN, build_model
from .postprocessing import detector_postprocess
from .proposals import PROPOSAL_GENERATOR_REGISTRY, RPN, build_proposal_generator
from .region_heads import ROI_HEADS_REGISTRY, OpenVocabROIHeads, build_roi_heads

__all__ = [
    "AUXILIARY_LOSS_REGISTRY",
    "BACKBONE_REGISTRY",
    "META_ARCH_REGISTRY",
    "OVRCNN",
    "PROPOSAL_GENERATOR_REGISTRY",
    "REGION_CLASSIFIER_REGISTRY",
    "ROI_HEADS_REGISTRY",
    "ROI_MASK_HEAD_REGISTRY",
    "RPN",
    "Backbone",
    "ClassAgnosticMaskHead",
    "ClipBoxEmbedder",
    "ClipImageBackbone",
    "ClipScoreFusion",
    "OpenVocabROIHeads",
    "TimmFPNBackbone",
    "ViLDDistillationLoss",
    "ZeroShotRegionClassifier",
    "build_auxiliary_losses",
    "build_backbone",
    "build_mask_head",
    "build_model",
    "build_proposal_generator",
    "build_region_classifier",
    "build_roi_heads",
    "detector_postprocess",
]
