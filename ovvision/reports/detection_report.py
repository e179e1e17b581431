"""An evaluation report a person can read: ``report.md`` with PNG figures beside it.

:func:`write_detection_report` takes what a COCO-format evaluator computed (its metrics dict and
its :class:`~ovvision.evaluation.snapshot.EvaluationSnapshot`) and writes:

- ``report.md``: the evaluator's metrics, a per-class table (AP, AP50, split, objects), the most
  frequent confusions, and links to the figures;
- ``per_class_ap50_<task>.png``: per-class AP50 as sorted bars, base and novel coloured apart;
- ``pr_curves_<task>.png``: precision-recall at IoU 0.5 for all, base and novel classes, read
  from the evaluator's precision array;
- ``missed_novel.png``: the images with the most missed novel objects, boxes drawn (needs the
  image folder).

Every number in the report is one the evaluator computed; nothing is re-scored.
"""

from __future__ import annotations

import logging
import math
import os
from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ovvision.evaluation.snapshot import EvaluationSnapshot
from ovvision.utils.visualizer import DEFAULT_MIN_DRAW_SIZE, ClassPalette, draw_instances

from .analysis import count_confusions, match_images, missed_objects, pr_curve
from .figures import plot_image_grid, plot_per_class_ap, plot_pr_curves

logger = logging.getLogger(__name__)

REPORT_FILE = "report.md"
_SUMMARY_KEYS = ("AP", "AP50", "AP75", "AP50-base", "AP50-novel", "APr", "APc", "APf", "AR@100")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.2f}"
    return str(value)


def write_detection_report(
    snapshot: EvaluationSnapshot,
    metrics: Mapping[str, Mapping[str, Any]],
    output_dir: str | os.PathLike,
    *,
    title: str = "Evaluation report",
    image_root: str | os.PathLike | None = None,
    min_score: float = 0.3,
    iou_threshold: float = 0.5,
    num_confusions: int = 10,
    num_grid_images: int = 8,
) -> str:
    """Write ``report.md`` and its figures into ``output_dir``; returns the report's path.

    Args:
        snapshot: the evaluator's ``last_snapshot`` after ``evaluate()``.
        metrics: what ``evaluate()`` returned (``{"bbox": {...}, "segm": {...}}``).
        output_dir: the report folder (created).
        title: the report's heading (e.g. the dataset and the model).
        image_root: the folder of the ground truth's ``file_name``s; None: no image grid.
        min_score: detections below it neither find an object nor count as a confusion.
        iou_threshold: box IoU of a match for confusions and missed objects.
        num_confusions: rows of the confusion table.
        num_grid_images: images in the missed-novel grid.
    """
    output_dir = os.fspath(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    names = snapshot.class_names
    split_of = {c: snapshot.split.name_of(c) if snapshot.split else "" for c in names}
    num_objects = Counter(
        int(a["category_id"]) for a in snapshot.gt_dataset.get("annotations", [])
        if not a.get("iscrowd", 0)
    )  # fmt: skip
    num_images = len(snapshot.image_ids or snapshot.gt_dataset.get("images", []))
    lines = [f"# {title}", "", f"Ground truth: `{snapshot.gt_json}` ({num_images} images)."]
    if not snapshot.results:
        lines += ["", f"**The model made no detections** on these {num_images} images: every "
                  "AP below is 0 and every object counts as missed."]  # fmt: skip
    else:
        lines += ["", f"{len(snapshot.results)} detections evaluated."]
    lines += _summary_table(metrics)
    for task, evaluation in snapshot.tasks.items():
        per_class = evaluation.per_class_ap
        bars = [
            (names.get(c, str(c)), split_of.get(c, ""), ap50)
            for c, (_, ap50) in per_class.items()
            if not math.isnan(ap50)
        ]
        plot_per_class_ap(bars, os.path.join(output_dir, f"per_class_ap50_{task}.png"))
        groups = {"all": evaluation.cat_ids}
        if snapshot.split is not None:
            groups.update(base=sorted(snapshot.split.base), novel=sorted(snapshot.split.novel))
        curves = {g: pr_curve(evaluation, ids, 0.5) for g, ids in groups.items()}
        plot_pr_curves(curves, os.path.join(output_dir, f"pr_curves_{task}.png"))
        lines += [
            "", f"## {task}: per-class AP (percent, the evaluator's)", "",
            f"![per-class AP50 ({task})](per_class_ap50_{task}.png)",
            f"![precision-recall ({task})](pr_curves_{task}.png)", "",
            "| class | split | objects | AP | AP50 |", "|---|---|---:|---:|---:|",
        ]  # fmt: skip
        for c, (ap, ap50) in sorted(per_class.items(), key=lambda kv: -_sort_key(kv[1][1])):
            lines.append(
                f"| {names.get(c, c)} | {split_of.get(c, '')} | {num_objects.get(c, 0)} "
                f"| {_cell(ap)} | {_cell(ap50)} |"
            )
    matches = match_images(
        snapshot.gt_dataset, snapshot.results, snapshot.image_ids, iou_threshold, min_score
    )
    lines += _confusion_lines(count_confusions(matches), names, num_confusions, min_score)
    if snapshot.split is not None:
        missed = missed_objects(matches, snapshot.split.novel)
        lines += _missed_lines(
            snapshot, matches, missed, output_dir, image_root, num_grid_images, min_score
        )
    path = os.path.join(output_dir, REPORT_FILE)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)
    logger.info("Evaluation report written to %s", path)
    return path


