"""A timm model (``features_only``) followed by a feature pyramid: an FPN over its multi-scale
levels, or a simple feature pyramid (ViTDet) over the single map of a plain ViT."""

from __future__ import annotations

import math
import os
from collections import OrderedDict

import timm
import torch
import torch.nn.functional as F
from timm.layers import PatchEmbed, freeze_batch_norm_2d
from timm.models._features import FeatureGetterNet
from torch import nn
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from ovvision.config import CfgNode, configurable

from .build import BACKBONE_REGISTRY, Backbone, level_name
from .clip_backbone import SimpleFeaturePyramid


@BACKBONE_REGISTRY.register()
class TimmFPNBackbone(Backbone):
    """Multi-scale features of any timm model that supports ``features_only``, made a pyramid.

    The levels, strides, channels and channel layout come from the body's timm ``feature_info``
    and ``output_fmt``: NHWC features (Swin and other transformers) are permuted to NCHW. A body
    with several levels (ResNet, ConvNeXt, EfficientNet, RegNet, Swin, ...) is fused top-down by
    torchvision's FPN. A body with one level (a plain ViT, whose blocks all have stride 16) feeds
    a simple feature pyramid (ViTDet: deconvolutions, identity and max-pooling of that map).

    Models built for one input size (timm ``PatchEmbed`` with ``strict_img_size``: ViT, Swin)
    are created by :func:`create_timm_features` with timm's ``dynamic_img_size=True``, so they
    take any input whose sides are multiples of ``size_divisibility``: ViTs resample their
    position embeddings to the input grid, Swin pads each stage to whole attention windows and
    builds its shift masks for the input's size.

    Args:
        body: a timm model created with ``features_only=True``.
        out_channels: channels of every pyramid level.
        top_block: add one coarser level by stride-2 max-pooling the coarsest level.
        pyramid_scales: for a single-level body, the resampling factor of each pyramid level
            relative to the map (``(4, 2, 1, 0.5)`` gives strides 4..32 from a stride-16 ViT).
    """

    @configurable
    def __init__(
        self,
        *,
        body: nn.Module,
        out_channels: int = 256,
        top_block: bool = True,
        pyramid_scales: tuple[float, ...] = (4.0, 2.0, 1.0, 0.5),
    ):
        super().__init__()
        self.body = body
        in_channels = list(body.feature_info.channels())
        strides = list(body.feature_info.reduction())
        self.channels_last = getattr(body, "output_fmt", "NCHW") == "NHWC"
        self.fpn: FeaturePyramidNetwork | None = None
        self.simple_pyramid: SimpleFeaturePyramid | None = None
        if len(strides) == 1:
            strides = _scaled_strides(strides[0], pyramid_scales)
            self.simple_pyramid = SimpleFeaturePyramid(in_channels[0], pyramid_scales, out_channels)
        else:
            self.fpn = FeaturePyramidNetwork(
                in_channels, out_channels, extra_blocks=LastLevelMaxPool() if top_block else None
            )
        self.top_block = top_block
        if top_block:
            strides.append(strides[-1] * 2)
        self.output_names = [level_name(s) for s in strides]
        if len(set(self.output_names)) != len(strides) or strides != sorted(strides):
            raise ValueError(f"timm pyramid strides {strides} must be increasing powers of two")
        self.strides = dict(zip(self.output_names, strides))
        self.out_channels = out_channels
        self.size_divisibility = max(strides[-1], max(body.feature_info.reduction()))

    @classmethod
    def from_config(cls, cfg: CfgNode) -> dict:
        tcfg = cfg.MODEL.TIMM
        body = create_timm_features(tcfg.NAME, tcfg.PRETRAINED, tuple(tcfg.OUT_INDICES))
        freeze_timm_stages(body, cfg.MODEL.BACKBONE.FREEZE_AT)
        if tcfg.FROZEN_BN:
            body = freeze_batch_norm_2d(body)
        return {"body": body, "out_channels": cfg.MODEL.FPN.OUT_CHANNELS,
                "top_block": cfg.MODEL.FPN.TOP_BLOCK,
                "pyramid_scales": tuple(tcfg.PYRAMID_SCALES)}  # fmt: skip

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """``Tensor[B, 3, H, W]`` -> ``{"p2": Tensor[B, C, H/4, W/4], ...}`` (see Backbone)."""
        feats = self.body(images)
        if self.channels_last:
            feats = [f.permute(0, 3, 1, 2) for f in feats]  # [B, H, W, C] -> [B, C, H, W]
        if self.simple_pyramid is not None:
            levels = self.simple_pyramid({"vit": feats[0]})
            if self.top_block:
                levels.append(F.max_pool2d(levels[-1], kernel_size=1, stride=2))
        else:
            levels = list(self.fpn(OrderedDict((str(i), f) for i, f in enumerate(feats))).values())
        return dict(zip(self.output_names, levels))


