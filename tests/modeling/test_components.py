"""The parts of OV-RCNN on their own: CLIP towers, region head, losses, fusion, post-processing."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from ovvision.data.catalog import MetadataCatalog
from ovvision.modeling import build_backbone
from ovvision.modeling.backbone import ResNetClipTower, ViTClipTower, build_clip_tower
from ovvision.modeling.backbone.timm_fpn import create_timm_features, freeze_timm_stages
from ovvision.modeling.mask_heads import mask_loss, mask_targets
from ovvision.modeling.meta_arch import vocabulary_for_dataset
from ovvision.modeling.postprocessing import detector_postprocess, paste_masks
from ovvision.modeling.proposals import build_proposal_generator
from ovvision.modeling.region_heads import (
    ClipRegionHead,
    FederatedClassSampler,
    RegionClipEmbedder,
    build_region_clip,
    fuse_scores,
)
from ovvision.modeling.region_heads.federated_loss import load_class_image_counts
from ovvision.modeling.region_heads.region_clip import square_crop_boxes
from ovvision.structures import Boxes, ImageList, Instances
from ovvision.structures.vocabulary import Vocabulary

from .helpers import tiny_config

TINY_CLIP = "OVShapes-CLIP-Tiny"


def _head(**kwargs) -> ClipRegionHead:
    args = dict(in_channels=4, pooler_resolution=2, fc_dims=[8], embed_dim=6, temperature=10.0)
    return ClipRegionHead(**{**args, **kwargs})


def test_vit_tower_matches_open_clip_at_native_size_and_resizes_positions():
    torch.manual_seed(0)
    tower = build_clip_tower(TINY_CLIP, "")
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
    tower = build_clip_tower("RN50", "")
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


def test_timm_freeze_at_counts_feature_levels():
    body = create_timm_features("resnet18", "", (1, 2, 3, 4))
    freeze_timm_stages(body, 2)
    frozen = {n.split(".")[0] for n, p in body.named_parameters() if not p.requires_grad}
    assert frozen == {"conv1", "bn1", "layer1"}
    with pytest.raises(ValueError, match="FREEZE_AT=9"):
        freeze_timm_stages(body, 9)
    with pytest.raises(ValueError, match="not a timm model"):
        create_timm_features("no_such_net", "", (1,))
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        create_timm_features("resnet18", "/nowhere/missing.safetensors", (1,))


def test_anchor_sizes_must_match_the_pyramid():
    cfg = tiny_config("MODEL.ANCHOR_GENERATOR.SIZES", "[[16], [32]]")
    with pytest.raises(ValueError, match="SIZES has 2 entries but the backbone has 3"):
        build_proposal_generator(cfg, {"p2": 4, "p3": 8, "p4": 16}, 64)
    cfg = tiny_config("MODEL.ANCHOR_GENERATOR.SIZES", "[[16, 24], [32], [64]]")
    with pytest.raises(ValueError, match="same number of sizes x aspect ratios"):
        build_proposal_generator(cfg, {"p2": 4, "p3": 8, "p4": 16}, 64)


def test_dense_region_clip_needs_a_clip_backbone():
    cfg = tiny_config("MODEL.REGION_CLIP.SOURCE", "dense")
    with pytest.raises(ValueError, match="ClipImageBackbone"):
        build_region_clip(cfg, build_backbone(cfg))


def test_region_head_logits_are_scaled_cosines_with_background_last():
    torch.manual_seed(0)
    head = _head()
    emb, deltas = head(torch.randn(5, 4, 2, 2))
    assert emb.shape == (5, 6) and deltas.shape == (5, 4)
    assert torch.allclose(emb.norm(dim=1), torch.ones(5))
    classes = F.normalize(torch.randn(3, 6), dim=1)
    logits = head.class_logits(emb, classes)
    bg = F.normalize(head.background_embedding, dim=0)
    assert torch.allclose(logits[:, :3], 10.0 * emb @ classes.t(), atol=1e-6)
    assert torch.allclose(logits[:, 3], 10.0 * emb @ bg, atol=1e-6)
    assert torch.allclose(head.class_probs(logits).sum(1) + logits.softmax(1)[:, 3], torch.ones(5))


@pytest.mark.parametrize("loss_type", ["softmax", "sigmoid"])
def test_unseen_classes_take_no_part_in_the_classification_loss(loss_type):
    torch.manual_seed(0)
    head = _head(loss_type=loss_type)
    emb, _ = head(torch.randn(6, 4, 2, 2))
    classes = F.normalize(torch.randn(4, 6), dim=1)
    labels = torch.tensor([0, 1, 4, 4, 0, 4])
    seen = torch.tensor([True, True, True, False])
    loss = head.classification_loss(head.class_logits(emb, classes), labels, seen)
    moved = classes.clone()
    moved[3] = F.normalize(torch.randn(6), dim=0)
    moved_loss = head.classification_loss(head.class_logits(emb, moved), labels, seen)
    assert torch.isfinite(loss) and torch.allclose(loss, moved_loss)
    all_seen = head.classification_loss(head.class_logits(emb, classes), labels, seen | True)
    assert not torch.allclose(loss, all_seen)


def test_softmax_loss_equals_cross_entropy_and_box_loss_is_zero_without_foreground():
    torch.manual_seed(0)
    head = _head()
    logits = torch.randn(4, 3)
    labels = torch.tensor([0, 2, 1, 2])
    loss = head.classification_loss(logits, labels, torch.ones(2, dtype=torch.bool))
    assert torch.allclose(loss, F.cross_entropy(logits, labels))
    deltas = torch.randn(4, 4, requires_grad=True)
    zero = head.box_regression_loss(deltas, torch.randn(4, 4), torch.zeros(4, dtype=torch.bool))
    assert zero.item() == 0.0
    zero.backward()
    assert deltas.grad is not None and (deltas.grad == 0).all()
    fg = torch.tensor([True, False, True, False])
    targets = torch.randn(4, 4)
    l1 = head.box_regression_loss(deltas, targets, fg)
    assert torch.allclose(l1, (deltas[fg] - targets[fg]).abs().sum() / 4)


def test_federated_sampler_keeps_annotated_classes_and_draws_frequent_negatives(tmp_path):
    counts = [1000, 1, 1, 1, 1000, 1, 1, 1]
    freq = tmp_path / "lvis_like.json"
    cats = [{"id": 10 + i, "name": f"c{i}", "image_count": c} for i, c in enumerate(counts)]
    freq.write_text(json.dumps({"categories": list(reversed(cats))}))
    assert load_class_image_counts(str(freq)).tolist() == counts
    sampler = FederatedClassSampler(num_classes=3, freq_weight_power=1.0, class_freq_file=str(freq))
    seen = torch.tensor([True] * 7 + [False])
    torch.manual_seed(0)
    hits = torch.zeros(8)
    for _ in range(200):
        chosen = sampler.sample(torch.tensor([2, 2]), seen)
        assert chosen.sum() == 3 and chosen[2] and not chosen[7]
        hits += chosen.float()
    assert hits[0] > 150 and hits[4] > 150 and hits[1] < 30
    with pytest.raises(ValueError, match="cover 8 classes but the vocabulary has 5"):
        sampler.sample(torch.tensor([0]), torch.ones(5, dtype=torch.bool))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"categories": [{"id": 1, "name": "x"}]}))
    with pytest.raises(ValueError, match="image_count"):
        load_class_image_counts(str(bad))


def test_score_fusion_uses_separate_exponents_for_seen_and_unseen_classes():
    det = torch.tensor([[0.8, 0.1, 0.4]])
    clip = torch.tensor([[0.2, 0.9, 0.5]])
    seen = torch.tensor([True, False, True])
    fused = fuse_scores(det, clip, seen, alpha_seen=0.25, beta_unseen=0.75)
    expected = torch.tensor([[0.8**0.75 * 0.2**0.25, 0.1**0.25 * 0.9**0.75, 0.4**0.75 * 0.5**0.25]])
    assert torch.allclose(fused, expected)


def test_region_clip_crops_convert_detector_normalisation_to_clip_normalisation():
    torch.manual_seed(0)
    tower = build_clip_tower(TINY_CLIP, "")
    mean, std = [100.0, 110.0, 120.0], [50.0, 60.0, 70.0]
    embedder = RegionClipEmbedder(tower=tower, source="crops", pixel_mean=mean, pixel_std=std)
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


def test_mask_targets_crop_the_matched_mask_and_loss_is_zero_without_foreground():
    masks = torch.zeros(2, 20, 20, dtype=torch.bool)
    masks[0, 4:12, 2:10] = True
    masks[1, :, 10:] = True
    boxes = torch.tensor([[2.0, 4, 10, 12], [0, 0, 20, 20]])
    targets = mask_targets(masks, boxes, torch.tensor([0, 1]), 8)
    assert (targets[0] == 1).all()
    assert (targets[1][:, :4] == 0).all() and (targets[1][:, 4:] == 1).all()
    logits = torch.zeros(0, 8, 8, requires_grad=True)
    zero = mask_loss(logits, [torch.zeros(0, 4)], [masks], [torch.zeros(0, dtype=torch.int64)])
    assert zero.item() == 0.0


def test_detector_postprocess_rescales_boxes_and_pastes_masks():
    result = Instances(
        (50, 100),
        pred_boxes=Boxes([[10.0, 10, 30, 20]]),
        scores=torch.tensor([0.9]),
        pred_classes=torch.tensor([2]),
        pred_mask_probs=torch.ones(1, 28, 28),
    )
    out = detector_postprocess(result, 100, 200)
    assert out.image_size == (100, 200)
    assert out.pred_boxes.tensor.tolist() == [[20.0, 20.0, 60.0, 40.0]]
    assert out.pred_masks.shape == (1, 100, 200) and out.pred_masks.dtype == torch.bool
    ys, xs = torch.where(out.pred_masks[0])
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (20, 39, 20, 59)


def test_vocabulary_for_dataset_follows_the_dataset_class_order():
    name = "modeling_test_vocabulary_dataset"
    if name not in MetadataCatalog.list():
        MetadataCatalog.get(name).set(thing_classes=["star", "circle"])
    vocab = Vocabulary(["circle", "square", "star"], torch.eye(3), is_novel=[False, False, True])
    aligned = vocabulary_for_dataset(vocab, name)
    assert aligned.names == ["star", "circle"]
    assert torch.equal(aligned.embeddings, torch.eye(3)[[2, 0]])
    assert aligned.is_novel.tolist() == [True, False]
    other = "modeling_test_vocabulary_dataset_2"
    if other not in MetadataCatalog.list():
        MetadataCatalog.get(other).set(thing_classes=["square"])
    with pytest.raises(ValueError, match=f"class 'square' of dataset '{other}'"):
        vocabulary_for_dataset(Vocabulary(["star", "circle"], torch.eye(2)), other)


def test_paste_masks_follows_unrounded_boxes():
    probs = torch.zeros(2, 4, 4)
    probs[0, :, :2] = 1.0  # left half of the box
    probs[1] = 1.0
    boxes = torch.tensor([[4.0, 2.0, 12.0, 6.0], [0.4, 0.4, 3.6, 2.6]])
    masks = paste_masks(probs, boxes, (10, 16))
    ys, xs = torch.where(masks[0])
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (2, 5, 4, 7)
    assert torch.where(masks[1])[1].unique().tolist() == [0, 1, 2, 3]
    assert paste_masks(torch.zeros(0, 4, 4), torch.zeros(0, 4), (5, 6)).shape == (0, 5, 6)


def test_square_crops_keep_context_and_stay_inside_the_image():
    boxes = torch.tensor([[10.0, 20.0, 30.0, 60.0], [0.0, 0.0, 10.0, 4.0], [0.0, 0.0, 80.0, 40.0]])
    squares = square_crop_boxes(boxes, 1.5, (64, 64))
    sides = squares[:, 2:] - squares[:, :2]
    assert torch.allclose(sides[:, 0], sides[:, 1])
    assert sides[:, 0].tolist() == [60.0, 15.0, 120.0]
    assert squares[0].tolist() == [0.0, 4.0, 60.0, 64.0]  # centred (20, 40), shifted inside
    assert squares[1].tolist() == [0.0, 0.0, 15.0, 15.0]
    assert squares[2].tolist() == [-20.0, -40.0, 100.0, 80.0]  # too large: stays centred


def test_fusion_temperature_defaults_to_the_clip_models_learnt_logit_scale(tmp_path):
    from ovvision.modeling import build_model
    from ovvision.modeling.text import create_text_encoder

    clip = create_text_encoder(TINY_CLIP, pretrained=None).model
    with torch.no_grad():
        clip.logit_scale.fill_(torch.tensor(42.0).log())
    weights = tmp_path / "clip.pt"
    torch.save({"state_dict": clip.state_dict()}, weights)
    common = ["MODEL.TEXT_ENCODER.NAME", TINY_CLIP, "MODEL.TEXT_ENCODER.PRETRAINED", str(weights),
              "MODEL.CLIP_REGION_HEAD.EMBED_DIM", "128"]  # fmt: skip
    learnt = build_model(tiny_config(*common))  # the default TEMPERATURE: 0, learnt
    assert learnt.roi_heads.region_clip.tower.logit_scale == pytest.approx(42.0, rel=1e-5)
    assert learnt.roi_heads.fusion.clip_temperature == pytest.approx(42.0, rel=1e-5)
    fixed = build_model(tiny_config(*common, "MODEL.REGION_CLIP.TEMPERATURE", "100.0"))
    assert fixed.roi_heads.fusion.clip_temperature == 100.0


def test_crop_fusion_keeps_the_most_object_like_proposals_not_the_best_scored(tiny_model):
    """Regions reach CLIP in the proposer's objectness order: a region the detector scores low
    for every class (how a novel object looks to a head trained on base classes) is still
    CLIP-scored when its proposal ranks high."""
    from ovvision.modeling.region_heads.roi_heads import ScoreFusion

    heads = tiny_model.roi_heads
    previous = heads.fusion
    heads.fusion = ScoreFusion(previous.clip_temperature, 0.35, 0.65, max_regions=2)
    try:
        image = torch.randn(1, 3, 64, 64)
        boxes = [torch.tensor([[2.0, 2, 30, 30], [30, 30, 60, 60], [5, 5, 50, 50], [0, 0, 9, 9]])]
        classes = len(tiny_model.class_names)
        probs = [torch.full((4, classes), 0.9)]
        probs[0][:2] = 0.01  # the two most object-like proposals look like background
        kept_boxes, fused = heads._fuse(
            ImageList(image, [(64, 64)]), {}, boxes, probs, tiny_model.class_embeddings,
            tiny_model.seen_classes,
        )  # fmt: skip
    finally:
        heads.fusion = previous
    assert torch.equal(kept_boxes[0], boxes[0][:2])
    assert fused[0].shape == (2, classes)
