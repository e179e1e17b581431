"""OV-RCNN end to end: losses, reliability of inputs, inference outputs, vocabulary swaps."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from ovvision.modeling import OVRCNN, build_model
from ovvision.structures import Boxes, Instances
from ovvision.structures.vocabulary import Vocabulary

from ..helpers import CLASS_NAMES, make_item, tiny_config

REGRESSION_LOSSES = ("loss_rpn_loc", "loss_box_reg", "loss_mask")


def _losses(model: OVRCNN, batch: list[dict]) -> dict[str, torch.Tensor]:
    model.train()
    model.zero_grad()
    losses = model(batch)
    sum(losses.values()).backward()
    return losses


def test_build_model_is_ovrcnn_with_the_configured_vocabulary(tiny_model):
    assert isinstance(tiny_model, OVRCNN)
    assert tiny_model.class_names == CLASS_NAMES
    assert tiny_model.vocabulary.names == CLASS_NAMES
    classes = tiny_model.classes
    assert classes.embeddings.shape == (len(CLASS_NAMES), 128)
    assert torch.allclose(classes.embeddings.norm(dim=1), torch.ones(4))
    assert classes.seen.all()


def test_training_returns_named_finite_losses_and_gradients(tiny_model):
    batch = [make_item(boxes=[[4, 6, 40, 30], [30, 20, 70, 60]], classes=[0, 2])]
    losses = _losses(tiny_model, batch)
    assert set(losses) == {
        "loss_rpn_cls", "loss_rpn_loc", "loss_cls", "loss_box_reg", "loss_mask", "loss_distill"
    }  # fmt: skip
    assert all(torch.isfinite(v) and v.dim() == 0 for v in losses.values())
    assert all(losses[k] > 0 for k in REGRESSION_LOSSES)
    head = tiny_model.roi_heads.classifier
    assert head.embed.weight.grad.abs().sum() > 0
    assert head.bbox_pred.weight.grad.abs().sum() > 0
    assert tiny_model.roi_heads.mask_head.predictor.mask_fcn_logits.weight.grad.abs().sum() > 0


def test_images_without_annotations_train_with_zero_regression_losses(tiny_model):
    batch = [make_item(seed=1, name="empty_a.png"), make_item(seed=2, name="empty_b.png")]
    losses = _losses(tiny_model, batch)
    assert all(torch.isfinite(v) for v in losses.values())
    for key in REGRESSION_LOSSES:
        assert losses[key].item() == 0.0, key
    assert losses["loss_cls"] > 0 and losses["loss_rpn_cls"] > 0


def test_mixed_batch_of_annotated_and_empty_images_trains(tiny_model):
    batch = [make_item(boxes=[[10, 10, 50, 40]], classes=[1]), make_item(seed=3)]
    losses = _losses(tiny_model, batch)
    assert all(torch.isfinite(v) for v in losses.values())
    assert all(losses[k] > 0 for k in REGRESSION_LOSSES)


def test_a_loss_that_does_not_apply_is_left_out():
    torch.manual_seed(0)
    model = build_model(
        tiny_config(
            "MODEL.ROI_HEADS.AUXILIARY_LOSSES", "[]", "MODEL.CLIP_SCORE_FUSION.ENABLED", "False"
        )
    )
    boxes_only = make_item(boxes=[[10, 10, 50, 40]], classes=[1], with_masks=False)
    losses = _losses(model, [boxes_only])
    assert "loss_distill" not in losses and "loss_mask" not in losses
    no_masks = build_model(tiny_config("MODEL.MASK_ON", "False"))
    assert no_masks.roi_heads.mask_head is None
    assert "loss_mask" not in _losses(no_masks, [make_item(boxes=[[10, 10, 50, 40]])])


def _with_instances(item: dict, **fields) -> dict:
    item = dict(item)
    item["instances"] = Instances(item["instances"].image_size, **fields)
    return item


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda it: {k: v for k, v in it.items() if k != "instances"}, "needs 'instances'"),
        (lambda it: _with_instances(it, gt_classes=torch.tensor([0])), "no 'gt_boxes'"),
        (
            lambda it: _with_instances(
                it, gt_boxes=torch.tensor([[1.0, 2, 3, 4]]), gt_classes=torch.tensor([0])
            ),
            "must be Boxes",
        ),
        (
            lambda it: _with_instances(
                it, gt_boxes=Boxes([[30.0, 10, 20, 40]]), gt_classes=torch.tensor([0])
            ),
            "degenerate",
        ),
        (
            lambda it: _with_instances(
                it, gt_boxes=Boxes([[1.0, 1, 1, 9]]), gt_classes=torch.tensor([0])
            ),
            "degenerate",
        ),
        (
            lambda it: _with_instances(
                it, gt_boxes=Boxes([[1.0, 1, math.nan, 9]]), gt_classes=torch.tensor([0])
            ),
            "NaN or inf",
        ),
        (
            lambda it: _with_instances(
                it, gt_boxes=Boxes([[1.0, 1, 5, 9]]), gt_classes=torch.tensor([0.0])
            ),
            "int64",
        ),
        (
            lambda it: _with_instances(
                it, gt_boxes=Boxes([[1.0, 1, 5, 9]]), gt_classes=torch.tensor([7])
            ),
            r"\[0, 4\)",
        ),
        (
            lambda it: _with_instances(
                it,
                gt_boxes=Boxes([[1.0, 1, 5, 9]]),
                gt_classes=torch.tensor([0]),
                gt_masks=torch.ones(1, 10, 10, dtype=torch.bool),
            ),
            "gt_masks must have shape",
        ),
        (lambda it: {**it, "image": it["image"][:2]}, r"Tensor\[3, H, W\]"),
    ],
)
def test_bad_targets_raise_an_error_naming_the_image(tiny_model, change, message):
    good = make_item(boxes=[[4, 6, 40, 30]], classes=[0], name="good.png")
    bad = change(make_item(boxes=[[4, 6, 40, 30]], classes=[0], name="bad_one.png"))
    tiny_model.train()
    with pytest.raises(ValueError, match=message) as info:
        tiny_model([good, bad])
    assert "bad_one.png" in str(info.value)


def test_a_batch_mixing_images_with_and_without_masks_raises(tiny_model):
    tiny_model.train()
    with_masks = make_item(boxes=[[4, 6, 40, 30]], classes=[0], name="masked.png")
    without = make_item(boxes=[[4, 6, 40, 30]], classes=[0], name="unmasked.png", with_masks=False)
    with pytest.raises(ValueError, match="'unmasked.png'.*no 'gt_masks'"):
        tiny_model([with_masks, without])


def test_annotated_novel_class_raises_naming_the_image():
    torch.manual_seed(0)
    model = build_model(tiny_config())
    names = ["circle", "square", "triangle", "star"]
    emb = torch.nn.functional.normalize(torch.randn(4, 128), dim=1)
    model.set_vocabulary(Vocabulary(names, emb, is_novel=[False, False, False, True]))
    model.train()
    item = make_item(boxes=[[4, 6, 40, 30]], classes=[3], name="leak.png")
    with pytest.raises(ValueError, match="leak.png.*novel"):
        model([item])


def test_inference_output_format_and_rescaling(tiny_model):
    tiny_model.eval()
    item = make_item(height=64, width=80, seed=5)
    item["height"], item["width"] = 128, 200  # the original image was larger
    with torch.no_grad():
        (out,) = tiny_model([item])
    inst = out["instances"]
    assert inst.image_size == (128, 200)
    assert len(inst) > 0  # random weights, but thresholds low enough to detect something
    assert isinstance(inst.pred_boxes, Boxes)
    assert inst.pred_masks.dtype == torch.bool and inst.pred_masks.shape == (len(inst), 128, 200)
    assert inst.pred_classes.dtype == torch.int64
    assert int(inst.pred_classes.max()) < len(CLASS_NAMES)
    assert (inst.scores[:-1] >= inst.scores[1:]).all()
    boxes = inst.pred_boxes.tensor
    assert (boxes[:, 0::2] <= 200).all() and (boxes[:, 1::2] <= 128).all() and (boxes >= 0).all()
    raw = tiny_model.inference([item], do_postprocess=False)[0]
    scale = torch.tensor([200 / 80, 128 / 64, 200 / 80, 128 / 64])
    assert torch.allclose(raw.pred_boxes.tensor * scale, boxes, atol=1e-3)


def test_detections_per_image_cap_reaches_the_output():
    torch.manual_seed(0)
    capped = build_model(tiny_config("TEST.DETECTIONS_PER_IMAGE", "3")).eval()
    uncapped = copy.deepcopy(capped)
    uncapped.roi_heads.detection = type(capped.roi_heads.detection)(
        capped.roi_heads.detection.score_thresh, capped.roi_heads.detection.nms_thresh, 0
    )
    item = make_item(seed=6)
    with torch.no_grad():
        assert len(capped([item])[0]["instances"]) == 3
        assert len(uncapped([item])[0]["instances"]) > 3


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_non_finite_features_give_no_detections(value):
    torch.manual_seed(0)
    model = build_model(tiny_config()).eval()
    with torch.no_grad():
        for p in model.backbone.fpn.parameters():
            p.fill_(value)
        outputs = model([make_item(seed=7), make_item(seed=8, height=48)])
    assert [len(o["instances"]) for o in outputs] == [0, 0]
    assert outputs[0]["instances"].pred_masks.shape == (0, 64, 80)


def test_partly_non_finite_features_keep_only_finite_detections(tiny_model):
    tiny_model.eval()

    def poison(module, inputs, features):
        return {
            k: v.clone().index_fill_(3, torch.tensor([0]), math.nan) for k, v in features.items()
        }

    handle = tiny_model.backbone.register_forward_hook(poison)
    try:
        with torch.no_grad():
            (out,) = tiny_model([make_item(seed=9)])
    finally:
        handle.remove()
    inst = out["instances"]
    assert torch.isfinite(inst.scores).all() and torch.isfinite(inst.pred_boxes.tensor).all()


def test_set_vocabulary_changes_the_class_space_without_touching_weights():
    torch.manual_seed(0)
    model = build_model(tiny_config()).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    item = make_item(seed=10)
    names = ["hexagon", "circle", "ring", "moon", "cross", "arrow", "heart"]
    model.set_vocabulary(names)
    assert model.class_names == names
    assert model.classes.embeddings.shape == (7, 128)
    # Only "circle" was a base class of the training vocabulary.
    assert model.classes.seen.tolist() == [False, True, False, False, False, False, False]
    with torch.no_grad():
        seven = model([item])[0]["instances"].pred_classes
    single = Vocabulary(["hexagon"], torch.randn(1, 128))
    model.set_vocabulary(single)
    with torch.no_grad():
        one = model([item])[0]["instances"]
    assert len(seven) > 0 and int(seven.max()) < 7 and len(set(seven.tolist())) > 1
    assert len(one) > 0 and (one.pred_classes == 0).all()
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_set_vocabulary_rejects_bad_input(tiny_model):
    with pytest.raises(TypeError, match="not a str"):
        tiny_model.set_vocabulary("circle")
    with pytest.raises(ValueError, match="dimension 32"):
        tiny_model.set_vocabulary(Vocabulary(["a"], torch.randn(1, 32)))
    with pytest.raises(ValueError, match="empty"):
        tiny_model.set_vocabulary([])
    assert tiny_model.class_names == CLASS_NAMES


@pytest.mark.parametrize(
    "overrides",
    [
        (),
        (
            "MODEL.ZERO_SHOT_CLASSIFIER.LOSS",
            "sigmoid",
            "MODEL.ZERO_SHOT_CLASSIFIER.USE_FED_LOSS",
            "True",
        ),  # fmt: skip
    ],
    ids=["softmax", "sigmoid-federated"],
)
def test_every_trainable_parameter_gets_a_gradient_even_from_empty_images(overrides):
    # DistributedDataParallel (without find_unused_parameters) needs this on every rank.
    torch.manual_seed(0)
    model = build_model(tiny_config(*overrides))
    _losses(model, [make_item(seed=11), make_item(seed=12, height=48)])
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []
