"""Zero-shot classification of object crops: how well a CLIP's two towers agree on class names.

Every object of a registered dataset (the object pairs of OV-Shapes' ``pretrain_pairs_val``, or
the boxes of a COCO-format instances set) is cropped from its image, embedded by the image tower
and classified by cosine similarity against the prompt-ensembled text embeddings of all class
names. Accuracy is reported over all crops and separately over crops of base and novel classes
(the dataset metadata's ``novel_classes``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ovvision.data import DatasetCatalog, MetadataCatalog
from ovvision.modeling.text import TextEncoder
from ovvision.structures import Vocabulary
from ovvision.structures.boxes import square_boxes

from .data import ImagePreprocessor, read_rgb

__all__ = [
    "ObjectCrops",
    "evaluate_zero_shot",
    "format_zero_shot_table",
    "load_object_crops",
]

logger = logging.getLogger(__name__)


@dataclass
class ObjectCrops:
    """Object crops of a dataset, ready for the image tower.

    Attributes:
        images: uint8 Tensor[N, 3, S, S] crops.
        labels: LongTensor[N], index into ``class_names``.
        class_names: C class names (the dataset's ``thing_classes``).
        is_novel: BoolTensor[C].
    """

    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]
    is_novel: torch.Tensor


def _square_xywh(bbox: Sequence[float], context: float) -> tuple[float, ...]:
    """The square ``(x, y, w, h)`` around ``bbox`` (x, y, w, h), ``context`` of the longer side
    added on each side (:func:`~ovvision.structures.boxes.square_boxes`, unshifted)."""
    x, y, w, h = bbox
    xyxy = torch.tensor([[x, y, x + w, y + h]], dtype=torch.float64)
    x1, y1, x2, y2 = square_boxes(xyxy, 1 + 2 * context)[0].tolist()
    return x1, y1, x2 - x1, y2 - y1


def load_object_crops(
    dataset_name: str,
    preprocessor: ImagePreprocessor,
    context: float = 0.15,
    max_objects: int = 0,
) -> ObjectCrops:
    """Crops of every object of a registered dataset.

    The dataset is either pretraining pairs (its ``"object"`` pairs, cut to their ``crop_box``)
    or COCO-format instances (every non-crowd annotation, cut to a square around its box with
    ``context``). Class names and novel classes come from the dataset's metadata.

    Args:
        dataset_name: a name in ``DatasetCatalog``.
        preprocessor: gives the crop size.
        context: see above (instances only).
        max_objects: keep at most this many objects, evenly spread over the dataset (0 = all).
    """
    metadata = MetadataCatalog.get(dataset_name)
    objects: list[tuple[str, tuple[float, ...], int]] = []
    for d in DatasetCatalog.get(dataset_name):
        if d.get("kind") == "object":
            objects.append((d["file_name"], tuple(d["crop_box"]), d["category_id"]))
        for ann in d.get("annotations", []):
            if not ann.get("iscrowd", 0):
                objects.append(
                    (d["file_name"], _square_xywh(ann["bbox"], context), ann["category_id"])
                )
    if not objects:
        raise ValueError(f"dataset '{dataset_name}' has no objects to classify zero-shot")
    if 0 < max_objects < len(objects):
        keep = np.linspace(0, len(objects) - 1, max_objects).round().astype(int)
        objects = [objects[i] for i in keep]
    images: dict[str, torch.Tensor] = {}
    crops = []
    for file_name, box, _ in objects:
        if file_name not in images:
            images[file_name] = torch.from_numpy(read_rgb(file_name)).permute(2, 0, 1)
        crops.append(preprocessor.crop(images[file_name], box))
    class_names = list(metadata.thing_classes)
    novel = set(metadata.get("novel_classes", []))
    return ObjectCrops(
        images=torch.stack(crops),
        labels=torch.as_tensor([label for _, _, label in objects], dtype=torch.long),
        class_names=class_names,
        is_novel=torch.as_tensor([name in novel for name in class_names], dtype=torch.bool),
    )


@torch.no_grad()
def evaluate_zero_shot(
    encoder: TextEncoder,
    crops: ObjectCrops,
    preprocessor: ImagePreprocessor,
    templates: str | Sequence[str],
    batch_size: int = 512,
) -> dict:
    """Zero-shot top-1 accuracy of ``encoder`` on ``crops``.

    Returns:
        ``top1_all``, ``top1_base``, ``top1_novel`` (fractions over crops; NaN-free: a split
        without crops is left out), ``num_crops``, and ``per_class``: name -> ``{"split",
        "num", "top1", "confused_with"}`` (the most frequent wrong prediction, or "").
    """
    was_training = encoder.training
    encoder.eval()
    vocabulary = Vocabulary.from_names(
        crops.class_names, encoder, is_novel=crops.is_novel, templates=templates, use_cache=False
    )
    predictions = []
    for start in range(0, len(crops.labels), batch_size):
        images = preprocessor.normalize(crops.images[start : start + batch_size])
        features = encoder.encode_image(images.to(encoder.device))
        predictions.append((features @ vocabulary.embeddings.T).argmax(dim=1).cpu())
    encoder.train(was_training)
    predicted = torch.cat(predictions)
    correct = predicted == crops.labels
    novel_crop = crops.is_novel[crops.labels]
    results: dict = {"num_crops": len(correct), "top1_all": correct.float().mean().item()}
    for split, mask in (("base", ~novel_crop), ("novel", novel_crop)):
        if mask.any():
            results[f"top1_{split}"] = correct[mask].float().mean().item()
    per_class = {}
    for k, name in enumerate(crops.class_names):
        mine = crops.labels == k
        wrong = predicted[mine & ~correct]
        confused = crops.class_names[int(wrong.mode().values)] if len(wrong) else ""
        per_class[name] = {
            "split": "novel" if crops.is_novel[k] else "base",
            "num": int(mine.sum()),
            "top1": correct[mine].float().mean().item() if mine.any() else None,
            "confused_with": confused,
        }
    results["per_class"] = per_class
    return results


def format_zero_shot_table(results: dict) -> str:
    """A per-class text table of :func:`evaluate_zero_shot` results, then the totals."""
    lines = [f"{'class':<16} {'split':<6} {'crops':>6} {'top1':>7}  most confused with"]
    for name, row in results["per_class"].items():
        top1 = "-" if row["top1"] is None else f"{100 * row['top1']:6.1f}%"
        lines.append(
            f"{name:<16} {row['split']:<6} {row['num']:>6} {top1:>7}  {row['confused_with']}"
        )
    totals = [f"{k}={100 * results[k]:.1f}%" for k in ("top1_all", "top1_base", "top1_novel")
              if k in results]  # fmt: skip
    lines.append(f"zero-shot top-1 over {results['num_crops']} crops: " + ", ".join(totals))
    return "\n".join(lines)
