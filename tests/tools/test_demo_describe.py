"""tools/demo.py --describe and Predictor.describe: a caption per readable image."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ovvision.checkpoint import Checkpointer
from ovvision.engine.predictor import Predictor
from ovvision.modeling import build_model

from .._tools import load_tool
from ..modeling.helpers import tiny_config

ROOT = Path(__file__).resolve().parents[2]
GENERATION = [
    "MODEL.ROI_HEADS.AUXILIARY_LOSSES", '["CaptionGenerationLoss"]',
    "MODEL.CAPTION_GENERATION.HIDDEN_DIM", "32",
    "MODEL.CAPTION_GENERATION.NUM_LAYERS", "1",
    "MODEL.CAPTION_GENERATION.NUM_HEADS", "2",
    "MODEL.CAPTION_GENERATION.MAX_LENGTH", "8",
]  # fmt: skip


@pytest.fixture(scope="module")
def demo():
    return load_tool("demo")


def _saved_model(folder: Path, overrides: list[str]) -> tuple[str, str]:
    cfg = tiny_config(*overrides)
    torch.manual_seed(0)
    model = build_model(cfg)
    config = folder / "config.yaml"
    config.write_text(cfg.dump())
    return str(config), Checkpointer(model, str(folder)).save("model")


def test_describe_writes_a_caption_per_readable_image(demo, tmp_path):
    config, weights = _saved_model(tmp_path, GENERATION)
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(images / name)
    (images / "broken.png").write_text("not an image")
    out = tmp_path / "out"
    code = demo.main(
        ["--config-file", config, "--weights", weights, "--input", str(images),
         "--output", str(out), "--custom-vocabulary", "circle,star", "--describe",
         "--beam-size", "2"]
    )  # fmt: skip
    assert code == 0
    entries = {Path(e["file_name"]).name: e for e in json.loads((out / "images.json").read_text())}
    assert isinstance(entries["a.png"]["caption"], str)
    assert isinstance(entries["b.png"]["caption"], str)
    assert "caption" not in entries["broken.png"] and entries["broken.png"]["error"]

    predictor = Predictor(config, weights)
    caption = predictor.describe(str(images / "a.png"), beam_size=2)
    assert caption == entries["a.png"]["caption"]  # the same model and decoding as the demo


def test_describe_without_a_caption_generator_is_refused_up_front(demo, tmp_path, capsys):
    config, weights = _saved_model(tmp_path, [])
    with pytest.raises(SystemExit) as exit_info:
        demo.main(["--config-file", config, "--weights", weights, "--input", str(tmp_path),
                   "--output", str(tmp_path / "out"), "--custom-vocabulary", "star",
                   "--describe"])  # fmt: skip
    assert exit_info.value.code != 0
    assert "CaptionGenerationLoss" in capsys.readouterr().err


def test_test_captions_adds_the_describe_caption_to_each_output(tmp_path):
    cfg = tiny_config(*GENERATION, "TEST.CAPTIONS", "True")
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    rng = np.random.default_rng(1)
    batch = [
        {"image": torch.from_numpy(rng.integers(0, 255, (3, 40, 56), dtype=np.uint8))}
        for _ in range(2)
    ]
    with torch.no_grad():
        outputs = model(batch)
        described = model.describe(batch)
    assert [o["caption"] for o in outputs] == described
    assert all("instances" in o for o in outputs)


def test_test_captions_without_a_caption_generator_is_refused():
    with pytest.raises(ValueError, match="TEST.CAPTIONS"):
        build_model(tiny_config("TEST.CAPTIONS", "True"))
