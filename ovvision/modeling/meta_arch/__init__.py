"""Meta-architectures: whole models built by ``build_model(cfg)``."""

from .build import META_ARCH_REGISTRY, build_model
from .grounder import OVGrounder
from .osm import OSMClassifier
from .ovrcnn import OVRCNN

__all__ = ["META_ARCH_REGISTRY", "OSMClassifier", "OVGrounder", "OVRCNN", "build_model"]
