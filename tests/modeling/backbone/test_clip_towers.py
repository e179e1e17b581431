"""CLIP image towers as dense feature extractors, and the frozen CLIP backbone."""

from __future__ import annotations

import pytest
import torch

from ovvision.modeling import build_backbone
from ovvision.modeling.backbone import ResNetClipTower, ViTClipTower

from ..helpers import TINY_CLIP, clip_tower, tiny_config


def test_vit_tower_matches_open_clip_at_native_size_and_resizes_positions():
    torch.manual_seed(0)
    tower = clip_tower(TINY_CLIP)
    assert isinstance(tower, ViTClipTower) and tower.feature_strides == {"vit": 8}
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        ours = tower(x)["vit"]
        theirs = tower.visual.forward_intermediates(x, indices=1, intermediates_only=True)
        larger = tower(torch.randn(1, 3, 128, 96))["vit"]
    assert torch.allclose(ours, theirs["image_intermediates"][0], atol=1e-5)
    assert larger.shape == (1, 192, 16, 12)
    # Whole-image region embedding = mean of the projected tokens (CLIP's "avg" pooling).
    with torch.no_grad():
        region = tower.region_embeddings({"vit": ours}, [torch.tensor([[0.0, 0, 48, 48]])] * 2)
        tokens = tower.visual.ln_post(ours.flatten(2).transpose(1, 2)) @ tower.visual.proj
    assert torch.allclose(region, tokens.mean(dim=1), atol=1e-4)


@pytest.mark.slow
def test_resnet_tower_whole_image_region_equals_clip_image_embedding():
    torch.manual_seed(0)
    tower = clip_tower("RN50")
    assert isinstance(tower, ResNetClipTower)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        feats = tower(x)
        region = tower.region_embeddings(feats, [torch.tensor([[0.0, 0, 224, 224]])])
        image = tower.visual(x)
    assert [f.shape[-1] for f in feats.values()] == [56, 28, 14, 7]
    assert torch.allclose(region, image, atol=1e-4)


def test_clip_backbone_is_frozen_and_checks_pixel_normalisation():
    cfg = tiny_config("MODEL.BACKBONE.NAME", "ClipImageBackbone")
    with pytest.raises(ValueError, match="MODEL.PIXEL_MEAN=.*does not match the CLIP model"):
        build_backbone(cfg)
    clip_cfg = tiny_config(
        "MODEL.BACKBONE.NAME", "ClipImageBackbone",
        "MODEL.PIXEL_MEAN", "[122.7709383, 116.7460125, 104.09373615]",
        "MODEL.PIXEL_STD", "[68.5005327, 66.6321579, 70.32316305]",
    )  # fmt: skip
    backbone = build_backbone(clip_cfg).train()
    assert not any(p.requires_grad for p in backbone.tower.parameters())
    assert not backbone.tower.training
    assert backbone.output_names == ["p2", "p3", "p4"]
    out = backbone(torch.randn(1, 3, 64, 96))
    assert [tuple(out[n].shape[-2:]) for n in backbone.output_names] == [(16, 24), (8, 12), (4, 6)]
    assert "vit" in out and not out["vit"].requires_grad
