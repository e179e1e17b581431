"""Text-image query selection (OV-VG): the candidate regions most similar to the sentence."""

from __future__ import annotations

import torch
from torch.nn import functional as F
from torchvision.ops import nms

__all__ = ["region_sentence_similarity", "select_queries"]


def region_sentence_similarity(
    detector_embeddings: torch.Tensor,
    clip_embeddings: torch.Tensor,
    sentence: torch.Tensor,
    clip_weight: float,
) -> torch.Tensor:
    """Cosine of each region with the sentence, blending the two region embeddings.

    Args:
        detector_embeddings: ``Tensor[K, D]`` region embeddings of the detector's classifier.
        clip_embeddings: ``Tensor[K, D]`` CLIP image embeddings of the same boxes.
        sentence: ``Tensor[D]`` sentence embedding.
        clip_weight: w in ``(1 - w) * cos(detector) + w * cos(CLIP)``.

    Returns:
        ``Tensor[K]``.
    """
    sentence = F.normalize(sentence, dim=-1)
    detector_cos = F.normalize(detector_embeddings, dim=-1) @ sentence
    clip_cos = F.normalize(clip_embeddings, dim=-1) @ sentence
    return (1.0 - clip_weight) * detector_cos + clip_weight * clip_cos


def select_queries(
    similarity: torch.Tensor,
    num_queries: int,
    boxes: torch.Tensor | None = None,
    nms_threshold: float = 0.0,
) -> torch.Tensor:
    """Indices of the ``num_queries`` most similar regions, most similar first.

    Args:
        similarity: ``Tensor[K]`` region-sentence similarities.
        num_queries: how many to keep (all K when there are fewer).
        boxes: ``Tensor[K, 4]`` the regions' boxes, for ``nms_threshold``.
        nms_threshold: > 0: a region overlapping a more similar kept one by more than this IoU is
            skipped, so near-duplicate proposals do not take every query.

    Returns:
        ``LongTensor[min(K', num_queries)]`` (K' regions left after NMS).
    """
    if num_queries <= 0:
        raise ValueError(f"num_queries must be positive, got {num_queries}")
    if nms_threshold > 0:
        if boxes is None:
            raise ValueError("select_queries: nms_threshold > 0 needs the boxes")
        return nms(boxes.float(), similarity.float(), nms_threshold)[:num_queries]
    k = min(num_queries, similarity.numel())
    return similarity.topk(k).indices
