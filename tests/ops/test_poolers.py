"""MultiScaleROIAlign as a drop-in for torchvision's MultiScaleRoIAlign."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
import torchvision

from ovvision.ops import MultiScaleROIAlign

IMAGE_SHAPES = [(120, 160), (96, 150)]  # padded batch is 128 x 160
STRIDES = {"p2": 4, "p3": 8, "p4": 16, "p5": 32}


def _features(channels: int = 8, seed: int = 0) -> OrderedDict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return OrderedDict(
        (name, torch.randn(2, channels, 128 // s, 160 // s, generator=g))
        for name, s in STRIDES.items()
    )


def _boxes(seed: int = 0) -> list[torch.Tensor]:
    """Boxes from a few pixels to most of the image, so every level gets some."""
    g = torch.Generator().manual_seed(seed)
    boxes = []
    for (h, w), n in zip(IMAGE_SHAPES, (30, 17)):
        size = torch.exp(torch.rand(n, 2, generator=g) * 4.5) + 2
        corner = torch.rand(n, 2, generator=g) * torch.tensor([w, h])
        boxes.append(torch.cat([corner, torch.minimum(corner + size, torch.tensor([w, h]))], 1))
    return boxes


# Boxes of 3 to 40 pixels (square root of area): a canonical scale of 14 spreads them over
# levels 2 to 5.
CANONICAL = dict(canonical_scale=14, canonical_level=4)


def test_boxes_spread_over_all_levels():
    pooler = MultiScaleROIAlign(list(STRIDES), 7, 2, **CANONICAL)
    levels = pooler._assign_levels(_boxes(), 2, 5)
    assert torch.bincount(levels, minlength=4).min() > 0


@pytest.mark.parametrize("sampling_ratio", [2, -1])
@pytest.mark.parametrize("names", [["p2", "p3", "p4", "p5"], ["p3", "p4"], ["p4"]])
def test_matches_torchvision(names, sampling_ratio):
    features, boxes = _features(), _boxes()
    ours = MultiScaleROIAlign(names, 7, sampling_ratio, **CANONICAL)
    theirs = torchvision.ops.MultiScaleRoIAlign(names, 7, sampling_ratio, **CANONICAL)
    out = ours(features, boxes, IMAGE_SHAPES)
    assert out.shape == (47, 8, 7, 7)
    torch.testing.assert_close(out, theirs(features, boxes, IMAGE_SHAPES), atol=1e-5, rtol=0)


def test_default_canonical_scale_and_other_output_size():
    features, boxes = _features(seed=1), _boxes(seed=1)
    kwargs = {}
    ours = MultiScaleROIAlign(list(STRIDES), (5, 3), 2, **kwargs)
    theirs = torchvision.ops.MultiScaleRoIAlign(list(STRIDES), (5, 3), 2, **kwargs)
    torch.testing.assert_close(
        ours(features, boxes, IMAGE_SHAPES),
        theirs(features, boxes, IMAGE_SHAPES),
        atol=1e-5,
        rtol=0,
    )


def test_ignores_extra_feature_maps_and_handles_no_boxes():
    features = _features()
    features["pool"] = torch.randn(2, 8, 2, 3)
    pooler = MultiScaleROIAlign(["p2", "p3"], 4, 2)
    out = pooler(features, [torch.zeros(0, 4), torch.zeros(0, 4)], IMAGE_SHAPES)
    assert out.shape == (0, 8, 4, 4)


def test_gradients_reach_every_level():
    features = OrderedDict((k, v.requires_grad_()) for k, v in _features().items())
    pooler = MultiScaleROIAlign(list(STRIDES), 7, 2, **CANONICAL)
    pooler(features, _boxes(), IMAGE_SHAPES).sum().backward()
    assert all(f.grad is not None and f.grad.any() for f in features.values())


def test_errors_and_repr():
    pooler = MultiScaleROIAlign(["p2", "p9"], 7, 2)
    with pytest.raises(KeyError, match=r"feature maps \['p9'\] not in"):
        pooler(_features(), _boxes(), IMAGE_SHAPES)
    with pytest.raises(ValueError, match="`featmap_names` must not be empty"):
        MultiScaleROIAlign([], 7, 2)
    assert repr(MultiScaleROIAlign(["p2"], 7, 2)) == (
        "MultiScaleROIAlign(featmap_names=['p2'], output_size=(7, 7), sampling_ratio=2, "
        "aligned=False)"
    )
