"""Backbones: timm convnets with an FPN, and frozen CLIP image towers (F-VLM)."""

from .build import BACKBONE_REGISTRY, Backbone, build_backbone
from .clip_backbone import ClipImageBackbone, SimpleFeaturePyramid
from .clip_towers import ClipTower, ResNetClipTower, ViTClipTower, wrap_clip_tower
from .timm_fpn import TimmFPNBackbone

__all__ = [
    "BACKBONE_REGISTRY",
    "Backbone",
    "ClipImageBackbone",
    "ClipTower",
    "ResNetClipTower",
    "SimpleFeaturePyramid",
    "TimmFPNBackbone",
    "ViTClipTower",
    "build_backbone",
    "wrap_clip_tower",
]
