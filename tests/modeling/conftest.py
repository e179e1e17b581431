"""Shared fixtures of the model tests."""

from __future__ import annotations

import pytest
import torch

from ovvision.modeling import build_model

from .helpers import tiny_config


@pytest.fixture(scope="module")
def tiny_model() -> torch.nn.Module:
    """A CPU-sized OV-RCNN (timm ResNet-18 + FPN, ViLD distillation, crop fusion), random weights.

    Module-scoped: tests that change its state must restore it.
    """
    torch.manual_seed(0)
    return build_model(tiny_config())
