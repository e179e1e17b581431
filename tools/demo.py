#!/usr/bin/env python
"""Run a trained detector on your images with your own class names.

    python tools/demo.py --config-file configs/ov_shapes/ovrcnn_clip_rn_frozen.yaml \\
        --weights output/quickstart/ovrcnn/model_final.pth --input photos/ "more/*.png" \\
        --output out/demo --vocabulary custom --custom-vocabulary "star,heart,moon|crescent"

Writes into --output:
  <input>.png        one annotated image per input: the input's path relative to the folder
                     the inputs share, with ".png" appended, so no two inputs collide:
                     --input a/1.jpg b/1.jpg b/1.png -> a/1.jpg.png b/1.jpg.png b/1.png.png;
                     --input photos/ (a folder) or "photos/**/*.jpg" (a glob) keeps the tree
                     below photos/: photos/x/1.jpg -> x/1.jpg.png
  predictions.json   COCO results (boxes XYWH, "segmentation" RLE where the model segments;
                     "category_id" indexes the vocabulary) plus "category_name", "file_name"
  images.json        one entry per input: "image_id", "file_name" (the input), "output" (the
                     annotated image, null if unreadable), "num_detections" or "error", and
                     with --describe the model's "caption" of the image (a config with
                     CaptionGenerationLoss, e.g. configs/ov_shapes/ovrcnn_cgg.yaml)
Unreadable inputs are reported and skipped.
"""

from __future__ import annotations

import argparse
import glob
import logging
import os
from typing import NoReturn

import numpy as np
import torch
from PIL import Image

from ovvision.data import ImageReadError, read_image
from ovvision.engine.config_paths import require_file
from ovvision.engine.defaults import USER_ERRORS, exit_with_error, run_tool
from ovvision.engine.predictor import Predictor
from ovvision.evaluation.coco_results import instances_to_coco_results, write_json_atomic
from ovvision.modeling.text import BUILTIN_VOCABULARIES, vocabulary_classes
from ovvision.utils.logger import setup_logger
from ovvision.utils.visualizer import draw_instances

logger = logging.getLogger("ovvision.demo")
PROG = "demo.py"

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--config-file", required=True, metavar="FILE")
    p.add_argument("--weights", required=True, help="model checkpoint (.pth)")
    p.add_argument("--input", nargs="+", required=True, help="image files, folders or globs")
    p.add_argument(
        "--output",
        required=True,
        help="folder for the annotated images, predictions.json and images.json (see above)",
    )
    p.add_argument("--vocabulary", default="custom", choices=BUILTIN_VOCABULARIES)
    p.add_argument("--custom-vocabulary", default="", help='e.g. "cat,dog|puppy,teapot"')
    p.add_argument(
        "--vocabulary-json", default="", help="annotation json with the lvis/ov_shapes classes"
    )
    p.add_argument("--confidence-threshold", type=float, default=0.5)
    p.add_argument("--describe", action="store_true", help="also write a caption per image")
    p.add_argument(
        "--beam-size", type=int, default=None, help="--describe: 1 = greedy, > 1 = beam search"
    )
    p.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="KEY VALUE overrides")
    return p.parse_args(argv)


def expand_inputs(patterns: list[str]) -> list[tuple[str, str]]:
    """Files, the images inside folders, and glob matches, in a stable order, without repeats.

    Returns:
        ``(path, root)`` pairs: the root is the folder given, a glob's folder part before its
        first wildcard, or a file's own folder; outputs keep the path below the roots' common
        folder.
    """
    found: list[tuple[str, str]] = []
    for pattern in patterns:
        if os.path.isdir(pattern):
            found += [
                (os.path.join(pattern, f), pattern)
                for f in sorted(os.listdir(pattern))
                if f.lower().endswith(IMAGE_EXTENSIONS)
            ]
        elif any(c in pattern for c in "*?["):
            matches = [p for p in sorted(glob.glob(pattern, recursive=True)) if os.path.isfile(p)]
            if not matches:
                logger.warning("--input %s matches no file", pattern)
            found += [(path, _glob_root(pattern)) for path in matches]
        else:
            found.append((pattern, os.path.dirname(pattern)))
    unique: dict[str, tuple[str, str]] = {}
    for path, root in found:
        unique.setdefault(os.path.abspath(path), (path, root))
    return list(unique.values())


