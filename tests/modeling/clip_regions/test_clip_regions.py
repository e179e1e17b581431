"""CLIP box embeddings and CLIP score fusion."""

from __future__ import annotations

import pytest
import torch

from ovvision.modeling import build_backbone
from ovvision.modeling.clip_regions import (
    ClipBoxEmbedder,
    ClipScoreFusion,
    build_clip_box_embedder,
    fuse_scores,
)
from ovvision.structures import ImageList

from ..helpers import TINY_CLIP, clip_tower, tiny_config


def test_dense_box_embeddings_need_a_clip_backbone():
    cfg = tiny_config("MODEL.CLIP_BOX_EMBEDDER.SOURCE", "dense")
    with pytest.raises(ValueError, match="ClipImageBackbone"):
        build_clip_box_embedder(cfg, build_backbone(cfg), None)


def test_score_fusion_uses_separate_exponents_for_seen_and_unseen_classes():
    det = torch.tensor([[0.8, 0.1, 0.4]])
    clip = torch.tensor([[0.2, 0.9, 0.5]])
    seen = torch.tensor([True, False, True])
    fused = fuse_scores(det, clip, seen, alpha_seen=0.25, beta_unseen=0.75)
    expected = torch.tensor([[0.8**0.75 * 0.2**0.25, 0.1**0.25 * 0.9**0.75, 0.4**0.75 * 0.5**0.25]])
    assert torch.allclose(fused, expected)


def test_box_embedder_crops_convert_detector_normalisation_to_clip_normalisation():
    torch.manual_seed(0)
    tower = clip_tower(TINY_CLIP)
    mean, std = [100.0, 110.0, 120.0], [50.0, 60.0, 70.0]
    embedder = ClipBoxEmbedder(tower=tower, source="crops", pixel_mean=mean, pixel_std=std)
    pixels = torch.rand(1, 3, 48, 48) * 255
    normalised = (pixels - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    converted = normalised * embedder._scale + embedder._shift
    clip_mean = torch.tensor(tower.pixel_mean).view(1, 3, 1, 1)
    clip_std = torch.tensor(tower.pixel_std).view(1, 3, 1, 1)
    assert torch.allclose(converted, (pixels - clip_mean) / clip_std, atol=1e-4)
    images = ImageList(normalised, [(48, 48)])
    boxes = [torch.tensor([[0.0, 0, 48, 48], [5, 5, 20, 30]])]
    emb = embedder(images, {}, boxes)
    assert emb.shape == (2, 128) and torch.allclose(emb.norm(dim=1), torch.ones(2))
    assert embedder(images, {}, [torch.zeros(0, 4)]).shape == (0, 128)


def test_fusion_temperature_defaults_to_the_clip_models_learnt_logit_scale(tmp_path):
    from ovvision.modeling import build_model
    from ovvision.modeling.text import create_text_encoder

    clip = create_text_encoder(TINY_CLIP, pretrained=None).model
    with torch.no_grad():
        clip.logit_scale.fill_(torch.tensor(42.0).log())
    weights = tmp_path / "clip.pt"
    torch.save({"state_dict": clip.state_dict()}, weights)
    common = ["MODEL.TEXT_ENCODER.NAME", TINY_CLIP, "MODEL.TEXT_ENCODER.PRETRAINED", str(weights),
              "MODEL.ZERO_SHOT_CLASSIFIER.EMBED_DIM", "128"]  # fmt: skip
    learnt = build_model(tiny_config(*common))  # the default TEMPERATURE: 0, learnt
    assert learnt.roi_heads.fusion.box_embedder.tower.logit_scale == pytest.approx(42.0, rel=1e-5)
    assert learnt.roi_heads.fusion.temperature == pytest.approx(42.0, rel=1e-5)
    fixed = build_model(tiny_config(*common, "MODEL.CLIP_SCORE_FUSION.TEMPERATURE", "100.0"))
    assert fixed.roi_heads.fusion.temperature == 100.0


def test_crop_fusion_keeps_the_most_object_like_proposals_not_the_best_scored(tiny_model):
    """Regions reach CLIP in the proposer's objectness order: a region the detector scores low
    for every class (how a novel object looks to a head trained on base classes) is still
    CLIP-scored when its proposal ranks high."""
    fusion = ClipScoreFusion(
        box_embedder=tiny_model.roi_heads.fusion.box_embedder, temperature=50.0, max_regions=2
    )
    image = torch.randn(1, 3, 64, 64)
    boxes = [torch.tensor([[2.0, 2, 30, 30], [30, 30, 60, 60], [5, 5, 50, 50], [0, 0, 9, 9]])]
    classes = len(tiny_model.class_names)
    probs = [torch.full((4, classes), 0.9)]
    probs[0][:2] = 0.01  # the two most object-like proposals look like background
    kept_boxes, fused = fusion(ImageList(image, [(64, 64)]), {}, boxes, probs, tiny_model.classes)
    assert torch.equal(kept_boxes[0], boxes[0][:2])
    assert fused[0].shape == (2, classes)
