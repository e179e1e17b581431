"""Shared machinery of evaluators whose ground truth is a COCO-format json (COCO, LVIS, OV-Shapes).

:class:`COCOFormatEvaluator` turns each image's predicted Instances into COCO results, gathers
them from every process onto the main one, checks that every image was scored exactly once,
writes the results file (sorted, atomically), and runs one COCO-style evaluation per task over all
classes. Subclasses choose the detection caps, the federated (LVIS) semantics and the metrics.
"""

from __future__ import annotations

import logging
import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from faster_coco_eval import COCOeval_faster

from ovvision.config import configurable
from ovvision.utils import comm

from .class_split import ClassSplit, resolve_class_split
from .coco_metrics import (
    IOU_TYPES,
    format_per_class_table,
    load_coco_gt,
    mean_over_classes,
    per_class_ap,
    run_coco_eval,
    summary_metrics,
)
from .coco_results import (
    COCOResult,
    cap_detections_per_image,
    instances_to_coco_results,
    output_instances,
    sort_results,
    write_json_atomic,
)
from .evaluator import DatasetEvaluator
from .snapshot import EvaluationSnapshot, TaskEvaluation

logger = logging.getLogger(__name__)


def metadata_arguments(dataset_name: str) -> dict[str, Any]:
    """Constructor arguments of a COCO-format evaluator read from ``MetadataCatalog``."""
    from ovvision.data.catalog import MetadataCatalog

    meta = MetadataCatalog.get(dataset_name)
    json_file = getattr(meta, "json_file", None)
    if not json_file:
        raise KeyError(f"Metadata of dataset '{dataset_name}' has no 'json_file' to evaluate with")
    return {
        "gt_json": json_file,
        "thing_classes": getattr(meta, "thing_classes", None),
        "dataset_id_to_contiguous_id": getattr(meta, "thing_dataset_id_to_contiguous_id", None),
        "base_classes": getattr(meta, "base_classes", None),
        "novel_classes": getattr(meta, "novel_classes", None),
    }


