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
With --open-ended (a generative mask classifier, configs/ov_shapes/osm_tiny.yaml) no vocabulary
is needed: every proposed mask is labelled with the name the model generates for it ("score" is
its objectness, "category_name" the generated name).
Unreadable inputs are reported and skipped.
"""

from __future__ import annotations

import argparse
import logging
from typing import NoReturn

import numpy as np
import torch

from ovvision.data import ImageReadError, read_image
from ovvision.engine.config_paths import require_file
from ovvision.engine.defaults import USER_ERRORS, exit_with_error, run_tool
from ovvision.engine.image_runner import expand_inputs, run_on_images
from ovvision.engine.predictor import Predictor
from ovvision.modeling.text import BUILTIN_VOCABULARIES, vocabulary_classes
from ovvision.utils.logger import setup_logger

logger = logging.getLogger("ovvision.demo")
PROG = "demo.py"


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
    p.add_argument(
        "--open-ended", action="store_true", help="label masks with generated names (OSM)"
    )
    p.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="KEY VALUE overrides")
    return p.parse_args(argv)


def _fail(message: str) -> NoReturn:
    exit_with_error(message, PROG)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logger(None)
    classes = None
    try:
        if not args.open_ended:
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
    inputs = expand_inputs(args.input)
    if args.open_ended:
        if not hasattr(predictor.model, "name_masks"):
            _fail(f"--open-ended needs a model that generates mask names, not {args.config_file}")
        failed = _run_open_ended(predictor, inputs, args)
        if len(failed) == len(inputs):
            _fail(f"none of the {len(inputs)} inputs could be read" if inputs else "no input files")
        return 0
    predictor.set_vocabulary(classes)
    names = predictor.class_names

    describe = None
    if args.describe:

        def describe(image: np.ndarray) -> dict[str, str]:
            caption = predictor.describe(image, args.beam_size)
            logger.info("caption: %s", caption)
            return {"caption": caption}

    failed = run_on_images(
        inputs,
        args.output,
        predictor,
        names,
        max_pixels=predictor.max_image_pixels,
        confidence_threshold=args.confidence_threshold,
        describe=describe,
    )
    if len(failed) == len(inputs):
        _fail(f"none of the {len(inputs)} inputs could be read" if inputs else "no input files")
    return 0


def _run_open_ended(
    predictor: Predictor, inputs: list[tuple[str, str]], args: argparse.Namespace
) -> list[str]:
    """Name every image's masks, then draw and record them labelled with their names (the
    names seen in all images form the category list of predictions.json)."""
    named = []
    for path, _ in inputs:
        try:
            image = read_image(path, "RGB", predictor.max_image_pixels)
        except (ImageReadError, OSError):
            continue  # run_on_images reports it
        instances = predictor.name_masks(image)
        instances.pred_names = [n or "(no name)" for n in instances.pred_names]
        named.append(instances)
    names = sorted({n for instances in named for n in instances.pred_names})
    index = {n: i for i, n in enumerate(names)}
    for instances in named:
        instances.pred_classes = torch.tensor(
            [index[n] for n in instances.pred_names], dtype=torch.int64
        )
    results = iter(named)
    return run_on_images(
        inputs,
        args.output,
        lambda image: next(results),
        names,
        max_pixels=predictor.max_image_pixels,
        confidence_threshold=args.confidence_threshold,
    )


if __name__ == "__main__":
    run_tool(main, prog=PROG)
