"""The proposal-generator registry and ``build_proposal_generator``."""

from __future__ import annotations

from torch import nn

from ovvision.config import CfgNode
from ovvision.utils.registry import Registry

PROPOSAL_GENERATOR_REGISTRY = Registry("PROPOSAL_GENERATOR")
PROPOSAL_GENERATOR_REGISTRY.__doc__ = """Class-agnostic proposers: ``MODEL.PROPOSAL_GENERATOR.NAME``
names a class built with ``cls(cfg, strides=..., channels=...)`` (pyramid level strides, width)."""


def build_proposal_generator(cfg: CfgNode, strides: dict[str, int], channels: int) -> nn.Module:
    """Build the proposer named by ``MODEL.PROPOSAL_GENERATOR.NAME``.

    Args:
        cfg: the config.
        strides: ``{level name: stride}`` of the backbone's pyramid levels, finest first.
        channels: channels of every pyramid level.
    """
    name = cfg.MODEL.PROPOSAL_GENERATOR.NAME
    return PROPOSAL_GENERATOR_REGISTRY.get(name)(cfg, strides=strides, channels=channels)
