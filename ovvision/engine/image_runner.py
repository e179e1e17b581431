"""Run a detector over image files: expand inputs, draw and save each result, write COCO results.

What ``tools/demo.py`` (PyTorch) and ``tools/onnx_demo.py`` (onnxruntime) share: the inputs are
files, folders and globs; each readable image gets an annotated PNG under the output folder; the
folder gets ``predictions.json`` (COCO results plus ``category_name`` and ``file_name``) and
``images.json`` (one entry per input, ``error`` for an unreadable one). An unreadable image is
reported and skipped; the others are still processed.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ovvision.data import ImageReadError, read_image
from ovvision.evaluation.coco_results import instances_to_coco_results, write_json_atomic
from ovvision.structures import Instances
from ovvision.utils.visualizer import save_predictions_drawing

logger = logging.getLogger(__name__)

__all__ = ["IMAGE_EXTENSIONS", "expand_inputs", "output_names", "run_on_images"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


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
                logger.warning("input %s matches no file", pattern)
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


def run_on_images(
    inputs: list[tuple[str, str]],
    output_dir: str,
    predict: Callable[[np.ndarray], Instances],
    names: Sequence[str],
    *,
    max_pixels: int | None,
    confidence_threshold: float,
    describe: Callable[[np.ndarray], dict[str, Any]] | None = None,
) -> list[str]:
    """Predict, draw and record every input; returns the paths that could not be read.

    Args:
        inputs: ``(path, root)`` pairs from :func:`expand_inputs`.
        output_dir: folder for the annotated images, ``predictions.json`` and ``images.json``.
        predict: ``ndarray[H, W, 3]`` uint8 RGB -> Instances in its pixels (``pred_boxes``,
            ``scores``, ``pred_classes`` indexing ``names``, optional ``pred_masks``).
        names: class names; a detection's ``category_id`` is its index here.
        max_pixels: larger images are refused (0/None: no cap).
        confidence_threshold: detections below it are dropped.
        describe: optional extra fields of an image's ``images.json`` entry (e.g. a caption).
    """
    outputs = [os.path.join(output_dir, name) for name in output_names(inputs)]
    class_ids = {i: i for i in range(len(names))}
    os.makedirs(output_dir, exist_ok=True)
    results: list[dict[str, Any]] = []
    images: list[dict[str, Any]] = []
    failed: list[str] = []
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
        instances = predict(image)
        instances = instances[instances.scores >= confidence_threshold]
        detections, _ = instances_to_coco_results(instances, image_id, class_ids)
        for detection in detections:
            detection.update(file_name=path, category_name=names[detection["category_id"]])
        results += detections
        save_predictions_drawing(image, instances, names, output)
        images.append(
            {"image_id": image_id, "file_name": path, "output": output,
             "num_detections": len(instances)}
        )  # fmt: skip
        logger.info("%s -> %s: %d detections", path, output, len(instances))
        if describe is not None:
            images[-1].update(describe(image))
    write_json_atomic(os.path.join(output_dir, "predictions.json"), results, indent=1)
    write_json_atomic(os.path.join(output_dir, "images.json"), images, indent=1)
    if failed:
        logger.error("%d of %d inputs could not be read: %s", len(failed), len(inputs), failed)
    return failed
