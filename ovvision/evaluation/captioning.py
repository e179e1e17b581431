"""Generated captions: BLEU-4 and CIDEr-D (pycocoevalcap's Python scorers) and object mentions.

pycocoevalcap's ``PTBTokenizer`` runs Java; here captions are tokenised in Python instead (the
words of :func:`~ovvision.modeling.text.caption_nouns.caption_words`: NFKC, lower case,
punctuation dropped), then its ``Bleu(4)`` and ``Cider`` (which is CIDEr-D: Gaussian length
penalty, clipped counts) score them. Scores are reported x100, as papers do.

Object mentions: the vocabulary classes a generated caption names (the same noun matching as the
grounding loss) against the classes annotated in the image, with precision and recall for base
and novel classes apart (micro-averaged over images).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider

from ovvision.modeling.text.caption_nouns import NounExtractor, caption_words
from ovvision.structures import ClassList
from ovvision.utils import comm

from .coco_results import write_json_atomic
from .evaluator import DatasetEvaluator

__all__ = [
    "CAPTION_RESULTS_FILE",
    "CaptionEvaluator",
    "caption_outputs",
    "caption_scores",
    "evaluate_caption_files",
    "object_mention_metrics",
    "scoring_text",
]

logger = logging.getLogger(__name__)

CAPTION_RESULTS_FILE = "caption_results.json"


def scoring_text(caption: str) -> str:
    """The caption as the scorers see it: its lower-case words joined by spaces."""
    return " ".join(caption_words(caption))


def caption_scores(
    references: Mapping[Any, Sequence[str]], predictions: Mapping[Any, str]
) -> dict[str, float]:
    """BLEU-4 and CIDEr-D (x100) of one predicted caption per image against its references.

    Args:
        references: per image id its ground-truth captions.
        predictions: per image id the generated caption.

    Raises:
        ValueError: no prediction, or a predicted image without reference captions (named).
    """
    if not predictions:
        raise ValueError("no predicted caption to score")
    missing = [i for i in predictions if not references.get(i)]
    if missing:
        raise ValueError(f"images {missing[:5]} have predictions but no reference captions")
    ids = sorted(predictions, key=str)
    gts = {i: [scoring_text(c) for c in references[i]] for i in ids}
    res = {i: [scoring_text(predictions[i])] for i in ids}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    cider, _ = Cider().compute_score(gts, res)
    return {"BLEU-4": 100.0 * float(bleu[3]), "CIDEr-D": 100.0 * float(cider)}


def object_mention_metrics(
    predictions: Mapping[Any, str],
    gt_classes: Mapping[Any, Iterable[int]],
    nouns: NounExtractor,
) -> dict[str, float | None]:
    """Precision and recall of the classes generated captions name, base and novel apart.

    Args:
        predictions: per image id the generated caption.
        gt_classes: per image id the classes annotated in it (indices of ``nouns.classes``).
        nouns: matches captions to the vocabulary (its ``classes.is_novel`` splits them).

    Returns:
        ``mention_{precision,recall}_{base,novel}`` in percent (None where nothing was mentioned
        or present) and the counts behind them.
    """
    novel = nouns.classes.is_novel
    counts = {f"{what}_{split}": 0 for what in ("hit", "mentioned", "present")
              for split in ("base", "novel")}  # fmt: skip
    for image_id, caption in predictions.items():
        mentioned = set(nouns(caption).classes)
        present = set(gt_classes.get(image_id, ()))
        for cls in mentioned | present:
            split = "novel" if novel[cls] else "base"
            counts[f"mentioned_{split}"] += cls in mentioned
            counts[f"present_{split}"] += cls in present
            counts[f"hit_{split}"] += cls in mentioned and cls in present
    out: dict[str, float | None] = {}
    for split in ("base", "novel"):
        hit, mentioned, present = (counts[f"{w}_{split}"] for w in ("hit", "mentioned", "present"))
        out[f"mention_precision_{split}"] = 100.0 * hit / mentioned if mentioned else None
        out[f"mention_recall_{split}"] = 100.0 * hit / present if present else None
    out.update({k: float(v) for k, v in counts.items()})
    return out


def caption_outputs(
    model: Any, beam_size: int | None = None
) -> Callable[[list[dict[str, Any]]], list[dict[str, str]]]:
    """``batch -> [{"caption": ...}]`` with ``model.describe``, to run
    :func:`~ovvision.evaluation.inference_on_dataset` with a :class:`CaptionEvaluator`."""

    def run(batch: list[dict[str, Any]]) -> list[dict[str, str]]:
        return [{"caption": c} for c in model.describe(batch, beam_size)]

    return run


class CaptionEvaluator(DatasetEvaluator):
    """Scores the ``"caption"`` of each output (see the module docstring).

    Args:
        classes: the vocabulary whose classes ``gt_classes`` index (names, synonyms, novel flags).
        gt_classes: per image id the annotated classes.
        references: per image id its reference captions; None = the ``"captions"`` of each input.
        output_dir: where to write ``caption_results.json`` (``[{"image_id", "caption"}]``).
    """

    def __init__(
        self,
        classes: ClassList,
        gt_classes: Mapping[Any, Iterable[int]],
        references: Mapping[Any, Sequence[str]] | None = None,
        output_dir: str | None = None,
    ):
        self.nouns = NounExtractor(classes)
        self.gt_classes = {k: sorted(set(v)) for k, v in gt_classes.items()}
        self.references = dict(references) if references is not None else None
        self.output_dir = output_dir
        self.reset()

    @classmethod
    def from_dataset_dicts(
        cls, dicts: Sequence[dict[str, Any]], classes: ClassList, output_dir: str | None = None
    ) -> CaptionEvaluator:
        """Ground truth from dataset dicts with ``annotations`` (``category_id`` indexing
        ``classes``) and ``captions``."""
        gt = {d["image_id"]: [a["category_id"] for a in d.get("annotations", [])] for d in dicts}
        refs = {d["image_id"]: list(d.get("captions", [])) for d in dicts}
        return cls(classes, gt, refs, output_dir)

    def reset(self) -> None:
        self._predictions: dict[Any, str] = {}
        self._references: dict[Any, list[str]] = {}

    def process(self, inputs: list[dict[str, Any]], outputs: list[Any]) -> None:
        for item, output in zip(inputs, outputs):
            self._predictions[item["image_id"]] = str(output["caption"])
            if self.references is None:
                self._references[item["image_id"]] = list(item.get("captions", []))

    def process_unreadable(self, inputs: list[dict[str, Any]]) -> None:
        """An unreadable image keeps its place with an empty caption (scored, mentions nothing)."""
        self.process(inputs, [{"caption": ""} for _ in inputs])

    def evaluate(self) -> dict[str, Any]:
        predictions: dict[Any, str] = {}
        references: dict[Any, list[str]] = {}
        for part in comm.gather((self._predictions, self._references)):
            predictions.update(part[0])
            references.update(part[1])
        if not comm.is_main_process():
            return {}
        references = self.references if self.references is not None else references
        if self.output_dir:
            rows = [{"image_id": i, "caption": c} for i, c in predictions.items()]
            write_json_atomic(os.path.join(self.output_dir, CAPTION_RESULTS_FILE), rows)
        metrics: dict[str, Any] = caption_scores(references, predictions)
        metrics.update(object_mention_metrics(predictions, self.gt_classes, self.nouns))
        logger.info("Caption metrics over %d images: %s", len(predictions), metrics)
        return {"caption": metrics}


def evaluate_caption_files(
    results_json: str, captions_json: str, instances_json: str, classes: ClassList
) -> dict[str, Any]:
    """Score a results file (``[{"image_id", "caption"}]``) against COCO-format json files.

    Args:
        results_json: the generated captions.
        captions_json: reference captions (COCO captions format).
        instances_json: annotations whose ``category_id`` order (sorted ids) is ``classes``.
        classes: the vocabulary of the instances json, in category-id order.
    """
    with open(results_json, encoding="utf-8") as f:
        results = json.load(f)
    with open(captions_json, encoding="utf-8") as f:
        captions = json.load(f)
    with open(instances_json, encoding="utf-8") as f:
        instances = json.load(f)
    index = {
        c["id"]: i for i, c in enumerate(sorted(instances["categories"], key=lambda c: c["id"]))
    }
    if len(index) != len(classes):
        raise ValueError(
            f"'{instances_json}' has {len(index)} categories but the vocabulary {len(classes)}"
        )
    gt: dict[Any, list[int]] = {}
    for ann in instances["annotations"]:
        gt.setdefault(ann["image_id"], []).append(index[ann["category_id"]])
    references: dict[Any, list[str]] = {}
    for ann in captions["annotations"]:
        references.setdefault(ann["image_id"], []).append(ann["caption"])
    evaluator = CaptionEvaluator(classes, gt, references)
    evaluator.process([{"image_id": r["image_id"]} for r in results], results)
    return evaluator.evaluate()
