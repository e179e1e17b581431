"""Every detector config in configs/ builds, trains one step and runs inference on CPU.

Configs are taken as they are (architecture, widths, losses); only weights (random), dataset
files (none), the vocabulary (4 classes) and per-image region counts are overridden.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ovvision.config import get_cfg
from ovvision.modeling import build_model

from .helpers import CONFIG_DIR, load_config, make_item


def _detector_configs() -> list[Path]:
    found = []
    for path in sorted(CONFIG_DIR.rglob("*.yaml")):
        cfg = get_cfg()
        cfg.merge_from_file(str(path))
        # grounders (OVGrounder) have their own test: tests/modeling/grounding/test_grounder.py,
        # OSMClassifier too: tests/modeling/osm/test_osm_classifier.py
        if cfg.MODEL.META_ARCHITECTURE and cfg.MODEL.META_ARCHITECTURE not in (
            "OVGrounder",
            "OSMClassifier",
        ):
            found.append(path)
    return found


CONFIGS = _detector_configs()
# Configs sized for GPUs (R50, ViT-B/16) take seconds each on CPU: run by `make test` only.
CPU_SIZED = {"ov_shapes"}


def _param(path: Path):
    rel = path.relative_to(CONFIG_DIR)
    marks = [] if rel.parts[0] in CPU_SIZED else [pytest.mark.slow]
    return pytest.param(path, id=str(rel), marks=marks)


def test_every_config_folder_is_covered():
    names = {str(p.relative_to(CONFIG_DIR)) for p in CONFIGS}
    assert "Base-OVRCNN.yaml" in names
    for folder in ("ov_shapes", "coco_ov", "lvis_ov"):
        assert any(n.startswith(folder + "/") for n in names), folder


@pytest.mark.parametrize("path", [_param(p) for p in CONFIGS])
def test_config_trains_one_step_and_infers(path: Path):
    torch.manual_seed(0)
    cfg = load_config(path)
    model = build_model(cfg)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=1e-3)
    model.train()
    batch = [make_item(boxes=[[6, 6, 46, 38]], classes=[1], seed=1), make_item(seed=2)]
    losses = model(batch)
    assert {"loss_rpn_cls", "loss_rpn_loc", "loss_cls", "loss_box_reg"} <= set(losses)
    assert ("loss_mask" in losses) == cfg.MODEL.MASK_ON
    distilled = "ViLDDistillationLoss" in cfg.MODEL.ROI_HEADS.AUXILIARY_LOSSES
    assert ("loss_distill" in losses) == distilled
    assert all(torch.isfinite(v) for v in losses.values())
    before = [p.detach().clone() for p in params]
    sum(losses.values()).backward()
    optimizer.step()
    assert any(not torch.equal(b, p) for b, p in zip(before, params))
    model.eval()
    with torch.no_grad():
        (out,) = model([make_item(seed=3)])
    inst = out["instances"]
    assert inst.image_size == (64, 80)
    assert len(inst) <= cfg.TEST.DETECTIONS_PER_IMAGE
    assert inst.has("pred_masks") == cfg.MODEL.MASK_ON
