#!/usr/bin/env python
"""Try a trained detector in a browser: upload an image, type class names, see the detections.

    python tools/web_demo.py --config-file configs/ov_shapes/ovrcnn_clip_rn_frozen.yaml \\
        --weights output/quickstart/ovrcnn/model_final.pth        # then open http://127.0.0.1:7860

``make web-demo`` runs this on the quickstart's detector. The page offers the OV-Shapes val
images as examples (when the dataset is there), a vocabulary box (``star, heart, moon|crescent``),
a confidence slider and, when their models are given with ``--mode ground|name CONFIG WEIGHTS``
and a package registers them, the grounding and naming modes. Results: the image with boxes,
masks and labels, a table, and the detections as COCO json to download.

Safe by default: it listens on 127.0.0.1 only (``--host 0.0.0.0`` listens everywhere, with a
warning), caps uploads (``--max-upload-mb``), pixels (``--max-pixels``) and vocabularies
(``--max-classes``), refuses non-images with a message, serves only its own folder
(``--work-dir``), sends no analytics and makes no share link.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before anything imports gradio

from ovvision.engine.config_paths import require_file  # noqa: E402
from ovvision.engine.defaults import run_tool  # noqa: E402
from ovvision.utils.logger import setup_logger  # noqa: E402
from ovvision.webdemo import DemoLimits, build_demo_mode  # noqa: E402
from ovvision.webdemo.app import LOOPBACK, WebDemo  # noqa: E402

logger = logging.getLogger("ovvision.web_demo")
PROG = "web_demo.py"
NUM_EXAMPLES = 4


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--config-file", required=True, metavar="FILE", help="the detector's config")
    p.add_argument("--weights", required=True, help="the detector's checkpoint (.pth)")
    p.add_argument(
        "--mode",
        nargs=3,
        action="append",
        default=[],
        metavar=("NAME", "CONFIG", "WEIGHTS"),
        help="another mode (ground, name) with its model, if this install registers it",
    )
    p.add_argument("--host", default=LOOPBACK, help="address to listen on (default: loopback)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--work-dir", default="", help="the demo's own folder (default: a new temp one)")
    p.add_argument(
        "--examples-json",
        default="datasets/ov_shapes/annotations/instances_val.json",
        help="COCO json whose first images (in the folder beside annotations/) become examples",
    )
    p.add_argument("--threshold", type=float, default=0.5, help="initial confidence threshold")
    p.add_argument("--max-upload-mb", type=float, default=10.0)
    p.add_argument("--max-pixels", type=int, default=4096 * 4096)
    p.add_argument("--max-classes", type=int, default=100)
    p.add_argument(
        "--opts", nargs=argparse.REMAINDER, default=[], help="KEY VALUE overrides of every mode"
    )
    return p.parse_args(argv)


def example_images(annotation_json: str, num: int) -> list[tuple[str, str]]:
    """The first ``num`` images of an OV-Shapes-style json, each with its classes as vocabulary;
    none (with a log line) when the json or its images are missing."""
    if not annotation_json or not os.path.isfile(annotation_json):
        logger.info("No examples: %s does not exist", annotation_json)
        return []
    with open(annotation_json, encoding="utf-8") as f:
        data = json.load(f)
    names = {c["id"]: c["name"] for c in data.get("categories", [])}
    split = os.path.splitext(os.path.basename(annotation_json))[0].split("_")[-1]
    folder = os.path.join(os.path.dirname(os.path.dirname(annotation_json)), split)
    examples = []
    for image in data.get("images", [])[:num]:
        path = os.path.join(folder, image["file_name"])
        classes = sorted(
            {names[a["category_id"]] for a in data["annotations"] if a["image_id"] == image["id"]}
        )
        if os.path.isfile(path) and classes:
            examples.append((path, ", ".join(classes)))
    return examples


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logger(None)
    require_file(args.config_file, "--config-file")
    require_file(args.weights, "--weights")
    limits = DemoLimits(
        max_upload_bytes=int(args.max_upload_mb * 2**20),
        max_image_pixels=args.max_pixels,
        max_vocabulary_classes=args.max_classes,
    )
    modes = {"detect": build_demo_mode("detect", args.config_file, args.weights, args.opts, limits)}
    for name, config, weights in args.mode:
        require_file(config, f"--mode {name} CONFIG")
        require_file(weights, f"--mode {name} WEIGHTS")
        modes[name] = build_demo_mode(name, config, weights, args.opts, limits)
    work_dir = args.work_dir or tempfile.mkdtemp(prefix="ovvision_web_demo_")
    examples = example_images(args.examples_json, NUM_EXAMPLES)
    demo = WebDemo(modes, limits, work_dir, examples, threshold=args.threshold)
    print(f"ovvision web demo on http://{args.host}:{args.port} (folder {work_dir})", flush=True)
    demo.launch(args.host, args.port)
    return 0


if __name__ == "__main__":
    run_tool(main, prog=PROG, user_errors=(KeyError, ValueError))
