"""A small OV-Shapes detector with random weights saved as a checkpoint (no data, no download),
for the tests of the Predictor and of tools that load one."""

from __future__ import annotations

from pathlib import Path

import open_clip
import torch

from ovvision.config import get_cfg
from ovvision.modeling import build_model
from ovvision.modeling.text import register_project_model_configs

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "ov_shapes" / "ovrcnn_clip_frozen.yaml"
CLIP_NAME = "OVShapes-CLIP-Tiny"  # the text encoder of CONFIG
CLASS_NAMES = ["star", "heart", "circle"]


def detector_opts(folder: Path) -> list[str]:
    """Overrides of CONFIG for the detector of :func:`save_random_detector`: its CLIP weights
    file, no training dataset to read, a 3-class vocabulary without prompt templates, a private
    text-embedding cache and fewer proposals."""
    return [
        "MODEL.TEXT_ENCODER.PRETRAINED", str(folder / "clip.pt"),
        "DATASETS.TRAIN", "()",
        "DATASETS.TEST", "()",
        "VOCABULARY.NAME", "custom",
        "VOCABULARY.CUSTOM", ",".join(CLASS_NAMES),
        "VOCABULARY.TEMPLATES", "identity",
        "VOCABULARY.CACHE_DIR", str(folder / "cache"),
        "MODEL.RPN.POST_NMS_TOPK_TEST", "30",
        "MODEL.CLIP_SCORE_FUSION.MAX_REGIONS_PER_IMAGE", "30",
    ]  # fmt: skip


def save_random_detector(folder: Path, seed: int = 0) -> tuple[Path, list[str]]:
    """A random CLIP saved as ``folder/clip.pt`` (the file the text encoder loads, as a real
    CLIP would be) and the detector of CONFIG built on it, saved as ``folder/model.pth``.

    Returns:
        The detector checkpoint and the config overrides that build it (:func:`detector_opts`).
    """
    folder.mkdir(parents=True, exist_ok=True)
    register_project_model_configs()
    torch.manual_seed(seed)
    torch.save(open_clip.create_model(CLIP_NAME).state_dict(), folder / "clip.pt")
    cfg = get_cfg()
    cfg.merge_from_file(str(CONFIG))
    cfg.merge_from_list(detector_opts(folder))
    model = build_model(cfg)
    torch.save({"model": model.state_dict()}, folder / "model.pth")
    return folder / "model.pth", detector_opts(folder)
