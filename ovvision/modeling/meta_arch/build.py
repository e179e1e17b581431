"""The meta-architecture registry and ``build_model``."""

from __future__ import annotations

import torch
from torch import nn

from ovvision.config import CfgNode
from ovvision.utils.registry import Registry

META_ARCH_REGISTRY = Registry("META_ARCH")
META_ARCH_REGISTRY.__doc__ = """Whole models: ``MODEL.META_ARCHITECTURE`` names a class built with
``cls(cfg)``."""


def build_model(cfg: CfgNode) -> nn.Module:
    """Build the model named by ``MODEL.META_ARCHITECTURE`` on ``MODEL.DEVICE``.

    Weights come from random initialisation (plus whatever pretrained parts the config names);
    loading ``MODEL.WEIGHTS`` is the checkpointer's job. With ``MODEL.CHANNELS_LAST`` the 4-D
    weights are laid out channels-last, so every convolution computes (and returns) in that
    layout whatever its input's.
    """
    name = cfg.MODEL.META_ARCHITECTURE
    if not name:
        raise ValueError("MODEL.META_ARCHITECTURE is empty; set it, e.g. to 'OVRCNN'")
    model = META_ARCH_REGISTRY.get(name)(cfg).to(torch.device(cfg.MODEL.DEVICE))
    if cfg.MODEL.CHANNELS_LAST:
        model = model.to(memory_format=torch.channels_last)
    return model
