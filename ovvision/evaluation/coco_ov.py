"""Open-vocabulary COCO evaluation: one generalized run over all classes, AP50 on base and novel."""

from __future__ import annotations

from typing import Any

from faster_coco_eval import COCOeval_faster

from .coco_format import COCOFormatEvaluator, metadata_arguments
from .coco_metrics import summary_metrics
from .evaluator import EVALUATOR_REGISTRY


class COCOOpenVocabEvaluator(COCOFormatEvaluator):
    """COCO box and mask AP of an open-vocabulary detector, with AP50 on base and novel classes.

    All classes are scored in ONE evaluation (the "generalized" setting: a novel-class detection
    competes with base-class ones), then ``AP50-base`` and ``AP50-novel`` average the per-class
    AP50 over each split's classes that have ground truth; classes without ground truth are left
    out explicitly and counted in ``num_classes_without_gt``.

    ``evaluate()`` returns, in percent (0-100, like detectron2; NaN where undefined)::

        {"bbox": {"AP", "AP50", "AP75", "APs", "APm", "APl", "AR@1", "AR@10", "AR@100",
                  "ARs@100", "ARm@100", "ARl@100", "AP50-base", "AP50-novel", <counts>},
         "segm": {...same...}}   # "segm" when the predictions have pred_masks

    where the counts are those of :class:`~ovvision.evaluation.coco_format.COCOFormatEvaluator`.
    Split keys are present when a split is known. The per-class AP/AP50 table is logged.

    Construct from explicit arguments (see :class:`COCOFormatEvaluator`; ``max_dets_per_image``
    defaults to COCO's 100), from a config and a registered dataset
    (``COCOOpenVocabEvaluator(cfg, dataset_name, output_dir)``), or from a dataset name alone
    (:meth:`from_dataset`).
    """

    @classmethod
    def from_config(
        cls, cfg: Any, dataset_name: str, output_dir: str | None = None
    ) -> dict[str, Any]:
        return {
            **metadata_arguments(dataset_name),
            "max_dets_per_image": cfg.TEST.DETECTIONS_PER_IMAGE,
            "output_dir": output_dir,
        }

    @classmethod
    def from_dataset(cls, dataset_name: str, **kwargs: Any) -> COCOOpenVocabEvaluator:
        """Build from ``MetadataCatalog.get(dataset_name)``; ``kwargs`` override arguments."""
        return cls(**{**metadata_arguments(dataset_name), **kwargs})

    def _task_metrics(self, evaluation: COCOeval_faster, task: str) -> dict[str, float]:
        return {**summary_metrics(evaluation), **self._class_metrics(evaluation, task, "AP50")}


@EVALUATOR_REGISTRY.register()
def coco_ov(*args: Any, **kwargs: Any) -> COCOOpenVocabEvaluator:
    """The evaluator of ``evaluator_type="coco_ov"``: :class:`COCOOpenVocabEvaluator` built from
    ``(cfg, dataset_name, output_dir)`` or from its keyword arguments."""
    return COCOOpenVocabEvaluator(*args, **kwargs)
