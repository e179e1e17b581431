"""tools/autolabel.py: label a folder, train on the labels, resume after a kill, bad inputs, the
shard formats, and the Ray Data path with a worker killed mid-run."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import fsspec
import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from PIL import Image

from ovvision.autolabel import (
    JobMismatchError,
    LabelSettings,
    cap_detections,
    list_images,
    load_image,
    open_job,
    read_shards,
    to_coco,
    write_shard,
)
from ovvision.config import get_cfg
from ovvision.data import ImageReadError, load_coco_json
from ovvision.data.datasets.ov_shapes import generate_ov_shapes
from ovvision.structures import Boxes, ClassList, Instances
from tests.engine._random_detector import CLASS_NAMES, CONFIG, save_random_detector

ROOT = Path(__file__).resolve().parents[2]
TOOL = str(ROOT / "tools" / "autolabel.py")
NUM_IMAGES = 12  # OV-Shapes val images labelled, plus one corrupt file


def _autolabel_args(world: dict, output: Path, *extra: str) -> list[str]:
    return [
        TOOL, "--config-file", str(CONFIG), "--weights", str(world["weights"]),
        "--input", str(world["images"]), "--vocabulary", ",".join(CLASS_NAMES),
        "--output", str(output), "--score-threshold", "0.3", "--max-per-class", "2",
        "--num-threads", "1", *extra, "--opts", *world["opts"],
    ]  # fmt: skip


def _load_tool():
    spec = importlib.util.spec_from_file_location("autolabel_tool", TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def _in_process(args: list[str]) -> tuple[int, str]:
    """Run the tool as its ``__main__`` does, in this process (no start-up cost): the exit code,
    and what it logged and printed to stderr. The package logger is restored afterwards."""
    tool = _load_tool()
    package_logger = logging.getLogger("ovvision")
    saved = (package_logger.handlers[:], package_logger.propagate, package_logger.level)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.INFO)
    package_logger.addHandler(handler)
    try:
        with contextlib.redirect_stderr(stream), pytest.raises(SystemExit) as exit_info:
            tool.run_tool(lambda: tool.main(args[1:]), prog=tool.PROG)
    finally:
        package_logger.handlers[:] = saved[0]
        package_logger.propagate, package_logger.level = saved[1], saved[2]
    return exit_info.value.code, stream.getvalue()


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """OV-Shapes images (and a corrupt one) in a folder, a random detector, and one
    uninterrupted labelling run of the folder."""
    tmp = tmp_path_factory.mktemp("autolabel")
    generate_ov_shapes(
        str(tmp / "ov_shapes"), seed=5, num_train=2, num_val=NUM_IMAGES, workers=1, progress=False
    )
    images = tmp / "photos"
    shutil.copytree(tmp / "ov_shapes" / "val", images / "shapes")
    (images / "corrupt.png").write_text("this is not an image")
    weights, opts = save_random_detector(tmp / "detector")
    world = {"images": images, "weights": weights, "opts": opts}
    output = tmp / "labels"
    code, log = _in_process(_autolabel_args(world, output, "--shard-size", "4"))
    assert code == 0, log[-4000:]
    world.update(output=output, log=log)
    return world


def _coco(output: Path) -> dict:
    return json.loads((output / "instances.json").read_text())


def test_labels_are_a_coco_dataset_with_rle_masks_caps_and_skips(world):
    data = _coco(world["output"])
    assert [c["name"] for c in data["categories"]] == CLASS_NAMES
    assert len(data["images"]) == NUM_IMAGES
    # file names below the deepest folder of the labelled images
    assert data["info"]["image_root"] == str(world["images"] / "shapes")
    assert [img["file_name"] for img in data["images"]] == [f"{i:06d}.png" for i in range(12)]
    assert data["annotations"], "the random detector labelled nothing: nothing to check"
    per_image_class: dict[tuple[int, int], int] = {}
    for ann in data["annotations"]:
        assert ann["score"] >= 0.3 and ann["iscrowd"] == 0
        key = (ann["image_id"], ann["category_id"])
        per_image_class[key] = per_image_class.get(key, 0) + 1
        rle = ann["segmentation"]
        assert rle["size"] == [128, 128] and isinstance(rle["counts"], str)
        assert mask_util.area(rle) == ann["area"] > 0
    assert max(per_image_class.values()) <= 2  # --max-per-class 2
    skipped = (world["output"] / "skipped.txt").read_text().splitlines()
    assert len(skipped) == 1 and skipped[0].startswith(str(world["images"] / "corrupt.png"))
    assert "not an image file" in skipped[0]
    # ovvision's COCO loader takes the file as it is
    root = data["info"]["image_root"]
    dicts = load_coco_json(str(world["output"] / "instances.json"), root)
    assert len(dicts) == NUM_IMAGES and all(os.path.isfile(d["file_name"]) for d in dicts)
    assert sum(len(d["annotations"]) for d in dicts) == len(data["annotations"])
    assert (world["output"] / "classes.txt").read_text().split() == CLASS_NAMES


@pytest.mark.slow
def test_label_a_folder_then_train_with_the_printed_command(world, tmp_path):
    hint = world["log"].split("Train on it: ")[1].splitlines()[0]
    assert hint.startswith("python tools/train_net.py --config-file CONFIG ")
    overrides = hint.split("--config-file CONFIG ")[1]
    tiny = ("SOLVER.MAX_ITER 2 SOLVER.IMS_PER_BATCH 2 SOLVER.WARMUP_ITERS 1 SOLVER.STEPS '(3,)' "
            "SOLVER.CHECKPOINT_PERIOD 2 DATALOADER.NUM_WORKERS 0")  # fmt: skip
    command = (
        f"{sys.executable} tools/train_net.py --config-file {CONFIG} {overrides} "
        f"MODEL.TEXT_ENCODER.PRETRAINED {world['opts'][1]} VOCABULARY.TEMPLATES identity {tiny} "
        f"OUTPUT_DIR {tmp_path / 'run'}"
    )
    proc = subprocess.run(
        ["bash", "-c", command], cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    log = proc.stdout + proc.stderr
    assert f"Loaded {NUM_IMAGES} images from {world['output'] / 'instances.json'}" in log
    assert (tmp_path / "run" / "model_final.pth").is_file()
    losses = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert losses and all(np.isfinite(m["total_loss"]) for m in losses if "total_loss" in m)


@pytest.mark.slow
def test_killed_halfway_then_rerun_gives_the_identical_result(world, tmp_path):
    output = tmp_path / "labels"
    shards = output / "shards"
    proc = subprocess.Popen(
        [sys.executable, *_autolabel_args(world, output, "--shard-size", "1")],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.time() + 600
    while len(list(shards.glob("*.jsonl"))) < (NUM_IMAGES + 1) // 2 and proc.poll() is None:
        assert time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    rows = read_shards(str(shards))
    assert 0 < len(rows) < NUM_IMAGES + 1, "the kill did not come halfway"
    assert not (output / "instances.json").exists()

    code, log = _in_process(_autolabel_args(world, output, "--shard-size", "1"))
    assert code == 0, log[-4000:]
    assert f"{len(rows)} already in" in log
    keys = [row["key"] for row in read_shards(str(shards))]
    assert len(keys) == len(set(keys)) == NUM_IMAGES + 1  # nothing lost, nothing twice
    for name in ("instances.json", "skipped.txt", "classes.txt"):
        assert (output / name).read_bytes() == (world["output"] / name).read_bytes(), name


def test_other_settings_are_refused_and_bad_arguments_are_one_line(world, tmp_path):
    code, log = _in_process(_autolabel_args(world, world["output"], "--max-per-class", "5"))
    assert code == 2 and "max_per_class=2, this run asks max_per_class=5" in log
    assert "Traceback" not in log
    missing = str(tmp_path / "missing.pth")
    code, log = _in_process(
        [TOOL, "--config-file", str(CONFIG), "--weights", missing, "--input", "x",
         "--vocabulary", "a", "--output", str(tmp_path / "x")]
    )  # fmt: skip
    assert code == 2 and f"autolabel.py: error: --weights: file '{missing}'" in log
    code, log = _in_process(
        [TOOL, "--config-file", str(CONFIG), "--weights", str(world["weights"]), "--input",
         str(world["images"]), "--vocabulary", " , ", "--output", str(tmp_path / "y")]
    )  # fmt: skip
    assert code == 2 and "autolabel.py: error: --vocabulary: " in log
    code, log = _in_process(
        [TOOL, "--config-file", str(CONFIG), "--weights", str(world["weights"]), "--input",
         str(tmp_path / "nothing*.png"), "--vocabulary", "a", "--output", str(tmp_path / "z")]
    )  # fmt: skip
    assert code == 2 and "names no image" in log


def _settings(**changes) -> LabelSettings:
    return LabelSettings(get_cfg(), "/m.pth", ClassList(["a", "b|bee"]), **changes)


def test_job_file_guards_the_output_folder(tmp_path):
    shard_dir = open_job(str(tmp_path), _settings())
    assert open_job(str(tmp_path), _settings()) == shard_dir
    with pytest.raises(JobMismatchError, match="score_threshold=0.5, this run asks"):
        open_job(str(tmp_path), _settings(score_threshold=0.2))
    with pytest.raises(JobMismatchError, match="classes="):
        open_job(str(tmp_path), LabelSettings(get_cfg(), "/m.pth", ClassList(["a", "b"])))


def test_inputs_folder_glob_list_and_fsspec_urls(tmp_path, monkeypatch):
    for name in ("a/1.png", "a/b/2.jpg", "a/notes.md", "c/3.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (4, 3)).save(tmp_path / name) if name.endswith(("png", "jpg")) else (
            tmp_path / name
        ).write_text("x")
    (tmp_path / "list.txt").write_text("# a comment\nc/3.png\n\nmissing.png\n")
    monkeypatch.chdir(tmp_path)
    keys = list_images(["a", "c/*.png", "list.txt", "a/1.png"])
    expected = ["a/1.png", "a/b/2.jpg", "c/3.png", "missing.png"]
    assert keys == sorted(str(tmp_path / k) for k in expected)
    with pytest.raises(ImageReadError, match="missing.png"):
        load_image(keys[-1], None)

    memory = fsspec.filesystem("memory")
    buffer = Image.new("RGB", (5, 2), (9, 8, 7))
    with memory.open("/autolabel_test/x.png", "wb") as f:
        buffer.save(f, "PNG")
    memory.pipe("/autolabel_test/bad.png", b"not an image")
    urls = list_images(["memory://autolabel_test/"])
    assert urls == ["memory:///autolabel_test/bad.png", "memory:///autolabel_test/x.png"]
    assert load_image(urls[1], None)[0, 0].tolist() == [9, 8, 7]
    with pytest.raises(ImageReadError, match="memory:///autolabel_test/bad.png"):
        load_image(urls[0], None)


def _rows() -> list[dict]:
    det = [{"category": "b", "bbox": [1.5, 2.0, 3.0, 4.0], "score": 0.9, "area": 12.0}]
    return [
        {"key": "/d/z.png", "width": 8, "height": 6, "detections": json.dumps(det), "error": ""},
        {"key": "/d/s/a.png", "width": 4, "height": 4, "detections": "[]", "error": ""},
        {"key": "/d/bad.png", "width": 0, "height": 0, "detections": "[]", "error": "broken"},
    ]


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_shard_formats_hold_the_same_rows(tmp_path, suffix):
    write_shard(_rows(), str(tmp_path / f"s{suffix}"))
    assert read_shards(str(tmp_path)) == _rows()


def test_a_cut_jsonl_shard_keeps_its_whole_lines(tmp_path):
    write_shard(_rows(), str(tmp_path / "s.jsonl"))
    text = (tmp_path / "s.jsonl").read_text()
    (tmp_path / "s.jsonl").write_text(text[: len(text) - 20])
    assert read_shards(str(tmp_path)) == _rows()[:2]


def test_merge_is_independent_of_row_order_and_prefers_a_retried_skip():
    classes = ClassList(["a", "b"])
    first, skipped = to_coco(_rows(), classes)
    again, _ = to_coco(_rows()[::-1], classes)
    assert json.dumps(first) == json.dumps(again)
    assert [img["file_name"] for img in first["images"]] == ["s/a.png", "z.png"]
    assert first["info"]["image_root"] == "/d"
    assert first["annotations"] == [
        {"id": 1, "image_id": 2, "category_id": 2, "bbox": [1.5, 2.0, 3.0, 4.0], "area": 12.0,
         "iscrowd": 0, "score": 0.9}
    ]  # fmt: skip
    assert skipped == [("/d/bad.png", "broken")]
    retried = dict(_rows()[2], error="", width=3, height=3)
    dataset, skipped = to_coco([*_rows(), retried], classes)
    assert skipped == [] and len(dataset["images"]) == 3
    with pytest.raises(ValueError, match="category 'b', which is not in the vocabulary"):
        to_coco(_rows(), ClassList(["a"]))


def test_caps_keep_the_best_of_each_class_then_of_the_image():
    instances = Instances(
        (10, 10),
        pred_boxes=Boxes(torch.rand(6, 4)),
        scores=torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5, 0.1]),
        pred_classes=torch.tensor([0, 0, 0, 1, 1, 1]),
    )
    kept = cap_detections(instances, 0.2, max_per_class=2, max_per_image=0)
    assert kept.scores.tolist() == pytest.approx([0.9, 0.8, 0.6, 0.5])
    kept = cap_detections(instances, 0.2, max_per_class=2, max_per_image=3)
    assert kept.scores.tolist() == pytest.approx([0.9, 0.8, 0.6])
    assert len(cap_detections(instances, 0.95, 0, 0)) == 0


def _labeller_pids() -> set[int]:
    """Processes below this one whose command line is a Ray Data Labeller actor."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parent = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(parent, []).append(int(entry))
    found, stack = set(), [os.getpid()]
    while stack:
        for pid in children.get(stack.pop(), []):
            stack.append(pid)
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if b"Labeller" in f.read():
                        found.add(pid)
            except OSError:
                pass
    return found


