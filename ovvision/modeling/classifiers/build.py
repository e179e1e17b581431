"""The region-classifier family: what names a region, given its pooled features and a vocabulary.

A region classifier is an ``nn.Module`` with this interface (see ``ZeroShotRegionClassifier``):

- ``forward(roi_features Tensor[K, C, R, R]) -> (embeddings Tensor[K, D], box_deltas Tensor[K, 4])``
- ``class_logits(embeddings, class_embeddings Tensor[C, D]) -> Tensor[K, C + 1]`` (background last)
- ``class_probs(logits) -> Tensor[K, C]``
- ``classification_loss(logits, labels LongTensor[K], seen BoolTensor[C]) -> Tensor[]``
- ``box_regression_loss(deltas, target_deltas, foreground BoolTensor[K]) -> Tensor[]``
- attribute ``embed_dim`` (D, the text-embedding dimension it compares with).
"""

from __future__ import annotations

from torch import nn

from ovvision.config import CfgNode
from ovvision.utils.registry import Registry

REGION_CLASSIFIER_REGISTRY = Registry("REGION_CLASSIFIER")
REGION_CLASSIFIER_REGISTRY.__doc__ = """Region classifiers: ``MODEL.ROI_HEADS.CLASSIFIER`` names a
class built with ``cls(cfg, in_channels=...)``."""


def build_region_classifier(cfg: CfgNode, in_channels: int) -> nn.Module:
    """Build the region classifier named by ``MODEL.ROI_HEADS.CLASSIFIER``.

    Args:
        cfg: the config.
        in_channels: channels of the pooled ROI features.
    """
    return REGION_CLASSIFIER_REGISTRY.get(cfg.MODEL.ROI_HEADS.CLASSIFIER)(
        cfg, in_channels=in_channels
    )
