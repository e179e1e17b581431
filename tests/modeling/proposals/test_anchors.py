"""The proposer checks its anchors against the backbone pyramid."""

from __future__ import annotations

import pytest

from ovvision.modeling.proposals import build_proposal_generator

from ..helpers import tiny_config


def test_anchor_sizes_must_match_the_pyramid():
    cfg = tiny_config("MODEL.ANCHOR_GENERATOR.SIZES", "[[16], [32]]")
    with pytest.raises(ValueError, match="SIZES has 2 entries but the backbone has 3"):
        build_proposal_generator(cfg, {"p2": 4, "p3": 8, "p4": 16}, 64)
    cfg = tiny_config("MODEL.ANCHOR_GENERATOR.SIZES", "[[16, 24], [32], [64]]")
    with pytest.raises(ValueError, match="same number of sizes x aspect ratios"):
        build_proposal_generator(cfg, {"p2": 4, "p3": 8, "p4": 16}, 64)
