"""Prompt-ensembled class embeddings with an on-disk cache.

A class is described by one or more names (its name and synonyms). Each name is put into every
template; each prompt is embedded and L2-normalised; a class's embedding is the mean over all its
prompts, L2-normalised again. The result is cached as ``<cache_dir>/<key>.npy``, with ``key`` a
sha256 of (model name, weights identity, context length, templates, class names), so a large
vocabulary (LVIS: 1,203 classes x 80 templates) is encoded once per model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.nn import functional as F

from ovvision.utils.file_io import atomic_write

if TYPE_CHECKING:
    from .encoder import TextEncoder

__all__ = ["cache_key", "default_cache_dir", "embed_class_prompts"]

logger = logging.getLogger(__name__)
_CACHE_FORMAT = 1  # bump when the ensembling recipe changes, so old entries are not reused


def default_cache_dir() -> Path:
    """``$OVVISION_CACHE/text_embeddings``, default ``~/.cache/ovvision/text_embeddings``."""
    root = os.environ.get("OVVISION_CACHE") or Path.home() / ".cache" / "ovvision"
    return Path(root) / "text_embeddings"


def cache_key(
    encoder: TextEncoder, class_prompts: Sequence[Sequence[str]], templates: Sequence[str]
) -> str:
    """The cache key of a vocabulary for an encoder (hex sha256)."""
    identity = {
        "format": _CACHE_FORMAT,
        "model": encoder.name,
        "weights": encoder.weights_id,
        "context_length": encoder.context_length,
        "templates": list(templates),
        "classes": [list(names) for names in class_prompts],
    }
    blob = json.dumps(identity, ensure_ascii=False, sort_keys=True).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


def embed_class_prompts(
    encoder: TextEncoder,
    class_prompts: Sequence[Sequence[str]],
    templates: Sequence[str],
    *,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    batch_size: int = 256,
) -> torch.Tensor:
    """Embed classes by averaging over templates and synonyms.

    Args:
        encoder: the text encoder.
        class_prompts: per class, its names (the first is the class name used in warnings).
        templates: format strings with one ``{}`` (see ``templates.resolve_templates``).
        cache_dir: cache folder; None = :func:`default_cache_dir`.
        use_cache: read and write the cache.
        batch_size: prompts per forward pass of the encoder.

    Returns:
        Tensor[C, D] with unit-norm rows, float32, on the encoder's device.
    """
    if not class_prompts:
        raise ValueError("cannot embed an empty vocabulary (no classes given)")
    path = Path(cache_dir or default_cache_dir()) / (
        cache_key(encoder, class_prompts, templates) + ".npy"
    )
    if use_cache:
        cached = _read_cache(path, (len(class_prompts), encoder.embed_dim))
        if cached is not None:
            logger.info("text embeddings of %d classes read from cache %s", len(cached), path)
            return cached.to(encoder.device)
    prompts, owner = _expand_prompts(class_prompts, templates)
    _warn_truncated(encoder, class_prompts, prompts, owner)
    per_prompt = encoder.encode_text(prompts, normalize=True, batch_size=batch_size)
    owner_t = torch.as_tensor(owner, device=per_prompt.device)
    summed = torch.zeros(len(class_prompts), per_prompt.shape[1], device=per_prompt.device)
    summed.index_add_(0, owner_t, per_prompt)
    embeddings = F.normalize(summed, dim=-1)
    if use_cache:
        _write_cache(path, embeddings)
    return embeddings


def _expand_prompts(
    class_prompts: Sequence[Sequence[str]], templates: Sequence[str]
) -> tuple[list[str], list[int]]:
    prompts: list[str] = []
    owner: list[int] = []
    for index, names in enumerate(class_prompts):
        for name in names:
            for template in templates:
                prompts.append(template.format(name))
                owner.append(index)
    return prompts, owner


def _warn_truncated(
    encoder: TextEncoder,
    class_prompts: Sequence[Sequence[str]],
    prompts: list[str],
    owner: list[int],
) -> None:
    prompts_per_class = Counter(owner)
    too_long: dict[int, list[int]] = {}
    for prompt, index in zip(prompts, owner):
        length = encoder.num_tokens(prompt)
        if length > encoder.context_length:
            too_long.setdefault(index, []).append(length)
    for index, lengths in too_long.items():
        name, total = class_prompts[index][0], prompts_per_class[index]
        warnings.warn(
            f"class '{name}': {len(lengths)} of {total} prompts are longer "
            f"(up to {max(lengths)} tokens) than the context length {encoder.context_length} of "
            f"text encoder '{encoder.name}' and were truncated",
            UserWarning,
            stacklevel=3,
        )


def _read_cache(path: Path, shape: tuple[int, int]) -> torch.Tensor | None:
    if not path.is_file():
        return None
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        warnings.warn(f"ignoring unreadable text-embedding cache file '{path}': {e}", stacklevel=3)
        return None
    if array.shape != shape or array.dtype != np.float32 or not np.isfinite(array).all():
        warnings.warn(
            f"ignoring text-embedding cache file '{path}': expected float32 {shape}, "
            f"found {array.dtype} {array.shape}",
            stacklevel=3,
        )
        return None
    return torch.from_numpy(array)


def _write_cache(path: Path, embeddings: torch.Tensor) -> None:
    array = embeddings.detach().cpu().numpy().astype(np.float32)
    atomic_write(path, lambda f: np.save(f, array))
