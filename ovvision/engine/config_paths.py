"""The config keys that hold file paths: made absolute in a saved config, checked before a run.

A saved ``OUTPUT_DIR/config.yaml`` must work from any folder, so :func:`absolute_config_paths`
turns the relative paths of these keys into absolute ones (relative to the folder the run started
in). :func:`check_config_files` turns a missing input file into a :class:`MissingFileError` that
names the key and the file, before anything slow happens.

Path keys (kind in brackets): ``MODEL.WEIGHTS`` [file], ``MODEL.GROUNDER.DETECTOR_WEIGHTS``
[file], ``MODEL.OSM.DETECTOR_WEIGHTS`` [file], ``MODEL.OSM.LANGUAGE_MODEL`` [folder],
``MODEL.TIMM.PRETRAINED`` [file or the tag "timm"], ``MODEL.TEXT_ENCODER.PRETRAINED`` [file
or open_clip tag], ``MODEL.ZERO_SHOT_CLASSIFIER.FED_LOSS_CLASS_FREQ`` [file], ``VOCABULARY.CUSTOM``
[text file or class names], ``VOCABULARY.ANNOTATION_JSON`` [file], ``VOCABULARY.EMBEDDINGS``
[file], ``VOCABULARY.CACHE_DIR`` [output folder], ``OUTPUT_DIR`` [output folder], and the ``json``,
``images`` and ``captions`` fields of ``DATASETS.REGISTER`` entries. A file-or-tag value counts as
a path when it has a folder separator or a suffix (``model.pt``), as the loaders decide.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ovvision.config import CfgNode, ConfigError
from ovvision.data.catalog import DatasetCatalog, MetadataCatalog
from ovvision.data.datasets.register_from_cfg import CONFIG_KEY as REGISTER_KEY
from ovvision.data.datasets.register_from_cfg import absolute_entry, registered_entry
from ovvision.structures.class_list import is_vocabulary_file

__all__ = [
    "PATH_KEYS",
    "USED_ONLY_WHEN",
    "MissingFileError",
    "absolute_config_paths",
    "check_config_files",
    "check_dataset_files",
    "is_path_value",
    "require_file",
]

# key -> kind: "file" (a path whenever non-empty), "folder" (an input folder, whenever non-empty),
# "file_or_tag" (a path if it looks like one), "file_or_names" (a path if ClassList.parse reads
# it as a file: see is_vocabulary_file), "output" (a folder written to).
PATH_KEYS: dict[str, str] = {
    "MODEL.WEIGHTS": "file",
    "MODEL.GROUNDER.DETECTOR_WEIGHTS": "file",
    "MODEL.OSM.DETECTOR_WEIGHTS": "file",
    "MODEL.OSM.LANGUAGE_MODEL": "folder",
    "MODEL.TIMM.PRETRAINED": "file_or_tag",
    "MODEL.TEXT_ENCODER.PRETRAINED": "file_or_tag",
    "MODEL.ZERO_SHOT_CLASSIFIER.FED_LOSS_CLASS_FREQ": "file_or_tag",
    "VOCABULARY.CUSTOM": "file_or_names",
    "VOCABULARY.ANNOTATION_JSON": "file",
    "VOCABULARY.EMBEDDINGS": "file",
    "VOCABULARY.CACHE_DIR": "output",
    "OUTPUT_DIR": "output",
}

# Keys read only under a condition (key -> (the key deciding it, the values that use the path)):
# the file of an unused key is not checked (a base config's ANNOTATION_JSON under a custom one).
USED_ONLY_WHEN: dict[str, tuple[str, tuple[object, ...]]] = {
    "MODEL.TIMM.PRETRAINED": ("MODEL.BACKBONE.NAME", ("TimmFPNBackbone",)),
    "MODEL.GROUNDER.DETECTOR_WEIGHTS": ("MODEL.META_ARCHITECTURE", ("OVGrounder",)),
    "MODEL.OSM.DETECTOR_WEIGHTS": ("MODEL.OSM.PROPOSALS", ("detector",)),
    "MODEL.OSM.LANGUAGE_MODEL": ("MODEL.META_ARCHITECTURE", ("OSMClassifier",)),
    "MODEL.ZERO_SHOT_CLASSIFIER.FED_LOSS_CLASS_FREQ": (
        "MODEL.ZERO_SHOT_CLASSIFIER.USE_FED_LOSS",
        (True,),
    ),
    "VOCABULARY.CUSTOM": ("VOCABULARY.NAME", ("custom",)),
    "VOCABULARY.ANNOTATION_JSON": ("VOCABULARY.NAME", ("lvis", "ov_shapes")),
}


class MissingFileError(FileNotFoundError):
    """An input file named by a config key or a command-line argument does not exist.

    Attributes:
        key: the config key (``MODEL.TEXT_ENCODER.PRETRAINED``) or argument (``--weights``).
        path: the path as given.
    """

    def __init__(self, key: str, path: str, note: str = "", what: str = "file"):
        shown = f"'{path}'"
        if not os.path.isabs(os.path.expanduser(path)):
            shown += f" (relative to the current folder {os.getcwd()})"
        self.message = f"{key}: {what} {shown} does not exist{note}"
        super().__init__(self.message)
        self.key = key
        self.path = path
        self.filename = path

    def __str__(self) -> str:  # OSError's str() would show "[Errno None]" once filename is set
        return self.message


def _get(cfg: CfgNode, key: str) -> object:
    node: object = cfg
    for part in key.split("."):
        node = node[part]  # type: ignore[index]
    return node


def _set(cfg: CfgNode, key: str, value: object) -> None:
    *parents, last = key.split(".")
    node = cfg
    for part in parents:
        node = node[part]
    node[last] = value


def is_path_value(kind: str, value: object) -> bool:
    """Whether ``value`` of a key of this kind (see :data:`PATH_KEYS`) names a file or folder."""
    if not isinstance(value, str) or not value.strip():
        return False
    if kind in ("file", "folder", "output"):
        return True
    if kind == "file_or_tag":
        return os.sep in value or "/" in value or Path(value).suffix != ""
    if kind == "file_or_names":
        return is_vocabulary_file(value)
    raise ValueError(f"unknown path kind {kind!r}")


def _absolute(path: str, base: str) -> str:
    return os.path.normpath(os.path.join(base, os.path.expanduser(path)))


def absolute_config_paths(cfg: CfgNode, base_dir: str | None = None) -> CfgNode:
    """A copy of ``cfg`` whose path values (see the module docstring) are absolute.

    Args:
        cfg: the run's config (not changed).
        base_dir: folder relative paths are read from (default: the current folder).
    """
    base = os.getcwd() if base_dir is None else base_dir
    out = cfg.clone()
    out.defrost()
    for key, kind in PATH_KEYS.items():
        value = _get(out, key)
        if is_path_value(kind, value):
            _set(out, key, _absolute(value, base))
    entries = out.DATASETS.REGISTER
    out.DATASETS.REGISTER = type(entries)(
        absolute_entry(text, i, base) for i, text in enumerate(entries)
    )
    return out


def require_file(path: str, key: str, note: str = "") -> None:
    """Raise :class:`MissingFileError` naming ``key`` unless ``path`` is an existing file."""
    if not os.path.isfile(os.path.expanduser(path)):
        raise MissingFileError(key, path, note)


def check_config_files(cfg: CfgNode, datasets: Mapping[str, str] | None = None) -> None:
    """Check that the files and folders the config's path keys name exist (output folders
    excepted, and those of keys the config does not use, see :data:`USED_ONLY_WHEN`).

    Args:
        cfg: the config.
        datasets: registered dataset names whose files will be read, each with the config key
            or argument it came from (``{"my_val": "DATASETS.TEST"}``); see
            :func:`check_dataset_files`.

    Raises:
        MissingFileError: the first missing file, naming its key.
    """
    for key, kind in PATH_KEYS.items():
        value = _get(cfg, key)
        if kind == "output" or not is_path_value(kind, value) or not _in_use(cfg, key):
            continue
        if kind == "folder":
            if not os.path.isdir(os.path.expanduser(value)):
                raise MissingFileError(key, value, what="folder")
        else:
            require_file(value, key)
    for name, key in (datasets or {}).items():
        check_dataset_files(name, key)


def _in_use(cfg: CfgNode, key: str) -> bool:
    if key not in USED_ONLY_WHEN:
        return True
    deciding_key, values = USED_ONLY_WHEN[key]
    return _get(cfg, deciding_key) in values


def check_dataset_files(name: str, key: str) -> None:
    """Check that a registered dataset and its json files exist.

    Args:
        name: the dataset name.
        key: where the name came from (``DATASETS.TRAIN``, ``--dataset``), for messages.

    Raises:
        ConfigError: ``name`` is not a registered dataset.
        MissingFileError: its annotation json, captions json or image folder is missing; the
            key is the ``DATASETS.REGISTER`` entry that declared it, or ``key``.
    """
    if name not in DatasetCatalog:
        raise ConfigError(
            f"{key}: dataset '{name}' is not registered (declare your own in {REGISTER_KEY}; "
            f"registered: {', '.join(DatasetCatalog.list())})"
        )
    meta = MetadataCatalog.get(name)
    entry = registered_entry(name)
    builtin_note = (
        "" if entry else " (built-in datasets live under $OVVISION_DATASETS, default ./datasets)"
    )
    for field, register_field in (("json_file", "json"), ("captions_json", "captions")):
        path = meta.get(field, load=False)
        if path and not os.path.isfile(path):
            where = entry.where(register_field) if entry else f"{key} dataset '{name}'"
            raise MissingFileError(where, path, builtin_note)
    image_root = meta.get("image_root", load=False)
    if image_root and not os.path.isdir(image_root):
        where = entry.where("images") if entry else f"{key} dataset '{name}'"
        raise MissingFileError(where, image_root, f" (image folder){builtin_note}")
