"""The contrastive training wrapper around an open_clip model."""

from __future__ import annotations

import math

import open_clip
import torch
from torch import nn

from ovvision.utils import comm

__all__ = ["ContrastiveImageTextModel"]


class ContrastiveImageTextModel(nn.Module):
    """An open_clip model trained with open_clip's :class:`ClipLoss` (symmetric InfoNCE).

    Under DDP the loss gathers every rank's features with gradients, so each rank's logits
    cover the global batch.

    Args:
        clip: an open_clip ``CLIP`` / ``CustomTextCLIP`` model (``encoder.model``).
        max_logit_scale: the learned temperature's scale is capped at this value (CLIP: 100).
    """

    def __init__(self, clip: nn.Module, max_logit_scale: float = 100.0) -> None:
        super().__init__()
        self.clip = clip
        self.max_log_logit_scale = math.log(max_logit_scale)
        self.loss = open_clip.ClipLoss(
            local_loss=False,
            gather_with_grad=True,
            cache_labels=True,
            rank=comm.get_rank(),
            world_size=comm.get_world_size(),
        )

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Contrastive loss of a batch.

        Args:
            batch: ``images`` FloatTensor[B, 3, S, S] (normalised), ``tokens`` LongTensor[B, L].

        Returns:
            ``{"loss_contrastive": scalar}``.
        """
        device = self.clip.logit_scale.device
        image_features = self.clip.encode_image(batch["images"].to(device), normalize=True)
        text_features = self.clip.encode_text(batch["tokens"].to(device), normalize=True)
        # clamping (as open_clip's trainer does after each step) keeps the temperature sane
        logit_scale = self.clip.logit_scale.clamp(0, self.max_log_logit_scale).exp()
        return {"loss_contrastive": self.loss(image_features, text_features, logit_scale)}