def _sort_key(value: float) -> float:
    return -1.0 if math.isnan(value) else value


def _summary_table(metrics: Mapping[str, Mapping[str, Any]]) -> list[str]:
    keys = [k for k in _SUMMARY_KEYS if any(k in m for m in metrics.values())]
    lines = ["", "## Summary (percent, as in the evaluator's json)", ""]
    lines += ["| task | " + " | ".join(keys) + " |", "|---|" + "---:|" * len(keys)]
    for task, values in metrics.items():
        lines.append(f"| {task} | " + " | ".join(_cell(values.get(k, "")) for k in keys) + " |")
    return lines


def _confusion_lines(
    confusions: Counter, names: Mapping[int, str], limit: int, min_score: float
) -> list[str]:
    lines = [
        "", "## Most frequent confusions", "",
        f"A detection (score ≥ {min_score}) of class A that matches no object of A but whose box "
        "overlaps an object of class B at IoU ≥ 0.5.", "",
    ]  # fmt: skip
    if not confusions:
        return [*lines, "No confusions."]
    lines += ["| detected as | true class | detections |", "|---|---|---:|"]
    for (detected, true), count in confusions.most_common(limit):
        lines.append(f"| {names.get(detected, detected)} | {names.get(true, true)} | {count} |")
    return lines


def _missed_lines(
    snapshot: EvaluationSnapshot,
    matches: Mapping[int, Any],
    missed: Mapping[int, list],
    output_dir: str,
    image_root: str | os.PathLike | None,
    limit: int,
    min_score: float,
) -> list[str]:
    total = sum(len(v) for v in missed.values())
    num_novel = sum(
        1 for m in matches.values() for g in m.gt if g["category_id"] in snapshot.split.novel
    )
    lines = [
        "", "## Missed novel objects", "",
        f"{total} of {num_novel} novel objects have no detection of their class with score ≥ "
        f"{min_score} at IoU ≥ 0.5.",
    ]  # fmt: skip
    worst = sorted(missed, key=lambda i: (-len(missed[i]), i))[:limit]
    if not worst:
        return lines
    if image_root is None:
        return [*lines, "", "(No image folder given: the grid of images is not drawn.)"]
    from ovvision.data import ImageReadError, read_image

    files = {img["id"]: img["file_name"] for img in snapshot.gt_dataset["images"]}
    palette = ClassPalette()
    tiles, titles = [], []
    for image_id in worst:
        path = os.path.join(os.fspath(image_root), files[image_id])
        try:
            image = read_image(path, "RGB")
        except ImageReadError as e:
            logger.warning("Report grid: skipping %s", e)
            continue
        tiles.append(_draw_missed(image, matches[image_id], missed[image_id], snapshot, palette))
        titles.append(f"{os.path.basename(path)}: {len(missed[image_id])} missed")
    if tiles:
        plot_image_grid(tiles, titles, os.path.join(output_dir, "missed_novel.png"))
        lines += ["", "Boxes labelled with a class and a score are detections; boxes labelled "
                  "`MISSED` are novel objects that no detection found.", "",
                  "![missed novel objects](missed_novel.png)"]  # fmt: skip
    return lines


