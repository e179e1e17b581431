"""Region classifiers: the CLIP-aligned zero-shot classifier (and, later, the LLM classifier)."""

from .build import REGION_CLASSIFIER_REGISTRY, build_region_classifier
from .federated_loss import FederatedClassSampler
from .zero_shot import ZeroShotRegionClassifier

__all__ = [
    "REGION_CLASSIFIER_REGISTRY",
    "FederatedClassSampler",
    "ZeroShotRegionClassifier",
    "build_region_classifier",
]
