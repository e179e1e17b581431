"""Class sampling for the federated loss (LVIS): which classes a sigmoid loss is applied to."""

from __future__ import annotations

import json
import os

import torch
from torch import nn


class FederatedClassSampler(nn.Module):
    """Pick the classes of one training step: every class annotated in the batch plus negatives
    drawn without replacement with probability proportional to ``image_count ** power``.

    LVIS is not exhaustively annotated, so a sigmoid loss over all classes would punish correct
    detections of unannotated classes; restricting each step to a sample of classes (Zhou et al.,
    "Probabilistic two-stage detection") keeps frequent negatives while ignoring most others.

    Args:
        num_classes: classes per step (annotated ones first, then sampled negatives).
        freq_weight_power: exponent applied to the image counts.
        class_freq_file: image count per training class, in vocabulary order: a JSON list of
            numbers, or an LVIS-style json whose ``categories`` (sorted by id) have
            ``image_count``. ``""`` = uniform sampling.
    """

    def __init__(self, num_classes: int, freq_weight_power: float = 0.5, class_freq_file: str = ""):
        super().__init__()
        if num_classes <= 0:
            raise ValueError(
                f"MODEL.ZERO_SHOT_CLASSIFIER.FED_LOSS_NUM_CLASSES={num_classes} is not > 0"
            )
        self.num_classes = num_classes
        counts = load_class_image_counts(class_freq_file) if class_freq_file else None
        weights = torch.empty(0) if counts is None else counts.float() ** freq_weight_power
        self.register_buffer("class_weights", weights, persistent=False)

    def sample(self, gt_classes: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
        """``BoolTensor[C]`` of the classes used this step.

        Args:
            gt_classes: ``LongTensor[N]`` classes of the foreground regions of the batch.
            seen: ``BoolTensor[C]`` classes that may be sampled as negatives.
        """
        num_vocab = seen.shape[0]
        if self.class_weights.numel() == 0:
            weights = torch.ones(num_vocab, device=seen.device)
        elif self.class_weights.numel() == num_vocab:
            weights = self.class_weights.to(seen.device).clone()
        else:
            raise ValueError(
                f"federated-loss class frequencies cover {self.class_weights.numel()} classes but "
                f"the vocabulary has {num_vocab}; check "
                "MODEL.ZERO_SHOT_CLASSIFIER.FED_LOSS_CLASS_FREQ"
            )
        chosen = torch.zeros(num_vocab, dtype=torch.bool, device=seen.device)
        chosen[gt_classes.unique()] = True
        weights = weights * (seen & ~chosen)
        extra = min(self.num_classes - int(chosen.sum()), int((weights > 0).sum()))
        if extra > 0:
            chosen[torch.multinomial(weights, extra, replacement=False)] = True
        return chosen


def load_class_image_counts(path: str) -> torch.Tensor:
    """``Tensor[C]`` image counts from a JSON list or from an LVIS-style json's categories."""
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"MODEL.ZERO_SHOT_CLASSIFIER.FED_LOSS_CLASS_FREQ={path!r}: no such file"
        )
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if isinstance(data, dict):
        data = data.get("categories")
    if isinstance(data, list) and data and isinstance(data[0], dict):
        try:
            data = [c["image_count"] for c in sorted(data, key=lambda c: c["id"])]
        except KeyError as e:
            raise ValueError(f"{path}: every category needs 'id' and 'image_count' ({e})") from None
    if not isinstance(data, list) or not data or not all(isinstance(x, int | float) for x in data):
        raise ValueError(f"{path}: expected a list of image counts or LVIS-style categories")
    return torch.tensor(data, dtype=torch.float64).clamp(min=1)
