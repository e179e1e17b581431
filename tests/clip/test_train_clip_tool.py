"""tools/train_clip.py on a tiny OV-Shapes: train, resume, export, eval-only, two DDP processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ovvision.config import get_cfg
from ovvision.modeling.text import create_text_encoder

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "ov_shapes" / "clip_tiny.yaml"
TINY = "OVShapes-CLIP-RN-Tiny"  # the architecture configs/ov_shapes/clip_tiny.yaml trains


def _clip_configs() -> dict[str, str]:
    """The CLIP pretraining configs of configs/ (those without a detector meta-architecture):
    file name -> the open_clip architecture each trains."""
    found = {}
    for path in sorted((ROOT / "configs").rglob("*.yaml")):
        cfg = get_cfg()
        cfg.merge_from_file(str(path))
        if not cfg.MODEL.META_ARCHITECTURE:
            found[str(path.relative_to(ROOT))] = cfg.MODEL.TEXT_ENCODER.NAME
    return found


CLIP_CONFIGS = _clip_configs()


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run a script; its log and its stderr are both in ``.stdout``."""
    return subprocess.run(
        [sys.executable, *args], env=env, cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, timeout=900,
    )  # fmt: skip


@pytest.fixture(scope="module")
def tiny_ov_shapes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("datasets")
    env = {
        **os.environ,
        "OVVISION_DATASETS": str(root),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
    }
    proc = _run(
        [str(ROOT / "tools" / "make_ov_shapes.py"), "--output", str(root / "ov_shapes"),
         "--num-train", "12", "--num-val", "4", "--seed", "7", "--no-progress"],
        env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:]
    return env


def _opts(out: Path, max_iter: int, batch: int = 8) -> list[str]:
    return [
        "SOLVER.MAX_ITER", str(max_iter), "SOLVER.IMS_PER_BATCH", str(batch),
        "SOLVER.CHECKPOINT_PERIOD", "2", "SOLVER.WARMUP_ITERS", "1", "LOG_PERIOD", "1",
        "OUTPUT_DIR", str(out), "SEED", "1",
    ]  # fmt: skip


def test_train_resume_export_and_eval_only(tiny_ov_shapes: dict[str, str], tmp_path: Path):
    env = tiny_ov_shapes
    out = tmp_path / "run"
    train = ["tools/train_clip.py", "--config-file", str(CONFIG)]
    proc = _run([*train, *_opts(out, 2)], env)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "iter 2/2" in proc.stdout  # the engine's progress line
    assert (out / "model_final.pth").is_file() and (out / "metrics.jsonl").is_file()

    proc = _run([*train, "--resume", *_opts(out, 4)], env)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "Starting training from iteration 2" in proc.stdout
    assert (out / "model_0000003.pth").is_file()
    results = json.loads((out / "zero_shot.json").read_text())
    for key in ("top1_all", "top1_base", "top1_novel"):
        assert 0.0 <= results[key] <= 1.0
    assert len(results["per_class"]) == 24
    assert sum(row["num"] for row in results["per_class"].values()) == results["num_crops"]
    assert "most confused with" in proc.stdout  # the per-class table

    # The exported open_clip checkpoint holds exactly the trained weights.
    engine_state = torch.load(out / "model_final.pth", weights_only=True)["model"]
    encoder = create_text_encoder(TINY, pretrained=out / "model_final.pt")
    for key, value in encoder.model.state_dict().items():
        assert torch.equal(value, engine_state[f"clip.{key}"]), key

    # --eval-only on the exported weights reproduces the final zero-shot results.
    eval_out = tmp_path / "eval"
    weights = ["MODEL.TEXT_ENCODER.PRETRAINED", str(out / "model_final.pt")]
    proc = _run([*train, "--eval-only", *_opts(eval_out, 4), *weights], env)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert json.loads((eval_out / "zero_shot.json").read_text()) == results


def test_two_gloo_processes(tiny_ov_shapes: dict[str, str], tmp_path: Path):
    out = tmp_path / "ddp"
    proc = _run(
        ["tools/train_clip.py", "--config-file", str(CONFIG), "--num-gpus", "2",
         *_opts(out, 2, batch=8), "MODEL.DEVICE", "cpu"],
        tiny_ov_shapes,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "World size: 2" in proc.stdout
    assert (out / "model_final.pt").is_file() and (out / "zero_shot.json").is_file()


def test_both_tiny_clip_configs_are_found():
    assert {"configs/ov_shapes/clip_tiny.yaml", "configs/ov_shapes/clip_tiny_vit.yaml"} <= set(
        CLIP_CONFIGS
    )


@pytest.mark.parametrize("config", sorted(CLIP_CONFIGS))
def test_every_clip_config_trains_one_step(tiny_ov_shapes: dict[str, str], tmp_path: Path, config):
    out = tmp_path / "run"
    proc = _run(["tools/train_clip.py", "--config-file", config, *_opts(out, 1)], tiny_ov_shapes)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "iter 1/1" in proc.stdout
    encoder = create_text_encoder(CLIP_CONFIGS[config], pretrained=out / "model_final.pt")
    engine_state = torch.load(out / "model_final.pth", weights_only=True)["model"]
    for key, value in encoder.model.state_dict().items():
        assert torch.equal(value, engine_state[f"clip.{key}"]), key
    assert json.loads((out / "zero_shot.json").read_text())["num_crops"] > 0
