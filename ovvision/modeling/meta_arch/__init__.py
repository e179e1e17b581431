"""Meta-architectures: whole models built by ``build_model(cfg)``."""

from .build import META_ARCH_REGISTRY, build_model
from .ovrcnn import OVRCNN
from .vocabulary_source import vocabulary_for_dataset

__all__ = ["META_ARCH_REGISTRY", "OVRCNN", "build_model", "vocabulary_for_dataset"]
