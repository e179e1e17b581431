"""Annotation json: reading with clear errors, writing atomically, registering json datasets."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from ovvision.utils.file_io import atomic_write

from ..catalog import DatasetCatalog, Metadata, MetadataCatalog

__all__ = ["read_json", "register_json_dataset", "write_json"]


def read_json(path: str, dataset_name: str | None = None) -> Any:
    """Parse a json file; a missing file raises ``FileNotFoundError`` naming it and the dataset."""
    if not os.path.isfile(path):
        owner = f" of dataset '{dataset_name}'" if dataset_name else ""
        raise FileNotFoundError(
            f"Annotation file '{path}'{owner} does not exist. Datasets live under "
            f"$OVVISION_DATASETS (default ./datasets); see datasets/README.md for the layout."
        )
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_json(path: str, content: Any) -> None:
    """Write compact json (keys in insertion order) to a temporary file renamed over ``path``.

    A crash mid-write leaves any previous ``path`` intact.
    """
    text = json.dumps(content, separators=(",", ":"), ensure_ascii=True) + "\n"
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def register_json_dataset(
    name: str,
    json_file: str,
    image_root: str,
    load: Callable[[str, str, str], list[dict[str, Any]]],
    evaluator_type: str,
    class_fields: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> Metadata:
    """Register a dataset stored in one json file; nothing is read now.

    Args:
        name: dataset name.
        json_file: the annotation json.
        image_root: folder the json's file names are relative to.
        load: ``load(json_file, image_root, name)`` returns the dataset dicts.
        evaluator_type: metadata field selecting the evaluator.
        class_fields: maps the parsed json to class metadata (``thing_classes``, ...), computed
            the first time such a field is read.

    Returns:
        The dataset's metadata, with ``json_file``, ``image_root`` and ``evaluator_type`` set.
    """
    DatasetCatalog.register(name, lambda: load(json_file, image_root, name))
    meta = MetadataCatalog.get(name).set(
        json_file=json_file, image_root=image_root, evaluator_type=evaluator_type
    )
    if class_fields is not None:
        meta.set_lazy(lambda: class_fields(read_json(json_file, name)))
    return meta
