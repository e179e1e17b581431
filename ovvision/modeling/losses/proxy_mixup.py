"""Proxy-novel classwise mixup (ProxyDet): shape the embedding space between base classes.

In each step every base class with a positive region gets a visual prototype (a weighted mean of
its regions' unit embeddings). Classes are paired at random; each pair is mixed with one
``lam ~ Beta(alpha, alpha)`` the same way in the visual space and in the text space, and the L1
distance between the renormalised mixtures is the loss. The mixtures act as "proxy novel"
classes, so the region embeddings learn to sit where CLIP's text space puts unseen concepts.

With a separate head, a copy of the classifier's embedding MLP learns only from this loss, and
at inference its class probabilities are fused with the classifier's, geometrically.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ovvision.config import CfgNode, configurable
from ovvision.modeling.clip_regions import fuse_scores
from ovvision.structures import ClassEmbeddings
from ovvision.utils.events import current_event_storage

from .build import AUXILIARY_LOSS_REGISTRY, AuxiliaryLoss, RegionLossInputs

PROTOTYPE_WEIGHTINGS = ("objectness", "uniform", "iou")


def class_prototypes(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    scores: torch.Tensor,
    weighting: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per class present, the weighted mean of its regions' unit embeddings.

    Args:
        embeddings: ``Tensor[K, D]`` unit-norm embeddings of positive regions.
        labels: ``LongTensor[K]`` their classes.
        scores: ``Tensor[K]`` objectness logits (``"objectness"``: softmax within the class) or
            IoUs (``"iou"``: normalised to sum 1 within the class); unused for ``"uniform"``.
        weighting: one of :data:`PROTOTYPE_WEIGHTINGS`.

    Returns:
        ``LongTensor[P]`` the classes present (ascending) and ``Tensor[P, D]`` their prototypes
        (not renormalised).
    """
    present = labels.unique(sorted=True)
    prototypes = []
    for c in present.tolist():
        rows = labels == c
        if weighting == "objectness":
            weights = scores[rows].softmax(dim=0)
        elif weighting == "iou":
            ious = scores[rows].clamp(min=0)
            weights = ious / ious.sum().clamp(min=1e-12)
        else:
            weights = torch.full_like(scores[rows], 1.0 / int(rows.sum()))
        prototypes.append((weights[:, None] * embeddings[rows]).sum(dim=0))
    if not prototypes:
        return present, embeddings.new_zeros(0, embeddings.shape[1])
    return present, torch.stack(prototypes)


def mixup_l1(
    prototypes: torch.Tensor,
    text: torch.Tensor,
    pairs: torch.Tensor,
    lam: float,
) -> torch.Tensor:
    """Mean over pairs of ``|norm(lam p_a + (1-lam) p_b) - norm(lam t_a + (1-lam) t_b)|_1``.

    Args:
        prototypes: ``Tensor[P, D]`` visual prototypes.
        text: ``Tensor[P, D]`` text embeddings of the same classes.
        pairs: ``LongTensor[N, 2]`` rows of (a, b) indexing the P classes; N > 0.
        lam: the mixing coefficient.
    """
    a, b = pairs[:, 0], pairs[:, 1]
    visual = F.normalize(lam * prototypes[a] + (1 - lam) * prototypes[b], dim=-1)
    textual = F.normalize(lam * text[a] + (1 - lam) * text[b], dim=-1)
    return (visual - textual).abs().sum(dim=-1).mean()


