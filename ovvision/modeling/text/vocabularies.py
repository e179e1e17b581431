"""Built-in vocabularies by name: ``coco``, ``coco_ov``, ``lvis``, ``ov_shapes``, ``custom``.

:func:`vocabulary_classes` gives the class list (names, synonyms, novel flags) without any model;
:func:`build_vocabulary` embeds it with a text encoder (or reads a precomputed ``.npy``);
:func:`build_vocabulary_from_cfg` does the same from the ``VOCABULARY.*`` config keys.

- ``coco``: the 80 COCO classes in category-id order (the list torchvision ships); none novel.
- ``coco_ov``: the 65 classes of the open-vocabulary COCO split (Bansal et al. 2018, used by
  OVR-CNN and Detic; lists from ``ovvision.data``), 48 base + 17 novel, in category-id order.
- ``lvis``: the categories of the user's LVIS json, with their synonyms; rare ones are novel.
- ``ov_shapes``: the categories of an OV-Shapes annotation json (base/novel as recorded there);
  without a json, the generator's classes and default novel split.
- ``custom``: a comma-separated string or a text file with one class per line; synonyms follow
  the name separated by ``|`` (``"sofa|couch, tv|television"``).
"""

from __future__ import annotations

import json
import os

from ovvision.config import CfgNode
from ovvision.structures import ClassList, Vocabulary
from ovvision.structures.builtin_classes import (
    COCO_OV_BASE_CLASSES,
    COCO_OV_NOVEL_CLASSES,
    OV_SHAPES_CLASSES,
    OV_SHAPES_DEFAULT_NOVEL_CLASSES,
    coco_class_names,
)

from .encoder import TextEncoder, text_encoder_from_cfg

__all__ = [
    "BUILTIN_VOCABULARIES",
    "build_vocabulary",
    "build_vocabulary_from_cfg",
    "vocabulary_classes",
]

BUILTIN_VOCABULARIES = ("coco", "coco_ov", "lvis", "ov_shapes", "custom")


def _read_json_categories(path: str, what: str) -> list[dict]:
    if not path:
        raise ValueError(f"the '{what}' vocabulary needs the path of its annotation json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} annotation json '{path}' does not exist")
    with open(path, encoding="utf-8") as f:
        categories = json.load(f).get("categories")
    if not categories:
        raise ValueError(f"{what} annotation json '{path}' has no 'categories'")
    return sorted(categories, key=lambda c: c["id"])


def _lvis_classes(json_path: str) -> ClassList:
    categories = _read_json_categories(json_path, "lvis")
    names = [c["name"].replace("_", " ") for c in categories]
    synonyms = [[s.replace("_", " ") for s in c.get("synonyms", [])] for c in categories]
    novel = [c.get("frequency") == "r" for c in categories]
    return ClassList(names, synonyms, novel)


def _ov_shapes_classes(json_path: str) -> ClassList:
    categories = _read_json_categories(json_path, "ov_shapes")
    missing = [c["name"] for c in categories if "split" not in c]
    if missing:
        raise ValueError(f"ov_shapes json '{json_path}': categories {missing} have no 'split'")
    return ClassList(
        [c["name"] for c in categories], [], [c["split"] == "novel" for c in categories]
    )


def vocabulary_classes(name: str, *, custom: str = "", annotation_json: str = "") -> ClassList:
    """The class list of a built-in vocabulary.

    Args:
        name: one of :data:`BUILTIN_VOCABULARIES`.
        custom: for ``custom``: a comma-separated string or a text file.
        annotation_json: for ``lvis`` (required) / ``ov_shapes`` (optional): the annotation json
            with the categories.
    """
    if name == "coco":
        return ClassList(coco_class_names())
    if name == "coco_ov":
        split = set(COCO_OV_BASE_CLASSES) | set(COCO_OV_NOVEL_CLASSES)
        names = [n for n in coco_class_names() if n in split]
        return ClassList(names, [], [n in COCO_OV_NOVEL_CLASSES for n in names])
    if name == "lvis":
        return _lvis_classes(annotation_json)
    if name == "ov_shapes":
        if not annotation_json:
            names = list(OV_SHAPES_CLASSES)
            return ClassList(names, [], [n in OV_SHAPES_DEFAULT_NOVEL_CLASSES for n in names])
        return _ov_shapes_classes(annotation_json)
    if name == "custom":
        if not custom.strip():
            raise ValueError("the 'custom' vocabulary needs a comma-separated string or a file")
        return ClassList.parse(custom)
    raise ValueError(f"unknown vocabulary '{name}'; built-in: {', '.join(BUILTIN_VOCABULARIES)}")


def build_vocabulary(
    name: str,
    encoder: TextEncoder | None = None,
    *,
    custom: str = "",
    annotation_json: str = "",
    templates: str | list[str] = "openai_imagenet",
    embeddings: str = "",
    cache_dir: str | os.PathLike | None = None,
) -> Vocabulary:
    """A built-in vocabulary, embedded by ``encoder`` or read from ``embeddings`` (.npy).

    Args:
        name: one of :data:`BUILTIN_VOCABULARIES`.
        encoder: the text encoder (needed unless ``embeddings`` is given).
        custom: see :func:`vocabulary_classes`.
        annotation_json: see :func:`vocabulary_classes`.
        templates: prompt template set name or format strings.
        embeddings: a precomputed ``[C, D]`` matrix whose rows follow this vocabulary's classes.
        cache_dir: embedding cache folder (None = default).
    """
    classes = vocabulary_classes(name, custom=custom, annotation_json=annotation_json)
    if embeddings:
        return Vocabulary.load(embeddings, names=classes.names, is_novel=classes.is_novel)
    if encoder is None:
        raise ValueError(f"vocabulary '{name}' needs a text encoder or precomputed embeddings")
    return Vocabulary.from_classes(classes, encoder, templates=templates, cache_dir=cache_dir)


def build_vocabulary_from_cfg(cfg: CfgNode, encoder: TextEncoder | None = None) -> Vocabulary:
    """The vocabulary of ``cfg.VOCABULARY`` (text encoder from ``cfg.MODEL.TEXT_ENCODER``).

    The encoder is created only when needed (no ``VOCABULARY.EMBEDDINGS`` and none passed in).
    """
    voc = cfg.VOCABULARY
    if encoder is None and not voc.EMBEDDINGS:
        encoder = text_encoder_from_cfg(cfg)
    templates = list(voc.CUSTOM_TEMPLATES) or voc.TEMPLATES
    return build_vocabulary(
        voc.NAME,
        encoder,
        custom=voc.CUSTOM,
        annotation_json=voc.ANNOTATION_JSON,
        templates=templates,
        embeddings=voc.EMBEDDINGS,
        cache_dir=voc.CACHE_DIR or None,
    )
