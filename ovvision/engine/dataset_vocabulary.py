"""Which classes a model trains on and is evaluated with, read from the registered datasets.

The model is built with the configured vocabulary (``VOCABULARY.*``); the entry points narrow it
to the training dataset's classes, with that dataset's novel classes unseen, and switch to each
test dataset's classes for evaluation. Only this module joins the model and the data catalog.
"""

from __future__ import annotations

import logging

from torch import nn

from ovvision.config import CfgNode
from ovvision.data import MetadataCatalog, dataset_novel_flags, vocabulary_for_dataset
from ovvision.structures import ClassList, Vocabulary

logger = logging.getLogger(__name__)

__all__ = ["dataset_vocabulary", "use_training_vocabulary"]


def use_training_vocabulary(model: nn.Module, cfg: CfgNode, strict: bool = True) -> Vocabulary:
    """Set ``model``'s training vocabulary to ``DATASETS.TRAIN[0]``'s classes (no-op without one).

    ``gt_classes`` of the training data index these classes; the dataset's ``novel_classes``
    stay unseen whatever ``VOCABULARY.NAME`` says.

    Args:
        model: a model with ``vocabulary`` and ``set_training_vocabulary`` (e.g. OVRCNN).
        cfg: the run's config.
        strict: raise when the training dataset cannot be read; False = log and keep the
            configured vocabulary (inference from a saved config on another machine).

    Returns:
        The model's vocabulary before narrowing (the configured one): evaluation takes each
        test dataset's classes from it (:func:`dataset_vocabulary`).
    """
    configured = model.vocabulary
    if not cfg.DATASETS.TRAIN:
        return configured
    name = cfg.DATASETS.TRAIN[0]
    try:
        vocabulary = vocabulary_for_dataset(configured, name)
    except (OSError, KeyError, AttributeError) as e:  # json missing, dataset unknown
        if strict:
            raise
        logger.warning(
            "Training dataset '%s' cannot be read (%s); classes seen in training are taken "
            "from the configured vocabulary",
            name,
            e,
        )
        return configured
    model.set_training_vocabulary(vocabulary)
    return configured


def dataset_vocabulary(configured: Vocabulary, dataset_name: str) -> Vocabulary | ClassList:
    """The vocabulary to evaluate on a dataset: its classes' rows of ``configured`` (synonyms and
    novel flags included), or, when ``configured`` lacks some of them, the dataset's class list
    (names and novel flags) for the model to embed."""
    try:
        return vocabulary_for_dataset(configured, dataset_name)
    except ValueError as e:
        logger.info("%s; embedding the class names of '%s'", e, dataset_name)
        names = list(MetadataCatalog.get(dataset_name).thing_classes)
        return ClassList(names, is_novel=dataset_novel_flags(dataset_name))
