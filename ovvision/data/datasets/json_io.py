"""Reading annotation json with clear errors, and writing json atomically and reproducibly."""

from __future__ import annotations

import json
import os
from typing import Any

__all__ = ["read_json", "write_json"]


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
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(content, f, separators=(",", ":"), ensure_ascii=True)
        f.write("\n")
    os.replace(tmp, path)
