"""CLIP image embeddings of boxes, for ViLD distillation targets and for CLIP score fusion.

Two sources: ``"dense"`` pools the frozen CLIP backbone's own features inside each box (F-VLM,
nearly free), ``"crops"`` cuts a square around each box from the image, resizes it to CLIP's
input size and runs the CLIP image tower on it (ViLD; works with any backbone but costs one
tower pass per box).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ovvision.config import CfgNode
from ovvision.modeling.backbone import Backbone, ClipImageBackbone, ClipTower, wrap_clip_tower
from ovvision.modeling.text import TextEncoder
from ovvision.ops import roi_align
from ovvision.structures import ImageList, square_boxes

SOURCES = ("dense", "crops")


class ClipBoxEmbedder(nn.Module):
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
            raise ValueError(
                f"MODEL.CLIP_BOX_EMBEDDER.SOURCE must be one of {SOURCES}, got {source!r}"
            )
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
            square_boxes(b, self.crop_scale, size) for b, size in zip(boxes, images.image_sizes)
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


def build_clip_box_embedder(
    cfg: CfgNode, backbone: Backbone, clip_model: TextEncoder | None
) -> ClipBoxEmbedder | None:
    """The CLIP box embedder of ``MODEL.CLIP_BOX_EMBEDDER`` (None when ``SOURCE`` is ``""``).

    A CLIP backbone shares its tower; otherwise the image tower of the model's CLIP
    (``clip_model``, the one that embeds the vocabulary) is used, frozen, for crops.
    """
    source = cfg.MODEL.CLIP_BOX_EMBEDDER.SOURCE
    if not source:
        return None
    if isinstance(backbone, ClipImageBackbone):
        tower = backbone.tower
    elif source == "dense":
        raise ValueError(
            "MODEL.CLIP_BOX_EMBEDDER.SOURCE='dense' needs MODEL.BACKBONE.NAME='ClipImageBackbone'; "
            "use 'crops' with other backbones"
        )
    else:
        if clip_model is None:
            raise ValueError("MODEL.CLIP_BOX_EMBEDDER.SOURCE='crops' needs the model's CLIP")
        tower = wrap_clip_tower(clip_model)
    return ClipBoxEmbedder(
        tower=tower,
        source=source,
        pixel_mean=list(cfg.MODEL.PIXEL_MEAN),
        pixel_std=list(cfg.MODEL.PIXEL_STD),
        crop_scale=cfg.MODEL.CLIP_BOX_EMBEDDER.CROP_SCALE,
    )
