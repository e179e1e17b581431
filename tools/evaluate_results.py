#!/usr/bin/env python
"""Evaluate a COCO-format results file of any model against a registered dataset or a json.

Examples::

    python tools/evaluate_results.py --dataset coco_ov_val --results dets.json
    python tools/evaluate_results.py --gt-json instances_val.json --novel-classes cat,dog \\
        --results dets.json --iou-type segm --output metrics.json
    python tools/evaluate_results.py --dataset ov_shapes_val --results dets.json --report out/rep

The class split comes from the dataset's metadata, from ``--novel-classes`` (all other classes are
base), or from the ground truth categories' ``"split"`` field. An LVIS-format ground truth
(categories with ``frequency``) is evaluated with LVIS federated semantics. Metrics (percent) are
printed and, with ``--output``, written as ``{"bbox": {...}, "segm": {...}}``. ``--report DIR``
writes a report people can read (``report.md`` and PNG figures, see :mod:`ovvision.reports`).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from typing import Any

from ovvision.config import get_cfg
from ovvision.engine.config_paths import require_file
from ovvision.engine.defaults import run_tool
from ovvision.evaluation import (
    EVALUATOR_REGISTRY,
    COCOFormatEvaluator,
    metadata_arguments,
    write_metrics_json,
)
from ovvision.reports import write_evaluator_report

logger = logging.getLogger("ovvision.tools.evaluate_results")

_HEADLINE = ("AP", "AP50", "AP50-base", "AP50-novel", "APr", "APc", "APf", "AP-novel")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", help="a dataset name registered in ovvision.data")
    source.add_argument("--gt-json", help="a COCO- or LVIS-format ground-truth json")
    parser.add_argument(
        "--novel-classes",
        help="comma-separated novel class names (with --gt-json); all others are base",
    )
    parser.add_argument("--results", required=True, help="COCO-format results json (a list)")
    parser.add_argument(
        "--iou-type",
        choices=("bbox", "segm"),
        help="evaluate only this (default: bbox, and segm when every result has a segmentation)",
    )
    parser.add_argument("--output", help="write the metrics json here")
    parser.add_argument("--report", metavar="DIR", help="write report.md and PNG figures here")
    parser.add_argument(
        "--image-root",
        help="folder of the ground truth's images, for the report's grid of missed objects "
        "(default: the dataset's)",
    )
    parser.add_argument(
        "--report-min-score",
        type=float,
        default=get_cfg().TEST.REPORT_MIN_SCORE,
        help="in the report, lower-scoring detections find no object and confuse no class",
    )
    parser.add_argument(
        "--max-dets-per-image",
        type=int,
        help="per-image detection cap (default: the evaluator's, COCO 100, LVIS 300)",
    )
    parser.add_argument(
        "--fixed-ap",
        action="store_true",
        help="LVIS fixed AP: no per-image cap, 10,000 detections per class",
    )
    args = parser.parse_args(argv)
    if args.novel_classes is not None and args.dataset is not None:
        parser.error("--novel-classes goes with --gt-json; a dataset's split is in its metadata")
    return args


def _is_lvis_format(gt_json: str) -> bool:
    with open(gt_json) as f:
        categories = json.load(f).get("categories", [])
    return bool(categories) and all("frequency" in c for c in categories)


def build_evaluator_for(args: argparse.Namespace) -> COCOFormatEvaluator:
    """The evaluator the arguments ask for (chosen through ``EVALUATOR_REGISTRY``)."""
    if args.dataset is not None:
        import ovvision.data  # noqa: F401  (registers the built-in datasets)
        from ovvision.data.catalog import MetadataCatalog

        evaluator_type = MetadataCatalog.get(args.dataset).get("evaluator_type")
        kwargs: dict[str, Any] = metadata_arguments(args.dataset)
    else:
        require_file(args.gt_json, "--gt-json")
        evaluator_type = "lvis_ov" if _is_lvis_format(args.gt_json) else "coco_ov"
        kwargs = {"gt_json": args.gt_json}
        if args.novel_classes is not None:
            names = [n.strip() for n in args.novel_classes.split(",") if n.strip()]
            kwargs["novel_classes"] = names
    if evaluator_type not in EVALUATOR_REGISTRY:
        raise KeyError(f"No evaluator registered for evaluator_type {evaluator_type!r}")
    if args.max_dets_per_image is not None:
        kwargs["max_dets_per_image"] = args.max_dets_per_image
    if args.fixed_ap:
        if evaluator_type != "lvis_ov":
            raise ValueError("--fixed-ap applies to LVIS-format ground truth only")
        kwargs["fixed_ap"] = True
    logger.info(f"Evaluating with {evaluator_type}")
    return EVALUATOR_REGISTRY.get(evaluator_type)(**kwargs)


def load_results(path: str) -> list[dict[str, Any]]:
    require_file(path, "--results")
    with open(path) as f:
        results = json.load(f)
    if not isinstance(results, list):
        raise ValueError(f"--results '{path}' must hold a json list of detections")
    for i, result in enumerate(results):
        missing = {"image_id", "category_id", "score"} - set(result)
        if missing:
            raise ValueError(f"Detection {i} of '{path}' lacks {sorted(missing)}")
    return results


def _format(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}"


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    args = parse_args(argv)
    results = load_results(args.results)
    evaluator = build_evaluator_for(args)
    if args.iou_type is not None:
        tasks: tuple[str, ...] = (args.iou_type,)
    elif results and all("segmentation" in r for r in results):
        tasks = ("bbox", "segm")
    else:
        tasks = ("bbox",)
    metrics = evaluator.evaluate_results(results, tasks)
    for task, values in metrics.items():
        shown = [f"{k}={_format(values[k])}" for k in _HEADLINE if k in values]
        print(f"{task}: " + " ".join(shown))
    if args.output:
        write_metrics_json(metrics, args.output)
        print(f"Metrics written to {args.output}")
    if args.report:
        path = write_evaluator_report(
            evaluator, metrics, args.report, dataset_name=args.dataset,
            image_root=args.image_root, min_score=args.report_min_score,
        )  # fmt: skip
        print(f"Report written to {path}")
    return metrics


def _command_line() -> int:
    main()
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s %(name)s] %(message)s")
    run_tool(_command_line, prog="evaluate_results.py", user_errors=(ValueError, KeyError))
