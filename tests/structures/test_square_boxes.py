"""Square boxes around objects, as CLIP crops them."""

from __future__ import annotations

import torch

from ovvision.structures import square_boxes


def test_square_crops_keep_context_and_stay_inside_the_image():
    boxes = torch.tensor([[10.0, 20.0, 30.0, 60.0], [0.0, 0.0, 10.0, 4.0], [0.0, 0.0, 80.0, 40.0]])
    squares = square_boxes(boxes, 1.5, (64, 64))
    sides = squares[:, 2:] - squares[:, :2]
    assert torch.allclose(sides[:, 0], sides[:, 1])
    assert sides[:, 0].tolist() == [60.0, 15.0, 120.0]
    assert squares[0].tolist() == [0.0, 4.0, 60.0, 64.0]  # centred (20, 40), shifted inside
    assert squares[1].tolist() == [0.0, 0.0, 15.0, 15.0]
    assert squares[2].tolist() == [-20.0, -40.0, 100.0, 80.0]  # too large: stays centred