def _draw_missed(
    image: np.ndarray, match: Any, lost: list, snapshot: EvaluationSnapshot, palette: ClassPalette
) -> np.ndarray:
    names = snapshot.class_names
    items = [(f"MISSED {names[g['category_id']]}", g["bbox"], g["category_id"]) for g in lost]
    items += [
        (f"{names.get(d['category_id'], d['category_id'])} {d['score']:.2f}", d["bbox"],
         d["category_id"])
        for d in match.detections
    ]  # fmt: skip
    boxes = torch.tensor([[x, y, x + w, y + h] for _, (x, y, w, h), _ in items]).reshape(-1, 4)
    drawn = draw_instances(
        torch.from_numpy(image).permute(2, 0, 1),
        boxes,
        [label for label, _, _ in items],
        [0] * len(items),
        colors=[palette(names.get(c, str(c))) for _, _, c in items],
        min_size=DEFAULT_MIN_DRAW_SIZE,
    )
    return drawn.permute(1, 2, 0).numpy()


def write_evaluator_report(
    evaluator: Any,
    metrics: Mapping[str, Mapping[str, Any]],
    output_dir: str | os.PathLike,
    *,
    dataset_name: str | None = None,
    image_root: str | os.PathLike | None = None,
    min_score: float = 0.3,
) -> str:
    """The report of an evaluator's last ``evaluate()``.

    Args:
        evaluator: a COCO-format evaluator (with ``last_snapshot``: the full report); for any
            other (grounding, naming) the report of its metrics (:func:`write_metrics_report`).
        metrics: what its ``evaluate()`` returned.
        output_dir: the report folder.
        dataset_name: a registered dataset: its name titles the report and its metadata's
            ``image_root`` locates the images of the missed-objects grid.
        image_root: the images' folder, overriding the dataset's (None: the dataset's, if any).
        min_score: see :func:`write_detection_report`.

    Returns:
        The report's path.
    """
    snapshot = getattr(evaluator, "last_snapshot", None)
    if snapshot is None:
        logger.info(
            "%s keeps no per-class evaluation: its report holds its metrics only",
            type(evaluator).__name__,
        )
        title = f"Evaluation on {dataset_name}" if dataset_name else "Evaluation report"
        return write_metrics_report(metrics, output_dir, title=title)
    if image_root is None and dataset_name is not None:
        from ovvision.data.catalog import MetadataCatalog

        image_root = MetadataCatalog.get(dataset_name).get("image_root")
    title = f"Evaluation on {dataset_name or snapshot.gt_json}"
    return write_detection_report(
        snapshot, metrics, output_dir, title=title, image_root=image_root, min_score=min_score
    )


def write_metrics_report(
    metrics: Mapping[str, Mapping[str, Any]],
    output_dir: str | os.PathLike,
    *,
    title: str = "Evaluation report",
) -> str:
    """``report.md`` with every metric of every task and ``metrics_<task>.png``: the task's
    percentages (floats that are not counts) as bars; for evaluators without per-class results
    (grounding, naming). Returns the report's path."""
    output_dir = os.fspath(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    lines = [f"# {title}", ""]
    for task, values in metrics.items():
        bars = [
            (k, "", float(v))
            for k, v in values.items()
            if isinstance(v, float) and not math.isnan(v) and not k.startswith("num_")
        ]
        lines += [f"## {task} (percent, as in the evaluator's json)", ""]
        if bars:
            plot_per_class_ap(bars, os.path.join(output_dir, f"metrics_{task}.png"), "value")
            lines += [f"![{task} metrics](metrics_{task}.png)", ""]
        lines += ["| metric | value |", "|---|---:|"]
        lines += [f"| {k} | {_cell(v)} |" for k, v in values.items()]
        lines.append("")
    path = os.path.join(output_dir, REPORT_FILE)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    os.replace(tmp, path)
    logger.info("Evaluation report written to %s", path)
    return path
