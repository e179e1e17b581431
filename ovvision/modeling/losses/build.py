"""The auxiliary-loss family: extra training signals computed from region embeddings.

An auxiliary loss is an ``nn.Module`` that receives one :class:`RegionLossInputs` per step and
returns named losses. It may ask for the embeddings of extra boxes (``extra_boxes``); the ROI
heads embed them in the same classifier pass as the sampled regions, so the classifier runs once
per step. A loss with nothing to act on in a batch returns an exact zero built from the inputs'
tensors, so every rank's graph reaches the same parameters (DDP without
``find_unused_parameters``).

New losses: one file in this folder, ``@AUXILIARY_LOSS_REGISTRY.register()``, an import in
``__init__.py``, one config block in ``config/defaults.py``; enable by listing the class name in
``MODEL.ROI_HEADS.AUXILIARY_LOSSES``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ovvision.config import CfgNode
from ovvision.structures import ClassEmbeddings, ImageList
from ovvision.utils.registry import Registry

AUXILIARY_LOSS_REGISTRY = Registry("AUXILIARY_LOSS")
AUXILIARY_LOSS_REGISTRY.__doc__ = """Auxiliary losses on region embeddings:
``MODEL.ROI_HEADS.AUXILIARY_LOSSES`` lists class names built with
``cls(cfg, box_embedder=..., classifier=...)`` (a loss's ``from_config`` takes the ones it needs
and ignores the others through ``**_``)."""


@dataclass
class RegionLossInputs:
    """What an auxiliary loss may read in one training step.

    Attributes:
        region_embeddings: ``Tensor[K, D]`` unit-norm classifier embeddings of the sampled
            regions (with gradient).
        labels: ``LongTensor[K]`` class of each sampled region, ``C`` for background.
        objectness: ``Tensor[K]`` the proposer's objectness logit of each sampled region.
        ious: ``Tensor[K]`` IoU of each sampled region with its best ground truth.
        roi_features: ``Tensor[K, C, R, R]`` the pooled features the classifier embedded.
        classes: the vocabulary (``embeddings Tensor[C, D]``, ``seen BoolTensor[C]``).
        extra_embeddings: ``Tensor[M, D]`` classifier embeddings of the boxes this loss asked
            for in ``extra_boxes`` (with gradient; empty when it asked for none).
        extra_boxes: per image, the boxes it asked for (``Tensor[M_i, 4]``).
        images: the normalised, padded batch.
        features: the backbone's output.
        captions: per image the captions of the batch (empty lists where there are none).
    """

    region_embeddings: torch.Tensor
    labels: torch.Tensor
    objectness: torch.Tensor
    ious: torch.Tensor
    roi_features: torch.Tensor
    classes: ClassEmbeddings
    extra_embeddings: torch.Tensor
    extra_boxes: list[torch.Tensor]
    images: ImageList
    features: dict[str, torch.Tensor]
    captions: list[list[str]]


class AuxiliaryLoss(nn.Module):
    """Base class: no extra boxes, no say at inference; subclasses implement :meth:`forward`."""

    def extra_boxes(self, proposals: list[torch.Tensor]) -> list[torch.Tensor] | None:
        """Boxes whose classifier embeddings this loss needs, per image (None = none).

        Args:
            proposals: per image ``Tensor[P_i, 4]`` proposals in objectness order.
        """
        return None

    def forward(self, inputs: RegionLossInputs) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def fuse_inference_probs(
        self,
        roi_features: torch.Tensor,
        probs: torch.Tensor,
        classes: ClassEmbeddings,
        classifier: nn.Module,
    ) -> torch.Tensor:
        """Class probabilities at inference, for a loss that trains a branch of its own.

        Args:
            roi_features: ``Tensor[K, C, R, R]`` pooled features of the regions.
            probs: ``Tensor[K, C]`` the classifier's probabilities.
            classes: the vocabulary.
            classifier: the region classifier.

        Returns:
            ``Tensor[K, C]``; the default leaves ``probs`` as they are.
        """
        return probs


def build_auxiliary_losses(cfg: CfgNode, **shared: nn.Module | None) -> nn.ModuleList:
    """The losses listed in ``MODEL.ROI_HEADS.AUXILIARY_LOSSES``, in that order.

    Args:
        cfg: the config.
        shared: components a loss may use, passed by keyword (``box_embedder``, ``classifier``).
    """
    names = list(cfg.MODEL.ROI_HEADS.AUXILIARY_LOSSES)
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"MODEL.ROI_HEADS.AUXILIARY_LOSSES lists {duplicated} more than once")
    return nn.ModuleList(AUXILIARY_LOSS_REGISTRY.get(name)(cfg, **shared) for name in names)
