"""Evaluation: the evaluator protocol, inference over a dataset, COCO/LVIS open-vocabulary AP.

The explicit imports below register every evaluator type ("coco_ov", "lvis_ov", "grounding") in
``EVALUATOR_REGISTRY``, so :func:`build_evaluator` finds them once this package is imported.
"""

from .captioning import CAPTION_RESULTS_FILE, CaptionEvaluator, evaluate_caption_files
from .class_split import ClassSplit, resolve_class_split
from .coco_format import COCOFormatEvaluator, metadata_arguments
from .coco_ov import COCOOpenVocabEvaluator
from .coco_results import (
    EVAL_RESULTS_FILE,
    instances_to_coco_results,
    save_eval_results,
    sort_results,
    write_json_atomic,
    write_metrics_json,
)
from .evaluator import (
    EVALUATOR_REGISTRY,
    DatasetEvaluator,
    DatasetEvaluators,
    build_evaluator,
    inference_on_dataset,
)
from .grounding import (
    GROUNDING_RESULTS_FILE,
    GroundingEvaluator,
    grounding_metrics,
    grounding_targets,
    read_grounding_results,
)
from .lvis_ov import LVISOpenVocabEvaluator
from .naming import NamingEvaluator

__all__ = [
    "CAPTION_RESULTS_FILE",
    "EVALUATOR_REGISTRY",
    "EVAL_RESULTS_FILE",
    "GROUNDING_RESULTS_FILE",
    "COCOFormatEvaluator",
    "CaptionEvaluator",
    "COCOOpenVocabEvaluator",
    "ClassSplit",
    "DatasetEvaluator",
    "DatasetEvaluators",
    "GroundingEvaluator",
    "LVISOpenVocabEvaluator",
    "NamingEvaluator",
    "build_evaluator",
    "evaluate_caption_files",
    "grounding_metrics",
    "grounding_targets",
    "inference_on_dataset",
    "instances_to_coco_results",
    "metadata_arguments",
    "read_grounding_results",
    "resolve_class_split",
    "save_eval_results",
    "sort_results",
    "write_json_atomic",
    "write_metrics_json",
]
