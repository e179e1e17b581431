"""COCO-format datasets declared in a config (``DATASETS.REGISTER``), registered by name.

Each entry is one string of comma-separated ``key=value`` fields, so it can be typed in YAML and
on detectron2's command line alike::

    DATASETS.REGISTER "('name=my_train,json=data/train.json,images=data/images,novel=lamp|cup',)"

Keys: ``name`` (dataset name), ``json`` (COCO instances json), ``images`` (folder the json's
``file_name`` entries are relative to), and optionally ``novel`` (``|``-separated novel class
names; absent = read from the json's ``"split"`` fields, empty = no novel class) and
``captions`` (a COCO captions json). Relative paths are read from the current folder (a saved
``config.yaml`` holds them absolute). Registering reads no file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from ovvision.config import CfgNode

from ..catalog import DatasetCatalog
from .coco_ov import register_coco_ov_instances

__all__ = [
    "CONFIG_KEY",
    "absolute_entry",
    "DatasetEntry",
    "DatasetEntryError",
    "parse_dataset_entries",
    "parse_dataset_entry",
    "register_datasets_from_cfg",
    "registered_entry",
]

CONFIG_KEY = "DATASETS.REGISTER"
_REQUIRED = ("name", "json", "images")
_OPTIONAL = ("novel", "captions")
PATH_FIELDS = ("json", "images", "captions")  # fields holding paths, made absolute when saved

# Entries this process registered, by dataset name: registering the same entry again is a no-op.
_registered: dict[str, DatasetEntry] = {}


class DatasetEntryError(ValueError):
    """A ``DATASETS.REGISTER`` entry is malformed; the message names the entry and the key."""


@dataclass(frozen=True)
class DatasetEntry:
    """One parsed ``DATASETS.REGISTER`` entry (paths absolute).

    Attributes:
        index: position of the entry in ``DATASETS.REGISTER``.
        text: the entry as written.
        name: dataset name.
        json_file: COCO instances json.
        image_root: image folder.
        novel_classes: novel class names, or None to read them from the json.
        captions_json: COCO captions json, or None.
    """

    index: int
    text: str
    name: str
    json_file: str
    image_root: str
    novel_classes: tuple[str, ...] | None
    captions_json: str | None

    def where(self, key: str | None = None) -> str:
        """``DATASETS.REGISTER[i] (name=...)`` plus `` key 'k'`` for messages."""
        field = f" key '{key}'" if key else ""
        return f"{CONFIG_KEY}[{self.index}] ('{self.text}'){field}"


def _fields(text: str, index: int) -> dict[str, str]:
    where = f"{CONFIG_KEY}[{index}] ('{text}')"
    if not isinstance(text, str):
        raise DatasetEntryError(
            f"{CONFIG_KEY}[{index}] must be a string 'name=...,json=...,images=...', "
            f"got {type(text).__name__} {text!r}"
        )
    fields: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise DatasetEntryError(
                f"{where}: '{part.strip()}' is not key=value (entries look like "
                "'name=my_train,json=train.json,images=images,novel=lamp|cup')"
            )
        if key not in _REQUIRED + _OPTIONAL:
            raise DatasetEntryError(
                f"{where}: unknown key '{key}' (keys: {', '.join(_REQUIRED + _OPTIONAL)})"
            )
        if key in fields:
            raise DatasetEntryError(f"{where}: key '{key}' is given twice")
        fields[key] = value
    for key in _REQUIRED:
        if not fields.get(key):
            raise DatasetEntryError(f"{where}: key '{key}' is missing or empty")
    return fields


def parse_dataset_entry(text: str, index: int = 0, base_dir: str | None = None) -> DatasetEntry:
    """Parse one ``DATASETS.REGISTER`` entry.

    Args:
        text: ``"name=...,json=...,images=...[,novel=a|b][,captions=...]"``.
        index: the entry's position (for messages).
        base_dir: folder relative paths are read from (default: the current folder).

    Raises:
        DatasetEntryError: naming the entry and the bad key.
    """
    fields = _fields(text, index)
    base = os.getcwd() if base_dir is None else base_dir

    def path(key: str) -> str | None:
        value = fields.get(key)
        return os.path.normpath(os.path.join(base, os.path.expanduser(value))) if value else None

    novel = None
    if "novel" in fields:
        novel = tuple(n.strip() for n in fields["novel"].split("|") if n.strip())
    return DatasetEntry(
        index=index,
        text=text,
        name=fields["name"],
        json_file=path("json"),
        image_root=path("images"),
        novel_classes=novel,
        captions_json=path("captions"),
    )


def absolute_entry(text: str, index: int = 0, base_dir: str | None = None) -> str:
    """The entry with its path fields made absolute (what a saved ``config.yaml`` holds)."""
    fields = _fields(text, index)
    base = os.getcwd() if base_dir is None else base_dir
    for key in PATH_FIELDS:
        if fields.get(key):
            fields[key] = os.path.normpath(os.path.join(base, os.path.expanduser(fields[key])))
    return ",".join(f"{k}={v}" for k, v in fields.items())


def parse_dataset_entries(entries: Iterable[str]) -> list[DatasetEntry]:
    """Parse every entry; two entries with one name raise :class:`DatasetEntryError`."""
    parsed = [parse_dataset_entry(text, i) for i, text in enumerate(entries)]
    seen: dict[str, DatasetEntry] = {}
    for entry in parsed:
        if entry.name in seen:
            raise DatasetEntryError(
                f"{entry.where('name')}: dataset '{entry.name}' is also declared by "
                f"{seen[entry.name].where()}"
            )
        seen[entry.name] = entry
    return parsed


def register_datasets_from_cfg(cfg: CfgNode) -> list[DatasetEntry]:
    """Register the COCO-format datasets of ``cfg.DATASETS.REGISTER`` (see the module docstring).

    Every tool that builds datasets or a model from a config calls this first. Registering an
    entry again (same name, same fields) does nothing, so it is safe to call repeatedly.

    Returns:
        The parsed entries, in config order.

    Raises:
        DatasetEntryError: a malformed entry, or a name that is already a registered dataset
            (a built-in one, or one registered with other fields).
    """
    entries = parse_dataset_entries(cfg.DATASETS.REGISTER)
    for entry in entries:
        previous = registered_entry(entry.name)
        if previous is not None and _same_fields(previous, entry):
            continue
        if entry.name in DatasetCatalog:
            raise DatasetEntryError(
                f"{entry.where('name')}: dataset '{entry.name}' is already registered "
                f"({'with other fields' if previous else 'a built-in dataset'}); "
                "choose another name"
            )
        register_coco_ov_instances(
            entry.name,
            entry.json_file,
            entry.image_root,
            novel_classes=entry.novel_classes,
            captions_json=entry.captions_json,
        )
        _registered[entry.name] = entry
    return entries


def _same_fields(a: DatasetEntry, b: DatasetEntry) -> bool:
    keys = ("name", "json_file", "image_root", "novel_classes", "captions_json")
    return all(getattr(a, k) == getattr(b, k) for k in keys)


def registered_entry(name: str) -> DatasetEntry | None:
    """The ``DATASETS.REGISTER`` entry that registered dataset ``name`` (None: not from one)."""
    if name not in DatasetCatalog:  # removed from the catalog since
        _registered.pop(name, None)
    return _registered.get(name)
