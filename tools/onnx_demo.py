#!/usr/bin/env python
"""Run an exported detector (tools/export_onnx.py) with onnxruntime on your images.

    python tools/onnx_demo.py --model out/onnx/model.onnx --input photos/ "more/*.png" \\
        --output out/onnx_demo [--vocabulary out/onnx/vocabulary.npz]

Needs neither PyTorch weights nor the text encoder: the classes are the vocabulary file's
(default: vocabulary.npz beside --model; make another with
``tools/export_onnx.py --vocabulary NAMES --vocabulary-only``). Writes into --output the
annotated images, predictions.json and images.json, as tools/demo.py does. Unreadable inputs
are reported and skipped.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ovvision.engine.config_paths import require_file
from ovvision.engine.defaults import exit_with_error, run_tool
from ovvision.engine.image_runner import expand_inputs, run_on_images
from ovvision.export.onnx_runtime import OnnxDetector
from ovvision.export.vocabulary_file import VOCABULARY_FILE, VocabularyFileError
from ovvision.utils.logger import setup_logger

logger = logging.getLogger("ovvision.onnx_demo")
PROG = "onnx_demo.py"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", required=True, help="the exported .onnx file")
    p.add_argument("--vocabulary", default="", help=f"default: {VOCABULARY_FILE} beside --model")
    p.add_argument("--input", nargs="+", required=True, help="image files, folders or globs")
    p.add_argument("--output", required=True, help="folder for the results (see above)")
    p.add_argument("--confidence-threshold", type=float, default=0.5)
    p.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0 = its default)")
    p.add_argument(
        "--max-image-pixels",
        type=int,
        default=-1,
        help="larger images are refused (default: the exported config's INPUT.MAX_IMAGE_PIXELS)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logger(None)
    require_file(args.model, "--model")
    vocabulary = args.vocabulary or str(Path(args.model).parent / VOCABULARY_FILE)
    require_file(vocabulary, "--vocabulary")
    try:
        detector = OnnxDetector(args.model, vocabulary, num_threads=args.threads)
    except VocabularyFileError as e:
        exit_with_error(e, PROG)
    names = detector.class_names
    max_pixels = args.max_image_pixels
    if max_pixels < 0:
        max_pixels = int(detector.metadata.get("ovvision.max_image_pixels", 0))
    inputs = expand_inputs(args.input)
    failed = run_on_images(
        inputs,
        args.output,
        lambda image: detector([detector.prepare(image)])[0]["instances"],
        names,
        max_pixels=max_pixels,
        confidence_threshold=args.confidence_threshold,
    )
    if len(failed) == len(inputs):
        exit_with_error(
            f"none of the {len(inputs)} inputs could be read" if inputs else "no input files", PROG
        )
    return 0


if __name__ == "__main__":
    run_tool(main, PROG)
