"""OV-RCNN learns: a few dozen steps on synthetic images make it find and name the objects."""

from __future__ import annotations

import pytest
import torch

from ovvision.modeling import build_model
from ovvision.structures import pairwise_iou

from .helpers import make_item, tiny_config

STEPS = 50


@pytest.mark.slow
def test_overfits_a_handful_of_images():
    torch.manual_seed(0)
    cfg = tiny_config(
        "MODEL.ROI_HEADS.AUXILIARY_LOSSES", "[]",
        "MODEL.CLIP_BOX_EMBEDDER.SOURCE", "",
        "MODEL.CLIP_SCORE_FUSION.ENABLED", "False",
        "MODEL.TIMM.NAME", "test_resnet",
    )  # fmt: skip
    model = build_model(cfg)
    batch = [
        make_item(boxes=[[6, 8, 30, 36]], classes=[0], seed=1),
        make_item(boxes=[[40, 20, 72, 50]], classes=[1], seed=2),
        make_item(boxes=[[10, 30, 34, 58], [44, 4, 76, 28]], classes=[2, 0], seed=3),
    ]
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model.train()
    for _ in range(STEPS):
        losses = model(batch)
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        outputs = model(batch)
    for item, out in zip(batch, outputs):
        gt, pred = item["instances"], out["instances"]
        for box, cls in zip(gt.gt_boxes.tensor, gt.gt_classes.tolist()):
            best = pred[pred.pred_classes == cls]
            iou = pairwise_iou(best.pred_boxes, type(pred.pred_boxes)(box[None]))[:, 0]
            assert len(best) and float(iou.max()) > 0.5, (item["file_name"], cls)
            hit = int(iou.argmax())
            mask = best.pred_masks[hit]
            x1, y1, x2, y2 = box.int().tolist()
            inside = mask[y1:y2, x1:x2].float().mean()
            assert inside > 0.7 and mask.sum() < 1.5 * (x2 - x1) * (y2 - y1)
