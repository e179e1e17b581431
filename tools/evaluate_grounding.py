#!/usr/bin/env python
"""Score any grounding results file (``grounding_results.json``) against referring expressions.

Examples::

    python tools/evaluate_grounding.py --gt datasets/ov_shapes/annotations/refexp_val.json \\
        --results output/ov_shapes/ovgrounder/inference/ov_shapes_refexp_val/grounding_results.json
    python tools/evaluate_grounding.py --gt final_refcoco_val.json --format mdetr \\
        --results r.json --output metrics.json

The ground truth is a referring-expression json in one of the layouts of
:mod:`ovvision.data.datasets.refexp` (``--format``: ``refs`` = ovvision's/OV-Shapes', ``mdetr``,
``ovvg``); base/novel come from its categories' ``split``. A result is a dict with ``image_id``,
``ann_id``, ``text`` and ``bbox``: the ranked boxes, each XYWH in the original image's pixels.
Acc@0.5 (overall, base, novel, small/medium/large) and recall@1/5/10 are printed (percent) and,
with ``--output``, written as ``{"grounding": {...}}``; ``--report DIR`` writes ``DIR/report.md``
with the same numbers and a bar chart.
"""

from __future__ import annotations

import argparse
import logging

from ovvision.data.datasets.coco_ov import category_fields
from ovvision.data.datasets.json_io import read_json
from ovvision.data.datasets.refexp import (
    load_mdetr_refexp_json,
    load_ovvg_json,
    load_refexp_json,
)
from ovvision.engine.config_paths import require_file
from ovvision.engine.defaults import run_tool
from ovvision.evaluation import (
    grounding_metrics,
    grounding_targets,
    read_grounding_results,
    write_metrics_json,
)
from ovvision.reports import write_metrics_report

logger = logging.getLogger("ovvision.tools.evaluate_grounding")
PROG = "evaluate_grounding.py"
LOADERS = {"refs": load_refexp_json, "mdetr": load_mdetr_refexp_json, "ovvg": load_ovvg_json}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--gt", required=True, help="referring-expression json")
    p.add_argument("--format", default="refs", choices=sorted(LOADERS), help="layout of --gt")
    p.add_argument("--results", required=True, help="grounding_results.json")
    p.add_argument("--output", default="", help="write the metrics here (json)")
    p.add_argument("--report", default="", metavar="DIR", help="also write DIR/report.md")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    require_file(args.gt, "--gt")
    require_file(args.results, "--results")
    fields = category_fields(read_json(args.gt))
    dicts = LOADERS[args.format](args.gt, "")
    targets = grounding_targets(dicts, fields["thing_classes"], fields["novel_classes"])
    results = read_grounding_results(args.results)
    metrics = grounding_metrics(targets, results)
    for key, value in metrics.items():
        print(f"{key:>28s}: {value:.2f}" if isinstance(value, float) else f"{key:>28s}: {value}")
    if metrics["num_unmatched_results"]:
        logger.warning(
            "%d results match no expression of %s (image_id, ann_id, text must all match)",
            metrics["num_unmatched_results"],
            args.gt,
        )
    if args.output:
        write_metrics_json({"grounding": metrics}, args.output)
    if args.report:
        write_metrics_report(
            {"grounding": metrics}, args.report, title=f"Grounding evaluation on {args.gt}"
        )
    return 0


if __name__ == "__main__":
    run_tool(main, prog=PROG, user_errors=(ValueError, KeyError))