def _scaled_strides(stride: int, scales: tuple[float, ...]) -> list[int]:
    """Strides of a simple feature pyramid over a map of ``stride``; checks the scales."""
    out = []
    for scale in scales:
        if scale <= 0 or math.log2(scale) % 1 or (stride / scale) % 1:
            raise ValueError(
                f"MODEL.TIMM.PYRAMID_SCALES={list(scales)}: {scale} is not a power of two that "
                f"gives a whole stride from the timm model's stride-{stride} map"
            )
        out.append(int(stride / scale))
    return out


def create_timm_features(name: str, pretrained: str, out_indices: tuple[int, ...]) -> nn.Module:
    """Create a timm ``features_only`` model.

    Args:
        name: timm model name, e.g. ``"resnet50"``.
        pretrained: ``""`` for random weights, ``"timm"`` for timm's default pretrained weights
            (downloaded by timm), or the path of a local weights file.
        out_indices: which of the levels of timm's ``feature_info`` to return; ``()`` derives
            them with :func:`select_feature_levels`.
    """
    if not timm.is_model(name):
        raise ValueError(f"MODEL.TIMM.NAME={name!r} is not a timm model name")
    probe = _probe_features(name)
    kwargs: dict = {
        "features_only": True,
        "out_indices": select_feature_levels(probe.feature_info.info, out_indices, name),
    }
    if any(
        getattr(m, "strict_img_size", False) for m in probe.modules() if isinstance(m, PatchEmbed)
    ):
        kwargs["dynamic_img_size"] = True  # see TimmFPNBackbone: take any padded input size
    if pretrained == "timm":
        kwargs["pretrained"] = True
    elif pretrained:
        if not os.path.isfile(pretrained):
            raise FileNotFoundError(f"MODEL.TIMM.PRETRAINED={pretrained!r}: no such weights file")
        kwargs.update(pretrained=True, pretrained_cfg_overlay={"file": pretrained})
    try:
        return timm.create_model(name, **kwargs)
    except TypeError as e:
        if "dynamic_img_size" not in str(e):
            raise
        raise ValueError(
            f"MODEL.TIMM.NAME={name!r} takes one fixed input size and has no dynamic_img_size "
            "option in timm; use a model that does"
        ) from e


def _probe_features(name: str) -> nn.Module:
    """The ``features_only`` model ``name`` with default settings, without weights if possible."""
    try:
        with torch.device("meta"):  # only its structure is read: no memory, no initialisation
            return timm.create_model(name, features_only=True)
    except (RuntimeError, NotImplementedError):  # an initialisation that needs real tensors
        return timm.create_model(name, features_only=True)


