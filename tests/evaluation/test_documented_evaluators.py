"""datasets/README.md advertises only the evaluator types that build_evaluator can build."""

from __future__ import annotations

import re
from pathlib import Path

import ovvision.data  # noqa: F401  (registers the built-in datasets)
from ovvision.data import MetadataCatalog
from ovvision.evaluation import EVALUATOR_REGISTRY

README = Path(__file__).resolve().parents[2] / "datasets" / "README.md"
# Evaluated by a tool of their own rather than through build_evaluator.
TOOL_EVALUATED = {"zero_shot": "tools/train_clip.py"}


def _table() -> dict[str, str]:
    """Dataset-name pattern -> the evaluator_type cell of the README's table."""
    rows = re.findall(r"^\| `([^`]+)` \| `([^`]+)`(\*?) \|", README.read_text(), re.MULTILINE)
    return {name: evaluator + star for name, evaluator, star in rows}


def test_every_unmarked_evaluator_type_is_registered():
    table = _table()
    assert len(table) >= 10, table
    for name, cell in table.items():
        if cell.endswith("*"):  # marked as not built yet
            assert cell[:-1] not in EVALUATOR_REGISTRY, f"{cell[:-1]} is registered now: unmark it"
        elif cell in TOOL_EVALUATED:
            assert TOOL_EVALUATED[cell] in README.read_text()
        else:
            assert cell in EVALUATOR_REGISTRY, f"{name}: '{cell}' is not a registered evaluator"


def test_the_table_gives_each_dataset_its_metadata_evaluator_type():
    for pattern, cell in _table().items():
        names = [pattern]
        braces = re.search(r"\{([^}]+)\}", pattern)
        if braces:
            names = [pattern.replace(braces.group(0), part) for part in braces.group(1).split(",")]
        for name in names:
            assert MetadataCatalog.get(name).evaluator_type == cell.rstrip("*"), name
