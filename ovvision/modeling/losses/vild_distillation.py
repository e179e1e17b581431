"""ViLD distillation: region embeddings pulled towards CLIP's image embeddings of the same boxes."""

from __future__ import annotations

import torch
from torch import nn

from ovvision.config import CfgNode, configurable
from ovvision.modeling.clip_regions import ClipBoxEmbedder

from .build import AUXILIARY_LOSS_REGISTRY, AuxiliaryLoss, RegionLossInputs


@AUXILIARY_LOSS_REGISTRY.register()
class ViLDDistillationLoss(AuxiliaryLoss):
    """Mean over the top proposals of ``|region embedding - CLIP embedding|_1`` (``loss_distill``).

    The proposals are the first ``regions_per_image`` of each image in objectness order, whether
    or not they cover an annotated object, so the classifier learns CLIP's view of unannotated
    (possibly novel) objects too.

    Args:
        box_embedder: CLIP embeddings of boxes (the targets, without gradient).
        weight: multiplier of the loss.
        regions_per_image: top proposals distilled per image.
    """

    @configurable
    def __init__(self, *, box_embedder: ClipBoxEmbedder, weight: float, regions_per_image: int):
        super().__init__()
        self.box_embedder = box_embedder
        self.weight = weight
        self.regions_per_image = regions_per_image

    @classmethod
    def from_config(
        cls, cfg: CfgNode, box_embedder: ClipBoxEmbedder | None = None, **_: nn.Module
    ) -> dict:
        if box_embedder is None:
            raise ValueError(
                "ViLDDistillationLoss needs CLIP box embeddings: set MODEL.CLIP_BOX_EMBEDDER.SOURCE"
            )
        dcfg = cfg.MODEL.VILD_DISTILLATION
        return {
            "box_embedder": box_embedder,
            "weight": dcfg.WEIGHT,
            "regions_per_image": dcfg.REGIONS_PER_IMAGE,
        }

    def extra_boxes(self, proposals: list[torch.Tensor]) -> list[torch.Tensor]:
        return [p[: self.regions_per_image] for p in proposals]

    def forward(self, inputs: RegionLossInputs) -> dict[str, torch.Tensor]:
        embeddings = inputs.extra_embeddings
        targets = self.box_embedder(inputs.images, inputs.features, inputs.extra_boxes)
        l1 = (embeddings - targets).abs().sum()
        return {"loss_distill": self.weight * l1 / max(embeddings.shape[0], 1)}


__all__ = ["ViLDDistillationLoss"]
