"""Frozen open_clip image towers used as dense feature extractors (the F-VLM / FC-CLIP idea).

A tower returns the tower's own feature maps (which stay in CLIP's representation) and can turn
boxes into CLIP image embeddings in two ways: pooling its dense features inside each box
(``region_embeddings``), or encoding image crops with the whole tower (``encode_crops``).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import open_clip
import torch
import torch.nn.functional as F
from open_clip.modified_resnet import ModifiedResNet
from open_clip.transformer import VisionTransformer
from torch import nn

from ovvision.modeling.text import TextEncoder
from ovvision.ops import roi_align


class ClipTower(nn.Module, ABC):
    """A frozen CLIP image tower; always in eval mode, never trained.

    Attributes:
        feature_channels: ``{name: channels}`` of the maps ``forward`` returns.
        feature_strides: ``{name: stride}`` of those maps.
        embed_dim: dimension of CLIP's joint image-text space.
        image_size: ``(h, w)`` input size the tower was trained at (crops are resized to it).
        pixel_mean, pixel_std: CLIP's input normalisation in [0, 255] pixel units.
        logit_scale: the multiplier of image-text cosine similarities CLIP learnt in
            pretraining (``exp`` of its ``logit_scale``; 100 for OpenAI's weights).
    """

    feature_channels: dict[str, int]
    feature_strides: dict[str, int]

    def __init__(self, clip_model: nn.Module):
        super().__init__()
        self.visual = clip_model.visual
        self.visual.requires_grad_(False)
        self.embed_dim = int(self.visual.output_dim)
        pre = open_clip.get_model_preprocess_cfg(clip_model)
        size = pre.get("size", 224)
        self.image_size = (size, size) if isinstance(size, int) else tuple(size)
        self.pixel_mean = [255.0 * m for m in pre.get("mean", open_clip.OPENAI_DATASET_MEAN)]
        self.pixel_std = [255.0 * s for s in pre.get("std", open_clip.OPENAI_DATASET_STD)]
        self.logit_scale = float(clip_model.logit_scale.detach().exp())
        self.eval()

    def train(self, mode: bool = True) -> ClipTower:
        """Keep the frozen tower in eval mode (batch-norm statistics, dropout) whatever ``mode``."""
        return super().train(False)

    @abstractmethod
    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """``Tensor[B, 3, H, W]`` CLIP-normalised images -> ``{name: Tensor[B, C, h, w]}``."""

    @abstractmethod
    def region_embeddings(
        self, features: dict[str, torch.Tensor], boxes: list[torch.Tensor]
    ) -> torch.Tensor:
        """CLIP embeddings of boxes pooled from this tower's own dense features.

        Args:
            features: what ``forward`` returned for the batch.
            boxes: per image, ``Tensor[K_i, 4]`` (x1, y1, x2, y2) in input pixels.

        Returns:
            ``Tensor[sum K_i, embed_dim]``, not normalised.
        """

    def encode_crops(self, crops: torch.Tensor) -> torch.Tensor:
        """``Tensor[K, 3, h, w]`` CLIP-normalised crops at ``image_size`` -> ``Tensor[K, D]``."""
        return self.visual(crops)


class ResNetClipTower(ClipTower):
    """open_clip's ModifiedResNet: maps ``res2``-``res5``; regions via CLIP's attention pool."""

    def __init__(self, clip_model: nn.Module):
        super().__init__(clip_model)
        v = self.visual
        names = ["res2", "res3", "res4", "res5"]
        layers = [v.layer1, v.layer2, v.layer3, v.layer4]
        self.feature_channels = {n: layer[-1].conv3.out_channels for n, layer in zip(names, layers)}
        self.feature_strides = dict(zip(names, [4, 8, 16, 32]))
        self.pool_size = int(round(math.sqrt(v.attnpool.positional_embedding.shape[0] - 1)))

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        v = self.visual
        x = v.stem(images)
        out = {}
        for name, layer in zip(self.feature_channels, [v.layer1, v.layer2, v.layer3, v.layer4]):
            x = layer(x)
            out[name] = x
        return out

    def region_embeddings(
        self, features: dict[str, torch.Tensor], boxes: list[torch.Tensor]
    ) -> torch.Tensor:
        # F-VLM: ROI-align res5 to the attention pool's native grid, then CLIP's own pooling.
        pooled = roi_align(
            features["res5"], boxes, self.pool_size, 1.0 / 32, sampling_ratio=0, aligned=True
        )
        return self.visual.attnpool(pooled)


class ViTClipTower(ClipTower):
    """open_clip's VisionTransformer: one map ``vit`` of patch tokens; regions by average pooling
    of the tokens projected into CLIP space (final norm and projection applied per token)."""

    def __init__(self, clip_model: nn.Module):
        super().__init__(clip_model)
        v = self.visual
        if getattr(v, "attn_pool", None) is not None or v.proj is None:
            raise ValueError(
                "ViT towers with attentional pooling or without projection unsupported"
            )
        self.patch = int(v.patch_size[0])
        self.feature_channels = {"vit": int(v.conv1.out_channels)}
        self.feature_strides = {"vit": self.patch}

    def _positional_embedding(self, grid: tuple[int, int]) -> torch.Tensor:
        """``Tensor[1 + h * w, width]``: CLIP's position embedding resized to ``grid`` patches."""
        pos = self.visual.positional_embedding
        gh, gw = self.visual.grid_size
        if (gh, gw) == grid:
            return pos
        patch_pos = pos[1:].reshape(1, gh, gw, -1).permute(0, 3, 1, 2)
        patch_pos = F.interpolate(patch_pos, size=grid, mode="bicubic", align_corners=False)
        return torch.cat([pos[:1], patch_pos.flatten(2)[0].t()], dim=0)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        v = self.visual
        x = v.conv1(images)
        b, c, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)
        cls = v.class_embedding.to(x.dtype).expand(b, 1, c)
        x = torch.cat([cls, tokens], dim=1) + self._positional_embedding((h, w)).to(x.dtype)
        x = v.transformer(v.ln_pre(x))
        return {"vit": x[:, 1:].transpose(1, 2).reshape(b, c, h, w)}

    def region_embeddings(
        self, features: dict[str, torch.Tensor], boxes: list[torch.Tensor]
    ) -> torch.Tensor:
        tokens = features["vit"].permute(0, 2, 3, 1)
        dense = (self.visual.ln_post(tokens) @ self.visual.proj).permute(0, 3, 1, 2)
        # One output bin with adaptive sampling: about one bilinear sample per token inside the
        # box, averaged (exactly CLIP's token average for a whole-image box).
        pooled = roi_align(dense, boxes, 1, 1.0 / self.patch, sampling_ratio=0, aligned=True)
        return pooled.flatten(1)


def wrap_clip_tower(clip_model: TextEncoder) -> ClipTower:
    """The frozen image tower of an open_clip model (``TextEncoder``), as a :class:`ClipTower`.

    The tower shares the model's modules (no copy): one CLIP serves text and image.
    """
    model = clip_model.model
    if isinstance(model.visual, ModifiedResNet):
        return ResNetClipTower(model)
    if isinstance(model.visual, VisionTransformer):
        return ViTClipTower(model)
    raise ValueError(
        f"CLIP model {clip_model.name!r} has an image tower of type {type(model.visual).__name__}; "
        "only ModifiedResNet and VisionTransformer towers can serve dense features"
    )
