"""DatasetMapper: the model-input contract, augmentation of boxes/masks/text, bad images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from ovvision.config import get_cfg
from ovvision.data import DatasetMapper, ImageReadError
from ovvision.data.transforms import build_augmentation, mirror_text
from ovvision.structures import Boxes, Instances

from ._helpers import write_image

H, W = 48, 64


@pytest.fixture
def record(tmp_path) -> dict:
    """A 64x48 image with a polygon, an RLE-free box-only crowd region and two expressions."""
    path = write_image(str(tmp_path / "img.png"), W, H)
    return {
        "file_name": path,
        "image_id": 5,
        "height": H,
        "width": W,
        "annotations": [
            {"id": 1, "bbox": [4.0, 6.0, 10.0, 8.0], "category_id": 3, "iscrowd": 0,
             "segmentation": [[4, 6, 14, 6, 14, 14, 4, 14]]},
            {"id": 2, "bbox": [40.0, 20.0, 20.0, 20.0], "category_id": 0, "iscrowd": 0,
             "segmentation": [[40, 20, 60, 20, 50, 40]]},
            {"id": 3, "bbox": [0.0, 0.0, 30.0, 30.0], "category_id": 1, "iscrowd": 1,
             "segmentation": [[0, 0, 30, 0, 30, 30, 0, 30]]},
        ],
        "captions": ["a square on the left of a triangle"],
        "expressions": [
            {"id": 7, "text": "the leftmost shape", "ann_id": 1, "bbox": [4.0, 6.0, 10.0, 8.0],
             "category_id": 3},
        ],
        "neg_category_ids": [2],
    }  # fmt: skip


def test_output_contract_without_augmentation(record):
    out = DatasetMapper(is_train=True, use_instance_mask=True)(record)
    image = out["image"]
    assert type(image) is torch.Tensor and image.dtype == torch.uint8 and image.shape == (3, H, W)
    np.testing.assert_array_equal(
        image.permute(1, 2, 0).numpy(), np.asarray(Image.open(record["file_name"]))
    )
    inst = out["instances"]
    assert isinstance(inst, Instances) and inst.image_size == (H, W)
    assert isinstance(inst.gt_boxes, Boxes)
    torch.testing.assert_close(
        inst.gt_boxes.tensor, torch.tensor([[4.0, 6, 14, 14], [40, 20, 60, 40]])
    )
    assert inst.gt_classes.dtype == torch.int64 and inst.gt_classes.tolist() == [3, 0]  # no crowd
    masks = inst.gt_masks
    assert masks.dtype == torch.bool and masks.shape == (2, H, W)
    assert masks[0, 6:14, 4:14].all() and masks[0].sum() == 80
    assert (out["height"], out["width"], out["image_id"]) == (H, W, 5)
    assert out["file_name"] == record["file_name"] and out["captions"] == record["captions"]
    assert out["neg_category_ids"] == [2]  # other keys pass through
    assert "annotations" not in out and "annotations" in record  # input untouched
    expr = out["expressions"][0]
    assert expr["text"] == "the leftmost shape" and expr["ann_id"] == 1
    torch.testing.assert_close(expr["box"], torch.tensor([4.0, 6, 14, 14]))


def test_resize_scales_boxes_and_masks_but_keeps_original_size(record):
    mapper = DatasetMapper(
        is_train=True,
        augmentations=[v2.RandomShortestSize([96], max_size=1000)],
        use_instance_mask=True,
    )
    out = mapper(record)
    assert out["image"].shape == (3, 96, 128) and (out["height"], out["width"]) == (H, W)
    boxes = out["instances"].gt_boxes.tensor
    torch.testing.assert_close(boxes, torch.tensor([[8.0, 12, 28, 28], [80, 40, 120, 80]]))
    assert out["instances"].gt_masks.shape == (2, 96, 128)
    assert out["instances"].gt_masks[0, 12:28, 8:28].all()
    torch.testing.assert_close(out["expressions"][0]["box"], torch.tensor([8.0, 12, 28, 28]))


def test_horizontal_flip_mirrors_boxes_masks_and_words(record):
    out = DatasetMapper(is_train=True, horizontal_flip_prob=1.0, use_instance_mask=True)(record)
    original = np.asarray(Image.open(record["file_name"]))
    np.testing.assert_array_equal(out["image"].permute(1, 2, 0).numpy(), original[:, ::-1])
    boxes = out["instances"].gt_boxes.tensor
    torch.testing.assert_close(boxes, torch.tensor([[50.0, 6, 60, 14], [4, 20, 24, 40]]))
    assert out["instances"].gt_masks[0, 6:14, 50:60].all()
    assert out["captions"] == ["a square on the right of a triangle"]
    assert out["expressions"][0]["text"] == "the rightmost shape"
    torch.testing.assert_close(out["expressions"][0]["box"], torch.tensor([50.0, 6, 60, 14]))
    assert record["captions"] == ["a square on the left of a triangle"]


def test_mirror_text():
    assert mirror_text("Left of the rightmost star, right of a leftover") == (
        "Right of the leftmost star, left of a leftover"
    )


def test_inference_mode_has_no_instances_and_no_flip(record):
    out = DatasetMapper(is_train=False, horizontal_flip_prob=1.0)(record)
    assert "instances" not in out
    assert out["captions"] == record["captions"]


def test_crop_recomputes_tight_boxes_from_masks(record):
    crop = v2.RandomCrop((20, 20), pad_if_needed=True)
    torch.manual_seed(0)
    mapper = DatasetMapper(
        is_train=True, augmentations=[crop], use_instance_mask=True, recompute_boxes=True
    )
    for _ in range(10):
        inst = mapper(record)["instances"]
        assert inst.image_size == (20, 20)
        for box, mask in zip(inst.gt_boxes.tensor, inst.gt_masks):
            ys, xs = torch.nonzero(mask, as_tuple=True)
            assert len(xs) > 0  # empty instances are dropped
            expected = torch.stack([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]).float()
            torch.testing.assert_close(box, expected)
    with pytest.raises(ValueError, match="recompute_boxes"):
        DatasetMapper(is_train=True, recompute_boxes=True)


def test_boxes_cropped_away_are_dropped(record):
    far_corner = v2.RandomCrop((8, 8))
    torch.manual_seed(1)
    out = DatasetMapper(is_train=True, augmentations=[far_corner])(record)
    inst = out["instances"]
    assert inst.image_size == (8, 8)
    boxes = inst.gt_boxes.tensor
    assert ((boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])).all()
    assert len(out["expressions"]) <= 1


def test_unreadable_image_is_skipped_or_raises(record, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    broken = {**record, "file_name": str(bad)}
    skipping = DatasetMapper(is_train=True)
    assert skipping(broken) is None and skipping.num_unreadable == 1
    assert skipping(record) is not None and skipping.num_unreadable == 1
    with pytest.raises(ImageReadError, match="bad.jpg"):
        DatasetMapper(is_train=True, skip_unreadable=False)(broken)


def test_size_mismatch_names_the_file(record):
    with pytest.raises(ValueError, match=r"img.png' is 48x64 .* says 50x64"):
        DatasetMapper(is_train=True)({**record, "height": 50})


def test_missing_segmentation_with_masks_on_names_the_annotation(record):
    record["annotations"][0].pop("segmentation")
    with pytest.raises(ValueError, match="Annotation 1 of image .*img.png"):
        DatasetMapper(is_train=True, use_instance_mask=True)(record)


def test_from_config(record):
    cfg = get_cfg()
    cfg.INPUT.MIN_SIZE_TRAIN = (96,)
    cfg.INPUT.MAX_SIZE_TRAIN = 1000
    cfg.INPUT.MIN_SIZE_TEST = 24
    cfg.INPUT.RANDOM_FLIP = "none"
    for mask_on in (False, True):
        cfg.MODEL.MASK_ON = mask_on
        train = DatasetMapper(cfg, is_train=True)(record)
        assert train["image"].shape == (3, 96, 128)
        assert train["instances"].has("gt_masks") == mask_on
    test = DatasetMapper(cfg, is_train=False)(record)
    assert test["image"].shape == (3, 24, 32) and "instances" not in test
    cfg.INPUT.LSJ.ENABLED = True
    cfg.INPUT.LSJ.IMAGE_SIZE = 40
    assert DatasetMapper(cfg, is_train=True)(record)["image"].shape == (3, 40, 40)


def test_build_augmentation_range_and_errors():
    cfg = get_cfg()
    cfg.INPUT.MIN_SIZE_TRAIN = (10, 12)
    cfg.INPUT.MIN_SIZE_TRAIN_SAMPLING = "range"
    (resize,) = build_augmentation(cfg, is_train=True)
    assert list(resize.min_size) == [10, 11, 12]
    cfg.INPUT.MIN_SIZE_TRAIN_SAMPLING = "uniform"
    with pytest.raises(ValueError, match="MIN_SIZE_TRAIN_SAMPLING"):
        build_augmentation(cfg, is_train=True)
    cfg.INPUT.MIN_SIZE_TEST = 0
    assert build_augmentation(cfg, is_train=False) == []
