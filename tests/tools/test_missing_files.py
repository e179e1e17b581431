"""Every tool turns a missing file into one line ``tool: error: KEY: file '...' does not exist``,
exit code 2 and no traceback, naming the config key or argument that named the file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DETECTOR = ROOT / "configs" / "ov_shapes" / "ovrcnn_clip_frozen.yaml"


@pytest.fixture
def user_folder(tmp_path) -> Path:
    """A folder with a config whose text encoder weights are a relative path that is missing
    (its base config's ov_shapes json is not set), an (empty) weights file and a results file."""
    (tmp_path / "detector.yaml").write_text(
        f'_BASE_: "{DETECTOR}"\nMODEL:\n  TEXT_ENCODER:\n    PRETRAINED: "weights/clip.pt"\n'
        'VOCABULARY:\n  ANNOTATION_JSON: ""\n'
    )
    (tmp_path / "model.pth").write_bytes(b"")
    (tmp_path / "dets.json").write_text("[]")
    return tmp_path


def _missing(key: str, path: str, cwd: Path) -> str:
    return f"{key}: file '{path}' (relative to the current folder {cwd}) does not exist"


CASES = {
    "demo text encoder": (
        ["demo.py", "--config-file", "detector.yaml", "--weights", "model.pth", "--input", ".",
         "--output", "out", "--custom-vocabulary", "star"],
        ("MODEL.TEXT_ENCODER.PRETRAINED", "weights/clip.pt"),
    ),
    "demo weights": (
        ["demo.py", "--config-file", "detector.yaml", "--weights", "nope.pth", "--input", ".",
         "--output", "out", "--custom-vocabulary", "star"],
        ("--weights", "nope.pth"),
    ),
    "train_net text encoder": (
        ["train_net.py", "--config-file", "detector.yaml", "OUTPUT_DIR", "out"],
        ("MODEL.TEXT_ENCODER.PRETRAINED", "weights/clip.pt"),
    ),
    "train_net registered json": (
        ["train_net.py", "--config-file", "detector.yaml", "OUTPUT_DIR", "out",
         "MODEL.TEXT_ENCODER.PRETRAINED", "",
         "DATASETS.REGISTER", "('name=my_train,json=ann/train.json,images=.',)",
         "DATASETS.TRAIN", "('my_train',)", "DATASETS.TEST", "()"],
        ("DATASETS.REGISTER[0] ('name=my_train,json=ann/train.json,images=.') key 'json'",
         "{cwd}/ann/train.json"),
    ),
    "train_net config file": (
        ["train_net.py", "--config-file", "other.yaml"],
        ("--config-file", "other.yaml"),
    ),
    "closed_vocab_control embeddings": (
        ["closed_vocab_control.py", "--config-file", "detector.yaml", "--weights", "model.pth",
         "--dataset", "ov_shapes_val", "--output", "c.json", "MODEL.TEXT_ENCODER.PRETRAINED", "",
         "VOCABULARY.EMBEDDINGS", "emb/coco.npy"],
        ("VOCABULARY.EMBEDDINGS", "emb/coco.npy"),
    ),
    "proposal_recall weights": (
        ["proposal_recall.py", "--config-file", "detector.yaml", "--weights", "w/final.pth",
         "--dataset", "ov_shapes_val"],
        ("--weights", "w/final.pth"),
    ),
    "evaluate_results results": (
        ["evaluate_results.py", "--gt-json", "dets.json", "--results", "runs/dets.json"],
        ("--results", "runs/dets.json"),
    ),
    "dump_text_embeddings weights": (
        ["dump_text_embeddings.py", "--vocabulary", "coco", "--model", "OVShapes-CLIP-Tiny",
         "--pretrained", "weights/clip.pt", "--output", "e.npy"],
        ("--pretrained", "weights/clip.pt"),
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_missing_file_is_one_line_exit_2_no_traceback(case, user_folder):
    args, (key, path) = CASES[case]
    tool = args[0]
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / tool), *args[1:]],
        cwd=user_folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    path = path.format(cwd=user_folder)
    if path.startswith("/"):
        expected = f"{key}: file '{path}' does not exist"
    else:
        expected = _missing(key, path, user_folder)
    assert lines[0] == f"{tool}: error: {expected}"


def test_unregistered_dataset_is_named(user_folder):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "train_net.py"), "--config-file", "detector.yaml",
         "MODEL.TEXT_ENCODER.PRETRAINED", "", "DATASETS.TRAIN", "('my_trian',)"],
        cwd=user_folder, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.stderr.startswith(
        "train_net.py: error: DATASETS.TRAIN: dataset 'my_trian' is not registered (declare your "
        "own in DATASETS.REGISTER; registered: "
    )
