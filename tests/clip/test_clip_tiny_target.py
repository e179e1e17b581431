"""The shipped tiny-CLIP config reaches the zero-shot target on OV-Shapes (slow: trains minutes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TARGET_TOP1 = 0.85


@pytest.mark.slow
def test_clip_tiny_reaches_zero_shot_target(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "OVVISION_DATASETS": str(tmp_path / "datasets"),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    generate = [
        sys.executable, "tools/make_ov_shapes.py", "--output",
        str(tmp_path / "datasets" / "ov_shapes"), "--seed", "0", "--no-progress",
    ]  # fmt: skip
    subprocess.run(generate, cwd=ROOT, env=env, check=True, timeout=1200)
    out = tmp_path / "clip"
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "tools/train_clip.py", "--config-file",
         "configs/ov_shapes/clip_tiny.yaml", "OUTPUT_DIR", str(out)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=3600,
    )  # fmt: skip
    minutes = (time.perf_counter() - start) / 60
    assert proc.returncode == 0, proc.stdout[-4000:]
    results = json.loads((out / "zero_shot.json").read_text())
    summary = {k: round(results[k], 4) for k in ("top1_all", "top1_base", "top1_novel")}
    print(f"tiny CLIP: {summary} after {minutes:.1f} min of training (wall clock, incl. start-up)")
    assert results["dataset"] == "ov_shapes_pretrain_val"
    assert results["num_crops"] > 1000
    assert results["top1_base"] >= TARGET_TOP1, (summary, proc.stdout[-3000:])
    assert results["top1_novel"] >= TARGET_TOP1, (summary, proc.stdout[-3000:])
