"""Boxes, Instances (length-checked fields) and ImageList (padding to a divisibility)."""

from __future__ import annotations

import pytest
import torch

from ovvision.structures import Boxes, ImageList, Instances, pairwise_iou


def test_boxes_area_clip_nonempty_and_iou():
    boxes = Boxes(torch.tensor([[0.0, 0, 10, 10], [5, 5, 25, 15], [3, 3, 3, 8]]))
    assert boxes.area().tolist() == [100.0, 200.0, 0.0]
    assert boxes.nonempty().tolist() == [True, True, False]
    boxes.clip((12, 20))
    assert boxes.tensor[1].tolist() == [5, 5, 20, 12]
    iou = pairwise_iou(
        Boxes(torch.tensor([[0.0, 0, 10, 10]])), Boxes(torch.tensor([[5.0, 0, 15, 10]]))
    )
    assert iou.item() == pytest.approx(50 / 150)
    assert Boxes([]).tensor.shape == (0, 4)
    with pytest.raises(ValueError, match=r"Tensor\[N, 4\]"):
        Boxes(torch.zeros(3, 5))
    assert len(Boxes.cat([boxes, boxes[1:]])) == 5


def test_instances_fields_are_length_checked_and_indexable():
    inst = Instances((20, 30), gt_boxes=Boxes(torch.rand(3, 4)), gt_classes=torch.tensor([1, 2, 3]))
    inst.names = ["a", "b", "c"]
    with pytest.raises(ValueError, match="length 2 to Instances of length 3"):
        inst.scores = torch.rand(2)
    assert len(inst) == 3 and inst.image_size == (20, 30)
    picked = inst[torch.tensor([True, False, True])]
    assert picked.gt_classes.tolist() == [1, 3] and picked.names == ["a", "c"]
    assert inst[1].gt_classes.tolist() == [2] and inst[-1].names == ["c"]
    assert inst[torch.tensor([2, 0])].names == ["c", "a"]
    both = Instances.cat([inst, picked])
    assert both.gt_classes.tolist() == [1, 2, 3, 1, 3] and len(both.gt_boxes) == 5
    with pytest.raises(AttributeError, match="scores"):
        _ = inst.scores
    with pytest.raises(IndexError):
        inst[3]
    assert len(Instances((1, 1))) == 0


def test_image_list_pads_to_size_divisibility():
    a, b = torch.ones(3, 5, 7), 2 * torch.ones(3, 9, 3)
    batch = ImageList.from_tensors([a, b], size_divisibility=8, pad_value=-1.0)
    assert batch.tensor.shape == (2, 3, 16, 8)
    assert batch.image_sizes == [(5, 7), (9, 3)]
    assert torch.equal(batch[1], b) and batch.tensor[0, 0, 5:, :].eq(-1).all()
    assert ImageList.from_tensors([a]).tensor.shape == (1, 3, 5, 7)
    with pytest.raises(ValueError, match="leading dims"):
        ImageList.from_tensors([a, torch.ones(1, 5, 7)])
