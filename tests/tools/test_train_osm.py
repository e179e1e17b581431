"""tools/train_osm.py end to end on a tiny OV-Shapes: the three stages a few steps each, a rerun
that skips them, the naming and COCO-OV evaluators' files, and tools/demo.py --open-ended."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from ovvision.checkpoint import Checkpointer
from ovvision.modeling.meta_arch import OVRCNN

from .._tools import run_tool
from ..modeling.helpers import CONFIG_DIR, load_config

CONFIG = CONFIG_DIR / "ov_shapes" / "osm_tiny.yaml"


@pytest.fixture(scope="module")
def osm_run(tmp_path_factory) -> tuple[Path, Path, dict[str, str], str, list[str]]:
    root = tmp_path_factory.mktemp("osm")
    env = {**os.environ, "OVVISION_DATASETS": str(root), "OMP_NUM_THREADS": "1"}
    run_tool(
        ["tools/make_ov_shapes.py", "--output", str(root / "ov_shapes"), "--num-train", "16",
         "--num-val", "4", "--seed", "5", "--no-progress"],
        env, timeout=300,
    )  # fmt: skip
    torch.manual_seed(0)  # a random detector of the config's architecture: masks to name
    detector = OVRCNN(load_config(CONFIG, "MODEL.META_ARCHITECTURE", "OVRCNN"))
    weights = Checkpointer(detector, str(root / "detector"), save_to_disk=True).save("model")
    out = root / "run"
    command = [
        "tools/train_osm.py", "--config-file", str(CONFIG), "OUTPUT_DIR", str(out),
        "MODEL.TEXT_ENCODER.PRETRAINED", "", "MODEL.OSM.DETECTOR_WEIGHTS", weights,
        "VOCABULARY.ANNOTATION_JSON", str(root / "ov_shapes/annotations/instances_val.json"),
        "VOCABULARY.CACHE_DIR", str(root / "cache"), "MODEL.OSM.STAGE_ITERS", "[3, 3, 3]",
        "MODEL.OSM.STAGE_BATCH", "[8, 2, 2]", "MODEL.OSM.MAX_PROPOSALS", "5",
        "MODEL.OSM.MAX_NAME_TOKENS", "3", "MODEL.RPN.POST_NMS_TOPK_TEST", "30",
        "SOLVER.CHECKPOINT_PERIOD", "2", "LOG_PERIOD", "1", "SEED", "1",
    ]  # fmt: skip
    log = run_tool(command, env, timeout=600)
    return root, out, env, log, command


@pytest.mark.slow
def test_three_stages_and_both_evaluations(osm_run):
    root, out, env, log, command = osm_run
    for stage in ("Stage 1", "Stage 2", "Stage 3"):
        assert f"{stage} took" in log
    assert (out / "lm" / "config.json").is_file() and (out / "lm" / "tokenizer.json").is_file()
    finals = [out / s / "model_final.pth" for s in ("pretrain", "instruct")]
    assert all(f.is_file() for f in finals)
    results = json.loads((out / "eval_results.json").read_text())
    for mode in ("any", "ov_shapes"):
        metrics = results["ov_shapes_val"][f"naming-{mode}"]
        assert metrics["num_masks"] > 0 and 0.0 <= metrics["accuracy"] <= 100.0
        assert metrics["num_base"] + metrics["num_novel"] == metrics["num_masks"]
        naming = out / "naming" / "ov_shapes_val" / mode
        saved = json.loads((naming / "naming_results.json").read_text())
        assert len(saved["names"]) == metrics["num_masks"]
        assert (naming / "naming_confusion.md").read_text().startswith("# Naming confusions")
    for task in ("bbox", "segm"):
        assert {"AP", "AP50-base", "AP50-novel"} <= set(results["ov_shapes_val"][task])
    assert (out / "inference" / "ov_shapes_val" / "coco_instances_results.json").is_file()

    # a rerun finds every stage done: nothing is trained again
    stamps = [f.stat().st_mtime_ns for f in finals]
    rerun = run_tool([*command, "DATASETS.TEST", "()"], env, timeout=300)
    assert "Stage 1 (lm) done before" in rerun and "Stage 3 (instruct) done before" in rerun
    assert "Starting training" not in rerun
    assert [f.stat().st_mtime_ns for f in finals] == stamps


@pytest.mark.slow
def test_demo_open_ended_draws_generated_names(osm_run):
    root, out, env, _, _ = osm_run
    demo = root / "demo"
    run_tool(
        ["tools/demo.py", "--config-file", str(out / "osm_inference.yaml"),
         "--weights", str(out / "instruct" / "model_final.pth"),
         "--input", str(root / "ov_shapes" / "val"), "--output", str(demo), "--open-ended",
         "--confidence-threshold", "0"],
        env, timeout=300,
    )  # fmt: skip
    images = json.loads((demo / "images.json").read_text())
    assert len(images) == 4 and all(Path(i["output"]).is_file() for i in images)
    predictions = json.loads((demo / "predictions.json").read_text())
    assert len(predictions) == sum(i["num_detections"] for i in images) > 0
    assert all(isinstance(p["category_name"], str) and p["category_name"] for p in predictions)
