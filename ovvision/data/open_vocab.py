"""The open-vocabulary split of registered datasets, applied to vocabularies and training data.

A dataset's metadata names its ``novel_classes``; whatever vocabulary a model is configured with,
those classes stay unseen in training: their rows are marked novel in the training vocabulary
(:func:`vocabulary_for_dataset`) and their annotations never reach a loss
(:func:`drop_novel_annotations`).
"""

from __future__ import annotations

import logging
from typing import Any

from ovvision.structures import Vocabulary, name_key

from .catalog import MetadataCatalog

logger = logging.getLogger(__name__)

__all__ = ["dataset_novel_flags", "drop_novel_annotations", "vocabulary_for_dataset"]


def dataset_novel_flags(dataset_name: str, names: list[str] | None = None) -> list[bool]:
    """Per class name, whether the registered dataset's metadata lists it in ``novel_classes``.

    Args:
        dataset_name: the registered dataset.
        names: class names to flag (matched by :func:`~ovvision.structures.name_key`);
            None = the dataset's ``thing_classes``.
    """
    metadata = MetadataCatalog.get(dataset_name)
    novel = {name_key(n) for n in metadata.get("novel_classes", [])}
    names = list(metadata.thing_classes) if names is None else names
    return [name_key(n) in novel for n in names]


def vocabulary_for_dataset(vocabulary: Vocabulary, dataset_name: str) -> Vocabulary:
    """The rows of ``vocabulary`` for a registered dataset's ``thing_classes``, in their order.

    Classes the vocabulary or the dataset's metadata (``novel_classes``) marks novel come out
    novel. Use it to train or evaluate on a dataset:
    ``model.set_vocabulary(vocabulary_for_dataset(model.vocabulary, name))``.

    Raises:
        ValueError: a class of the dataset is not in ``vocabulary``.
    """
    metadata = MetadataCatalog.get(dataset_name)
    rows = []
    for name in metadata.thing_classes:
        try:
            rows.append(vocabulary.index(name))
        except KeyError:
            raise ValueError(
                f"class '{name}' of dataset '{dataset_name}' is not in the vocabulary "
                f"({len(vocabulary)} classes, see VOCABULARY.NAME)"
            ) from None
    selected = vocabulary.select(rows)
    from_metadata = dataset_novel_flags(dataset_name, selected.names)
    is_novel = [bool(a) or b for a, b in zip(selected.is_novel.tolist(), from_metadata)]
    return Vocabulary(
        selected.names,
        selected.embeddings,
        synonyms=selected.synonyms,
        is_novel=is_novel,
        templates=selected.templates,
    )


def drop_novel_annotations(dicts: list[dict[str, Any]], dataset_name: str) -> list[dict[str, Any]]:
    """Dataset dicts without the annotations of the dataset's ``novel_classes``.

    Training must never see boxes of classes held out as novel. The images stay (their novel
    objects are unannotated, as in base-only COCO splits); the number of dropped annotations is
    logged.

    Args:
        dicts: dataset dicts whose annotations carry contiguous ``category_id``.
        dataset_name: the registered dataset (its metadata has ``thing_classes`` and
            ``novel_classes``).
    """
    metadata = MetadataCatalog.get(dataset_name)
    novel_ids = {i for i, novel in enumerate(dataset_novel_flags(dataset_name)) if novel}
    if not novel_ids:
        return dicts
    out, dropped = [], 0
    for d in dicts:
        kept = [a for a in d.get("annotations", []) if a["category_id"] not in novel_ids]
        dropped += len(d.get("annotations", [])) - len(kept)
        out.append({**d, "annotations": kept} if "annotations" in d else d)
    if dropped:
        logger.warning(
            "Dropped %d annotations of novel classes %s from training dataset '%s'",
            dropped,
            sorted(n for i, n in enumerate(metadata.thing_classes) if i in novel_ids),
            dataset_name,
        )
    return out
