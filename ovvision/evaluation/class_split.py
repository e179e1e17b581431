"""Base/novel class splits of open-vocabulary benchmarks, resolved to dataset category ids."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Values of a category's "split" field in COCO-format jsons (OVR-CNN and Detic use seen/unseen).
_SPLIT_FIELD_VALUES = {"base": "base", "seen": "base", "novel": "novel", "unseen": "novel"}


@dataclass(frozen=True)
class ClassSplit:
    """Dataset category ids of the base (seen in training) and novel (unseen) classes."""

    base: frozenset[int]
    novel: frozenset[int]

    def name_of(self, cat_id: int) -> str:
        """ "base", "novel" or "" (a class in neither)."""
        if cat_id in self.base:
            return "base"
        return "novel" if cat_id in self.novel else ""


def resolve_class_split(
    class_names: Mapping[int, str],
    base_classes: Sequence[str] | None,
    novel_classes: Sequence[str] | None,
    categories: Sequence[Mapping[str, Any]],
    source: str,
) -> ClassSplit | None:
    """The split from class names, else from the categories' ``split`` fields, else None.

    Args:
        class_names: dataset category id -> class name (names in the splits refer to these).
        base_classes: names of base classes; None with ``novel_classes`` given means "all others".
        novel_classes: names of novel classes; None with ``base_classes`` given means "all others".
        categories: the ground truth's categories; used when neither list is given, through
            their ``split`` field ("base"/"seen" or "novel"/"unseen").
        source: the file or dataset the split belongs to, for error messages.

    Raises:
        ValueError: a name that is not a class, a class in both lists, or an unknown ``split``
            value; each names the class and ``source``.
    """
    if base_classes is None and novel_classes is None:
        return _split_from_categories(categories, source)
    ids_by_name: dict[str, int] = {}
    for cat_id, name in class_names.items():
        ids_by_name.setdefault(name, cat_id)

    def to_ids(names: Sequence[str], which: str) -> frozenset[int]:
        unknown = [n for n in names if n not in ids_by_name]
        if unknown:
            raise ValueError(f"{which} classes {unknown} of {source} are not among its classes")
        return frozenset(ids_by_name[n] for n in names)

    all_ids = frozenset(class_names)
    base = to_ids(base_classes, "Base") if base_classes is not None else None
    novel = to_ids(novel_classes, "Novel") if novel_classes is not None else None
    base = base if base is not None else all_ids - novel
    novel = novel if novel is not None else all_ids - base
    both = sorted(class_names[c] for c in base & novel)
    if both:
        raise ValueError(f"Classes {both} of {source} are listed as both base and novel")
    return ClassSplit(base=base, novel=novel)


def _split_from_categories(
    categories: Sequence[Mapping[str, Any]], source: str
) -> ClassSplit | None:
    if not any("split" in c for c in categories):
        return None
    base, novel = set(), set()
    for category in categories:
        value = category.get("split")
        if value not in _SPLIT_FIELD_VALUES:
            raise ValueError(
                f"Category {category.get('id')} ('{category.get('name')}') of {source} has split "
                f"{value!r}; expected one of {sorted(_SPLIT_FIELD_VALUES)}"
            )
        (base if _SPLIT_FIELD_VALUES[value] == "base" else novel).add(int(category["id"]))
    return ClassSplit(base=frozenset(base), novel=frozenset(novel))