@pytest.mark.slow
def test_ray_pool_survives_a_killed_worker_and_matches_one_process(world, tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    monkeypatch.chdir(ROOT)
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 2**20)
    output = tmp_path / "labels"
    shards = output / "shards"
    killed: dict[str, object] = {}

    def kill_one_worker_mid_run() -> None:
        # Kill a Labeller actor once it has lived 1 s (its model loaded, or nearly), whether or
        # not a shard is written yet: when Ray writes the shards (after each batch or only at
        # the end) depends on the machine's load, so waiting for one could wait past the run.
        first_seen: dict[int, float] = {}
        while "done" not in killed:
            now = time.monotonic()
            for pid in _labeller_pids():
                first_seen.setdefault(pid, now)
            ready = [pid for pid, t in first_seen.items() if now - t >= 1.0]
            if "pid" not in killed and ready:
                written = len(list(shards.glob("*.parquet"))) if shards.is_dir() else 0
                pid = min(ready)
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:  # it ended meanwhile: try the next one
                    first_seen.pop(pid)
                    continue
                killed.update(pid=pid, shards_before=written)
            time.sleep(0.05)

    watcher = threading.Thread(target=kill_one_worker_mid_run)
    watcher.start()
    try:
        ray_args = ("--ray", "--ray-batch-size", "1", "--format", "parquet")
        code, log = _in_process(_autolabel_args(world, output, *ray_args))
        assert code == 0, log[-4000:]
    finally:
        killed["done"] = True
        watcher.join()
        ray.shutdown()
    assert "pid" in killed, "no Labeller worker was found to kill"
    final_shards = len(list(shards.glob("*.parquet")))
    assert final_shards > killed["shards_before"], "the worker was killed after the last shard"
    assert killed["pid"] not in _labeller_pids(), "the killed worker lives on"
    keys = [row["key"] for row in read_shards(str(shards))]
    assert len(keys) == len(set(keys)) == NUM_IMAGES + 1  # nothing lost, nothing twice
    # Parquet shards from Ray merge to the bytes that one process's JSON-lines shards give
    for name in ("instances.json", "skipped.txt"):
        assert (output / name).read_bytes() == (world["output"] / name).read_bytes(), name
