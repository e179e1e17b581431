"""tools/train_net.py (train, resume, eval-only) and tools/demo.py on a tiny OV-Shapes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import open_clip
import pytest
import torch
from PIL import Image

from ovvision.modeling.text import register_project_model_configs

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "ov_shapes" / "ovrcnn_clip_frozen.yaml"


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=900
    )


@pytest.fixture(scope="module")
def tiny_ov_shapes(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("datasets")
    env = {**os.environ, "OVVISION_DATASETS": str(root)}
    proc = _run(
        [str(ROOT / "tools" / "make_ov_shapes.py"), "--output", str(root / "ov_shapes"),
         "--num-train", "24", "--num-val", "6", "--seed", "3", "--no-progress"],
        env, root,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root, env


def _opts(root: Path, out: Path, max_iter: int) -> list[str]:
    return [
        "MODEL.TEXT_ENCODER.PRETRAINED", "",
        "VOCABULARY.ANNOTATION_JSON", str(root / "ov_shapes/annotations/instances_val.json"),
        "VOCABULARY.CACHE_DIR", str(root / "cache"),
        "SOLVER.MAX_ITER", str(max_iter), "SOLVER.IMS_PER_BATCH", "2",
        "SOLVER.CHECKPOINT_PERIOD", "2", "SOLVER.WARMUP_ITERS", "1", "SOLVER.STEPS", "(3,)",
        "DATALOADER.NUM_WORKERS", "0", "OUTPUT_DIR", str(out), "SEED", "1",
    ]  # fmt: skip


def test_train_resume_and_eval_only(tiny_ov_shapes, tmp_path):
    root, env = tiny_ov_shapes
    out = tmp_path / "run"
    train = ["tools/train_net.py", "--config-file", str(CONFIG)]
    proc = _run([*train, *_opts(root, out, 2)], env, ROOT)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert (out / "config.yaml").is_file() and (out / "metrics.jsonl").is_file()
    metrics = json.loads((out / "eval_results.json").read_text())
    for task in ("bbox", "segm"):
        for key in ("AP", "AP50", "AP50-base", "AP50-novel"):
            value = metrics[task][key]
            assert value is None or 0.0 <= value <= 100.0, (task, key, value)

    # --resume continues from model_final's iteration to the new MAX_ITER.
    proc = _run([*train, "--resume", *_opts(root, out, 4)], env, ROOT)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "Starting training from iteration 2" in proc.stdout + proc.stderr
    assert (out / "model_0000003.pth").is_file()

    # --eval-only with the final weights reproduces the metrics of the last evaluation.
    final = json.loads((out / "eval_results.json").read_text())
    eval_out = tmp_path / "eval"
    weights = ["MODEL.WEIGHTS", str(out / "model_final.pth")]
    proc = _run([*train, "--eval-only", *_opts(root, eval_out, 4), *weights], env, ROOT)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert json.loads((eval_out / "eval_results.json").read_text()) == final


@pytest.fixture(scope="module")
def one_iteration_weights(tiny_ov_shapes, tmp_path_factory) -> Path:
    """model_final.pth of a one-iteration training run on the tiny OV-Shapes, started in a user
    folder with relative paths for the text encoder weights and OUTPUT_DIR."""
    root, env = tiny_ov_shapes
    folder = tmp_path_factory.mktemp("one_iteration")
    register_project_model_configs()
    torch.manual_seed(0)
    (folder / "clip").mkdir()
    torch.save(open_clip.create_model("OVShapes-CLIP-Tiny").state_dict(), folder / "clip/tiny.pt")
    relative = ["MODEL.TEXT_ENCODER.PRETRAINED", "clip/tiny.pt", "OUTPUT_DIR", "run"]
    proc = _run(
        [str(ROOT / "tools/train_net.py"), "--config-file", str(CONFIG),
         *_opts(root, folder / "unused", 1), *relative],
        env, folder,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    return folder / "run" / "model_final.pth"


def test_saved_config_works_from_another_folder(tiny_ov_shapes, one_iteration_weights, tmp_path):
    """The run's config.yaml names its text encoder weights relatively to where training ran;
    the demo started elsewhere with that config still finds them."""
    _, env = tiny_ov_shapes
    run = one_iteration_weights.parent
    image = run.parent / "image.png"
    Image.new("RGB", (96, 64), "white").save(image)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = _run(
        [str(ROOT / "tools/demo.py"), "--config-file", str(run / "config.yaml"),
         "--weights", str(one_iteration_weights), "--input", str(image), "--output", "out",
         "--custom-vocabulary", "star,heart"],
        env, elsewhere,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "Traceback" not in proc.stderr
    assert (elsewhere / "out" / "image.png.png").is_file()


def test_demo_skips_bad_files_and_rejects_bad_vocabulary(
    tiny_ov_shapes, one_iteration_weights, tmp_path
):
    root, env = tiny_ov_shapes
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    val_images = sorted((root / "ov_shapes" / "val").iterdir())[:2]
    for img in val_images:
        (inputs / img.name).write_bytes(img.read_bytes())
    (inputs / "corrupt.jpg").write_text("this is not an image")
    demo_out = tmp_path / "demo"
    weights = str(one_iteration_weights)
    base = ["tools/demo.py", "--config-file", str(CONFIG), "--weights", weights,
            "--output", str(demo_out), "--confidence-threshold", "0.0"]  # fmt: skip
    val_json = str(root / "ov_shapes/annotations/instances_val.json")
    opts = ["--opts", "MODEL.TEXT_ENCODER.PRETRAINED", "", "VOCABULARY.CACHE_DIR",
            str(root / "cache"), "VOCABULARY.ANNOTATION_JSON", val_json]  # fmt: skip

    proc = _run(
        [*base, "--input", str(inputs), "--custom-vocabulary", "star,heart|love", *opts], env, ROOT
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "corrupt.jpg" in proc.stdout + proc.stderr
    drawn = sorted(p.name for p in demo_out.glob("*.png"))
    assert drawn == sorted(p.name + ".png" for p in val_images)
    predictions = json.loads((demo_out / "predictions.json").read_text())
    assert {p["category_name"] for p in predictions} <= {"star", "heart"}
    assert {Path(p["file_name"]).name for p in predictions} <= {p.name for p in val_images}

    proc = _run([*base, "--input", str(inputs), "--custom-vocabulary", " , ", *opts], env, ROOT)
    assert proc.returncode != 0 and "vocabulary" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1

    proc = _run(
        [*base, "--input", str(inputs / "corrupt.jpg"), "--custom-vocabulary", "star", *opts],
        env,
        ROOT,
    )
    assert proc.returncode != 0 and "could be read" in proc.stderr

    missing = [*base[:4], str(tmp_path / "nope.pth"), *base[5:]]
    proc = _run([*missing, "--input", str(inputs), "--custom-vocabulary", "star", *opts], env, ROOT)
    assert proc.returncode != 0 and "nope.pth" in proc.stderr


def test_proposal_recall_tool_counts_every_box_of_each_split(
    tiny_ov_shapes, one_iteration_weights, tmp_path
):
    root, env = tiny_ov_shapes
    recall_json = tmp_path / "recall.json"
    val_json = root / "ov_shapes/annotations/instances_val.json"
    proc = _run(
        ["tools/proposal_recall.py", "--config-file", str(CONFIG),
         "--weights", str(one_iteration_weights), "--dataset", "ov_shapes_val",
         "--output", str(recall_json), "--top", "5,50",  # config overrides follow --top
         "MODEL.TEXT_ENCODER.PRETRAINED", "", "VOCABULARY.CACHE_DIR", str(root / "cache"),
         "VOCABULARY.ANNOTATION_JSON", str(val_json), "DATALOADER.NUM_WORKERS", "0"],
        env, ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    recall = json.loads(recall_json.read_text())
    gt = json.loads(val_json.read_text())
    novel = {c["id"] for c in gt["categories"] if c["split"] == "novel"}
    anns = [a for a in gt["annotations"] if not a.get("iscrowd", 0)]
    num_novel = sum(a["category_id"] in novel for a in anns)
    assert set(recall) == {"5", "50"}
    for r in recall.values():
        assert (r["num_base"], r["num_novel"]) == (len(anns) - num_novel, num_novel)
        assert all(0.0 <= r[s] <= 1.0 for s in ("base", "novel", "all"))
    assert recall["50"]["all"] >= recall["5"]["all"]


def test_demo_outputs_of_distinct_inputs_never_collide(
    tiny_ov_shapes, one_iteration_weights, tmp_path
):
    """a/1.png and b/1.png, x.jpg and x.png, given as files and as a glob: one output each."""
    root, env = tiny_ov_shapes
    val_images = sorted((root / "ov_shapes" / "val").iterdir())[:4]
    inputs = tmp_path / "in"
    sources = {"a/1.png": val_images[0], "b/1.png": val_images[1], "x.png": val_images[2]}
    for name, source in sources.items():
        (inputs / name).parent.mkdir(parents=True, exist_ok=True)
        (inputs / name).write_bytes(source.read_bytes())
    Image.open(val_images[3]).convert("RGB").save(inputs / "x.jpg", quality=95)
    demo_out = tmp_path / "demo"
    val_json = str(root / "ov_shapes/annotations/instances_val.json")
    proc = _run(
        [str(ROOT / "tools/demo.py"), "--config-file", str(CONFIG),
         "--weights", str(one_iteration_weights), "--output", str(demo_out),
         "--confidence-threshold", "0.0",
         "--input", "in/a/1.png", "in/b/1.png", "in/x.jpg", "in/*.png",
         "--custom-vocabulary", "star,heart,circle",
         "--opts", "MODEL.TEXT_ENCODER.PRETRAINED", "", "VOCABULARY.CACHE_DIR",
         str(root / "cache"), "VOCABULARY.ANNOTATION_JSON", val_json],
        env, tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    expected = {
        "in/a/1.png": "a/1.png.png",
        "in/b/1.png": "b/1.png.png",
        "in/x.jpg": "x.jpg.png",
        "in/x.png": "x.png.png",  # from the glob, whose root in/ is the inputs' common folder
    }
    images = json.loads((demo_out / "images.json").read_text())
    assert {i["file_name"]: i["output"] for i in images} == {
        name: str(demo_out / out) for name, out in expected.items()
    }
    assert sorted(str(p.relative_to(demo_out)) for p in demo_out.rglob("*.png")) == sorted(
        expected.values()
    )
    for image in images:  # each drawing is of its own input
        assert Image.open(image["output"]).size == Image.open(tmp_path / image["file_name"]).size
    predictions = json.loads((demo_out / "predictions.json").read_text())
    by_image = {i["image_id"]: i for i in images}
    for p in predictions:
        assert by_image[p["image_id"]]["file_name"] == p["file_name"]
        assert p["category_name"] == ["star", "heart", "circle"][p["category_id"]]
    counts = {i["file_name"]: i["num_detections"] for i in images}
    assert counts == {name: sum(p["file_name"] == name for p in predictions) for name in expected}


def test_test_captions_scores_the_generated_captions(tiny_ov_shapes, tmp_path):
    """TEST.CAPTIONS: train_net's evaluation writes each val image's caption and scores it; the
    scores equal those of the caption file scored on its own (evaluate_caption_files)."""
    from ovvision.evaluation import CAPTION_RESULTS_FILE, evaluate_caption_files
    from ovvision.structures import ClassList

    root, env = tiny_ov_shapes
    out = tmp_path / "captions"
    generation = [
        "MODEL.ROI_HEADS.AUXILIARY_LOSSES", '["CaptionGenerationLoss"]',
        "MODEL.CAPTION_GENERATION.HIDDEN_DIM", "32", "MODEL.CAPTION_GENERATION.NUM_LAYERS", "1",
        "MODEL.CAPTION_GENERATION.NUM_HEADS", "2", "MODEL.CAPTION_GENERATION.MAX_LENGTH", "8",
        "DATASETS.TRAIN", '("ov_shapes_train_captions",)', "TEST.CAPTIONS", "True",
    ]  # fmt: skip
    args = ["tools/train_net.py", "--config-file", str(CONFIG), "--report", str(out / "report")]
    proc = _run([*args, *_opts(root, out, 1), *generation], env, ROOT)
    assert proc.returncode == 0, proc.stderr[-4000:]
    metrics = json.loads((out / "eval_results.json").read_text())
    assert {"bbox", "segm", "caption"} <= set(metrics)
    folder = out / "inference" / "ov_shapes_val"
    rows = json.loads((folder / CAPTION_RESULTS_FILE).read_text())
    assert len(rows) == 6 and all(isinstance(r["caption"], str) for r in rows)
    annotations = root / "ov_shapes" / "annotations"
    instances = json.loads((annotations / "instances_val.json").read_text())
    categories = sorted(instances["categories"], key=lambda c: c["id"])
    classes = ClassList(
        [c["name"] for c in categories], is_novel=[c.get("split") == "novel" for c in categories]
    )
    direct = evaluate_caption_files(
        str(folder / CAPTION_RESULTS_FILE), str(annotations / "captions_val.json"),
        str(annotations / "instances_val.json"), classes,
    )["caption"]  # fmt: skip
    assert metrics["caption"] == pytest.approx(direct)
    assert (out / "report" / "report.md").is_file()
