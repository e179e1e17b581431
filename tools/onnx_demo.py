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
import os
from pathlib import Path

from demo import _save_drawing, expand_inputs, output_names

from ovvision.data import ImageReadError, read_image
from ovvision.engine.config_paths import require_file
from ovvision.engine.defaults import exit_with_error, run_tool
from ovvision.evaluation.coco_results import instances_to_coco_results, write_json_atomic
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
    outputs = [os.path.join(args.output, name) for name in output_names(inputs)]
    class_ids = {i: i for i in range(len(names))}  # category_id = index in the vocabulary
    os.makedirs(args.output, exist_ok=True)
    results, images, failed = [], [], []
    for image_id, ((path, _), output) in enumerate(zip(inputs, outputs)):
        try:
            image = read_image(path, "RGB", max_pixels)
        except (ImageReadError, OSError) as e:
            logger.error("Skipping %s: %s", path, e)
            failed.append(path)
            images.append(
                {"image_id": image_id, "file_name": path, "output": None, "error": str(e)}
            )
            continue
        instances = detector([detector.prepare(image)])[0]["instances"]
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
    write_json_atomic(os.path.join(args.output, "predictions.json"), results, indent=1)
    write_json_atomic(os.path.join(args.output, "images.json"), images, indent=1)
    if failed:
        logger.error("%d of %d inputs could not be read: %s", len(failed), len(inputs), failed)
    if len(failed) == len(inputs):
        exit_with_error(
            f"none of the {len(inputs)} inputs could be read" if inputs else "no input files", PROG
        )
    return 0


if __name__ == "__main__":
    run_tool(main, PROG)
