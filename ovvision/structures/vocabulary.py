"""Vocabulary: class names with their text embeddings and base/novel split.

What region heads consume::

    vocab.names        # list[str], C class names (duplicates merged, unicode NFC-normalised)
    vocab.embeddings   # FloatTensor[C, D], L2-normalised rows
    vocab.is_novel     # BoolTensor[C]; vocab.is_base == ~vocab.is_novel
    vocab.synonyms     # list[list[str]], extra names per class (used in prompt ensembling)

Three ways to make one::

    # 1. from class names and a text encoder (prompt-ensembled, cached on disk)
    from ovvision.modeling.text import create_text_encoder
    encoder = create_text_encoder("ViT-B-16", pretrained="openai")
    vocab = Vocabulary.from_names(["cat", "dog"], encoder, is_novel=[False, True])
    # 2. from a precomputed matrix (tools/dump_text_embeddings.py writes FILE.npy + FILE.json)
    vocab = Vocabulary.load("coco_ov_vitb16.npy")
    # 3. a built-in or user vocabulary by name (coco, coco_ov, lvis, ov_shapes, custom):
    #    ovvision.modeling.text.build_vocabulary("coco_ov", encoder)

The encoder only needs ``embed_classes(class_prompts, templates, ...) -> Tensor[C, D]`` (see
``ovvision.modeling.text.TextEncoder``); this module does not import open_clip.
"""

from __future__ import annotations

import json
import os
import unicodedata
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch.nn import functional as F

from ovvision.utils.file_io import atomic_write

from .class_list import ClassList

__all__ = ["ClassEmbedder", "ClassEmbeddings", "Vocabulary", "name_key"]


class ClassEmbedder(Protocol):
    """What :meth:`Vocabulary.from_names` needs from a text encoder."""

    def embed_classes(
        self,
        class_prompts: Sequence[Sequence[str]],
        templates: str | Sequence[str],
        *,
        cache_dir: str | os.PathLike | None = None,
        use_cache: bool = True,
    ) -> torch.Tensor: ...


@dataclass(frozen=True)
class ClassEmbeddings:
    """The vocabulary as region heads use it: one embedding row and one "seen" flag per class.

    Attributes:
        embeddings: ``Tensor[C, D]`` unit-norm text embeddings.
        seen: ``BoolTensor[C]``, classes annotated in training (the classification loss uses
            only these; score fusion weighs CLIP more for the others).
    """

    embeddings: torch.Tensor
    seen: torch.Tensor

    def __len__(self) -> int:
        return int(self.embeddings.shape[0])


