"""The backbone interface, its registry and ``build_backbone``."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
from torch import nn

from ovvision.config import CfgNode
from ovvision.utils.registry import Registry

BACKBONE_REGISTRY = Registry("BACKBONE")
BACKBONE_REGISTRY.__doc__ = """Backbones: ``MODEL.BACKBONE.NAME`` names a class built with
``cls(cfg)``."""


class Backbone(nn.Module, ABC):
    """A feature extractor that returns a pyramid of equally wide feature maps.

    Subclasses set (``needs_clip_model`` is a class attribute, the others instance attributes):
        output_names: names of the pyramid levels, finest first; the proposer uses all of them.
        strides: ``{name: stride}`` in input pixels for every pyramid level.
        out_channels: channels of every pyramid level.
        size_divisibility: input height and width must be padded to a multiple of this.
    """

    output_names: list[str]
    strides: dict[str, int]
    out_channels: int
    size_divisibility: int
    # True for backbones built on the model's CLIP (their from_config takes ``clip_model``).
    needs_clip_model: bool = False

    @abstractmethod
    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Compute features.

        Args:
            images: ``Tensor[B, 3, H, W]`` normalised images, H and W multiples of
                ``size_divisibility``.

        Returns:
            ``{name: Tensor[B, out_channels, H / stride, W / stride]}`` for every name in
            ``output_names``; a backbone may add entries of its own (e.g. dense CLIP features).
        """


def level_name(stride: int) -> str:
    """Name of a pyramid level by its stride: stride 4 -> ``"p2"``, 64 -> ``"p6"``."""
    return f"p{int(round(math.log2(stride)))}"


def build_backbone(cfg: CfgNode, clip_model: nn.Module | None = None) -> Backbone:
    """Build the backbone named by ``MODEL.BACKBONE.NAME``.

    Args:
        cfg: the config.
        clip_model: the model's CLIP (a ``TextEncoder``), handed to backbones that need one so
            that a model loads its CLIP once.
    """
    cls = BACKBONE_REGISTRY.get(cfg.MODEL.BACKBONE.NAME)
    extra = {"clip_model": clip_model} if getattr(cls, "needs_clip_model", False) else {}
    backbone = cls(cfg, **extra)
    if not isinstance(backbone, Backbone):
        raise TypeError(f"MODEL.BACKBONE.NAME={cfg.MODEL.BACKBONE.NAME!r} did not build a Backbone")
    return backbone
