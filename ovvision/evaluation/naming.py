"""Open-ended naming accuracy: the free-text name a model generates for each ground-truth mask,
judged against the mask's class.

A name is correct when, lower-cased and in the singular (lemminflect), it is one of the class's
names or synonyms. A name that is no class of the dataset's vocabulary at all is
*out of vocabulary*. Base and novel classes are reported apart; the most frequent wrong names of
each class form the confusion table.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from ovvision.modeling.osm.vocabulary_scoring import NameMatcher
from ovvision.structures import ClassList
from ovvision.utils import comm

from .coco_results import write_json_atomic
from .evaluator import EVALUATOR_REGISTRY, DatasetEvaluator

logger = logging.getLogger(__name__)

__all__ = ["NAMING_CONFUSION_FILE", "NAMING_RESULTS_FILE", "NamingEvaluator", "naming_metrics"]

NAMING_RESULTS_FILE = "naming_results.json"
NAMING_CONFUSION_FILE = "naming_confusion.md"


def _percent(hits: int, total: int) -> float:
    return 100.0 * hits / total if total else float("nan")


def naming_metrics(records: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Accuracy and out-of-vocabulary rate (percent), overall, base and novel.

    Args:
        records: dicts with ``split`` ("base"/"novel"), ``correct`` and ``in_vocabulary``.

    Returns:
        ``accuracy``, ``accuracy-base``, ``accuracy-novel``, ``oov_rate``, ``oov_rate-base``,
        ``oov_rate-novel`` (NaN for an empty group), ``num_masks``, ``num_base``, ``num_novel``.
    """
    metrics: dict[str, float] = {}
    for group in ("all", "base", "novel"):
        rows = [r for r in records if group == "all" or r["split"] == group]
        suffix = "" if group == "all" else f"-{group}"
        metrics[f"accuracy{suffix}"] = _percent(sum(r["correct"] for r in rows), len(rows))
        metrics[f"oov_rate{suffix}"] = _percent(
            sum(not r["in_vocabulary"] for r in rows), len(rows)
        )
    metrics["num_masks"] = len(records)
    metrics["num_base"] = sum(r["split"] == "base" for r in records)
    metrics["num_novel"] = sum(r["split"] == "novel" for r in records)
    return metrics


