"""MaskQ-Former attention masking: queries read only their region of the feature grid."""

from __future__ import annotations

import torch

from ovvision.modeling.osm import MaskedCrossAttention, MaskQFormer, context_boxes, grid_regions

GRID = (8, 8)
IMAGE = (64, 64)


def _qformer() -> MaskQFormer:
    torch.manual_seed(0)
    return MaskQFormer(
        in_channels=[12], dim=16, out_dim=24, num_heads=2, num_layers=2,
        num_mask_queries=3, num_context_queries=2, modes=["any", "toy"], context_enlarge=0.5,
    ).eval()  # fmt: skip


def _square_mask(x1: int, y1: int, x2: int, y2: int) -> torch.Tensor:
    mask = torch.zeros(1, *IMAGE, dtype=torch.bool)
    mask[0, y1:y2, x1:x2] = True
    return mask


def test_mask_queries_ignore_features_outside_the_mask():
    attention = MaskedCrossAttention(16, 2).eval()
    features = torch.randn(1, 64, 16)
    allowed = torch.zeros(1, 2, 64, dtype=torch.bool)
    allowed[0, 0, [9, 10, 17]] = True  # query 0: three cells
    allowed[0, 1] = True  # query 1: everything
    queries = torch.randn(1, 2, 16)
    before = attention(queries, features, allowed)
    changed = features.clone()
    outside = torch.ones(64, dtype=torch.bool)
    outside[[9, 10, 17]] = False
    changed[0, outside] = torch.randn(int(outside.sum()), 16) * 10
    after = attention(queries, changed, allowed)
    torch.testing.assert_close(after[0, 0], before[0, 0])
    assert not torch.allclose(after[0, 1], before[0, 1])  # the unrestricted query does change


def test_whole_model_ignores_features_outside_the_context_box():
    model = _qformer()
    levels = [torch.randn(1, 12, *GRID)]
    mask = _square_mask(16, 16, 32, 32)  # cells 2..3; box grown by 0.5 -> pixels 8..40: cells 1..4
    box = torch.tensor([[16.0, 16.0, 32.0, 32.0]])
    args = (mask, box, torch.zeros(1, dtype=torch.long), torch.zeros(1, dtype=torch.long), IMAGE)
    before = model(model.encode_features(levels), *args)
    changed = levels[0].clone()
    changed[..., 6:, :] = 100.0  # rows 6-7 and columns 6-7: outside the context box
    changed[..., :, 6:] = -100.0
    changed[..., 0, :] = 50.0
    after = model(model.encode_features([changed]), *args)
    torch.testing.assert_close(after, before)
    changed[..., 4, 4] = 100.0  # inside the context box (not the mask): the output changes
    assert not torch.allclose(model(model.encode_features([changed]), *args), before)


def test_empty_and_full_masks_give_finite_outputs():
    model = _qformer()
    grid = model.encode_features([torch.randn(2, 12, *GRID)])
    masks = torch.stack(
        [torch.zeros(*IMAGE, dtype=torch.bool), torch.ones(*IMAGE, dtype=torch.bool)]
    )
    boxes = torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 64.0, 64.0]])
    out = model(grid, masks, boxes, torch.tensor([0, 1]), torch.tensor([0, 1]), IMAGE)
    assert out.shape == (2, model.num_queries, 24)
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_grid_regions_and_context_boxes():
    box = torch.tensor([[16.0, 16.0, 32.0, 32.0]])
    grown = context_boxes(box, 0.5, IMAGE)
    torch.testing.assert_close(grown, torch.tensor([[8.0, 8.0, 40.0, 40.0]]))
    torch.testing.assert_close(
        context_boxes(box, 5.0, IMAGE), torch.tensor([[0.0, 0.0, 64.0, 64.0]])
    )
    in_mask, in_box = grid_regions(_square_mask(16, 16, 32, 32), grown, GRID, IMAGE)
    assert in_mask.view(8, 8)[2:4, 2:4].all() and in_mask.sum() == 4
    assert in_box.view(8, 8)[1:5, 1:5].all() and in_box.sum() == 16


def test_unknown_mode_names_the_known_ones():
    import pytest

    with pytest.raises(ValueError, match="'lvis'.*any"):
        _qformer().mode_index("lvis")
