"""Open-vocabulary LVIS evaluation: federated AP with APr/APc/APf, and the fixed-AP protocol."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

from faster_coco_eval import COCOeval_faster

from ovvision.config import configurable

from .coco_format import COCOFormatEvaluator, metadata_arguments
from .coco_metrics import mean_over_classes, per_class_ap, summary_metrics
from .coco_results import COCOResult, cap_detections_per_class
from .evaluator import EVALUATOR_REGISTRY

logger = logging.getLogger(__name__)

_FREQUENCIES = ("r", "c", "f")


class LVISOpenVocabEvaluator(COCOFormatEvaluator):
    """LVIS box and mask AP with federated semantics, frequency groups and optional fixed AP.

    Federated semantics (as lvis-api): in each image, only the categories verified present (with
    ground truth) or absent (``neg_category_ids``) are scored; other detections are ignored, and
    unmatched detections of a category in the image's ``not_exhaustive_category_ids`` are not
    false positives. Evaluation runs in faster-coco-eval's ``lvis_style`` mode (tests cross-check
    it against lvis-api).

    Standard mode keeps each image's 300 best detections. Fixed-AP mode (Dave et al., 2021) has
    no per-image cap and keeps each category's ``max_dets_per_class`` (10,000) best detections
    over the dataset, so AP no longer depends on how a model spreads detections over images; the
    model must then not cap detections per image either.

    ``evaluate()`` returns, per task ("bbox", and "segm" when predictions have masks), in percent
    (NaN where undefined): AP, AP50, AP75, APs, APm, APl, APr, APc, APf, ``AR@k``, ``ARs@k`` ...
    (k = 300, or ``max_dets_per_class`` in fixed-AP mode), ``AP-base``/``AP-novel`` when a class
    split is known, and the counts of :class:`COCOFormatEvaluator` (plus, in fixed-AP mode,
    ``max_dets_per_class`` and ``num_dets_over_class_cap``).

    Args:
        fixed_ap: use the fixed-AP protocol (``max_dets_per_image`` is then ignored).
        max_dets_per_class: the per-category cap of fixed-AP mode.
        Others: see :class:`COCOFormatEvaluator`; ``max_dets_per_image`` defaults to 300.
    """

    results_file_name = "lvis_instances_results.json"
    lvis_style = True

    @configurable
    def __init__(
        self,
        *,
        gt_json: str | os.PathLike,
        thing_classes: Sequence[str] | None = None,
        dataset_id_to_contiguous_id: Mapping[int, int] | None = None,
        base_classes: Sequence[str] | None = None,
        novel_classes: Sequence[str] | None = None,
        max_dets_per_image: int | None = 300,
        fixed_ap: bool = False,
        max_dets_per_class: int = 10000,
        tasks: Sequence[str] | None = None,
        output_dir: str | os.PathLike | None = None,
    ):
        if max_dets_per_class < 1:
            raise ValueError(f"max_dets_per_class must be >= 1, got {max_dets_per_class}")
        if fixed_ap and max_dets_per_image is not None:
            logger.info(
                f"Fixed-AP LVIS evaluation: no per-image cap (max_dets_per_image="
                f"{max_dets_per_image} ignored), at most {max_dets_per_class} detections per class"
            )
        elif max_dets_per_image != 300:
            logger.warning(
                f"LVIS evaluation with {max_dets_per_image} detections per image; the standard "
                f"protocol keeps 300 (set TEST.DETECTIONS_PER_IMAGE: 300 in LVIS configs)"
            )
        self._fixed_ap = fixed_ap
        self._max_dets_per_class = max_dets_per_class
        super().__init__(
            gt_json=gt_json,
            thing_classes=thing_classes,
            dataset_id_to_contiguous_id=dataset_id_to_contiguous_id,
            base_classes=base_classes,
            novel_classes=novel_classes,
            max_dets_per_image=None if fixed_ap else max_dets_per_image,
            tasks=tasks,
            output_dir=output_dir,
        )

    @classmethod
    def from_config(
        cls, cfg: Any, dataset_name: str, output_dir: str | None = None
    ) -> dict[str, Any]:
        return {
            **metadata_arguments(dataset_name),
            "max_dets_per_image": cfg.TEST.DETECTIONS_PER_IMAGE,
            "fixed_ap": cfg.TEST.LVIS_FIXED_AP,
            "output_dir": output_dir,
        }

    @classmethod
    def from_dataset(cls, dataset_name: str, **kwargs: Any) -> LVISOpenVocabEvaluator:
        """Build from ``MetadataCatalog.get(dataset_name)``; ``kwargs`` override arguments."""
        return cls(**{**metadata_arguments(dataset_name), **kwargs})

    def _validate_gt(self) -> None:
        for category in self._coco_gt.dataset["categories"]:
            if category.get("frequency") not in _FREQUENCIES:
                raise ValueError(
                    f"Category {category.get('id')} of {self._gt_json} has frequency "
                    f"{category.get('frequency')!r}; LVIS evaluation needs one of {_FREQUENCIES}"
                )
        for image in self._coco_gt.dataset["images"]:
            for key in ("neg_category_ids", "not_exhaustive_category_ids"):
                if not isinstance(image.get(key), list):
                    raise ValueError(
                        f"Image {image.get('id')} of {self._gt_json} has no '{key}' list; "
                        f"LVIS evaluation needs it on every image"
                    )

    def _max_dets(self) -> list[int]:
        return [self._max_dets_per_class if self._fixed_ap else self._max_dets_per_image or 300]

    def _select_results(self, results: list[COCOResult]) -> tuple[list[COCOResult], dict]:
        if not self._fixed_ap:
            return results, {}
        results, removed = cap_detections_per_class(results, self._max_dets_per_class)
        return results, {
            "max_dets_per_class": self._max_dets_per_class,
            "num_dets_over_class_cap": removed,
        }

    def _task_metrics(self, evaluation: COCOeval_faster, task: str) -> dict[str, float]:
        metrics = summary_metrics(evaluation)
        ap = {c: v[0] for c, v in per_class_ap(evaluation).items()}
        categories = self._coco_gt.dataset["categories"]
        for frequency in _FREQUENCIES:
            ids = [c["id"] for c in categories if c["frequency"] == frequency]
            metrics[f"AP{frequency}"] = mean_over_classes(ap, ids)[0]
        return {**metrics, **self._class_metrics(evaluation, task, "AP")}


@EVALUATOR_REGISTRY.register()
def lvis_ov(*args: Any, **kwargs: Any) -> LVISOpenVocabEvaluator:
    """The evaluator of ``evaluator_type="lvis_ov"``: :class:`LVISOpenVocabEvaluator` built from
    ``(cfg, dataset_name, output_dir)`` or from its keyword arguments."""
    return LVISOpenVocabEvaluator(*args, **kwargs)
