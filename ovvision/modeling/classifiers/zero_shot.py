"""The zero-shot region classifier: a region is named by its cosine with class-name embeddings."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ovvision.config import CfgNode, configurable

from .build import REGION_CLASSIFIER_REGISTRY
from .federated_loss import FederatedClassSampler

LOSS_TYPES = ("softmax", "sigmoid")


@REGION_CLASSIFIER_REGISTRY.register()
class ZeroShotRegionClassifier(nn.Module):
    """ROI features -> MLP -> region embedding in the text space; class-agnostic box deltas.

    Class logits are ``temperature * cos(region, class)`` for every vocabulary class plus a
    learned background embedding (last column), so the vocabulary can change without retraining.

    Args:
        in_channels: channels of the pooled ROI features.
        pooler_resolution: side of the pooled ROI features.
        fc_dims: widths of the MLP's fully connected layers (each followed by ReLU).
        embed_dim: dimension D of the text embeddings.
        temperature: multiplier of the cosine similarities.
        loss_type: ``"softmax"`` (cross-entropy over classes + background) or ``"sigmoid"``
            (binary cross-entropy per class; background = all zeros).
        sigmoid_prior_prob: initial foreground probability of the sigmoid classifier's bias.
        federated: with ``loss_type="sigmoid"``, a sampler restricting the loss to the classes
            of the batch plus sampled negatives (LVIS federated loss); None = all seen classes.
        smooth_l1_beta: beta of the smooth-L1 box loss (0 = L1).
    """

    @configurable
    def __init__(
        self,
        *,
        in_channels: int,
        pooler_resolution: int,
        fc_dims: list[int],
        embed_dim: int,
        temperature: float = 50.0,
        loss_type: str = "softmax",
        sigmoid_prior_prob: float = 0.01,
        federated: FederatedClassSampler | None = None,
        smooth_l1_beta: float = 0.0,
    ):
        super().__init__()
        if loss_type not in LOSS_TYPES:
            raise ValueError(f"loss_type must be one of {LOSS_TYPES}, got {loss_type!r}")
        if federated is not None and loss_type != "sigmoid":
            raise ValueError("the federated loss needs loss_type='sigmoid'")
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_channels * pooler_resolution**2
        for dim in fc_dims:
            layers += [nn.Linear(width, dim), nn.ReLU(inplace=True)]
            width = dim
        self.mlp = nn.Sequential(*layers)
        self.embed = nn.Linear(width, embed_dim)
        self.bbox_pred = nn.Linear(width, 4)
        nn.init.normal_(self.bbox_pred.weight, std=0.001)
        nn.init.zeros_(self.bbox_pred.bias)
        self.embed_dim = embed_dim
        self.temperature = temperature
        self.loss_type = loss_type
        # Only parameters every step trains (DDP requires it): a background embedding for the
        # softmax, a shared bias (prior) for the per-class sigmoids.
        if loss_type == "softmax":
            self.background_embedding = nn.Parameter(F.normalize(torch.randn(embed_dim), dim=0))
        else:
            prior = -math.log((1 - sigmoid_prior_prob) / sigmoid_prior_prob)
            self.sigmoid_bias = nn.Parameter(torch.tensor(prior))
        self.federated = federated
        self.smooth_l1_beta = smooth_l1_beta

    @classmethod
    def from_config(cls, cfg: CfgNode, in_channels: int) -> dict:
        hcfg = cfg.MODEL.ZERO_SHOT_CLASSIFIER
        federated = None
        if hcfg.USE_FED_LOSS:
            federated = FederatedClassSampler(
                num_classes=hcfg.FED_LOSS_NUM_CLASSES,
                freq_weight_power=hcfg.FED_LOSS_FREQ_WEIGHT_POWER,
                class_freq_file=hcfg.FED_LOSS_CLASS_FREQ,
            )
        return {
            "in_channels": in_channels,
            "pooler_resolution": cfg.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION,
            "fc_dims": [cfg.MODEL.ROI_BOX_HEAD.FC_DIM] * cfg.MODEL.ROI_BOX_HEAD.NUM_FC,
            "embed_dim": hcfg.EMBED_DIM,
            "temperature": hcfg.TEMPERATURE,
            "loss_type": hcfg.LOSS,
            "sigmoid_prior_prob": hcfg.SIGMOID_PRIOR_PROB,
            "federated": federated,
            "smooth_l1_beta": cfg.MODEL.ROI_BOX_HEAD.SMOOTH_L1_BETA,
        }

    def forward(self, roi_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Embed regions.

        Args:
            roi_features: ``Tensor[K, in_channels, R, R]`` pooled features.

        Returns:
            ``Tensor[K, D]`` unit-norm region embeddings and ``Tensor[K, 4]`` class-agnostic box
            deltas.
        """
        x = self.mlp(roi_features)
        return F.normalize(self.embed(x), dim=-1), self.bbox_pred(x)

    def class_logits(
        self, region_embeddings: torch.Tensor, class_embeddings: torch.Tensor
    ) -> torch.Tensor:
        """``Tensor[K, C + 1]``: scaled cosine with each class, background last.

        With the sigmoid loss the classes share a learned bias and the background column is 0
        (unused: background is "no class fires").

        Args:
            region_embeddings: ``Tensor[K, D]`` unit rows.
            class_embeddings: ``Tensor[C, D]`` unit rows (the vocabulary).
        """
        logits = self.temperature * region_embeddings @ class_embeddings.t()
        if self.loss_type == "sigmoid":
            return F.pad(logits + self.sigmoid_bias, (0, 1))
        background = (
            self.temperature * region_embeddings @ F.normalize(self.background_embedding, dim=0)
        )
        return torch.cat([logits, background[:, None]], dim=1)

    def class_probs(self, logits: torch.Tensor) -> torch.Tensor:
        """``Tensor[K, C]`` per-class probabilities from :meth:`class_logits`' output."""
        if self.loss_type == "softmax":
            return logits.softmax(dim=-1)[:, :-1]
        return logits[:, :-1].sigmoid()

    def classification_loss(
        self, logits: torch.Tensor, labels: torch.Tensor, seen: torch.Tensor
    ) -> torch.Tensor:
        """Classification loss over the seen classes, averaged over regions.

        Args:
            logits: ``Tensor[K, C + 1]`` from :meth:`class_logits`.
            labels: ``LongTensor[K]`` class per region, ``C`` for background.
            seen: ``BoolTensor[C]``, the classes the loss may use (unseen ones are neither
                positives nor negatives).
        """
        num_classes = logits.shape[1] - 1
        normaliser = max(logits.shape[0], 1)
        if self.loss_type == "softmax":
            allowed = torch.cat([seen, seen.new_ones(1)])
            logits = logits.masked_fill(~allowed, float("-inf"))
            return F.cross_entropy(logits, labels, reduction="sum") / normaliser
        targets = F.one_hot(labels, num_classes + 1)[:, :num_classes].to(logits.dtype)
        columns = seen
        if self.federated is not None:
            columns = columns & self.federated.sample(labels[labels < num_classes], seen)
        loss = F.binary_cross_entropy_with_logits(
            logits[:, :num_classes][:, columns], targets[:, columns], reduction="sum"
        )
        return loss / normaliser

    def box_regression_loss(
        self, deltas: torch.Tensor, target_deltas: torch.Tensor, foreground: torch.Tensor
    ) -> torch.Tensor:
        """Smooth-L1 over foreground regions, divided by the number of sampled regions.

        Exactly 0 when there is no foreground region (an image without annotations).

        Args:
            deltas: ``Tensor[K, 4]`` predicted deltas.
            target_deltas: ``Tensor[K, 4]`` deltas to the matched ground-truth boxes.
            foreground: ``BoolTensor[K]``.
        """
        loss = F.smooth_l1_loss(
            deltas[foreground], target_deltas[foreground], beta=self.smooth_l1_beta, reduction="sum"
        )
        return loss / max(deltas.shape[0], 1)