def select_feature_levels(
    levels: list[dict], out_indices: tuple[int, ...], name: str
) -> tuple[int, ...]:
    """Check or derive which timm feature levels feed the pyramid (``MODEL.TIMM.OUT_INDICES``).

    Args:
        levels: timm's ``feature_info.info``: one dict per level with ``reduction`` (stride).
        out_indices: indices into ``levels``, finest first; ``()`` derives them: the last level
            of each stride, without a stride-2 stem level when 4 or more remain (as detectron2's
            res2-res5). A plain ViT, whose levels all have stride 16, gets its last block.
        name: the timm model name, for messages.

    Returns:
        The level indices, strides strictly increasing.
    """
    strides = [int(level["reduction"]) for level in levels]
    if not out_indices:
        picked = sorted({s: i for i, s in enumerate(strides)}.values())
        stem, _ = _stages(levels)
        return tuple(picked[1:] if stem is not None else picked)
    about = f"the {len(levels)} feature levels of timm's {name!r} have strides {strides}"
    if any(not 0 <= i < len(levels) for i in out_indices):
        raise ValueError(
            f"MODEL.TIMM.OUT_INDICES={list(out_indices)}: each index must be in "
            f"0..{len(levels) - 1} ({about}); [] derives them"
        )
    chosen = [strides[i] for i in out_indices]
    if any(a >= b for a, b in zip(chosen, chosen[1:])):
        raise ValueError(
            f"MODEL.TIMM.OUT_INDICES={list(out_indices)} selects strides {chosen}, which must "
            f"increase ({about}); a single index gives a simple feature pyramid"
        )
    return tuple(out_indices)


def _stages(levels: list[dict]) -> tuple[dict | None, list[dict]]:
    """Split timm feature levels into the stem level (stride 2, 4+ levels) and the stages."""
    if len({int(level["reduction"]) for level in levels}) >= 4 and levels[0]["reduction"] == 2:
        return levels[0], levels[1:]
    return None, levels


def freeze_timm_stages(body: nn.Module, freeze_at: int) -> None:
    """Stop gradients through the stem and the first ``freeze_at - 1`` stages of a timm body.

    Stages are the levels of timm's ``feature_info`` (all of them, not only the outputs). The
    stem is everything before the first stage; a stride-2 first level of a model with 4 or more
    strides (ResNet's ``act1``, RegNet's ``stem``, EfficientNet's ``blocks.0``) is the stem's
    end, as in :func:`select_feature_levels`. So ``freeze_at=2`` freezes the stem and the first
    stride-4 stage, as detectron2's ``FREEZE_AT=2``. A stage is its ``feature_info`` module and
    every module registered after the previous stage's module (EfficientNet's ``blocks.3``
    belongs to the stage of ``blocks.4``).
    """
    if freeze_at <= 0:
        return
    stem, stages = _stages(body.feature_info.info)
    if freeze_at > len(stages) + 1:
        raise ValueError(
            f"MODEL.BACKBONE.FREEZE_AT={freeze_at} exceeds the stem and {len(stages)} stages "
            f"of the timm model: use 0 (none), 1 (stem) .. {len(stages) + 1}"
        )
    info = body.feature_info.info
    if freeze_at == 1 and stem is None:
        level, inclusive = stages[0], False  # the modules before the first stage
    else:
        level, inclusive = (stem if freeze_at == 1 else stages[freeze_at - 2]), True
    root = body.model if isinstance(body, FeatureGetterNet) else body
    names = [n for n, _ in root.named_modules()]  # registration order, parents first
    end = _frozen_end(names, level["module"], inclusive)
    if end is None:
        if info.index(level) <= max(body.feature_info.out_indices):
            raise ValueError(f"cannot find timm module {level['module']!r} to freeze up to")
        end = len(names)  # a level after the last output, which timm dropped: freeze all
    for module_name in names[:end]:
        for param in root.get_submodule(module_name).parameters(recurse=False):
            param.requires_grad_(False)


def _frozen_end(names: list[str], module: str, inclusive: bool) -> int | None:
    """One past the last frozen module in ``names`` (pre-order), or None if ``module`` is absent.

    ``features_only`` flattens ``"stages.0"`` to ``"stages_0"``, so names compare with ``_``.
    """
    keys = [n.replace(".", "_") for n in names]
    key = module.replace(".", "_")
    if key not in keys:
        return None
    start = keys.index(key)
    if not inclusive:
        return start
    end = start + 1
    while end < len(names) and names[end].startswith(names[start] + "."):
        end += 1
    return end
