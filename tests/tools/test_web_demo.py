"""tools/web_demo.py: input caps, the vocabulary cache, the mode hook, and the page in a browser.

The detector is built by the tests (random weights, a random tiny CLIP): detections need not be
good. The browser test is deterministic all the same: its vocabulary holds only the classes of
the uploaded image and the score threshold is 0 (model and slider), so every detection the model
makes, and it makes some (its top proposals always score above 0), names a class in the image.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ovvision.checkpoint import Checkpointer
from ovvision.config import get_cfg
from ovvision.engine.predictor import Predictor
from ovvision.modeling import build_model
from ovvision.structures import Vocabulary
from ovvision.webdemo import (
    DemoInputError,
    DemoLimits,
    DemoResult,
    DetectMode,
    GroundMode,
    build_demo_mode,
    parse_vocabulary,
    read_upload,
)
from ovvision.webdemo.app import WebDemo

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "ov_shapes" / "ovrcnn_clip_frozen.yaml"
GROUNDER_CONFIG = ROOT / "configs" / "ov_shapes" / "ovgrounder.yaml"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


def _opts(root: Path) -> list[str]:
    return [
        "MODEL.TEXT_ENCODER.PRETRAINED", "", "VOCABULARY.CACHE_DIR", str(root / "cache"),
        "VOCABULARY.ANNOTATION_JSON", "", "DATASETS.TRAIN", "()", "DATASETS.TEST", "()",
        "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0", "MODEL.CLIP_SCORE_FUSION.ENABLED", "False",
        "MODEL.CLIP_BOX_EMBEDDER.SOURCE", "", "MODEL.RPN.POST_NMS_TOPK_TEST", "20",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def tiny_detector(tmp_path_factory) -> dict:
    """Two OV-Shapes val images and a randomly initialised detector saved as a checkpoint."""
    root = tmp_path_factory.mktemp("web_demo")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "make_ov_shapes.py"), "--output",
         str(root / "ov_shapes"), "--num-train", "1", "--num-val", "2", "--seed", "3",
         "--no-progress", "--workers", "1"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    cfg = get_cfg()
    cfg.merge_from_file(str(CONFIG))
    cfg.merge_from_list(_opts(root))
    torch.manual_seed(0)
    Checkpointer(build_model(cfg), str(root / "run")).save("model_final")
    val_json = root / "ov_shapes" / "annotations" / "instances_val.json"
    gt = json.loads(val_json.read_text())
    names = {c["id"]: c["name"] for c in gt["categories"]}
    image = gt["images"][0]
    classes = sorted({names[a["category_id"]] for a in gt["annotations"]
                      if a["image_id"] == image["id"]})  # fmt: skip
    return {
        "root": root,
        "weights": root / "run" / "model_final.pth",
        "val_json": val_json,
        "image": root / "ov_shapes" / "val" / image["file_name"],
        "classes": classes,
    }


@pytest.fixture(scope="module")
def detect_mode(tiny_detector) -> DetectMode:
    root = tiny_detector["root"]
    return DetectMode(Predictor(str(CONFIG), str(tiny_detector["weights"]), opts=_opts(root)))


def test_uploads_and_vocabularies_over_the_caps_get_messages(tmp_path):
    limits = DemoLimits(max_upload_bytes=2000, max_image_pixels=32 * 32, max_vocabulary_classes=3,
                        max_vocabulary_chars=40)  # fmt: skip
    fake = tmp_path / "notes.png"
    fake.write_text("this is a text file, not a picture")
    with pytest.raises(DemoInputError, match=r"notes\.png is not an image") as info:
        read_upload(fake, limits)
    assert str(tmp_path) not in str(info.value)  # no server path in the message
    Image.new("RGB", (40, 40), "white").save(tmp_path / "big.png")
    with pytest.raises(DemoInputError, match=r"big\.png is too large.*1,024 pixels"):
        read_upload(tmp_path / "big.png", limits)
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (30, 30, 3), np.uint8)).save(
        tmp_path / "heavy.png"
    )
    with pytest.raises(DemoInputError, match=r"heavy\.png is .* MiB"):
        read_upload(tmp_path / "heavy.png", limits)
    with pytest.raises(DemoInputError, match="Upload an image"):
        read_upload(None, limits)
    Image.new("RGB", (20, 20), "white").save(tmp_path / "ok.png")
    assert read_upload(tmp_path / "ok.png", limits).shape == (20, 20, 3)

    with pytest.raises(DemoInputError, match="at least one class"):
        parse_vocabulary(" , ", limits)
    with pytest.raises(DemoInputError, match="4 classes; at most 3"):
        parse_vocabulary("a, b, c, d", limits)
    with pytest.raises(DemoInputError, match="characters"):
        parse_vocabulary("x" * 41, limits)
    # a vocabulary that is a server path is a class name, never a file to read
    names_file = tmp_path / "v.txt"
    names_file.write_text("secret\n")
    assert parse_vocabulary(str(names_file), DemoLimits()).names == [str(names_file)]
    assert parse_vocabulary("moon|crescent, star", limits).class_prompts == [
        ["moon", "crescent"], ["star"]
    ]  # fmt: skip


def test_detect_mode_embeds_each_vocabulary_once(tiny_detector, detect_mode):
    model = detect_mode.predictor.model
    embedder = model.name_embedder
    embedded = []

    def counting_embedder(vocabulary, device):
        if not isinstance(vocabulary, Vocabulary):
            embedded.append(vocabulary)
        return embedder(vocabulary, device)

    model.name_embedder = counting_embedder
    try:
        image = np.array(Image.open(tiny_detector["image"]).convert("RGB"))
        classes = tiny_detector["classes"]
        first = detect_mode(image, ", ".join(classes), 0.0)
        again = detect_mode(image, " , ".join(classes) + ",", 0.0)  # same classes, other spacing
        assert len(embedded) == 1 and detect_mode.num_embedded == 1
        detect_mode(image, "star", 0.0)
        detect_mode(image, ", ".join(classes), 0.0)
        assert len(embedded) == 2
    finally:
        model.name_embedder = embedder
    assert first.rows == again.rows and first.rows
    assert {row[0] for row in first.rows} <= set(classes)
    assert [round(r["score"], 4) for r in first.coco] == [row[1] for row in first.rows]
    assert {r["category_name"] for r in first.coco} <= set(classes)
    assert first.image.shape == (512, 512, 3)  # drawn enlarged from 128x128
    assert detect_mode(image, "star", 1.01).rows == []


class _EchoMode:
    """A stand-in for a grounding or naming mode: the hook needs only the protocol."""

    name = "echo"
    text_label = "Anything"

    def __call__(self, image: np.ndarray, text: str, threshold: float) -> DemoResult:
        return DemoResult(image, [[text, 1.0, 0, 0, 1, 1]], [])


def test_web_demo_runs_modes_and_reports_bad_inputs(tiny_detector, detect_mode, tmp_path):
    demo = WebDemo({"detect": detect_mode, "echo": _EchoMode()}, DemoLimits(), tmp_path / "work")
    image = str(tiny_detector["image"])
    drawn, rows, download, status = demo.run(image, "hello", 0.0, "echo")
    assert rows == [["hello", 1.0, 0, 0, 1, 1]] and status.startswith("1 detections")
    assert Path(download).parent == tmp_path / "work" / "downloads"
    drawn, rows, download, status = demo.run(
        image, ", ".join(tiny_detector["classes"]), 0, "detect"
    )
    assert json.loads(Path(download).read_text())[0]["category_name"] == rows[0][0]
    fake = tmp_path / "fake.png"
    fake.write_text("not an image")
    refused = demo.run(str(fake), "star", 0.5, "detect")
    assert refused[:3] == (None, [], None)
    assert refused[3].startswith("**Error:** fake.png is not an image this demo can read")
    assert demo.run(image, "star", 0.5, "ground")[3].startswith("**Error:** Unknown mode 'ground'")
    with pytest.raises(KeyError, match=r"no web-demo mode 'name'.*'detect', 'ground'"):
        build_demo_mode("name", str(CONFIG), str(tiny_detector["weights"]))


def test_ground_mode_boxes_an_expression(tiny_detector, detect_mode, tmp_path):
    """A randomly initialised OVGrounder: one box for the expression, labelled with it."""
    root = tiny_detector["root"]
    opts = [
        *_opts(root),
        "MODEL.GROUNDER.DETECTOR_WEIGHTS",
        "",
        "MODEL.CLIP_BOX_EMBEDDER.SOURCE",
        "crops",
    ]
    cfg = get_cfg()
    cfg.merge_from_file(str(GROUNDER_CONFIG))
    cfg.merge_from_list(opts)
    torch.manual_seed(0)
    Checkpointer(build_model(cfg), str(tmp_path)).save("grounder")
    mode = build_demo_mode("ground", str(GROUNDER_CONFIG), str(tmp_path / "grounder.pth"), opts)
    image = np.array(Image.open(tiny_detector["image"]).convert("RGB"))
    result = mode(image, "  the  red star ", 0.0)
    assert [row[0] for row in result.rows] == ["the red star"]
    assert result.coco[0]["category_name"] == "the red star"
    assert result.image.shape == (512, 512, 3)
    assert mode(image, "the red star", 1.01).rows == []
    with pytest.raises(DemoInputError, match="Type the expression"):
        mode(image, "  ", 0.0)
    with pytest.raises(DemoInputError, match="characters"):
        mode(image, "star " * 500, 0.0)
    with pytest.raises(ValueError, match="does not ground expressions"):
        GroundMode(detect_mode.predictor)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


@pytest.mark.slow
def test_browser_uploads_an_image_and_a_fake_one(tiny_detector, tmp_path):
    from playwright.sync_api import sync_playwright

    root, port = tiny_detector["root"], _free_port()
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 (closed below)
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "tools" / "web_demo.py"), "--config-file", str(CONFIG),
         "--weights", str(tiny_detector["weights"]), "--port", str(port), "--threshold", "0",
         "--work-dir", str(tmp_path / "work"), "--examples-json", str(tiny_detector["val_json"]),
         "--opts", *_opts(root)],
        cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            try:
                if _status(url) == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the demo server did not answer in 120 s"
            time.sleep(0.5)
        # files outside the demo's folder are not served
        for path in (ROOT / "README.md", Path("/etc/passwd")):
            assert _status(f"{url}gradio_api/file={path}") in (403, 404)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            requests: list[str] = []
            page.on("request", lambda request: requests.append(request.url))
            page.goto(url)
            page.set_input_files("#upload input[type=file]", str(tiny_detector["image"]))
            page.fill("#vocabulary textarea", ", ".join(tiny_detector["classes"]))
            page.click("#run")
            page.wait_for_selector("#result img", timeout=60_000)
            page.wait_for_function(
                "document.querySelector('#status').innerText.includes('detections')"
            )
            page.screenshot(path=str(tmp_path / "web_demo.png"), full_page=True)
            src = page.get_attribute("#result img", "src")
            drawn = Image.open(io.BytesIO(page.request.get(src).body())).convert("RGB")
            source = Image.open(tiny_detector["image"]).convert("RGB").resize(drawn.size)
            assert not np.array_equal(np.asarray(drawn), np.asarray(source))
            table = page.inner_text("#detections")
            assert any(name in table.split() for name in tiny_detector["classes"]), table

            fake = tmp_path / "notes.png"
            fake.write_text("a text file renamed .png")
            page.click("#upload button[aria-label='Clear']")
            page.set_input_files("#upload input[type=file]", str(fake))
            page.click("#run")
            page.wait_for_function("document.querySelector('#status').innerText.includes('Error')")
            assert "notes.png is not an image" in page.inner_text("#status")
            browser.close()
        # the page fetched nothing from the web (fonts, scripts, analytics)
        elsewhere = [u for u in requests if not u.startswith((url, "data:", "blob:"))]
        assert requests and not elsewhere, elsewhere
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    assert (tmp_path / "web_demo.png").is_file()