class Vocabulary:
    """Class names, synonyms, prompt templates, unit-norm text embeddings and a novel mask.

    Args:
        names: C class names; surrounding whitespace is stripped and unicode NFC-normalised.
            Names equal up to case and inner whitespace are merged into the first one (with a
            warning), keeping its embedding row and the union of synonyms.
        embeddings: Tensor or array [C, D]; rows are L2-normalised here.
        synonyms: per class, extra names (may be empty lists).
        is_novel: per class, True for novel (unseen in detector training); default all False.
        templates: the prompt templates (set name or format strings) the embeddings were made
            with; recorded for reference, not used.

    Raises:
        ValueError: empty vocabulary, blank name, length mismatch, non-finite or zero rows, or a
            duplicated name marked both base and novel.
    """

    def __init__(
        self,
        names: Sequence[str],
        embeddings: torch.Tensor | np.ndarray,
        *,
        synonyms: Sequence[Sequence[str]] | None = None,
        is_novel: Sequence[bool] | torch.Tensor | None = None,
        templates: str | Sequence[str] = (),
    ) -> None:
        embeddings = torch.as_tensor(embeddings, dtype=torch.float32)
        if embeddings.ndim != 2 or embeddings.shape[0] != len(names):
            raise ValueError(
                f"embeddings must have shape [num_classes={len(names)}, dim]; "
                f"got {tuple(embeddings.shape)}"
            )
        keep, self.names, self.synonyms, novel = _merge_classes(names, synonyms, is_novel)
        embeddings = embeddings[keep]
        norms = embeddings.norm(dim=1)
        bad = ~torch.isfinite(embeddings).all(dim=1) | (norms == 0)
        if bad.any():
            raise ValueError(
                f"embeddings of classes {[self.names[i] for i in bad.nonzero()[:, 0].tolist()]} "
                "are zero or not finite"
            )
        # rows that are already unit-norm are kept bit-exact (saved and reloaded matrices match)
        is_unit = ((norms - 1).abs() <= 1e-6)[:, None]
        self.embeddings = torch.where(is_unit, embeddings, F.normalize(embeddings, dim=1))
        self.is_novel = torch.as_tensor(novel, dtype=torch.bool, device=self.embeddings.device)
        self.templates = templates if isinstance(templates, str) else list(templates)

    @classmethod
    def from_names(
        cls,
        names: Sequence[str],
        encoder: ClassEmbedder,
        *,
        synonyms: Sequence[Sequence[str]] | None = None,
        is_novel: Sequence[bool] | torch.Tensor | None = None,
        templates: str | Sequence[str] = "openai_imagenet",
        cache_dir: str | os.PathLike | None = None,
        use_cache: bool = True,
    ) -> Vocabulary:
        """Embed class names with a text encoder, ensembling over templates and synonyms.

        Args:
            names: C class names (see the class docstring for cleaning and merging).
            encoder: e.g. ``ovvision.modeling.text.create_text_encoder(...)``.
            synonyms: per class, extra names averaged into the class embedding.
            is_novel: per class novel flag; default all False.
            templates: a template-set name (``openai_imagenet``, ``simple_imagenet``,
                ``identity``) or format strings with one ``{}``.
            cache_dir: embedding cache folder (None = the default cache folder).
            use_cache: read/write the embedding cache.

        Returns:
            The vocabulary, embeddings on the encoder's device.
        """
        _, clean_names, clean_synonyms, novel = _merge_classes(names, synonyms, is_novel)
        class_prompts = [[n, *s] for n, s in zip(clean_names, clean_synonyms)]
        embeddings = encoder.embed_classes(
            class_prompts, templates, cache_dir=cache_dir, use_cache=use_cache
        )
        return cls(
            clean_names, embeddings, synonyms=clean_synonyms, is_novel=novel, templates=templates
        )

    @classmethod
    def from_classes(
        cls,
        classes: ClassList,
        encoder: ClassEmbedder,
        *,
        templates: str | Sequence[str] = "openai_imagenet",
        cache_dir: str | os.PathLike | None = None,
        use_cache: bool = True,
    ) -> Vocabulary:
        """Embed a :class:`~ovvision.structures.class_list.ClassList` (names, synonyms, novel
        flags); see :meth:`from_names`."""
        return cls.from_names(
            classes.names,
            encoder,
            synonyms=classes.synonyms,
            is_novel=classes.is_novel,
            templates=templates,
            cache_dir=cache_dir,
            use_cache=use_cache,
        )

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        names: Sequence[str] | None = None,
        is_novel: Sequence[bool] | torch.Tensor | None = None,
    ) -> Vocabulary:
        """Read a precomputed ``[C, D]`` matrix (``.npy``).

        Args:
            path: the ``.npy`` file. Its sidecar ``.json`` (written by :meth:`save`) supplies
                names, synonyms, novel flags and templates unless ``names`` is given.
            names: the C class names, in row order (needed when there is no sidecar).
            is_novel: per class novel flag (default: the sidecar's, else all False).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"vocabulary embeddings file '{path}' does not exist")
        embeddings = np.load(path, allow_pickle=False)
        meta: dict = {}
        sidecar = path.with_suffix(".json")
        if sidecar.is_file():
            with open(sidecar, encoding="utf-8") as f:
                meta = json.load(f)
        if names is None:
            if "names" not in meta:
                raise ValueError(
                    f"'{path}' has no sidecar '{sidecar.name}' with names; pass names="
                )
            names = meta["names"]
            synonyms = meta.get("synonyms")
        else:
            synonyms = None
        if is_novel is None and names == meta.get("names"):
            is_novel = meta.get("is_novel")
        try:
            return cls(
                names,
                embeddings,
                synonyms=synonyms,
                is_novel=is_novel,
                templates=meta.get("templates", ()),
            )
        except ValueError as e:
            raise ValueError(f"vocabulary file '{path}': {e}") from None

    def save(self, path: str | os.PathLike, **extra_meta: object) -> None:
        """Write ``path`` (.npy, float32 [C, D]) and its sidecar ``.json``, each atomically.

        Args:
            path: the ``.npy`` file to write.
            extra_meta: more JSON-serialisable fields for the sidecar (e.g. model name).
        """
        path = Path(path)
        if path.suffix != ".npy":
            raise ValueError(f"vocabulary file '{path}' must end in .npy")
        meta = {
            "names": self.names,
            "synonyms": self.synonyms,
            "is_novel": self.is_novel.tolist(),
            "templates": self.templates,
            **extra_meta,
        }
        text = json.dumps(meta, ensure_ascii=False, indent=1, sort_keys=True) + "\n"
        array = self.embeddings.detach().cpu().numpy().astype(np.float32)
        atomic_write(path, lambda f: np.save(f, array))
        atomic_write(path.with_suffix(".json"), lambda f: f.write(text.encode("utf-8")))

    @property
    def is_base(self) -> torch.Tensor:
        """BoolTensor[C]: True for base classes (those a detector is trained on)."""
        return ~self.is_novel

    @property
    def num_classes(self) -> int:
        return len(self.names)

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        """Row of class ``name`` (matched up to case, whitespace and unicode form)."""
        key = name_key(name)
        for i, own in enumerate(self.names):
            if name_key(own) == key:
                return i
        raise KeyError(f"class '{name}' is not in this vocabulary")

    def select(self, keep: torch.Tensor | Sequence[int]) -> Vocabulary:
        """A vocabulary of some classes, e.g. ``vocab.select(vocab.is_base)``.

        Args:
            keep: BoolTensor[C] mask or a sequence of class indices.
        """
        keep_t = torch.as_tensor(keep, device="cpu")
        indices = keep_t.nonzero()[:, 0].tolist() if keep_t.dtype == torch.bool else keep_t.tolist()
        return Vocabulary(
            [self.names[i] for i in indices],
            self.embeddings[indices],
            synonyms=[self.synonyms[i] for i in indices],
            is_novel=self.is_novel[indices],
            templates=self.templates,
        )

    def to(self, device: str | torch.device) -> Vocabulary:
        """This vocabulary with embeddings and mask on ``device`` (a new object)."""
        moved = Vocabulary.__new__(Vocabulary)
        moved.__dict__.update(self.__dict__)
        moved.embeddings = self.embeddings.to(device)
        moved.is_novel = self.is_novel.to(device)
        return moved

    def __repr__(self) -> str:
        shown = ", ".join(self.names[:5]) + (", ..." if len(self) > 5 else "")
        return (
            f"Vocabulary(num_classes={len(self)}, dim={self.dim}, "
            f"num_novel={int(self.is_novel.sum())}, names=[{shown}])"
        )


def name_key(name: str) -> str:
    """Case-, whitespace- and unicode-insensitive key of a class name."""
    return " ".join(unicodedata.normalize("NFC", name).split()).casefold()


def _merge_classes(
    names: Sequence[str],
    synonyms: Sequence[Sequence[str]] | None,
    is_novel: Sequence[bool] | torch.Tensor | None,
) -> tuple[list[int], list[str], list[list[str]], list[bool]]:
    """Clean names and merge duplicates; returns (kept input rows, names, synonyms, novel)."""
    if isinstance(names, str):
        raise TypeError("names must be a sequence of class names, not one string")
    if len(names) == 0:
        raise ValueError("the vocabulary is empty: give at least one class name")
    synonyms = [[] for _ in names] if synonyms is None else synonyms
    novel = [False] * len(names) if is_novel is None else [bool(x) for x in is_novel]
    if len(synonyms) != len(names) or len(novel) != len(names):
        raise ValueError(
            f"got {len(names)} names but {len(synonyms)} synonym lists and {len(novel)} novel flags"
        )
    keep: list[int] = []
    out_names: list[str] = []
    out_synonyms: list[list[str]] = []
    out_novel: list[bool] = []
    first_of: dict[str, int] = {}
    for i, raw in enumerate(names):
        name = unicodedata.normalize("NFC", str(raw)).strip()
        if not name:
            raise ValueError(f"class name #{i} is blank ({raw!r})")
        extra = [unicodedata.normalize("NFC", s).strip() for s in synonyms[i] if s.strip()]
        key = name_key(name)
        if key not in first_of:
            first_of[key] = len(out_names)
            keep.append(i)
            out_names.append(name)
            out_synonyms.append([])
            out_novel.append(novel[i])
        else:
            j = first_of[key]
            if out_novel[j] != novel[i]:
                raise ValueError(f"class '{name}' appears twice, once as base and once as novel")
            warnings.warn(
                f"duplicate class name '{name}' (#{i}) merged into '{out_names[j]}' (#{j})",
                UserWarning,
                stacklevel=3,
            )
            extra = [name, *extra]
        j = first_of[key]
        for s in extra:
            seen = {name_key(x) for x in [out_names[j], *out_synonyms[j]]}
            if name_key(s) not in seen:
                out_synonyms[j].append(s)
    return keep, out_names, out_synonyms, out_novel
