#!/usr/bin/env python
"""Run a trained detector on your images with your own class names.

    python tools/demo.py --config-file configs/ov_shapes/ovrcnn_clip_rn_frozen.yaml \\
        --weights output/quickstart/ovrcnn/model_final.pth --input photos/ "more/*.png" \\
        --output out/demo --vocabulary custom --custom-vocabulary "star,heart,moon|crescent"

Writes one annotated image per input and ``predictions.json`` (COCO results format, boxes in
XYWH, plus ``category_name`` and ``file_name``). Unreadable inputs are reported and skipped.
"""

from __future__ import annotations

import argparse
import glob
import json
import logging
import os
import sys

import numpy as np
import torch
from PIL import Image

from ovvision.config import ConfigError
from ovvision.data import ImageReadError, read_image
from ovvision.engine.predictor import Predictor
from ovvision.modeling.text import BUILTIN_VOCABULARIES, vocabulary_classes
from ovvision.utils.file_io import atomic_write
from ovvision.utils.logger import setup_logger
from ovvision.utils.visualizer import draw_instances

logger = logging.getLogger("ovvision.demo")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--config-file", required=True, metavar="FILE")
    p.add_argument("--weights", required=True, help="model checkpoint (.pth)")
    p.add_argument("--input", nargs="+", required=True, help="image files, folders or globs")
    p.add_argument("--output", required=True, help="folder for annotated images")
    p.add_argument("--vocabulary", default="custom", choices=BUILTIN_VOCABULARIES)
    p.add_argument("--custom-vocabulary", default="", help='e.g. "cat,dog|puppy,teapot"')
    p.add_argument(
        "--vocabulary-json", default="", help="annotation json with the lvis/ov_shapes classes"
    )
    p.add_argument("--confidence-threshold", type=float, default=0.5)
    p.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="KEY VALUE overrides")
    return p.parse_args(argv)


def expand_inputs(patterns: list[str]) -> list[str]:
    """Files, the images inside folders, and glob matches, in a stable order."""
    paths: list[str] = []
    for pattern in patterns:
        if os.path.isdir(pattern):
            paths += sorted(
                os.path.join(pattern, f)
                for f in os.listdir(pattern)
                if f.lower().endswith(IMAGE_EXTENSIONS)
            )
        elif any(c in pattern for c in "*?["):
            paths += sorted(glob.glob(pattern, recursive=True))
        else:
            paths.append(pattern)
    return list(dict.fromkeys(paths))


def _fail(message: str) -> None:
    print(f"demo.py: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logger(None)
    try:
        classes = vocabulary_classes(
            args.vocabulary,
            custom=args.custom_vocabulary,
            annotation_json=args.vocabulary_json,
        )
    except (ValueError, OSError) as e:
        _fail(f"vocabulary: {e}")
    if not classes.names:
        _fail("the vocabulary is empty")
    if not os.path.isfile(args.weights):
        _fail(f"weights file not found: {args.weights}")
    try:
        predictor = Predictor(args.config_file, args.weights, opts=args.opts)
    except (KeyError, ValueError, ConfigError, RuntimeError) as e:
        _fail(f"weights {args.weights} do not match config {args.config_file}: {e}")
    predictor.set_vocabulary(classes.names)
    names = predictor.class_names

    paths = expand_inputs(args.input)
    os.makedirs(args.output, exist_ok=True)
    results, failed = [], []
    for image_id, path in enumerate(paths):
        try:
            image = read_image(path, "RGB", predictor.max_image_pixels)
        except (ImageReadError, OSError) as e:
            logger.error("Skipping %s: %s", path, e)
            failed.append(path)
            continue
        instances = predictor(image)
        keep = instances.scores >= args.confidence_threshold
        instances = instances[keep]
        results += _coco_results(instances, names, path, image_id)
        _save_drawing(image, instances, names, os.path.join(args.output, os.path.basename(path)))
        logger.info("%s: %d detections", path, len(instances))
    atomic_write(
        os.path.join(args.output, "predictions.json"),
        lambda f: f.write(json.dumps(results, indent=1, ensure_ascii=False).encode()),
    )
    if failed:
        logger.error("%d of %d inputs could not be read: %s", len(failed), len(paths), failed)
    if len(failed) == len(paths):
        _fail(f"none of the {len(paths)} inputs could be read" if paths else "no input files")
    return 0


def _coco_results(instances, names: list[str], path: str, image_id: int) -> list[dict]:
    boxes = instances.pred_boxes.tensor.tolist()
    out = []
    for (x1, y1, x2, y2), score, cls in zip(
        boxes, instances.scores.tolist(), instances.pred_classes.tolist()
    ):
        out.append(
            {
                "image_id": image_id,
                "file_name": path,
                "category_id": int(cls),
                "category_name": names[cls],
                "bbox": [round(v, 2) for v in (x1, y1, x2 - x1, y2 - y1)],
                "score": round(float(score), 5),
            }
        )
    return out


def _save_drawing(image: np.ndarray, instances, names: list[str], path: str) -> None:
    labels = [
        f"{names[c]} {s:.2f}"
        for c, s in zip(instances.pred_classes.tolist(), instances.scores.tolist())
    ]
    masks = instances.pred_masks if instances.has("pred_masks") else None
    drawn = draw_instances(
        torch.from_numpy(image).permute(2, 0, 1),
        instances.pred_boxes.tensor,
        labels,
        instances.pred_classes.tolist(),
        masks,
        num_classes=len(names),
    )
    stem, _ = os.path.splitext(path)
    Image.fromarray(drawn.permute(1, 2, 0).numpy()).save(stem + ".png")


if __name__ == "__main__":
    sys.exit(main())
