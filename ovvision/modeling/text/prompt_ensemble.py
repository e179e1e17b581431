"""Prompt-ensembled class embeddings with an on-disk cache.

A class is described by one or more names (its name and synonyms). Each name is put into every
template; each prompt is embedded and L2-normalised; a class's embedding is the mean over all its
prompts, L2-normalised again. The result is cached as ``<cache_dir>/<key>.npy``, with ``key`` a
sha256 of the encoder's identity (model name, weights, context length: whatever the caller
passes), the templates and the class names, so a large vocabulary (LVIS: 1,203 classes x 80
templates) is encoded once per model.

The ensembler knows nothing of the encoder but an ``encode_text(prompts) -> Tensor[N, D]``
callable, so text encoders call into it and it never imports them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from ovvision.utils.file_io import atomic_write

__all__ = ["cache_key", "default_cache_dir", "embed_class_prompts", "expand_prompts"]

logger = logging.getLogger(__name__)
_CACHE_FORMAT = 1  # bump when the ensembling recipe changes, so old entries are not reused


def default_cache_dir() -> Path:
    """``$OVVISION_CACHE/text_embeddings``, default ``~/.cache/ovvision/text_embeddings``."""
    root = os.environ.get("OVVISION_CACHE") or Path.home() / ".cache" / "ovvision"
    return Path(root) / "text_embeddings"


def cache_key(
    encoder_identity: Mapping[str, object],
    class_prompts: Sequence[Sequence[str]],
    templates: Sequence[str],
) -> str:
    """The cache key of a vocabulary for an encoder (hex sha256).

    Args:
        encoder_identity: JSON-serialisable description of the encoder and its weights.
        class_prompts: per class, its names.
        templates: the format strings.
    """
    identity = {
        "format": _CACHE_FORMAT,
        **encoder_identity,
        "templates": list(templates),
        "classes": [list(names) for names in class_prompts],
    }
    blob = json.dumps(identity, ensure_ascii=False, sort_keys=True).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


def embed_class_prompts(
    encode_text: Callable[[list[str]], torch.Tensor],
    class_prompts: Sequence[Sequence[str]],
    templates: Sequence[str],
    *,
    cache_identity: Mapping[str, object] | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> torch.Tensor:
    """Embed classes by averaging over templates and synonyms.

    Args:
        encode_text: embeds N prompts as ``Tensor[N, D]`` (normalised here again).
        class_prompts: per class, its names (name first, then synonyms).
        templates: format strings with one ``{}`` (see ``templates.resolve_templates``).
        cache_identity: what identifies the encoder and its weights in cache keys; None = no
            cache (read or written).
        cache_dir: cache folder; None = :func:`default_cache_dir`.

    Returns:
        Tensor[C, D] with unit-norm rows, float32.
    """
    if not class_prompts:
        raise ValueError("cannot embed an empty vocabulary (no classes given)")
    path = None
    if cache_identity is not None:
        key = cache_key(cache_identity, class_prompts, templates)
        path = Path(cache_dir or default_cache_dir()) / (key + ".npy")
        cached = _read_cache(path, len(class_prompts))
        if cached is not None:
            logger.info("text embeddings of %d classes read from cache %s", len(cached), path)
            return cached
    prompts, owner = expand_prompts(class_prompts, templates)
    per_prompt = F.normalize(encode_text(prompts).float(), dim=-1)
    owner_t = torch.as_tensor(owner, device=per_prompt.device)
    summed = per_prompt.new_zeros(len(class_prompts), per_prompt.shape[1])
    summed.index_add_(0, owner_t, per_prompt)
    embeddings = F.normalize(summed, dim=-1)
    if path is not None:
        _write_cache(path, embeddings)
    return embeddings


def expand_prompts(
    class_prompts: Sequence[Sequence[str]], templates: Sequence[str]
) -> tuple[list[str], list[int]]:
    """Every name of every class in every template; returns (prompts, owning class index)."""
    prompts: list[str] = []
    owner: list[int] = []
    for index, names in enumerate(class_prompts):
        for name in names:
            for template in templates:
                prompts.append(template.format(name))
                owner.append(index)
    return prompts, owner


def _read_cache(path: Path, num_classes: int) -> torch.Tensor | None:
    if not path.is_file():
        return None
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        warnings.warn(f"ignoring unreadable text-embedding cache file '{path}': {e}", stacklevel=3)
        return None
    bad_shape = array.ndim != 2 or array.shape[0] != num_classes
    if bad_shape or array.dtype != np.float32 or not np.isfinite(array).all():
        warnings.warn(
            f"ignoring text-embedding cache file '{path}': expected float32 "
            f"[{num_classes}, D], "
            f"found {array.dtype} {array.shape}",
            stacklevel=3,
        )
        return None
    return torch.from_numpy(array)


def _write_cache(path: Path, embeddings: torch.Tensor) -> None:
    array = embeddings.detach().cpu().numpy().astype(np.float32)
    atomic_write(path, lambda f: np.save(f, array))
