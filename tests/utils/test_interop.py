"""Interop adapters: Hugging Face zero-shot pipeline output and supervision.Detections, checked
against the real supervision package (its own detectron2 and transformers importers)."""

from __future__ import annotations

import numpy as np
import pytest
import supervision as sv
import torch

from ovvision.structures import Boxes, Instances
from ovvision.utils.interop import to_hf_zero_shot, to_supervision

NAMES = ["star", "heart", "moon"]


def _predictions(with_masks: bool = True) -> Instances:
    """Four detections on a 40x60 image, not in score order, one tie, probability masks."""
    boxes = torch.tensor(
        [[1.7, 2.2, 20.9, 30.5], [10.0, 5.0, 50.5, 39.99], [0.0, 0.0, 59.0, 39.0], [3, 4, 8, 9.5]]
    )
    instances = Instances(
        (40, 60),
        pred_boxes=Boxes(boxes),
        scores=torch.tensor([0.4, 0.9, 0.4, 0.05]),
        pred_classes=torch.tensor([2, 0, 1, 0]),
    )
    if with_masks:
        masks = torch.zeros(4, 40, 60)
        for i, (x1, y1, x2, y2) in enumerate(boxes.int().tolist()):
            masks[i, y1:y2, x1:x2] = 0.5 + 0.1 * i  # over the 0.5 threshold
            masks[i, y1, x1] = 0.49  # just under it
        instances.pred_masks = masks
    return instances


def test_hf_zero_shot_format_order_threshold_and_top_k():
    out = to_hf_zero_shot(_predictions(), NAMES)
    assert [d["score"] for d in out] == pytest.approx([0.9, 0.4, 0.4, 0.05])
    assert [d["label"] for d in out] == ["star", "moon", "heart", "star"]  # tie keeps model order
    assert out[0]["box"] == {"xmin": 10, "ymin": 5, "xmax": 50, "ymax": 39}
    assert out[1]["box"] == {"xmin": 1, "ymin": 2, "xmax": 20, "ymax": 30}
    for d in out:
        assert set(d) == {"score", "label", "box"}
        assert isinstance(d["score"], float) and isinstance(d["label"], str)
        assert all(type(v) is int for v in d["box"].values())
    assert [d["label"] for d in to_hf_zero_shot(_predictions(), NAMES, threshold=0.4)] == [
        "star",
        "moon",
        "heart",
    ]
    assert len(to_hf_zero_shot(_predictions(), NAMES, top_k=2)) == 2
    assert to_hf_zero_shot(_predictions()[[]], NAMES) == []


def test_supervision_matches_its_detectron2_and_transformers_importers():
    instances = _predictions()
    ours = to_supervision(instances, NAMES)
    # supervision's own reader of detectron2 outputs (the field names of ovvision's Instances);
    # it would keep probability masks as floats, so it is given none and checks the rest
    reference = sv.Detections.from_detectron2({"instances": _predictions(with_masks=False)})
    np.testing.assert_array_equal(ours.xyxy, reference.xyxy)
    np.testing.assert_array_equal(ours.confidence, reference.confidence)
    np.testing.assert_array_equal(ours.class_id, reference.class_id)
    # its reader of transformers' post-processed results attaches class names from id2label
    hf = sv.Detections.from_transformers(
        {
            "boxes": instances.pred_boxes.tensor,
            "scores": instances.scores,
            "labels": instances.pred_classes,
        },
        id2label=dict(enumerate(NAMES)),
    )
    assert ours.data["class_name"].tolist() == hf.data["class_name"].tolist()
    assert ours.data["class_name"].tolist() == ["moon", "star", "heart", "star"]
    assert ours.mask.dtype == np.bool_ and ours.mask.shape == (4, 40, 60)
    expected = (instances.pred_masks >= 0.5).numpy()
    np.testing.assert_array_equal(ours.mask, expected)
    assert not ours.mask[0, 2, 1]  # 0.49 is under the threshold


def test_supervision_detections_work_with_its_tools():
    detections = to_supervision(_predictions(), NAMES)
    confident = detections[detections.confidence > 0.3]
    assert confident.data["class_name"].tolist() == ["moon", "star", "heart"]
    assert confident.mask.shape[0] == 3
    np.testing.assert_allclose(detections.box_area[1], 40.5 * 34.99, rtol=1e-5)
    merged = sv.Detections.merge([detections, to_supervision(_predictions(), NAMES)])
    assert len(merged) == 8 and merged.data["class_name"].tolist()[4] == "moon"
    scene = np.zeros((40, 60, 3), dtype=np.uint8)
    drawn = sv.MaskAnnotator().annotate(scene.copy(), detections)
    drawn = sv.BoxAnnotator().annotate(drawn, detections)
    assert drawn.shape == scene.shape and drawn.any()
    boxes_only = to_supervision(_predictions(with_masks=False), NAMES)
    assert boxes_only.mask is None and len(boxes_only) == 4
    empty = to_supervision(_predictions()[[]], NAMES)
    assert len(empty) == 0 and empty.xyxy.shape == (0, 4)


def test_bad_predictions_name_the_problem():
    with pytest.raises(ValueError, match="pred_classes \\[2\\] are outside class_names"):
        to_supervision(_predictions(), NAMES[:2])
    with pytest.raises(ValueError, match="no field 'scores'"):
        to_hf_zero_shot(Instances((4, 4), pred_boxes=Boxes(torch.zeros(0, 4))), NAMES)
