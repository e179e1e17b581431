"""Predictor inputs: file paths, PIL images and RGB uint8 arrays alike, and lists as batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ovvision.data import ImageReadError, ImageTooLargeError, read_image
from ovvision.engine.predictor import Predictor
from ovvision.structures import Instances

from ._random_detector import CONFIG, save_random_detector

EXIF_ORIENTATION = 0x0112


@pytest.fixture(scope="module")
def predictor(tmp_path_factory) -> Predictor:
    weights, opts = save_random_detector(tmp_path_factory.mktemp("detector"))
    return Predictor(str(CONFIG), str(weights), opts=opts)


def _image(seed: int, height: int = 96, width: int = 128) -> np.ndarray:
    """Noise with two flat rectangles, so the detector has edges to propose."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 80, (height, width, 3), dtype=np.uint8)
    image[10:50, 20:70] = (230, 40, 40)
    image[40:90, 80:120] = (40, 40, 230)
    return image


def _same(a: Instances, b: Instances, atol: float = 0.0) -> None:
    assert len(a) == len(b) > 0
    torch.testing.assert_close(a.pred_boxes.tensor, b.pred_boxes.tensor, atol=atol, rtol=0)
    torch.testing.assert_close(a.scores, b.scores, atol=atol, rtol=0)
    assert torch.equal(a.pred_classes, b.pred_classes)
    if atol == 0:
        assert torch.equal(a.pred_masks, b.pred_masks)


def test_path_pil_and_array_give_the_same_predictions(predictor, tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(_image(0)).save(path)
    from_path = predictor(path)
    assert from_path.image_size == (96, 128)
    assert from_path.pred_masks.shape[1:] == (96, 128)
    _same(from_path, predictor(str(path)))
    with Image.open(path) as pil:
        _same(from_path, predictor(pil))
    _same(from_path, predictor(_image(0)))
    # a grey PIL image is converted the way a grey file is
    grey = tmp_path / "grey.png"
    Image.fromarray(_image(1)).convert("L").save(grey)
    with Image.open(grey) as pil:
        assert pil.mode == "L"
        _same(predictor(grey), predictor(pil))


def test_pil_image_gets_its_exif_orientation_like_a_file(predictor, tmp_path):
    path = tmp_path / "sideways.jpg"
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # displayed rotated by 90 degrees
    Image.fromarray(_image(2)).save(path, exif=exif.tobytes(), quality=95)
    upright = read_image(path)
    assert upright.shape == (128, 96, 3)
    with Image.open(path) as pil:
        result = predictor(pil)
    assert result.image_size == (128, 96)
    _same(result, predictor(upright))


def test_a_list_is_one_batch_in_order(predictor, tmp_path):
    path = tmp_path / "b.png"
    Image.fromarray(_image(3)).save(path)
    inputs = [_image(4), path, Image.fromarray(_image(5))]
    batch = predictor(inputs)
    assert isinstance(batch, list) and len(batch) == 3
    singles = [predictor(x) for x in inputs]
    for one, many in zip(singles, batch):
        _same(one, many, atol=1e-3)  # same-size images: only batched float sums differ
    assert predictor(tuple(inputs[:1]))[0].scores.shape == singles[0].scores.shape
    assert predictor([]) == []


def test_bad_inputs_raise_and_name_the_batch_position(predictor, tmp_path):
    (tmp_path / "bad.png").write_text("not an image")
    with pytest.raises(ImageReadError, match="batch input 1: .*bad.png"):
        predictor([_image(0), tmp_path / "bad.png"])
    with pytest.raises(ValueError, match="batch input 0: .*RGB uint8 array"):
        predictor([_image(0).astype(np.float32)])
    with pytest.raises(ValueError, match="RGB uint8 array"):
        predictor(_image(0)[:, :, :1])
    with pytest.raises(TypeError, match="file path, a PIL image or an RGB uint8"):
        predictor(torch.zeros(3, 8, 8, dtype=torch.uint8))
    cap = predictor.max_image_pixels
    try:
        predictor.max_image_pixels = 100
        with pytest.raises(ImageTooLargeError, match="more than the cap of 100"):
            predictor(Image.fromarray(_image(0)))
        with pytest.raises(ImageTooLargeError, match="more than the cap of 100"):
            predictor(_image(0))
    finally:
        predictor.max_image_pixels = cap
