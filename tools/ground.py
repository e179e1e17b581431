#!/usr/bin/env python
"""Ground a referring expression in your images with a trained OVGrounder.

    python tools/ground.py --config-file configs/ov_shapes/ovgrounder.yaml \\
        --weights output/ov_shapes/ovgrounder/model_final.pth \\
        --input photo1.png photo2.png --text "the small red star" --output out/ground

    # phrase localisation: one box per noun phrase of a sentence
    python tools/ground.py ... --text "a red star left of the blue ring" --phrases

Writes into --output:
  <input name>.png   the image with the box (and mask) of the expression (top-k with --top-k)
  groundings.json    one entry per input: "file_name", "output", and per expression or phrase
                     "text", "boxes" (XYXY, best first), "scores"; or "error"

An empty expression, one longer than the text encoder's context (without --truncate), or an
unreadable image is reported by name and the other inputs are still processed; the exit code
is 2 when nothing could be grounded.
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

import torch

from ovvision.data import ImageReadError, read_image
from ovvision.engine.config_paths import require_file
from ovvision.engine.defaults import exit_with_error, run_tool
from ovvision.engine.predictor import Predictor
from ovvision.evaluation.coco_results import write_json_atomic
from ovvision.modeling.grounding import noun_phrases
from ovvision.utils.logger import setup_logger
from ovvision.utils.visualizer import class_colors, draw_instances

logger = logging.getLogger("ovvision.ground")
PROG = "ground.py"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--config-file", required=True, metavar="FILE")
    p.add_argument("--weights", required=True, help="OVGrounder checkpoint (.pth)")
    p.add_argument("--input", nargs="+", required=True, help="image files")
    p.add_argument("--text", nargs="+", required=True, help="expression(s), each quoted")
    p.add_argument("--output", required=True, help="folder for drawings and groundings.json")
    p.add_argument("--top-k", type=int, default=1, help="boxes drawn per expression")
    p.add_argument("--phrases", action="store_true", help="ground every noun phrase of --text")
    p.add_argument("--truncate", action="store_true", help="cut over-long expressions")
    p.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="KEY VALUE overrides")
    return p.parse_args(argv)


def expressions(texts: list[str], phrases: bool) -> list[str]:
    """The texts to ground: the expressions, or with ``phrases`` their noun phrases (a text
    without one is grounded, or reported, as it is)."""
    if not phrases:
        return list(texts)
    return [p for text in texts for p in (noun_phrases(text) or [text])]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logger(None)
    if args.top_k < 1:
        exit_with_error(f"--top-k must be at least 1, got {args.top_k}", PROG)
    require_file(args.config_file, "--config-file")
    require_file(args.weights, "--weights")
    opts = list(args.opts) + (["MODEL.GROUNDER.TRUNCATE_TEXT", "True"] if args.truncate else [])
    predictor = Predictor(args.config_file, args.weights, opts=opts)
    if not hasattr(predictor.model, "ground"):
        exit_with_error(f"{args.config_file} is not a grounding model (MODEL.META_ARCHITECTURE)")
    texts = expressions(args.text, args.phrases)
    os.makedirs(args.output, exist_ok=True)
    entries, grounded = [], 0
    for path in args.input:
        entry: dict[str, Any] = {"file_name": path, "output": None, "expressions": []}
        entries.append(entry)
        try:
            image = read_image(path, "RGB", predictor.max_image_pixels)
        except (ImageReadError, OSError) as e:
            logger.error("Skipping %s: %s", path, e)
            entry["error"] = str(e)
            continue
        drawn = []
        for text in texts:
            try:
                instances = predictor.ground(image, text, top_k=args.top_k)
            except ValueError as e:  # empty or over-long expression
                logger.error("%s: expression %r: %s", path, text, e)
                entry["expressions"].append({"text": text, "error": str(e)})
                continue
            entry["expressions"].append(
                {"text": text, "boxes": [[round(v, 2) for v in b] for b in
                 instances.pred_boxes.tensor.tolist()],
                 "scores": [round(s, 4) for s in instances.scores.tolist()]}
            )  # fmt: skip
            drawn.append((text, instances))
            grounded += 1
        if drawn:
            entry["output"] = os.path.join(args.output, os.path.basename(path) + ".png")
            _save_drawing(image, drawn, entry["output"])
            logger.info("%s -> %s", path, entry["output"])
    write_json_atomic(os.path.join(args.output, "groundings.json"), entries, indent=1)
    if grounded == 0:
        exit_with_error("nothing could be grounded (see the errors above)", PROG)
    return 0


def _save_drawing(image: Any, drawn: list[tuple[str, Any]], path: str) -> None:
    from PIL import Image

    colors = class_colors(len(drawn))
    boxes, labels, masks, box_colors = [], [], [], []
    for i, (text, instances) in enumerate(drawn):
        for rank, (box, score) in enumerate(zip(instances.pred_boxes.tensor, instances.scores)):
            boxes.append(box)
            labels.append(f"{text} {score:.2f}" if rank == 0 else f"{text} #{rank + 1}")
            box_colors.append(colors[i])
        if instances.has("pred_masks"):
            masks.append(instances.pred_masks)
    has_masks = len(masks) == len(drawn) and masks
    out = draw_instances(
        torch.from_numpy(image).permute(2, 0, 1),
        torch.stack(boxes) if boxes else torch.zeros(0, 4),
        labels,
        list(range(len(boxes))),
        torch.cat(masks) if has_masks else None,
        colors=box_colors,
    )
    Image.fromarray(out.permute(1, 2, 0).numpy()).save(path)


if __name__ == "__main__":
    run_tool(main, prog=PROG)
