"""tools/export_onnx.py and tools/onnx_demo.py as a user runs them: export, demo, a new
vocabulary without a new export, and a vocabulary file from another model refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from ovvision.checkpoint import Checkpointer
from ovvision.modeling import build_model

from .._tools import REPO, run_tool
from ..modeling.helpers import CONFIG_DIR, OFFLINE_SMALL, load_config

CONFIG = CONFIG_DIR / "ov_shapes" / "ovrcnn_clip_rn_frozen.yaml"
# The random model's scores are near-uniform: a low threshold keeps detections to trace and show.
OPTS = [*OFFLINE_SMALL, "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0001"]


@pytest.mark.slow
def test_export_demo_and_a_new_vocabulary_without_a_new_export(tmp_path):
    torch.manual_seed(0)
    model = build_model(load_config(CONFIG))
    Checkpointer(model, str(tmp_path)).save("model")
    rng = np.random.default_rng(0)
    image = rng.integers(0, 80, (96, 120, 3), dtype=np.uint8)
    image[20:60, 30:90] = 200
    Image.fromarray(image).save(tmp_path / "photo.png")
    # OVVISION_NO_EXT=1: the reference ROIAlign path (torchvision's operator) is exported here;
    # the in-process tests of tests/export export the compiled one where it is built.
    env = {**os.environ, "OVVISION_NO_EXT": "1", "OMP_NUM_THREADS": "1"}
    onnx_path = tmp_path / "export" / "model.onnx"
    common = ["--config-file", str(CONFIG), "--weights", str(tmp_path / "model.pth")]
    log = run_tool(
        ["tools/export_onnx.py", *common, "--output", str(onnx_path),
         "--sample-image", str(tmp_path / "photo.png"), "--opts", *OPTS],
        env, timeout=600,
    )  # fmt: skip
    assert "onnxruntime equals PyTorch on the sample image" in log
    assert (tmp_path / "export" / "vocabulary.npz").is_file()

    renamed = tmp_path / "renamed.npz"
    run_tool(
        ["tools/export_onnx.py", *common, "--output", str(onnx_path), "--vocabulary",
         "kite,lamp|lantern", "--vocabulary-only", "--vocabulary-file", str(renamed),
         "--opts", *OPTS],
        env, timeout=600,
    )  # fmt: skip
    stamp = onnx_path.stat().st_mtime_ns
    demo = tmp_path / "demo"
    run_tool(
        ["tools/onnx_demo.py", "--model", str(onnx_path), "--vocabulary", str(renamed),
         "--input", str(tmp_path / "photo.png"), "--output", str(demo),
         "--confidence-threshold", "0"],
        env, timeout=600,
    )  # fmt: skip
    assert onnx_path.stat().st_mtime_ns == stamp  # the graph was not exported again
    predictions = json.loads((demo / "predictions.json").read_text())
    assert predictions and {p["category_name"] for p in predictions} <= {"kite", "lamp"}
    assert (demo / "photo.png.png").is_file()

    other = tmp_path / "other_model.npz"
    np.savez(other, names=np.array(["kite"]), embeddings=np.ones((1, 7), np.float32))
    proc = subprocess.run(
        [sys.executable, "tools/onnx_demo.py", "--model", str(onnx_path), "--vocabulary",
         str(other), "--input", str(tmp_path / "photo.png"), "--output", str(demo)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 2
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith("onnx_demo.py: error:") and "other_model.npz" in error
    assert "dimension 7" in error and "dimension 128" in error
