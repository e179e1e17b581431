"""A timm convnet (``features_only``) followed by torchvision's feature pyramid network."""

from __future__ import annotations

import math
import os
from collections import OrderedDict

import timm
import torch
from timm.layers import freeze_batch_norm_2d
from torch import nn
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from ovvision.config import CfgNode, configurable

from .build import BACKBONE_REGISTRY, Backbone


def level_name(stride: int) -> str:
    """Name of a pyramid level by its stride: stride 4 -> ``"p2"``, 64 -> ``"p6"``."""
    return f"p{int(round(math.log2(stride)))}"


@BACKBONE_REGISTRY.register()
class TimmFPNBackbone(Backbone):
    """Multi-scale features of a timm model, fused top-down by an FPN.

    Args:
        body: a timm model created with ``features_only=True``.
        out_channels: channels of every pyramid level.
        top_block: add one coarser level by stride-2 max-pooling the coarsest FPN output.
    """

    @configurable
    def __init__(self, *, body: nn.Module, out_channels: int = 256, top_block: bool = True):
        super().__init__()
        self.body = body
        in_channels = list(body.feature_info.channels())
        body_strides = list(body.feature_info.reduction())
        self.fpn = FeaturePyramidNetwork(
            in_channels, out_channels, extra_blocks=LastLevelMaxPool() if top_block else None
        )
        strides = body_strides + ([body_strides[-1] * 2] if top_block else [])
        self.output_names = [level_name(s) for s in strides]
        self.strides = dict(zip(self.output_names, strides))
        self.out_channels = out_channels
        self.size_divisibility = strides[-1]

    @classmethod
    def from_config(cls, cfg: CfgNode) -> dict:
        tcfg = cfg.MODEL.TIMM
        body = create_timm_features(tcfg.NAME, tcfg.PRETRAINED, tuple(tcfg.OUT_INDICES))
        freeze_timm_stages(body, cfg.MODEL.BACKBONE.FREEZE_AT)
        if tcfg.FROZEN_BN:
            body = freeze_batch_norm_2d(body)
        return {"body": body, "out_channels": cfg.MODEL.FPN.OUT_CHANNELS,
                "top_block": cfg.MODEL.FPN.TOP_BLOCK}  # fmt: skip

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """``Tensor[B, 3, H, W]`` -> ``{"p2": Tensor[B, C, H/4, W/4], ...}`` (see Backbone)."""
        feats = self.body(images)
        fpn_out = self.fpn(OrderedDict((str(i), f) for i, f in enumerate(feats)))
        return dict(zip(self.output_names, fpn_out.values()))


def create_timm_features(name: str, pretrained: str, out_indices: tuple[int, ...]) -> nn.Module:
    """Create a timm ``features_only`` model.

    Args:
        name: timm model name, e.g. ``"resnet50"``.
        pretrained: ``""`` for random weights, ``"timm"`` for timm's default pretrained weights
            (downloaded by timm), or the path of a local weights file.
        out_indices: which of timm's feature levels to return (0 = stem).
    """
    if name not in timm.list_models():
        raise ValueError(f"MODEL.TIMM.NAME={name!r} is not a timm model name")
    kwargs: dict = {"features_only": True, "out_indices": out_indices}
    if pretrained == "timm":
        kwargs["pretrained"] = True
    elif pretrained:
        if not os.path.isfile(pretrained):
            raise FileNotFoundError(f"MODEL.TIMM.PRETRAINED={pretrained!r}: no such weights file")
        kwargs.update(pretrained=True, pretrained_cfg_overlay={"file": pretrained})
    return timm.create_model(name, **kwargs)


def freeze_timm_stages(body: nn.Module, freeze_at: int) -> None:
    """Stop gradients through the first ``freeze_at`` feature levels of a timm features model.

    Level 0 is the stem, level 1 the first stage, ... (timm's ``feature_info`` order), so
    ``freeze_at=2`` freezes the stem and the first stage, as detectron2's ``FREEZE_AT=2``.
    """
    if freeze_at <= 0:
        return
    modules = [info["module"] for info in body.feature_info.info]  # all levels, not only outputs
    if freeze_at > len(modules):
        raise ValueError(
            f"MODEL.BACKBONE.FREEZE_AT={freeze_at} exceeds the {len(modules)} feature levels "
            "of the timm model"
        )
    last = modules[freeze_at - 1].replace(".", "_")
    for child_name, child in body.named_children():
        child.requires_grad_(False)
        if child_name == last:
            return
    raise ValueError(f"cannot find timm module {last!r} to freeze up to")
