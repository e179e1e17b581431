"""Meta-architectures: whole models built by ``build_model(cfg)``."""

from .build import META_ARCH_REGISTRY, build_model
from .ovrcnn import OVRCNN

__all__ = ["META_ARCH_REGISTRY", "OVRCNN", "build_model"]
