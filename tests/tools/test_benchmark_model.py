"""tools/benchmark_model.py at its tiny size: every case side by side and the JSON schema (no
timing assertions: the figures depend on the machine)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests._tools import REPO, run_tool

CASES = (
    "inference_800x1333",
    "inference_800x1333_fusion",
    "train_step_800x1333",
    "inference_ov_shapes",
    "train_step_ov_shapes",
)
STAGES = {
    "backbone", "rpn", "roi_pooling", "region_head_and_vocabulary_scoring", "clip_fusion", "nms",
    "mask_head", "paste", "other",
}  # fmt: skip


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": REPO}


@pytest.mark.slow
def test_tiny_run_writes_every_case_with_stages_and_meta(tmp_path):
    out = tmp_path / "bench.json"
    log = run_tool(
        ["tools/benchmark_model.py", "--json", str(out), "--size", "tiny", "--threads", "1"],
        _env(),
        timeout=600,
    )
    results = json.loads(out.read_text())
    assert set(results) == {*CASES, "meta"}, log[-2000:]
    for name in CASES:
        case = results[name]
        assert case["ovvision_ms"] > 0 and case["torchvision_ms"] > 0
        ours, theirs = case["ovvision_ms"], case["torchvision_ms"]
        # the times are rounded to 0.1 ms and the ratio to 0.001 before they are written
        rounding = ours / theirs * (0.05 / ours + 0.05 / theirs) + 5e-4
        assert case["ratio"] == pytest.approx(ours / theirs, abs=rounding + 1e-9)
        assert set(case["process_cpu_ms"]) == {"ovvision", "torchvision"}
        assert name in log
    for name in (c for c in CASES if c.startswith("inference")):
        stages = results[name]["ovvision_stages_ms"]
        assert {"backbone", "rpn", "roi_pooling", "nms", "mask_head", "paste"} <= set(stages)
        assert set(stages) <= STAGES
        # The calibrated thresholds let both models detect (so masks are predicted and pasted).
        assert results[name]["detections"]["ovvision"] > 0
        assert results[name]["detections"]["torchvision"] > 0
    assert "clip_fusion" in results["inference_800x1333_fusion"]["ovvision_stages_ms"]
    assert "clip_fusion" not in results["inference_800x1333"]["ovvision_stages_ms"]
    assert results["inference_800x1333"]["clip_models_built"] == 0
    assert results["inference_800x1333_fusion"]["clip_models_built"] == 1
    meta = results["meta"]
    assert meta["threads"] == 1 and meta["size"] == "tiny" and meta["device"] == "cpu"
    assert meta["layout"] == "default"
    assert meta["torch"] and meta["torchvision"] and len(meta["load_average_before_after"]) == 2


def test_cuda_without_a_gpu_is_refused_naming_the_argument(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "tools/benchmark_model.py", "--json", str(out), "--device", "cuda"],
        cwd=REPO, env=_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "--device cuda" in proc.stderr and not out.exists()


@pytest.mark.parametrize(
    "layout, channels_last",
    [("default", False), ("channels_last", True), ("contiguous", False)],
)
def test_layout_puts_the_torchvision_model_in_it(layout, channels_last):
    """torchvision's model in the layout asked for ("default": contiguous, as torchvision ships
    it), whatever the layout it was built in (the OV-Shapes pair borrows ovvision's backbone)."""
    import torch

    from tests._tools import load_tool

    bench = load_tool("benchmark_model")
    for start in (torch.channels_last, torch.contiguous_format):
        build = bench._in_layout(
            lambda start=start: torch.nn.Conv2d(3, 8, 3).to(memory_format=start),
            bench.LAYOUTS[layout][1],
        )
        weight = build().weight
        assert weight.is_contiguous(memory_format=torch.channels_last) == channels_last
        assert weight.is_contiguous() != channels_last
