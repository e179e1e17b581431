"""Meta-architectures: whole models built by ``build_model(cfg)``."""

from .build import META_ARCH_REGISTRY, build_model
from .grounder import OVGrounder
from .ovrcnn import OVRCNN

__all__ = ["META_ARCH_REGISTRY", "OVGrounder", "OVRCNN", "build_model"]