class COCOFormatEvaluator(DatasetEvaluator):
    """Base of the COCO-format evaluators (see the module docstring).

    Metrics are percentages (0-100, like detectron2); a metric with no ground truth to measure is
    NaN. Besides metrics, each task's dict holds counts: ``num_images``, ``num_images_unreadable``
    (images whose file could not be read: scored with no detections, so their ground truth counts
    as missed; see :meth:`process_unreadable`), ``max_dets_per_image``
    (-1: no cap), ``num_dets_over_cap`` (detections the cap removed), ``num_classes_without_gt``
    (classes left out of every class average) and, with a class split, ``num_classes_base`` /
    ``num_classes_novel`` (the classes averaged in each).

    Args:
        gt_json: the COCO-format ground-truth json.
        thing_classes: class names in contiguous-id order (default: the json's category names in
            the order of ``dataset_id_to_contiguous_id``).
        dataset_id_to_contiguous_id: json category id -> contiguous id the model predicts
            (default: the json's category ids in increasing order -> 0, 1, ...).
        base_classes, novel_classes: class names of the split; one may be None ("all others");
            both None: the categories' ``split`` fields, if any.
        max_dets_per_image: keep each image's highest-scoring detections up to this many (None:
            no cap; the COCO API still caps each image-and-class at 100).
        tasks: subset of ("bbox", "segm"); default: "bbox", plus "segm" when the predictions
            have ``pred_masks`` and every ground-truth annotation has a ``segmentation``.
        output_dir: where the main process writes the results file (None: not written).

    Subclasses define ``from_config(cls, cfg, dataset_name, output_dir=None)``, so that
    ``Evaluator(cfg, dataset_name, output_dir)`` reads the dataset's metadata and the config.
    """

    results_file_name = "coco_instances_results.json"
    lvis_style = False

    @configurable
    def __init__(
        self,
        *,
        gt_json: str | os.PathLike,
        thing_classes: Sequence[str] | None = None,
        dataset_id_to_contiguous_id: Mapping[int, int] | None = None,
        base_classes: Sequence[str] | None = None,
        novel_classes: Sequence[str] | None = None,
        max_dets_per_image: int | None = 100,
        tasks: Sequence[str] | None = None,
        output_dir: str | os.PathLike | None = None,
    ):
        self._gt_json = os.fspath(gt_json)
        self._coco_gt = load_coco_gt(self._gt_json)
        self._validate_gt()
        categories = self._coco_gt.dataset["categories"]
        gt_names = {int(c["id"]): str(c.get("name", c["id"])) for c in categories}
        self._to_contiguous = self._resolve_id_map(dataset_id_to_contiguous_id, gt_names)
        self._to_dataset_id = {v: k for k, v in self._to_contiguous.items()}
        self._class_names = dict(gt_names)
        if thing_classes is not None:
            if len(thing_classes) != len(self._to_contiguous):
                raise ValueError(
                    f"{len(thing_classes)} thing_classes but {len(self._to_contiguous)} ids in "
                    f"dataset_id_to_contiguous_id for {self._gt_json}"
                )
            for dataset_id, contiguous in self._to_contiguous.items():
                self._class_names[dataset_id] = thing_classes[contiguous]
        self._split = resolve_class_split(
            self._class_names, base_classes, novel_classes, categories, self._gt_json
        )
        if max_dets_per_image is not None and max_dets_per_image < 1:
            raise ValueError(f"max_dets_per_image must be >= 1 or None, got {max_dets_per_image}")
        self._max_dets_per_image = max_dets_per_image
        unknown_tasks = set(tasks or ()) - set(IOU_TYPES)
        if unknown_tasks:
            raise ValueError(f"Unknown tasks {sorted(unknown_tasks)}; expected some of {IOU_TYPES}")
        self._tasks = tuple(tasks) if tasks else None
        self._output_dir = os.fspath(output_dir) if output_dir is not None else None
        self.reset()

    def _resolve_id_map(
        self, id_map: Mapping[int, int] | None, gt_names: dict[int, str]
    ) -> dict[int, int]:
        if id_map is None:
            return {cat_id: i for i, cat_id in enumerate(sorted(gt_names))}
        resolved = {int(k): int(v) for k, v in id_map.items()}
        missing = sorted(set(resolved) - set(gt_names))
        if missing:
            raise ValueError(
                f"dataset_id_to_contiguous_id has category ids {missing} that {self._gt_json} lacks"
            )
        if sorted(resolved.values()) != list(range(len(resolved))):
            raise ValueError("dataset_id_to_contiguous_id values must be 0..K-1, each once")
        unpredictable = sorted(set(gt_names) - set(resolved))
        if unpredictable:
            logger.warning(
                f"Categories {unpredictable} of {self._gt_json} have no contiguous id: the model "
                f"cannot predict them, and they count with AP 0"
            )
        return resolved

    def _validate_gt(self) -> None:
        """Raise if the ground truth lacks what this evaluator needs (overridden by LVIS)."""

    def reset(self) -> None:
        self._image_ids: list[int] = []
        self._results: list[COCOResult] = []
        self._num_over_cap = 0
        self._has_masks = False
        self._unreadable: list[str] = []
        # what the last evaluate() computed, for reports (ovvision.reports)
        self.last_snapshot: EvaluationSnapshot | None = None

    def process(self, inputs: list[dict[str, Any]], outputs: list[Any]) -> None:
        """Convert each image's predicted Instances (see
        :func:`~ovvision.evaluation.coco_results.instances_to_coco_results`) to COCO results.

        Args:
            inputs: mapper dicts with ``image_id`` and the original ``height`` and ``width``.
            outputs: per image, Instances or ``{"instances": Instances}`` in original image
                coordinates.
        """
        if len(inputs) != len(outputs):
            raise ValueError(f"{len(inputs)} inputs but {len(outputs)} outputs in a batch")
        for inp, out in zip(inputs, outputs):
            if "image_id" not in inp:
                raise KeyError(f"An input has no 'image_id' (keys: {sorted(inp)})")
            image_id = int(inp["image_id"])
            instances = output_instances(out, image_id)
            size = (inp["height"], inp["width"]) if "height" in inp and "width" in inp else None
            results, removed = instances_to_coco_results(
                instances, image_id, self._to_dataset_id, self._max_dets_per_image, size
            )
            self._image_ids.append(image_id)
            self._results.extend(results)
            self._num_over_cap += removed
            self._has_masks = self._has_masks or instances.has("pred_masks")

    def process_unreadable(self, inputs: list[dict[str, Any]]) -> None:
        """Keep images whose file could not be read in the evaluated set, with no detections.

        Args:
            inputs: dicts with ``image_id`` and ``file_name``.
        """
        for inp in inputs:
            if "image_id" not in inp:
                raise KeyError(f"An unreadable image has no 'image_id' (keys: {sorted(inp)})")
            self._image_ids.append(int(inp["image_id"]))
            self._unreadable.append(str(inp.get("file_name", inp["image_id"])))

    def evaluate(self) -> dict[str, Any]:
        """Gather from every process; metrics on the main process, ``{}`` on the others."""
        comm.synchronize()
        local = (
            self._image_ids,
            self._results,
            self._num_over_cap,
            self._has_masks,
            self._unreadable,
        )
        gathered = comm.gather(local, dst=0)
        if not comm.is_main_process():
            return {}
        image_ids = [i for part in gathered for i in part[0]]
        duplicates = sorted(i for i, n in Counter(image_ids).items() if n > 1)
        if duplicates:
            raise ValueError(
                f"Images {duplicates[:10]} were processed more than once (over "
                f"{len(gathered)} process(es)); distributed inference must give every image to "
                f"exactly one process (an inference sampler, not a padding DistributedSampler)"
            )
        if not image_ids:
            raise ValueError(f"No images were processed; nothing to evaluate on {self._gt_json}")
        results = [r for part in gathered for r in part[1]]
        tasks = self._tasks or ("bbox",)
        if self._tasks is None and any(part[3] for part in gathered):
            if self._gt_has_masks():
                tasks = ("bbox", "segm")
            else:
                logger.warning(f"No segm evaluation: {self._gt_json} has annotations without masks")
        num_over_cap = sum(part[2] for part in gathered)
        unreadable = sorted(f for part in gathered for f in part[4])
        if unreadable:
            logger.warning(
                f"{len(unreadable)} of {len(image_ids)} images could not be read; their ground "
                f"truth counts as missed: {unreadable}"
            )
        return self._evaluate(results, tasks, image_ids, num_over_cap, len(unreadable))

    def evaluate_results(
        self,
        results: list[COCOResult],
        tasks: Sequence[str] = ("bbox",),
        image_ids: Sequence[int] | None = None,
    ) -> dict[str, dict[str, float]]:
        """Evaluate COCO results made elsewhere (e.g. a results file of another system).

        The per-image cap (and, for LVIS fixed AP, the per-class cap) is applied as for
        predictions passed through :meth:`process`.

        Args:
            results: COCO results with the json's category ids.
            tasks: iou types to evaluate.
            image_ids: images to evaluate (default: every image of the ground truth).
        """
        return self._evaluate(list(results), tuple(tasks), image_ids, 0)

    def _evaluate(
        self,
        results: list[COCOResult],
        tasks: tuple[str, ...],
        image_ids: Sequence[int] | None,
        num_over_cap: int,
        num_unreadable: int = 0,
    ) -> dict[str, dict[str, float]]:
        self._check_ids(results, image_ids)
        results, removed = cap_detections_per_image(results, self._max_dets_per_image)
        results, info = self._select_results(results)
        info.update(
            num_images=len(image_ids) if image_ids is not None else len(self._coco_gt.imgs),
            num_images_unreadable=num_unreadable,
            max_dets_per_image=self._max_dets_per_image or -1,
            num_dets_over_cap=num_over_cap + removed,
        )
        results = sort_results(results)
        if self._output_dir is not None:
            path = os.path.join(self._output_dir, self.results_file_name)
            write_json_atomic(path, results)
            logger.info(f"Wrote {len(results)} detections to {path}")
        cap = self._max_dets_per_image
        removed_text = f"{info['num_dets_over_cap']} removed by the cap"
        cap_text = f"at most {cap} per image ({removed_text})" if cap else "no per-image cap"
        logger.info(
            f"Evaluating {len(results)} detections on {info['num_images']} images of "
            f"{self._gt_json}; {cap_text}"
        )
        metrics = {}
        evaluations: dict[str, TaskEvaluation] = {}
        for task in tasks:
            self._check_task(task, results)
            evaluation = run_coco_eval(
                self._coco_gt, results, task, self._max_dets(), image_ids, self.lvis_style
            )
            metrics[task] = {**self._task_metrics(evaluation, task), **info}
            evaluations[task] = TaskEvaluation.from_coco_eval(evaluation)
            logger.info(f"{task} metrics (percent):\n" + _format_metrics(metrics[task]))
        self.last_snapshot = EvaluationSnapshot(
            gt_json=self._gt_json,
            gt_dataset=self._coco_gt.dataset,
            class_names=dict(self._class_names),
            split=self._split,
            results=results,
            image_ids=sorted(set(image_ids)) if image_ids is not None else None,
            tasks=evaluations,
        )
        return metrics

    def _check_ids(self, results: list[COCOResult], image_ids: Sequence[int] | None) -> None:
        known_images = self._coco_gt.imgs
        unknown_images = sorted({int(i) for i in image_ids or ()} - set(known_images))
        unknown_images += sorted({r["image_id"] for r in results} - set(known_images))
        if unknown_images:
            raise ValueError(f"Image ids {unknown_images[:10]} are not in {self._gt_json}")
        if image_ids is not None:
            stray = sorted({r["image_id"] for r in results} - set(image_ids))
            if stray:
                raise ValueError(f"Results for image ids {stray[:10]} that were not processed")
        unknown_cats = sorted({r["category_id"] for r in results} - set(self._class_names))
        if unknown_cats:
            raise ValueError(f"Results have category ids {unknown_cats} that {self._gt_json} lacks")

    def _gt_has_masks(self) -> bool:
        return all(a.get("segmentation") for a in self._coco_gt.dataset["annotations"])

    def _check_task(self, task: str, results: list[COCOResult]) -> None:
        if task != "segm":
            return
        if not self._gt_has_masks():
            raise ValueError(
                f"segm evaluation needs a 'segmentation' on every annotation of {self._gt_json}"
            )
        if any("segmentation" not in r for r in results):
            raise ValueError("segm evaluation needs a 'segmentation' in every result")

    def _max_dets(self) -> list[int]:
        """maxDets of the COCO API evaluation (AP uses the last): 1, 10 and the per-image cap
        (COCO's 100 without a cap)."""
        cap = self._max_dets_per_image or 100
        return [m for m in (1, 10) if m < cap] + [cap]

    def _select_results(self, results: list[COCOResult]) -> tuple[list[COCOResult], dict]:
        """Hook to drop results before evaluation; returns them and counts to report."""
        return results, {}

    def _task_metrics(self, evaluation: COCOeval_faster, task: str) -> dict[str, float]:
        """Summary metrics of one task; subclasses add their own."""
        return summary_metrics(evaluation)

    def _class_metrics(self, evaluation: COCOeval_faster, task: str, key: str) -> dict[str, float]:
        """``{key}-base`` / ``{key}-novel`` (key "AP" or "AP50"): means over each split's classes
        that have ground truth (classes without it are left out and counted); logs the per-class
        table."""
        per_class = per_class_ap(evaluation)
        values = {c: ap if key == "AP" else ap50 for c, (ap, ap50) in per_class.items()}
        split = self._split or ClassSplit(frozenset(), frozenset())
        logger.info(
            f"Per-class {task} AP (percent) on {self._gt_json}:\n"
            + format_per_class_table(
                self._class_names, per_class, {c: split.name_of(c) for c in per_class}
            )
        )
        without_gt = sorted(c for c, (ap, _) in per_class.items() if math.isnan(ap))
        metrics: dict[str, float] = {"num_classes_without_gt": len(without_gt)}
        if without_gt:
            names = [self._class_names[c] for c in without_gt]
            logger.info(f"{len(names)} classes have no ground truth and are left out: {names}")
        if self._split is None:
            return metrics
        for name, ids in (("base", split.base), ("novel", split.novel)):
            mean, count = mean_over_classes(values, ids)
            metrics[f"{key}-{name}"] = mean
            metrics[f"num_classes_{name}"] = count
        return metrics


def _format_metrics(metrics: Mapping[str, float]) -> str:
    width = max(len(k) for k in metrics)
    return "\n".join(
        f"  {k:<{width}}  {v:.3f}" if isinstance(v, float) else f"  {k:<{width}}  {v}"
        for k, v in metrics.items()
    )