class NamingEvaluator(DatasetEvaluator):
    """Scores generated names of ground-truth masks (``OSMClassifier`` with ground-truth
    proposals).

    Inputs carry ``instances.gt_classes`` (indices into ``classes``); outputs carry
    ``instances.pred_names`` and ``instances.proposal_index`` (the ground-truth mask each row
    names; the first row of a mask is read). ``evaluate()`` returns ``{key: metrics}`` (see
    :func:`naming_metrics`) and writes ``naming_results.json`` (metrics, confusions and every
    mask's name, sorted) and ``naming_confusion.md`` into ``output_dir``.

    Args:
        classes: the dataset's classes (names, synonyms, novel flags).
        output_dir: where the files go (None: not written).
        key: the results key (e.g. ``"naming-any"``).
        top_confusions: wrong names listed per class.
    """

    def __init__(
        self,
        classes: ClassList,
        output_dir: str | None = None,
        key: str = "naming",
        top_confusions: int = 5,
    ):
        self.classes = classes
        self.matcher = NameMatcher(classes)
        self.output_dir = output_dir
        self.key = key
        self.top_confusions = top_confusions
        self._records: list[dict[str, Any]] = []
        self._unreadable = 0

    @classmethod
    def from_dataset(
        cls, dataset_name: str, output_dir: str | None = None, key: str = "naming"
    ) -> NamingEvaluator:
        """Classes from the registered dataset's metadata (its novel split included)."""
        from ovvision.data import DatasetCatalog, MetadataCatalog, dataset_novel_flags

        DatasetCatalog.get(dataset_name)  # fills the metadata's class names
        names = list(MetadataCatalog.get(dataset_name).thing_classes)
        return cls(ClassList(names, is_novel=dataset_novel_flags(dataset_name)), output_dir, key)

    def reset(self) -> None:
        self._records = []
        self._unreadable = 0

    def process(self, inputs: list[dict[str, Any]], outputs: list[Any]) -> None:
        for item, output in zip(inputs, outputs):
            gt = item["instances"].gt_classes.tolist()
            pred = output["instances"].to("cpu")
            first: dict[int, str] = {}
            for index, name in zip(pred.proposal_index.tolist(), pred.pred_names):
                first.setdefault(int(index), name)
            for j, c in enumerate(gt):
                name = first.get(j, "")
                matched = self.matcher(name)
                self._records.append(
                    {
                        "image_id": int(item["image_id"]),
                        "mask": j,
                        "category": self.classes.names[c],
                        "split": "novel" if self.classes.is_novel[c] else "base",
                        "name": name,
                        "matched": None if matched is None else self.classes.names[matched],
                        "correct": matched == c,
                        "in_vocabulary": matched is not None,
                    }
                )

    def process_unreadable(self, inputs: list[dict[str, Any]]) -> None:
        """Their masks cannot be shown to the model and are left out; the count is reported."""
        self._unreadable += len(inputs)

    def evaluate(self) -> dict[str, Any]:
        gathered = comm.gather((self._records, self._unreadable), dst=0)
        if not comm.is_main_process():
            return {}
        records = sorted(
            itertools.chain.from_iterable(r for r, _ in gathered),
            key=lambda r: (r["image_id"], r["mask"]),
        )
        metrics = naming_metrics(records)
        metrics["num_images_unreadable"] = sum(n for _, n in gathered)
        confusions = self.confusions(records)
        if self.output_dir:
            os.makedirs(self.output_dir, exist_ok=True)
            finite = {k: (None if v != v else v) for k, v in metrics.items()}  # NaN -> null
            content = {"metrics": finite, "confusions": confusions, "names": records}
            write_json_atomic(os.path.join(self.output_dir, NAMING_RESULTS_FILE), content)
            table = os.path.join(self.output_dir, NAMING_CONFUSION_FILE)
            with open(table + ".tmp", "w", encoding="utf-8") as f:
                f.write(self.confusion_table(confusions, records))
            os.replace(table + ".tmp", table)
            logger.info("Naming results written to %s", self.output_dir)
        logger.info(
            "Naming (%s): %s",
            self.key,
            ", ".join(f"{k}={v:.2f}" for k, v in metrics.items() if not k.startswith("num")),
        )
        return {self.key: metrics}

    def confusions(self, records: Sequence[dict[str, Any]]) -> dict[str, list[list[Any]]]:
        """Per class (sorted), its most frequent wrong names with their counts."""
        wrong: dict[str, Counter] = defaultdict(Counter)
        for r in records:
            if not r["correct"]:
                wrong[r["category"]][r["name"] or "<empty>"] += 1
        return {
            c: [[n, k] for n, k in sorted(wrong[c].items(), key=lambda x: (-x[1], x[0]))][
                : self.top_confusions
            ]
            for c in sorted(wrong)
        }

    def confusion_table(
        self, confusions: dict[str, list[list[Any]]], records: Sequence[dict[str, Any]]
    ) -> str:
        """A markdown table: class, split, accuracy, most frequent wrong names."""
        by_class: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in records:
            by_class[r["category"]].append(r)
        lines = [
            f"# Naming confusions ({self.key})",
            "",
            "| class | split | masks | accuracy % | most frequent wrong names |",
            "|---|---|---|---|---|",
        ]
        for c in sorted(by_class):
            rows = by_class[c]
            acc = _percent(sum(r["correct"] for r in rows), len(rows))
            wrong = ", ".join(f"{n} ({k})" for n, k in confusions.get(c, []))
            lines.append(f"| {c} | {rows[0]['split']} | {len(rows)} | {acc:.1f} | {wrong} |")
        return "\n".join(lines) + "\n"


@EVALUATOR_REGISTRY.register()
def naming(cfg: Any, dataset_name: str, output_dir: str | None = None) -> NamingEvaluator:
    """The evaluator of ``evaluator_type="naming"``: names of ground-truth masks, in the mode
    ``MODEL.OSM.MODE``."""
    return NamingEvaluator.from_dataset(dataset_name, output_dir, f"naming-{cfg.MODEL.OSM.MODE}")
