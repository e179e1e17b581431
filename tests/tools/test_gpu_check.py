"""tools/gpu_check.sh's plumbing on CPU (DEVICE=cpu): every step runs, one JSON gathers them."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests._tools import REPO

SCRIPT = os.path.join(REPO, "tools", "gpu_check.sh")


def _run(out: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **env}
    return subprocess.run(
        [SCRIPT, out], cwd=REPO, env=full_env, capture_output=True, text=True, timeout=900
    )


@pytest.mark.slow
def test_cpu_run_gathers_every_step_into_one_json(tmp_path):
    out = tmp_path / "check.json"
    proc = _run(
        str(out),
        DEVICE="cpu",
        SIZE="tiny",
        OPS_ARGS="--cases roi_align_bwd_1t --repeats 1 --warmup 0",
        MODEL_ARGS="--threads 1 --cases inference_ov_shapes",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert set(result["steps"]) == {
        "cuda_tests",
        "benchmark_ops",
        "benchmark_model_fp32",
        "benchmark_model_bf16",
    }  # fmt: skip  (no CUDA build on CPU)
    assert all(s["rc"] == 0 for s in result["steps"].values())
    # On CPU every CUDA test is collected and skipped.
    assert result["cuda_tests"]["tests"] > 0
    assert result["cuda_tests"]["skipped"] == result["cuda_tests"]["tests"]
    assert "roi_align_bwd_1t" in result["benchmark_ops"]
    for precision, amp in (("fp32", "off"), ("bf16", "bf16")):
        model = result[f"benchmark_model_{precision}"]
        assert model["meta"]["device"] == "cpu" and model["meta"]["amp"] == amp
        assert model["inference_ov_shapes"]["ratio"] > 0
    assert result["meta"]["device"] == "cpu" and result["meta"]["failed_steps"] == []


def test_a_failing_step_is_recorded_and_fails_the_run(tmp_path):
    out = tmp_path / "check.json"
    proc = _run(str(out), DEVICE="cpu", STEPS="benchmark_model_fp32", MODEL_ARGS="--no-such-option")
    assert proc.returncode == 1
    result = json.loads(out.read_text())
    assert set(result["steps"]) == {"benchmark_model_fp32"}
    assert result["meta"]["failed_steps"] == ["benchmark_model_fp32"]
    assert result["benchmark_model_fp32"] is None
    assert any(
        "--no-such-option" in line for line in result["steps"]["benchmark_model_fp32"]["log_tail"]
    )


def test_unknown_device_is_refused(tmp_path):
    proc = _run(str(tmp_path / "check.json"), DEVICE="tpu")
    assert proc.returncode == 2 and "DEVICE must be cuda or cpu" in proc.stderr
