"""The vocabulary file that travels with an exported model: names, embeddings, seen flags.

``vocabulary.npz`` holds ``names`` (``str[C]``), ``embeddings`` (``float32[C, D]``, unit rows,
the exported graph's ``class_embeddings`` input) and ``seen`` (``bool[C]``, classes the detector
was trained on: its ``class_seen`` input). Deployment reads it without a text encoder; a new
vocabulary is a new file, made by ``tools/export_onnx.py --vocabulary-only``.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ovvision.structures import Vocabulary

VOCABULARY_FILE = "vocabulary.npz"


class VocabularyFileError(ValueError):
    """A vocabulary file that cannot be used: unreadable, incomplete or of the wrong dimension."""


@dataclass(frozen=True)
class VocabularyArrays:
    """A vocabulary as the exported graph takes it.

    Attributes:
        names: C class names (the first name of each class).
        embeddings: ``float32[C, D]`` unit-norm text embeddings.
        seen: ``bool[C]``, classes seen in detector training.
    """

    names: list[str]
    embeddings: np.ndarray
    seen: np.ndarray

    @classmethod
    def from_vocabulary(cls, vocabulary: Vocabulary, seen: np.ndarray) -> VocabularyArrays:
        """The arrays of a model's :class:`Vocabulary` and its ``seen`` flags (``bool[C]``)."""
        return cls(
            names=list(vocabulary.names),
            embeddings=vocabulary.embeddings.detach().float().cpu().numpy(),
            seen=np.asarray(seen, dtype=bool),
        )


def save_vocabulary(path: str | os.PathLike, vocabulary: VocabularyArrays) -> Path:
    """Write ``vocabulary`` to ``path`` (``.npz``), atomically. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(
        tmp,
        names=np.asarray(vocabulary.names, dtype=str),
        embeddings=np.asarray(vocabulary.embeddings, dtype=np.float32),
        seen=np.asarray(vocabulary.seen, dtype=bool),
    )
    os.replace(tmp, path)
    return path


def load_vocabulary(path: str | os.PathLike, embed_dim: int | None = None) -> VocabularyArrays:
    """Read a vocabulary file and check it.

    Args:
        path: a file written by :func:`save_vocabulary`.
        embed_dim: the dimension D the model expects (None: not checked).

    Raises:
        VocabularyFileError: the file is missing, unreadable or lacks ``names``/``embeddings``;
            names and rows disagree in number; no class; non-finite rows; or rows of another
            dimension than ``embed_dim`` (the message names both dimensions).
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise VocabularyFileError(f"vocabulary file {path}: cannot read it ({e})") from e
    missing = [key for key in ("names", "embeddings") if key not in arrays]
    if missing:
        raise VocabularyFileError(f"vocabulary file {path}: no {missing} array")
    names = [str(n) for n in arrays["names"].reshape(-1)]
    embeddings = arrays["embeddings"]
    if embeddings.ndim != 2 or len(names) != embeddings.shape[0] or not names:
        raise VocabularyFileError(
            f"vocabulary file {path}: {len(names)} names but embeddings of shape "
            f"{tuple(embeddings.shape)} (want [C, D] with C = the number of names, C >= 1)"
        )
    if embed_dim is not None and embeddings.shape[1] != embed_dim:
        raise VocabularyFileError(
            f"vocabulary file {path} has embeddings of dimension {embeddings.shape[1]} but the "
            f"model takes dimension {embed_dim}: it was made for another model"
        )
    if not np.isfinite(embeddings).all():
        raise VocabularyFileError(f"vocabulary file {path}: embeddings hold NaN or inf")
    seen = arrays.get("seen", np.zeros(len(names), dtype=bool)).astype(bool).reshape(-1)
    if seen.shape[0] != len(names):
        raise VocabularyFileError(
            f"vocabulary file {path}: {seen.shape[0]} seen flags for {len(names)} names"
        )
    return VocabularyArrays(names, embeddings.astype(np.float32), seen)
