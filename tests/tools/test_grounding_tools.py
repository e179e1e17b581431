"""End to end on a tiny OV-Shapes with random weights: train the grounder a few steps through
tools/train_net.py (it evaluates at the end), re-score its results file with
tools/evaluate_grounding.py, and run tools/ground.py with good and bad inputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from .._tools import load_tool

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "ov_shapes" / "ovgrounder.yaml"
pytestmark = pytest.mark.slow


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=900
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("datasets")
    env = {**os.environ, "OVVISION_DATASETS": str(root), "OMP_NUM_THREADS": "1"}
    proc = _run(
        ["tools/make_ov_shapes.py", "--output", str(root / "ov_shapes"), "--num-train", "16",
         "--num-val", "4", "--seed", "5", "--no-progress"],
        env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = root / "run"
    proc = _run(
        ["tools/train_net.py", "--config-file", str(CONFIG),
         "MODEL.TEXT_ENCODER.PRETRAINED", "", "MODEL.GROUNDER.DETECTOR_WEIGHTS", "",
         "MODEL.GROUNDER.POSITIVE_IOU", "0.1", "MODEL.RPN.POST_NMS_TOPK_TEST", "30",
         "VOCABULARY.ANNOTATION_JSON", str(root / "ov_shapes/annotations/instances_val.json"),
         "VOCABULARY.CACHE_DIR", str(root / "cache"), "SOLVER.MAX_ITER", "3",
         "SOLVER.IMS_PER_BATCH", "2", "SOLVER.WARMUP_ITERS", "1", "SOLVER.STEPS", "(2,)",
         "DATALOADER.NUM_WORKERS", "0", "OUTPUT_DIR", str(out), "SEED", "1"],
        env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    return root, out, env


def test_train_evaluate_and_rescore(trained):
    root, out, _ = trained
    metrics = json.loads((out / "eval_results.json").read_text())["grounding"]
    assert metrics["num_expressions"] > 0 and metrics["num_without_prediction"] == 0
    for key in ("Acc@0.5", "Acc@0.5-base", "R@1", "R@5", "R@10"):
        assert 0.0 <= metrics[key] <= 100.0, key
    assert metrics["R@1"] == metrics["Acc@0.5"] and metrics["R@1"] <= metrics["R@10"]
    results = out / "inference" / "ov_shapes_refexp_val" / "grounding_results.json"
    gt = str(root / "ov_shapes/annotations/refexp_val.json")
    rescored = out / "rescored.json"
    evaluate = load_tool("evaluate_grounding")
    report = out / "rescored_report"
    args = ["--gt", gt, "--results", str(results), "--output", str(rescored)]
    assert evaluate.main([*args, "--report", str(report)]) == 0
    assert json.loads(rescored.read_text()) == {"grounding": metrics}
    text = (report / "report.md").read_text()
    assert f"| Acc@0.5-base | {metrics['Acc@0.5-base']:.2f} |" in text
    assert (report / "metrics_grounding.png").is_file()
    bad = out / "bad_results.json"
    bad.write_text('{"not": "a list"}')
    with pytest.raises(ValueError, match="bad_results.json' must hold a list"):
        evaluate.main(["--gt", gt, "--results", str(bad)])


def test_ground_tool_reports_bad_inputs_and_processes_the_rest(trained, tmp_path):
    root, out, env = trained
    image = next((root / "ov_shapes" / "val").glob("*.png"))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    other = tmp_path / "other.png"
    Image.open(image).save(other)
    args = ["tools/ground.py", "--config-file", str(out / "config.yaml"),
            "--weights", str(out / "model_final.pth"), "--output", str(tmp_path / "out"),
            "--top-k", "2"]  # fmt: skip
    proc = _run(
        [*args, "--input", str(image), str(broken), str(other), "--phrases",
         "--text", "the red circle left of the blue square", "", " ".join(["red"] * 30)],
        env,
    )  # fmt: skip
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert "broken.png" in log and "expression 0 is empty" in log
    assert "context length" in log and "Traceback" not in log
    entries = json.loads((tmp_path / "out" / "groundings.json").read_text())
    assert [bool(e.get("error")) for e in entries] == [False, True, False]
    good = entries[0]["expressions"]
    # phrase localisation: one entry per noun phrase; the bad texts are reported in place
    assert [g["text"] for g in good[:2]] == ["the red circle", "the blue square"]
    assert [bool(g.get("error")) for g in good] == [False, False, True, True]
    assert len(good[0]["boxes"]) == 2 and good[0]["scores"][0] >= good[0]["scores"][1]
    assert (tmp_path / "out" / (image.name + ".png")).is_file()
    proc = _run([*args, "--input", str(broken), "--text", "a star"], env)
    assert proc.returncode == 2 and "nothing could be grounded" in proc.stderr