def _glob_root(pattern: str) -> str:
    """The folder part of a glob before its first wildcard (``a/b/**/*.png`` -> ``a/b``)."""
    parts = pattern.replace(os.sep, "/").split("/")
    fixed = []
    for part in parts[:-1]:
        if any(c in part for c in "*?["):
            break
        fixed.append(part)
    return "/".join(fixed) if fixed != [""] else "/"


def output_names(inputs: list[tuple[str, str]]) -> list[str]:
    """Each input's annotated-image name: its path below the roots' common folder + ``.png``.

    Distinct input files get distinct names (``x.jpg`` and ``x.png`` -> ``x.jpg.png`` and
    ``x.png.png``; ``a/1.png`` and ``b/1.png`` keep their folders).
    """
    if not inputs:
        return []
    common = os.path.commonpath([os.path.abspath(root or ".") for _, root in inputs])
    return [os.path.relpath(os.path.abspath(path), common) + ".png" for path, _ in inputs]


def _fail(message: str) -> NoReturn:
    exit_with_error(message, PROG)


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
    require_file(args.config_file, "--config-file")
    require_file(args.weights, "--weights")
    if args.beam_size is not None and args.beam_size < 1:
        _fail(f"--beam-size must be >= 1, got {args.beam_size}")
    try:
        predictor = Predictor(args.config_file, args.weights, opts=args.opts)
    except USER_ERRORS:
        raise  # a missing file or a bad config value: run_tool names it
    except (KeyError, ValueError, RuntimeError) as e:
        _fail(f"weights {args.weights} do not match config {args.config_file}: {e}")
    if (
        args.describe
        and "CaptionGenerationLoss" not in predictor.cfg.MODEL.ROI_HEADS.AUXILIARY_LOSSES
    ):
        _fail(
            f"--describe needs a caption generator: {args.config_file} does not list "
            "CaptionGenerationLoss in MODEL.ROI_HEADS.AUXILIARY_LOSSES"
        )
    predictor.set_vocabulary(classes)
    names = predictor.class_names

    inputs = expand_inputs(args.input)
    outputs = [os.path.join(args.output, name) for name in output_names(inputs)]
    class_ids = {i: i for i in range(len(names))}  # category_id = index in the vocabulary
    os.makedirs(args.output, exist_ok=True)
    results, images, failed = [], [], []
    for image_id, ((path, _), output) in enumerate(zip(inputs, outputs)):
        try:
            image = read_image(path, "RGB", predictor.max_image_pixels)
        except (ImageReadError, OSError) as e:
            logger.error("Skipping %s: %s", path, e)
            failed.append(path)
            images.append(
                {"image_id": image_id, "file_name": path, "output": None, "error": str(e)}
            )
            continue
        instances = predictor(image)
        instances = instances[instances.scores >= args.confidence_threshold]
        detections, _ = instances_to_coco_results(instances, image_id, class_ids)
        for detection in detections:
            detection.update(file_name=path, category_name=names[detection["category_id"]])
        results += detections
        _save_drawing(image, instances, names, output)
        images.append(
            {"image_id": image_id, "file_name": path, "output": output,
             "num_detections": len(instances)}
        )  # fmt: skip
        logger.info("%s -> %s: %d detections", path, output, len(instances))
        if args.describe:
            images[-1]["caption"] = predictor.describe(image, args.beam_size)
            logger.info("%s: %s", path, images[-1]["caption"])
    write_json_atomic(os.path.join(args.output, "predictions.json"), results, indent=1)
    write_json_atomic(os.path.join(args.output, "images.json"), images, indent=1)
    if failed:
        logger.error("%d of %d inputs could not be read: %s", len(failed), len(inputs), failed)
    if len(failed) == len(inputs):
        _fail(f"none of the {len(inputs)} inputs could be read" if inputs else "no input files")
    return 0


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
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    Image.fromarray(drawn.permute(1, 2, 0).numpy()).save(path, "PNG")


if __name__ == "__main__":
    run_tool(main, prog=PROG)
