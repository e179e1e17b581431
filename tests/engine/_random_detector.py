"""A small OV-Shapes detector with random weights saved as a checkpoint (no data, no download),
for the tests of the Predictor and of tools that load one."""

from __future__ import annotations

from pathlib import Path

import torch

from ovvision.config import get_cfg
from ovvision.modeling import build_model

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "ov_shapes" / "ovrcnn_clip_frozen.yaml"
CLASS_NAMES = ["star", "heart", "circle"]

# Random text encoder, no training dataset to read, a 3-class vocabulary without prompt templates,
# fewer proposals: the architecture of CONFIG, offline and CPU-cheap.
OFFLINE_OPTS = [
    "MODEL.TEXT_ENCODER.PRETRAINED", "",
    "DATASETS.TRAIN", "()",
    "DATASETS.TEST", "()",
    "VOCABULARY.NAME", "custom",
    "VOCABULARY.CUSTOM", ",".join(CLASS_NAMES),
    "VOCABULARY.TEMPLATES", "identity",
    "MODEL.RPN.POST_NMS_TOPK_TEST", "30",
    "MODEL.CLIP_SCORE_FUSION.MAX_REGIONS_PER_IMAGE", "30",
]  # fmt: skip


def save_random_detector(path: Path, seed: int = 0) -> Path:
    """Build CONFIG with :data:`OFFLINE_OPTS` and save its random weights to ``path``."""
    cfg = get_cfg()
    cfg.merge_from_file(str(CONFIG))
    cfg.merge_from_list(OFFLINE_OPTS)
    torch.manual_seed(seed)
    model = build_model(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict()}, path)
    return path
