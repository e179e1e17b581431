#!/usr/bin/env python
"""The main job on the built-in OV-Shapes benchmark, step by step (what `make quickstart` runs).

1. generate OV-Shapes (datasets/ov_shapes), 2. pretrain the tiny CLIP on its image-text pairs,
3. train OV-RCNN on base-class boxes and masks, with caption grounding (the nouns of each image's
   caption, novel shapes included, grounded in its regions: CGG), and evaluate on val (base +
   novel classes), with its evaluation report (ovrcnn/report/report.md: per-class AP, curves,
   confusions, misses),
4. evaluate the closed-vocabulary control (novel text embeddings replaced by random vectors),
5. run the demo on a few val images with a custom vocabulary, 6. print a table of the results.

Every step is an ordinary command, printed before it runs; a step whose output already exists is
skipped, so an interrupted quickstart continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The quickstart detector's architecture and weights are those of ovrcnn_clip_rn_frozen.yaml (the
# config the other tools name); caption grounding only adds a training loss without parameters.
DETECTOR_CONFIG = "configs/ov_shapes/ovrcnn_caption_grounding.yaml"
CLIP_CONFIG = "configs/ov_shapes/clip_tiny.yaml"
DEMO_VOCABULARY = "star,heart,crescent|moon,house,flower"


# (tool, wall seconds) of each step this run executed, for the summary.
STEP_TIMES: list[tuple[str, float]] = []


def run(cmd: list[str]) -> None:
    print("\n$ " + " ".join(cmd), flush=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, *cmd], cwd=ROOT, check=True)
    STEP_TIMES.append((os.path.basename(cmd[0]), time.perf_counter() - start))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--output", default="output/quickstart")
    p.add_argument("--data", default=os.environ.get("OVVISION_DATASETS", "datasets"))
    args = p.parse_args()
    start = time.perf_counter()
    out = args.output
    shapes = os.path.join(args.data, "ov_shapes")
    val_json = os.path.join(shapes, "annotations", "instances_val.json")
    clip_ckpt = os.path.join(out, "clip", "model_final.pt")
    detector = os.path.join(out, "ovrcnn")
    report = os.path.join(detector, "report")
    common = ["VOCABULARY.ANNOTATION_JSON", val_json, "MODEL.TEXT_ENCODER.PRETRAINED", clip_ckpt]

    if not os.path.isfile(val_json):
        run(["tools/make_ov_shapes.py", "--output", shapes, "--seed", "0"])
    if not os.path.isfile(clip_ckpt):
        run(["tools/train_clip.py", "--config-file", CLIP_CONFIG, "OUTPUT_DIR", f"{out}/clip"])
    if not os.path.isfile(os.path.join(detector, "eval_results.json")):
        run(["tools/train_net.py", "--config-file", DETECTOR_CONFIG, "--resume",
             "--report", report, "OUTPUT_DIR", detector, *common])  # fmt: skip
    if not os.path.isfile(os.path.join(report, "report.md")):
        # a detector trained before reports existed: its saved val detections, not retrained
        results = os.path.join(
            detector, "inference", "ov_shapes_val", "coco_instances_results.json"
        )
        run(["tools/evaluate_results.py", "--gt-json", val_json, "--results", results,
             "--image-root", os.path.join(shapes, "val"), "--report", report])  # fmt: skip
    weights = os.path.join(detector, "model_final.pth")
    control = os.path.join(detector, "control_random_novel.json")
    run(["tools/closed_vocab_control.py", "--config-file", DETECTOR_CONFIG, "--weights", weights,
         "--dataset", "ov_shapes_val", "--output", control, *common])  # fmt: skip
    val_images = sorted(os.listdir(os.path.join(shapes, "val")))[:4]
    run(["tools/demo.py", "--config-file", DETECTOR_CONFIG, "--weights", weights,
         "--input", *[os.path.join(shapes, "val", f) for f in val_images],
         "--output", f"{out}/demo", "--custom-vocabulary", DEMO_VOCABULARY,
         "--opts", *common])  # fmt: skip
    print_summary(out, detector, control, time.perf_counter() - start)
    print(f"evaluation report: {report}/report.md")


def _fmt(value: float | None) -> str:
    return "  n/a" if value is None else f"{value:5.1f}"


def print_summary(out: str, detector: str, control: str, seconds: float) -> None:
    with open(os.path.join(out, "clip", "zero_shot.json")) as f:
        zero_shot = json.load(f)
    with open(os.path.join(detector, "eval_results.json")) as f:
        metrics = json.load(f)
    with open(control) as f:
        control_metrics = json.load(f)
    print("\nOV-Shapes val — OV-RCNN trained on base-class boxes and masks, with caption grounding")
    print("task   AP     AP50   AP50-base  AP50-novel  AP50-novel (random novel embeddings)")
    for task in ("bbox", "segm"):
        m, c = metrics.get(task, {}), control_metrics.get(task, {})
        print(
            f"{task:5} {_fmt(m.get('AP'))}  {_fmt(m.get('AP50'))}  {_fmt(m.get('AP50-base'))}"
            f"      {_fmt(m.get('AP50-novel'))}       {_fmt(c.get('AP50-novel'))}"
        )
    print(
        "tiny CLIP zero-shot top-1 on val crops: "
        + ", ".join(f"{k} {100 * v:.1f}%" for k, v in zero_shot.items() if k.startswith("top1"))
    )
    print(f"demo images: {out}/demo   wall time of this run: {seconds / 60:.1f} min")
    print("wall time per step (steps whose output existed were skipped):")
    for tool, step_seconds in STEP_TIMES:
        print(f"  {tool:24s} {int(step_seconds // 60)} min {step_seconds % 60:4.1f} s")


if __name__ == "__main__":
    main()
