"""CLIP score fusion: detector class scores blended with CLIP's own scores of the same boxes.

The region classifier learns base classes only, so for classes unseen in training the frozen
CLIP's opinion of each box is the better one (ViLD-ensemble, F-VLM). The fusion is geometric,
``p = p_det ** (1 - a) * p_clip ** a``, with one exponent for seen classes and one for the others.
"""

from __future__ import annotations

import torch
from torch import nn

from ovvision.config import CfgNode, configurable
from ovvision.structures import ClassEmbeddings, ImageList

from .box_embedder import ClipBoxEmbedder


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
    """Geometric-mean fusion of detector scores with another opinion of the same regions (CLIP's,
    or ProxyDet's separate head's).

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


class ClipScoreFusion(nn.Module):
    """Fuse the detector's class probabilities of boxes with CLIP's (``MODEL.CLIP_SCORE_FUSION``).

    Args:
        box_embedder: CLIP embeddings of boxes.
        temperature: multiplier of CLIP cosine similarities before the softmax; <= 0 = the CLIP
            model's own learnt logit scale (100 for OpenAI's weights).
        alpha_seen: CLIP exponent for classes seen in training.
        beta_unseen: CLIP exponent for the others.
        max_regions: with the ``crops`` source, only the first this many boxes per image (in the
            proposer's objectness order) are scored by CLIP and kept; 0 = all. The order is
            class-agnostic on purpose: the region classifier learnt to call unannotated (novel)
            objects background, so ranking by its class scores would drop them before CLIP sees
            them.
    """

    @configurable
    def __init__(
        self,
        *,
        box_embedder: ClipBoxEmbedder,
        temperature: float = 0.0,
        alpha_seen: float = 0.35,
        beta_unseen: float = 0.65,
        max_regions: int = 0,
    ):
        super().__init__()
        self.box_embedder = box_embedder
        self.temperature = temperature if temperature > 0 else box_embedder.tower.logit_scale
        self.alpha_seen = alpha_seen
        self.beta_unseen = beta_unseen
        self.max_regions = max_regions

    @classmethod
    def from_config(cls, cfg: CfgNode, box_embedder: ClipBoxEmbedder | None) -> dict:
        fcfg = cfg.MODEL.CLIP_SCORE_FUSION
        if box_embedder is None:
            raise ValueError(
                "MODEL.CLIP_SCORE_FUSION.ENABLED needs CLIP box embeddings: set "
                "MODEL.CLIP_BOX_EMBEDDER.SOURCE to 'dense' or 'crops'"
            )
        return {
            "box_embedder": box_embedder,
            "temperature": fcfg.TEMPERATURE,
            "alpha_seen": fcfg.ALPHA_SEEN,
            "beta_unseen": fcfg.BETA_UNSEEN,
            "max_regions": fcfg.MAX_REGIONS_PER_IMAGE,
        }

    @torch.no_grad()
    def forward(
        self,
        images: ImageList,
        features: dict[str, torch.Tensor],
        boxes: list[torch.Tensor],
        probs: list[torch.Tensor],
        classes: ClassEmbeddings,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Fused probabilities, and the boxes they belong to.

        Args:
            images: the normalised, padded batch.
            features: the backbone's output (the ``dense`` source pools CLIP's maps from it).
            boxes: per image ``Tensor[K_i, 4]`` boxes in objectness order.
            probs: per image ``Tensor[K_i, C]`` detector probabilities.
            classes: the vocabulary (embeddings and seen flags).

        Returns:
            Per image the kept boxes ``Tensor[K'_i, 4]`` and their fused ``Tensor[K'_i, C]``.
        """
        if self.box_embedder.source == "crops" and self.max_regions > 0:
            boxes = [b[: self.max_regions] for b in boxes]
            probs = [p[: self.max_regions] for p in probs]
        clip_emb = self.box_embedder(images, features, boxes)
        clip_probs = clip_class_probs(clip_emb, classes.embeddings, self.temperature)
        fused = fuse_scores(
            torch.cat(probs), clip_probs, classes.seen, self.alpha_seen, self.beta_unseen
        )
        return boxes, list(fused.split([len(b) for b in boxes]))


def build_clip_score_fusion(
    cfg: CfgNode, box_embedder: ClipBoxEmbedder | None
) -> ClipScoreFusion | None:
    """The score fusion of ``MODEL.CLIP_SCORE_FUSION`` (None unless ``ENABLED``)."""
    if not cfg.MODEL.CLIP_SCORE_FUSION.ENABLED:
        return None
    return ClipScoreFusion(cfg, box_embedder=box_embedder)
