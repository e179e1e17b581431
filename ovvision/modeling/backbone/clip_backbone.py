"""The frozen image tower of an open_clip model as a detection backbone (F-VLM)."""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import FeaturePyramidNetwork

from ovvision.config import CfgNode, configurable
from ovvision.modeling.text import TextEncoder, text_encoder_from_cfg

from .build import BACKBONE_REGISTRY, Backbone, level_name
from .clip_towers import ClipTower, ViTClipTower, wrap_clip_tower


@BACKBONE_REGISTRY.register()
class ClipImageBackbone(Backbone):
    """A frozen CLIP image tower plus a trainable pyramid on top of it.

    The tower is the image tower of the text encoder's CLIP model (``MODEL.TEXT_ENCODER``), so
    region features and class embeddings share one embedding space.

    ResNet towers feed their four stages to an FPN; ViT towers feed their single patch-token map
    to a simple feature pyramid (ViTDet). The output also holds the tower's own maps (``res5``
    or ``vit``) so CLIP region embeddings can be pooled from them without a second pass.

    Args:
        tower: the frozen CLIP image tower.
        out_channels: channels of every pyramid level.
        top_block: add one coarser level by stride-2 max-pooling the coarsest level.
        pyramid_scales: for ViT towers, the resampling factor of each level relative to the
            token map (e.g. ``(4, 2, 1, 0.5)`` gives strides 4..32 for patch size 16).
    """

    @configurable
    def __init__(
        self,
        *,
        tower: ClipTower,
        out_channels: int = 256,
        top_block: bool = True,
        pyramid_scales: tuple[float, ...] = (4.0, 2.0, 1.0, 0.5),
    ):
        super().__init__()
        self.tower = tower
        if isinstance(tower, ViTClipTower):
            self.pyramid = SimpleFeaturePyramid(
                tower.feature_channels["vit"], pyramid_scales, out_channels
            )
            strides = [int(round(tower.patch / s)) for s in pyramid_scales]
        else:
            self.pyramid = _FPNOverDict(list(tower.feature_channels.values()), out_channels)
            strides = list(tower.feature_strides.values())
        self.top_block = top_block
        if top_block:
            strides.append(strides[-1] * 2)
        self.output_names = [level_name(s) for s in strides]
        if len(set(self.output_names)) != len(strides) or any(s < 1 for s in strides):
            raise ValueError(f"pyramid strides {strides} must be distinct powers of two")
        self.strides = dict(zip(self.output_names, strides))
        self.out_channels = out_channels
        self.size_divisibility = max(strides[-1], max(tower.feature_strides.values()))

    needs_clip_model = True

    @classmethod
    def from_config(cls, cfg: CfgNode, clip_model: TextEncoder | None = None) -> dict:
        tower = wrap_clip_tower(
            clip_model if clip_model is not None else text_encoder_from_cfg(cfg)
        )
        check_pixel_normalisation(cfg, tower)
        return {
            "tower": tower,
            "out_channels": cfg.MODEL.FPN.OUT_CHANNELS,
            "top_block": cfg.MODEL.FPN.TOP_BLOCK,
            "pyramid_scales": tuple(cfg.MODEL.CLIP_BACKBONE.PYRAMID_SCALES),
        }

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """``Tensor[B, 3, H, W]`` -> pyramid levels ``p*`` plus the tower's maps (see Backbone)."""
        with torch.no_grad():
            clip_maps = self.tower(images)
        levels = self.pyramid(clip_maps)
        if self.top_block:
            levels.append(F.max_pool2d(levels[-1], kernel_size=1, stride=2))
        out = dict(zip(self.output_names, levels))
        out.update(clip_maps)
        return out


class SimpleFeaturePyramid(nn.Module):
    """Multi-scale maps from one single-scale map by (de)convolution and pooling (ViTDet).

    Args:
        in_channels: channels of the input map.
        scales: one resampling factor per output level, each a power of two (4, 2, 1, 0.5, ...).
        out_channels: channels of every output level.
    """

    def __init__(self, in_channels: int, scales: tuple[float, ...], out_channels: int):
        super().__init__()
        self.stages = nn.ModuleList(
            nn.Sequential(
                *_resample_layers(in_channels, scale),
                nn.Conv2d(_resampled_channels(in_channels, scale), out_channels, 1, bias=False),
                nn.GroupNorm(_groups(out_channels), out_channels),
                nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
                nn.GroupNorm(_groups(out_channels), out_channels),
            )
            for scale in scales
        )

    def forward(self, clip_maps: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """``{"vit": Tensor[B, C, h, w]}`` -> ``[Tensor[B, out, h * scale, w * scale], ...]``."""
        x = clip_maps["vit"]
        return [stage(x) for stage in self.stages]


def _resampled_channels(channels: int, scale: float) -> int:
    return channels // int(scale) if scale > 1 else channels


def _groups(channels: int) -> int:
    return 32 if channels % 32 == 0 else 1


def _resample_layers(channels: int, scale: float) -> list[nn.Module]:
    steps = math.log2(scale)
    if steps != round(steps):
        raise ValueError(f"MODEL.CLIP_BACKBONE.PYRAMID_SCALES: {scale} is not a power of two")
    steps = int(round(steps))
    if steps <= 0:
        return [nn.MaxPool2d(kernel_size=2**-steps, stride=2**-steps)] if steps < 0 else []
    layers: list[nn.Module] = []
    for i in range(steps):
        c_in, c_out = channels // 2**i, channels // 2 ** (i + 1)
        layers.append(nn.ConvTranspose2d(c_in, c_out, kernel_size=2, stride=2))
        if i < steps - 1:
            layers += [nn.GroupNorm(_groups(c_out), c_out), nn.GELU()]
    return layers


class _FPNOverDict(nn.Module):
    """torchvision's FPN over the tower's maps in order (finest first)."""

    def __init__(self, in_channels: list[int], out_channels: int):
        super().__init__()
        self.fpn = FeaturePyramidNetwork(in_channels, out_channels)

    def forward(self, clip_maps: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        return list(self.fpn(OrderedDict(clip_maps)).values())


def check_pixel_normalisation(cfg: CfgNode, tower: ClipTower) -> None:
    """Raise unless MODEL.PIXEL_MEAN/STD are the CLIP tower's own normalisation."""
    for key, want in (("PIXEL_MEAN", tower.pixel_mean), ("PIXEL_STD", tower.pixel_std)):
        have = list(cfg.MODEL[key])
        if len(have) != 3 or any(abs(a - b) > 0.5 for a, b in zip(have, want)):
            raise ValueError(
                f"MODEL.{key}={have} does not match the CLIP model "
                f"{cfg.MODEL.TEXT_ENCODER.NAME!r}, which expects "
                f"{[round(v, 3) for v in want]}; set MODEL.{key} to that"
            )