def random_pairs(num_classes: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Pairs (a, b) with a != b: each of ``num_classes`` classes is ``a`` once, ``b`` its
    successor in a random cyclic order. Fewer than two classes give no pair ``[0, 2]``."""
    if num_classes < 2:
        return torch.zeros(0, 2, dtype=torch.int64)
    order = torch.randperm(num_classes, generator=generator)
    return torch.stack([order, order.roll(-1)], dim=1)


@AUXILIARY_LOSS_REGISTRY.register()
class ProxyNovelMixupLoss(AuxiliaryLoss):
    """ProxyDet's classwise mixup loss (``loss_proxy_mixup``), see the module docstring.

    Args:
        weight: multiplier of the loss.
        alpha: ``lam ~ Beta(alpha, alpha)``, one per step.
        weighting: prototype weights, one of :data:`PROTOTYPE_WEIGHTINGS`.
        separate_head: a copy of the classifier's embedding MLP (``mlp`` then ``embed``) that
            only this loss trains; None = the loss trains the classifier's own embeddings.
        fusion_seen, fusion_unseen: with a separate head, the exponent ``w`` of its
            probabilities at inference, ``p^(1-w) * p_mix^w``, for seen and unseen classes.
    """

    @configurable
    def __init__(
        self,
        *,
        weight: float = 1.0,
        alpha: float = 1.0,
        weighting: str = "objectness",
        separate_head: nn.Module | None = None,
        fusion_seen: float = 0.15,
        fusion_unseen: float = 0.35,
    ):
        super().__init__()
        if weighting not in PROTOTYPE_WEIGHTINGS:
            raise ValueError(
                f"MODEL.PROXY_MIXUP.PROTOTYPE_WEIGHTING must be one of {PROTOTYPE_WEIGHTINGS}, "
                f"got {weighting!r}"
            )
        if alpha <= 0:
            raise ValueError(f"MODEL.PROXY_MIXUP.ALPHA must be > 0, got {alpha}")
        self.weight = weight
        self.beta = torch.distributions.Beta(torch.tensor(float(alpha)), torch.tensor(float(alpha)))
        self.weighting = weighting
        self.separate_head = separate_head
        self.fusion_seen = fusion_seen
        self.fusion_unseen = fusion_unseen

    @classmethod
    def from_config(cls, cfg: CfgNode, classifier: nn.Module | None = None, **_: nn.Module) -> dict:
        mcfg = cfg.MODEL.PROXY_MIXUP
        separate = None
        if mcfg.SEPARATE_HEAD:
            if classifier is None:
                raise ValueError("MODEL.PROXY_MIXUP.SEPARATE_HEAD needs the region classifier")
            separate = copy.deepcopy(nn.Sequential(classifier.mlp, classifier.embed))
        return {
            "weight": mcfg.WEIGHT,
            "alpha": mcfg.ALPHA,
            "weighting": mcfg.PROTOTYPE_WEIGHTING,
            "separate_head": separate,
            "fusion_seen": mcfg.FUSION_WEIGHT_SEEN,
            "fusion_unseen": mcfg.FUSION_WEIGHT_UNSEEN,
        }

    def _embed(self, inputs: RegionLossInputs, rows: torch.Tensor) -> torch.Tensor:
        if self.separate_head is None:
            return inputs.region_embeddings[rows]
        return F.normalize(self.separate_head(inputs.roi_features[rows]), dim=-1)

    def forward(self, inputs: RegionLossInputs) -> dict[str, torch.Tensor]:
        labels = inputs.labels
        # positives of seen classes (background is label C, the padded column)
        positive = F.pad(inputs.classes.seen, (0, 1))[labels]
        embeddings = self._embed(inputs, positive)
        scores = inputs.ious if self.weighting == "iou" else inputs.objectness
        present, prototypes = class_prototypes(
            embeddings, labels[positive], scores[positive], self.weighting
        )
        pairs = random_pairs(len(present)).to(labels.device)
        storage = current_event_storage()
        if storage is not None:
            storage.put_scalar("proxy_mixup/pairs", float(len(pairs)))
        if len(pairs) == 0:
            # nothing to mix: an exact zero (a sum over no rows) that still reaches every
            # parameter of the branch, so DDP finds them all used
            return {"loss_proxy_mixup": embeddings[:0].sum()}
        lam = float(self.beta.sample())
        text = inputs.classes.embeddings[present].to(prototypes.dtype)
        return {"loss_proxy_mixup": self.weight * mixup_l1(prototypes, text, pairs, lam)}

    def fuse_inference_probs(
        self,
        roi_features: torch.Tensor,
        probs: torch.Tensor,
        classes: ClassEmbeddings,
        classifier: nn.Module,
    ) -> torch.Tensor:
        """``p^(1-w) * p_mix^w`` with the separate head's probabilities (no head: ``probs``)."""
        if self.separate_head is None:
            return probs
        embeddings = F.normalize(self.separate_head(roi_features), dim=-1)
        mixed = classifier.class_probs(classifier.class_logits(embeddings, classes.embeddings))
        return fuse_scores(probs, mixed, classes.seen, self.fusion_seen, self.fusion_unseen)
