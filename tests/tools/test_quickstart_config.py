"""The quickstart trains with configs/ov_shapes/ovrcnn_caption_grounding.yaml while the other
tools (demo, export, web demo, grounding, OSM) load its weights with ovrcnn_clip_rn_frozen.yaml:
the two must build the same network."""

from __future__ import annotations

from pathlib import Path

import torch

from ovvision.config import get_cfg
from ovvision.modeling import build_model

from .._tools import load_tool

ROOT = Path(__file__).resolve().parents[2]


def _quickstart_detector_config() -> str:
    return load_tool("quickstart").DETECTOR_CONFIG


def _state(config: str, cache: Path) -> dict[str, torch.Tensor]:
    cfg = get_cfg()
    cfg.merge_from_file(str(ROOT / config))
    # the architecture only: no trained tiny CLIP, no generated dataset needed
    cfg.MODEL.TEXT_ENCODER.PRETRAINED = ""
    cfg.VOCABULARY.NAME, cfg.VOCABULARY.CUSTOM = "custom", "circle,star"
    cfg.VOCABULARY.CACHE_DIR = str(cache)
    torch.manual_seed(0)
    return build_model(cfg).state_dict()


def test_quickstart_weights_load_into_the_config_the_tools_name(tmp_path):
    trained = _state(_quickstart_detector_config(), tmp_path)
    loaded = _state("configs/ov_shapes/ovrcnn_clip_rn_frozen.yaml", tmp_path)
    assert trained.keys() == loaded.keys()
    assert all(trained[k].shape == loaded[k].shape for k in trained)
