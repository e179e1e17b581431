"""Visual grounding evaluation: Acc@0.5 overall, on base/novel categories and by object size, and
recall@k of the top-k boxes (phrase localisation), as OV-VG reports them.

An expression is grounded correctly when the IoU of the model's top-1 box with its target box is
at least 0.5 (exactly 0.5 counts). Recall@k: one of the first k boxes reaches 0.5. Sizes follow
COCO's area ranges on the target box (small < 32², medium < 96², large). An expression with no
prediction (its image unreadable, or the model returned none) counts as missed.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ovvision.utils import comm

from .box_iou import iou_xywh
from .coco_results import write_json_atomic
from .evaluator import EVALUATOR_REGISTRY, DatasetEvaluator

logger = logging.getLogger(__name__)

__all__ = [
    "GROUNDING_RESULTS_FILE",
    "GroundingEvaluator",
    "GroundingTarget",
    "grounding_metrics",
    "grounding_targets",
    "read_grounding_results",
]

GROUNDING_RESULTS_FILE = "grounding_results.json"
RECALL_KS = (1, 5, 10)
SIZE_RANGES = (("small", 0.0, 32.0**2), ("medium", 32.0**2, 96.0**2), ("large", 96.0**2, 1e10))

ResultKey = tuple[int, Any, str]  # (image_id, ann_id, text)


@dataclass(frozen=True)
class GroundingTarget:
    """One expression to ground.

    Attributes:
        image_id, ann_id, text: identify it (results are matched on all three).
        bbox: target box (x, y, w, h) in the original image's pixels.
        split: "novel" for a novel class of the dataset, else "base" (as the COCO-OV split).
    """

    image_id: int
    ann_id: Any
    text: str
    bbox: tuple[float, float, float, float]
    split: str

    @property
    def key(self) -> ResultKey:
        return (self.image_id, self.ann_id, self.text)


def grounding_targets(
    dataset_dicts: Iterable[dict[str, Any]],
    thing_classes: Sequence[str],
    novel_classes: Iterable[str],
) -> list[GroundingTarget]:
    """The targets of dataset dicts with ``expressions`` (as the refexp loaders produce).

    Args:
        dataset_dicts: dicts with ``image_id`` and ``expressions`` (``text``, ``ann_id``,
            ``bbox`` XYWH, ``category_id`` contiguous).
        thing_classes: names indexed by contiguous category id.
        novel_classes: names of the novel classes; the others are base.
    """
    novel = set(novel_classes)
    targets = []
    for record in dataset_dicts:
        for expr in record.get("expressions", []):
            name = thing_classes[expr["category_id"]]
            targets.append(
                GroundingTarget(
                    int(record["image_id"]),
                    expr["ann_id"],
                    expr["text"],
                    tuple(float(v) for v in expr["bbox"]),
                    "novel" if name in novel else "base",
                )
            )
    return targets


def _percent(hits: int, total: int) -> float:
    return 100.0 * hits / total if total else float("nan")


def grounding_metrics(
    targets: Sequence[GroundingTarget],
    results: Sequence[dict[str, Any]],
    iou_threshold: float = 0.5,
) -> dict[str, float]:
    """Acc@0.5 (overall, base, novel, small/medium/large) and recall@1/5/10, in percent.

    Args:
        targets: the expressions to ground.
        results: dicts with ``image_id``, ``ann_id``, ``text`` and ``bbox`` (the ranked boxes,
            each XYWH); results of expressions not in ``targets`` are counted and ignored.
        iou_threshold: IoU a box needs to count.

    Returns:
        ``Acc@0.5``, ``Acc@0.5-base``, ``Acc@0.5-novel``, ``Acc@0.5-small``, ``-medium``,
        ``-large``, ``R@1``, ``R@5``, ``R@10`` (NaN for an empty group) and the counts
        ``num_expressions``, ``num_base``, ``num_novel``, ``num_without_prediction``,
        ``num_unmatched_results``.
    """
    by_key = {(r["image_id"], r["ann_id"], r["text"]): r["bbox"] for r in results}
    wanted = {t.key for t in targets}
    groups: dict[str, list[bool]] = {"all": [], "base": [], "novel": []}
    groups.update({name: [] for name, _, _ in SIZE_RANGES})
    recalls: dict[int, list[bool]] = {k: [] for k in RECALL_KS}
    missing = 0
    for t in targets:
        boxes = by_key.get(t.key)
        if boxes is None:
            missing += 1
            boxes = []
        hits = (iou_xywh(boxes, [t.bbox])[:, 0] >= iou_threshold).tolist()
        top1 = bool(hits[:1]) and hits[0]
        groups["all"].append(top1)
        groups[t.split].append(top1)
        area = t.bbox[2] * t.bbox[3]
        size = next(name for name, lo, hi in SIZE_RANGES if lo <= area < hi)
        groups[size].append(top1)
        for k in RECALL_KS:
            recalls[k].append(any(hits[:k]))
    metrics = {
        "Acc@0.5" if name == "all" else f"Acc@0.5-{name}": _percent(sum(v), len(v))
        for name, v in groups.items()
    }
    metrics.update({f"R@{k}": _percent(sum(v), len(v)) for k, v in recalls.items()})
    metrics.update(
        num_expressions=len(targets),
        num_base=len(groups["base"]),
        num_novel=len(groups["novel"]),
        num_without_prediction=missing,
        num_unmatched_results=sum(1 for key in by_key if key not in wanted),
    )
    return metrics


def read_grounding_results(path: str) -> list[dict[str, Any]]:
    """A ``grounding_results.json`` (a list of results), checked; errors name the file."""
    import json

    with open(path, encoding="utf-8") as f:
        try:
            results = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"grounding results '{path}' is not valid json: {e}") from None
    if not isinstance(results, list):
        raise ValueError(
            f"grounding results '{path}' must hold a list, got {type(results).__name__}"
        )
    for i, r in enumerate(results):
        missing = {"image_id", "ann_id", "text", "bbox"} - set(r)
        if missing:
            raise ValueError(f"grounding results '{path}': entry {i} lacks {sorted(missing)}")
    return results


class GroundingEvaluator(DatasetEvaluator):
    """Scores the outputs of a grounding model (``OVGrounder``) on a referring-expression dataset.

    The model returns per image ``{"expressions": [{"text", "ann_id", "instances"}]}`` with ranked
    ``pred_boxes`` and ``scores``. ``evaluate()`` returns ``{"grounding": metrics}`` (see
    :func:`grounding_metrics`) and writes every result to ``output_dir/grounding_results.json``
    (sorted, so reruns give the same bytes).

    Args:
        targets: the expressions of the dataset.
        output_dir: where the results file goes (None: not written).
        max_boxes: boxes kept per expression in the results (the largest recall k).
    """

    def __init__(
        self,
        targets: Sequence[GroundingTarget],
        output_dir: str | None = None,
        max_boxes: int = max(RECALL_KS),
    ):
        self.targets = list(targets)
        self.output_dir = output_dir
        self.max_boxes = max_boxes
        self._results: list[dict[str, Any]] = []

    @classmethod
    def from_dataset(cls, dataset_name: str, output_dir: str | None = None) -> GroundingEvaluator:
        """Targets from the registered dataset's dicts; the split from its metadata."""
        from ovvision.data.catalog import DatasetCatalog, MetadataCatalog

        meta = MetadataCatalog.get(dataset_name)
        targets = grounding_targets(
            DatasetCatalog.get(dataset_name), meta.thing_classes, meta.novel_classes
        )
        return cls(targets, output_dir)

    def reset(self) -> None:
        self._results = []

    def process(self, inputs: list[dict[str, Any]], outputs: list[Any]) -> None:
        for item, output in zip(inputs, outputs):
            for expr in output["expressions"]:
                instances = expr["instances"].to("cpu")
                xyxy = instances.pred_boxes.tensor[: self.max_boxes].tolist()
                self._results.append(
                    {
                        "image_id": int(item["image_id"]),
                        "ann_id": expr["ann_id"],
                        "text": expr["text"],
                        "bbox": [[round(v, 3) for v in (x1, y1, x2 - x1, y2 - y1)]
                                 for x1, y1, x2, y2 in xyxy],
                        "score": [round(float(s), 5) for s in instances.scores[: self.max_boxes]],
                    }
                )  # fmt: skip

    def process_unreadable(self, inputs: list[dict[str, Any]]) -> None:
        """Nothing to record: their expressions have no result and count as missed."""

    def evaluate(self) -> dict[str, Any]:
        gathered = comm.gather(self._results, dst=0)
        if not comm.is_main_process():
            return {}
        results = sorted(
            itertools.chain.from_iterable(gathered),
            key=lambda r: (r["image_id"], str(r["ann_id"]), r["text"]),
        )
        if self.output_dir:
            os.makedirs(self.output_dir, exist_ok=True)
            path = os.path.join(self.output_dir, GROUNDING_RESULTS_FILE)
            write_json_atomic(path, results)
            logger.info("Grounding results written to %s", path)
        metrics = grounding_metrics(self.targets, results)
        logger.info(
            "Grounding: " + ", ".join(f"{k}={v:.2f}" for k, v in metrics.items() if "@" in k)
        )
        return {"grounding": metrics}


@EVALUATOR_REGISTRY.register()
def grounding(cfg: Any, dataset_name: str, output_dir: str | None = None) -> GroundingEvaluator:
    """The evaluator of ``evaluator_type="grounding"`` (referring-expression datasets)."""
    return GroundingEvaluator.from_dataset(dataset_name, output_dir)
