"""docs/own_data.md, run as written: train, evaluate and run the demo on COCO-format files of a
user's own folder (OV-Shapes copied into that layout), with datasets declared in DATASETS.REGISTER.

The document's settings block (``export OVVISION=... CLIP_WEIGHTS=...; cd shapes_data``) is the
one part replaced: the test sets those variables itself. Each ``bash`` block then runs verbatim;
a ``python`` shell function adds only test-size overrides (2 iterations, no loader workers) to
``train_net.py`` commands.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import open_clip
import pytest
import torch

from ovvision.config import load_config
from ovvision.data.datasets.ov_shapes import DEFAULT_NOVEL_CLASSES, generate_ov_shapes
from ovvision.modeling.text import register_project_model_configs

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "own_data.md"
CLIP_NAME = "OVShapes-CLIP-RN-Tiny"  # the text encoder of configs/ov_shapes/ovrcnn_clip_rn_frozen
CLIP_WEIGHTS = "clip/model_final.pt"  # relative to the data folder, as a user may write it

PRELUDE = """
set -euo pipefail
TINY=(SOLVER.MAX_ITER 2 SOLVER.IMS_PER_BATCH 2 SOLVER.CHECKPOINT_PERIOD 2 SOLVER.WARMUP_ITERS 1
      SOLVER.STEPS "(3,)" DATALOADER.NUM_WORKERS 0 SEED 1)
python() {
  if [[ "$1" == */tools/train_net.py ]]; then "$TEST_PYTHON" "$@" "${TINY[@]}";
  else "$TEST_PYTHON" "$@"; fi
}
"""


def doc_blocks() -> list[tuple[str, str]]:
    """The fenced code blocks of docs/own_data.md as (language, text)."""
    return re.findall(r"^```(\w*)\n(.*?)^```", DOC.read_text(), flags=re.S | re.M)


def _user_json(source: Path, destination: Path, keep_novel: bool) -> list[str]:
    """A user's COCO json from an OV-Shapes one: no "split" fields, no novel boxes if asked."""
    data = json.loads(source.read_text())
    novel_ids = {c["id"] for c in data["categories"] if c["name"] in DEFAULT_NOVEL_CLASSES}
    data["categories"] = [{k: v for k, v in c.items() if k != "split"} for c in data["categories"]]
    data.pop("novel_categories", None)
    if not keep_novel:
        data["annotations"] = [a for a in data["annotations"] if a["category_id"] not in novel_ids]
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.write_text(json.dumps(data))
    return [c["name"] for c in data["categories"]]


@pytest.fixture(scope="module")
def user_run(tmp_path_factory) -> Path:
    """Runs the document's commands in a user-style data folder; returns that folder."""
    tmp = tmp_path_factory.mktemp("own_data")
    generate_ov_shapes(
        str(tmp / "ov_shapes"), seed=3, num_train=24, num_val=6, workers=1, progress=False
    )
    data = tmp / "shapes_data"
    ann = tmp / "ov_shapes" / "annotations"
    # novel boxes left in the training json: the novel= split keeps them out of training
    _user_json(ann / "instances_train_all.json", data / "annotations/train.json", True)
    names = _user_json(ann / "instances_val.json", data / "annotations/val.json", True)
    (data / "classes.txt").write_text("\n".join(names) + "\n")
    for split in ("train", "val"):
        shutil.copytree(tmp / "ov_shapes" / split, data / "images" / split)
    register_project_model_configs()
    torch.manual_seed(0)
    (data / "clip").mkdir()
    torch.save(open_clip.create_model(CLIP_NAME).state_dict(), data / CLIP_WEIGHTS)

    blocks = doc_blocks()
    settings = [text for lang, text in blocks if lang == "sh"]
    assert len(settings) == 1, "docs/own_data.md has one settings block (```sh)"
    assert re.findall(r"^export (\w+)=", settings[0], flags=re.M) == ["OVVISION", "CLIP_WEIGHTS"]
    assert settings[0].rstrip().endswith("cd shapes_data")
    env = {
        **os.environ,
        "OVVISION": str(ROOT),
        "CLIP_WEIGHTS": CLIP_WEIGHTS,
        "OVVISION_CACHE": str(tmp / "cache"),
        "TEST_PYTHON": sys.executable,
    }
    commands = [text for lang, text in blocks if lang == "bash"]
    assert len(commands) == 4  # config, train, evaluate, demo
    for command in commands:
        proc = subprocess.run(
            ["bash", "-c", PRELUDE + command],
            cwd=data, env=env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        assert proc.returncode == 0, f"{command}\n{proc.stderr[-4000:]}"
    return data


@pytest.mark.slow
def test_own_data_commands_train_evaluate_and_demo(user_run):
    out = user_run / "output" / "my_detector"
    assert (out / "model_final.pth").is_file()
    log = (out / "log.txt").read_text()
    assert re.search(r"Dropped \d+ annotations of novel classes \['arrow', .*'star'\]", log)
    trained = json.loads((out / "eval_results.json").read_text())
    # The novel split of the DATASETS.REGISTER entry reached the evaluator.
    for task in ("bbox", "segm"):
        for key in ("AP50", "AP50-base", "AP50-novel"):
            assert 0.0 <= trained[task][key] <= 100.0, (task, key)
    # Registering on the command line evaluates the same data as the YAML entries did.
    assert json.loads((out / "eval" / "eval_results.json").read_text()) == trained

    saved = load_config(str(out / "config.yaml"))
    paths = {"clip": saved.MODEL.TEXT_ENCODER.PRETRAINED, "classes": saved.VOCABULARY.CUSTOM}
    assert paths == {"clip": str(user_run / CLIP_WEIGHTS), "classes": str(user_run / "classes.txt")}
    first_entry = saved.DATASETS.REGISTER[0]
    assert first_entry == (
        f"name=shapes_train,json={user_run}/annotations/train.json,"
        f"images={user_run}/images/train,novel=arrow|crescent|heart|hourglass|house|star"
    )

    images = json.loads((out / "demo" / "images.json").read_text())
    val_images = sorted(p.name for p in (user_run / "images" / "val").iterdir())
    assert [Path(i["file_name"]).name for i in images] == val_images
    for image in images:
        assert image["output"] == f"output/my_detector/demo/{Path(image['file_name']).name}.png"
        assert (user_run / image["output"]).is_file()
    predictions = json.loads((out / "demo" / "predictions.json").read_text())
    assert {p["category_name"] for p in predictions} <= {"star", "heart", "circle", "square"}
