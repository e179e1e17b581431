"""CLIP image embeddings of boxes, for ViLD-style distillation and for score fusion at inference.

Two sources: ``"dense"`` pools the frozen CLIP backbone's own features inside each box (F-VLM,
nearly free), ``"crops"`` cuts a square around each box from the image, resizes it to CLIP's
input size and runs the CLIP image tower on it (ViLD; works with any backbone but costs one
tower pass per box).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import roi_align

from ovvision.config import CfgNode
from ovvision.modeling.backbone import Backbone, ClipImageBackbone, ClipTower, build_clip_tower
from ovvision.structures import ImageList

SOURCES = ("dense", "crops")


class RegionClipEmbedder(nn.Module):
    """Unit-norm CLIP embeddings of boxes.

    Args:
        tower: the frozen CLIP image tower (shared with a CLIP backbone when there is one).
        source: ``"dense"`` or ``"crops"`` (see the module docstring).
        pixel_mean, pixel_std: the detector's input normalisation (0-255 units), undone before
            applying CLIP's own for crops.
        crop_scale: side of the square crop around a box relative to its longer side.
        crop_batch_size: crops encoded per tower pass (bounds memory).
    """

    def __init__(
        self,
        *,
        tower: ClipTower,
        source: str,
        pixel_mean: list[float],
        pixel_std: list[float],
        crop_scale: float = 1.0,
        crop_batch_size: int = 256,
    ):
        super().__init__()
        if source not in SOURCES:
            raise ValueError(f"MODEL.REGION_CLIP.SOURCE must be one of {SOURCES}, got {source!r}")
        self.tower = tower
        self.source = source
        self.crop_scale = crop_scale
        self.crop_batch_size = crop_batch_size
        # x_clip = (x * std + mean - clip_mean) / clip_std, per channel.
        std, mean = torch.tensor(pixel_std), torch.tensor(pixel_mean)
        clip_mean, clip_std = torch.tensor(tower.pixel_mean), torch.tensor(tower.pixel_std)
        self.register_buffer("_scale", (std / clip_std).view(1, 3, 1, 1), persistent=False)
        self.register_buffer(
            "_shift", ((mean - clip_mean) / clip_std).view(1, 3, 1, 1), persistent=False
        )

    @torch.no_grad()
    def forward(
        self, images: ImageList, features: dict[str, torch.Tensor], boxes: list[torch.Tensor]
    ) -> torch.Tensor:
        """Embed boxes.

        Args:
            images: the detector's normalised, padded batch.
            features: the backbone's output (the ``"dense"`` source reads the tower's maps).
            boxes: per image ``Tensor[K_i, 4]`` (x1, y1, x2, y2) in input pixels.

        Returns:
            ``Tensor[sum K_i, D]`` unit-norm CLIP embeddings (no gradient).
        """
        if sum(len(b) for b in boxes) == 0:
            return images.tensor.new_zeros(0, self.tower.embed_dim)
        if self.source == "dense":
            emb = self.tower.region_embeddings(features, boxes)
        else:
            emb = self._encode_crops(images, boxes)
        return F.normalize(emb.float(), dim=-1)

    def _encode_crops(self, images: ImageList, boxes: list[torch.Tensor]) -> torch.Tensor:
        squares = [
            square_crop_boxes(b, self.crop_scale, size)
            for b, size in zip(boxes, images.image_sizes)
        ]
        crops = roi_align(
            images.tensor,
            squares,
            self.tower.image_size,
            spatial_scale=1.0,
            sampling_ratio=2,
            aligned=True,
        )
        crops = crops * self._scale + self._shift
        return torch.cat(
            [self.tower.encode_crops(c) for c in crops.split(self.crop_batch_size)], dim=0
        )


def square_crop_boxes(
    boxes: torch.Tensor, scale: float, image_size: tuple[int, int]
) -> torch.Tensor:
    """Square crops around boxes, as CLIP sees objects: undistorted, with some context.

    The side is ``scale`` times the longer box side; the square is shifted to lie inside the
    image where it fits (else it is centred on the box and the outside reads as padding).

    Args:
        boxes: ``Tensor[K, 4]`` (x1, y1, x2, y2).
        scale: side of the square relative to the longer box side.
        image_size: ``(h, w)`` of the image.

    Returns:
        ``Tensor[K, 4]`` square boxes.
    """
    h, w = image_size
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    side = (boxes[:, 2:] - boxes[:, :2]).max(dim=1).values * scale
    start = centre - side[:, None] / 2
    limit = torch.tensor([w, h], dtype=boxes.dtype, device=boxes.device) - side[:, None]
    fits = limit >= 0
    start = torch.where(fits, torch.minimum(start.clamp(min=0), limit.clamp(min=0)), start)
    return torch.cat([start, start + side[:, None]], dim=1)


def clip_class_probs(
    clip_embeddings: torch.Tensor, class_embeddings: torch.Tensor, temperature: float
) -> torch.Tensor:
    """``Tensor[K, C]``: softmax over the vocabulary of ``temperature * cos(region, class)``."""
    return (temperature * clip_embeddings @ class_embeddings.t()).softmax(dim=-1)


def fuse_scores(
    detector_probs: torch.Tensor,
    clip_probs: torch.Tensor,
    seen: torch.Tensor,
    alpha_seen: float,
    beta_unseen: float,
) -> torch.Tensor:
    """Geometric-mean fusion of detector and CLIP scores (ViLD-ensemble, F-VLM).

    ``p = p_det ** (1 - a) * p_clip ** a`` with ``a = alpha_seen`` for classes seen in training
    and ``a = beta_unseen`` for the others, so CLIP weighs more where the detector never learnt.

    Args:
        detector_probs: ``Tensor[K, C]``.
        clip_probs: ``Tensor[K, C]``.
        seen: ``BoolTensor[C]``.
        alpha_seen, beta_unseen: CLIP exponents in [0, 1].
    """
    exponent = torch.where(seen, alpha_seen, beta_unseen).to(detector_probs.dtype)
    return detector_probs.clamp(min=0) ** (1 - exponent) * clip_probs.clamp(min=0) ** exponent


def build_region_clip(cfg: CfgNode, backbone: Backbone) -> RegionClipEmbedder | None:
    """The CLIP region embedder of ``MODEL.REGION_CLIP`` (None when ``SOURCE`` is ``""``).

    A CLIP backbone shares its tower; otherwise the image tower of ``MODEL.TEXT_ENCODER``'s CLIP
    model is created (frozen) for crops.
    """
    source = cfg.MODEL.REGION_CLIP.SOURCE
    if not source:
        return None
    if isinstance(backbone, ClipImageBackbone):
        tower = backbone.tower
    elif source == "dense":
        raise ValueError(
            "MODEL.REGION_CLIP.SOURCE='dense' needs MODEL.BACKBONE.NAME='ClipImageBackbone'; "
            "use 'crops' with other backbones"
        )
    else:
        tower = build_clip_tower(cfg.MODEL.TEXT_ENCODER.NAME, cfg.MODEL.TEXT_ENCODER.PRETRAINED)
    return RegionClipEmbedder(
        tower=tower,
        source=source,
        pixel_mean=list(cfg.MODEL.PIXEL_MEAN),
        pixel_std=list(cfg.MODEL.PIXEL_STD),
        crop_scale=cfg.MODEL.REGION_CLIP.CROP_SCALE,
    )
