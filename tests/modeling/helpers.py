"""Small configs and synthetic batches for the model tests (CPU, random weights, no downloads)."""

from __future__ import annotations

from pathlib import Path

import torch

from ovvision.config import CfgNode, get_cfg
from ovvision.modeling.backbone import ClipTower, wrap_clip_tower
from ovvision.modeling.text import create_text_encoder
from ovvision.structures import Boxes, Instances

REPO = Path(__file__).resolve().parents[2]
TINY_CLIP = "OVShapes-CLIP-Tiny"
CONFIG_DIR = REPO / "configs"
TINY_CONFIG = CONFIG_DIR / "ov_shapes" / "ovrcnn_timm_vild.yaml"
CLASS_NAMES = ["circle", "square", "triangle", "star"]  # "star" is novel in TINY vocabularies

# Overrides that keep any detector config offline and CPU-cheap without changing its architecture:
# random weights, no dataset files, a 4-class vocabulary, fewer regions per image.
OFFLINE_SMALL = [
    "MODEL.DEVICE", "cpu",
    "MODEL.TIMM.PRETRAINED", "",
    "MODEL.TEXT_ENCODER.PRETRAINED", "",
    "MODEL.ZERO_SHOT_CLASSIFIER.FED_LOSS_CLASS_FREQ", "",
    "MODEL.VILD_DISTILLATION.REGIONS_PER_IMAGE", "2",
    "MODEL.CLIP_SCORE_FUSION.MAX_REGIONS_PER_IMAGE", "4",
    "MODEL.RPN.PRE_NMS_TOPK_TRAIN", "200",
    "MODEL.RPN.POST_NMS_TOPK_TRAIN", "50",
    "MODEL.RPN.PRE_NMS_TOPK_TEST", "200",
    "MODEL.RPN.POST_NMS_TOPK_TEST", "30",
    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "32",
    "DATASETS.TRAIN", "()",
    "DATASETS.TEST", "()",
    "VOCABULARY.NAME", "custom",
    "VOCABULARY.CUSTOM", ",".join(CLASS_NAMES),
    "VOCABULARY.TEMPLATES", "identity",
]  # fmt: skip


def clip_tower(name: str) -> ClipTower:
    """The frozen image tower of open_clip model ``name`` with random weights."""
    return wrap_clip_tower(create_text_encoder(name))


def load_config(path: Path | str, *overrides: str) -> CfgNode:
    """``get_cfg()`` merged with ``path``, then :data:`OFFLINE_SMALL`, then ``overrides``."""
    cfg = get_cfg()
    cfg.merge_from_file(str(path))
    cfg.merge_from_list(OFFLINE_SMALL + list(overrides))
    return cfg


def tiny_config(*overrides: str) -> CfgNode:
    """The CPU-sized OV-Shapes timm config, offline, with small heads."""
    return load_config(TINY_CONFIG, *overrides)


def make_item(
    height: int = 64,
    width: int = 80,
    boxes: list[list[float]] | None = None,
    classes: list[int] | None = None,
    name: str = "synthetic.png",
    with_masks: bool = True,
    seed: int = 0,
) -> dict:
    """A batch item: noise image with each box filled by a flat colour, boxes' masks = the box."""
    gen = torch.Generator().manual_seed(seed)
    image = torch.randint(0, 60, (3, height, width), dtype=torch.uint8, generator=gen)
    boxes = boxes or []
    classes = classes if classes is not None else [i % 3 for i in range(len(boxes))]
    masks = torch.zeros(len(boxes), height, width, dtype=torch.bool)
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        masks[i, int(y1) : int(y2), int(x1) : int(x2)] = True
        image[:, masks[i]] = torch.tensor([220, 40 + 60 * classes[i], 40], dtype=torch.uint8)[
            :, None
        ]
    instances = Instances(
        (height, width),
        gt_boxes=Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)),
        gt_classes=torch.tensor(classes, dtype=torch.int64),
    )
    if with_masks:
        instances.gt_masks = masks
    return {
        "image": image,
        "instances": instances,
        "height": height,
        "width": width,
        "file_name": name,
        "image_id": seed,
    }
