"""NameEmbedder: whatever a user calls a vocabulary, as a :class:`Vocabulary` of embeddings."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Union

import torch

from ovvision.config import CfgNode
from ovvision.structures import ClassList, Vocabulary, as_class_list

from .encoder import TextEncoder, text_encoder_from_cfg

__all__ = ["NameEmbedder", "VocabularyLike"]

# A Vocabulary (already embedded), a ClassList, or class names with optional "|synonyms".
VocabularyLike = Union[Vocabulary, ClassList, Sequence[str]]  # noqa: UP007 (runtime alias)


class NameEmbedder:
    """Embeds class names, synonyms included, with the model's text encoder.

    Every name and synonym of a class is put in every prompt template; the class embedding is
    their normalised mean (see ``prompt_ensemble``).

    Args:
        templates: prompt template set name or format strings.
        cache_dir: text-embedding cache folder (None = default).
        encoder: the model's CLIP; None = created from ``encoder_factory`` on first use (models
            built on precomputed embeddings need no text encoder until the user names classes).
        encoder_factory: makes the encoder when needed.
    """

    def __init__(
        self,
        templates: str | Sequence[str],
        cache_dir: str | None = None,
        encoder: TextEncoder | None = None,
        encoder_factory: Callable[[], TextEncoder] | None = None,
    ):
        self.templates = templates
        self.cache_dir = cache_dir
        self._encoder = encoder
        self._encoder_factory = encoder_factory

    @classmethod
    def from_config(cls, cfg: CfgNode, encoder: TextEncoder | None = None) -> NameEmbedder:
        voc = cfg.VOCABULARY
        return cls(
            list(voc.CUSTOM_TEMPLATES) or voc.TEMPLATES,
            voc.CACHE_DIR or None,
            encoder,
            encoder_factory=lambda: text_encoder_from_cfg(cfg),
        )

    @property
    def encoder(self) -> TextEncoder:
        """The text encoder (created now if it was not given)."""
        if self._encoder is None:
            if self._encoder_factory is None:
                raise ValueError("this model has no text encoder; pass a Vocabulary")
            self._encoder = self._encoder_factory()
        return self._encoder

    def __call__(self, vocabulary: VocabularyLike, device: torch.device) -> Vocabulary:
        """A :class:`Vocabulary` on ``device``; a Vocabulary passes through unchanged.

        Raises:
            TypeError: one string instead of a list of names.
            ValueError: no class names.
        """
        if isinstance(vocabulary, Vocabulary):
            return vocabulary.to(device)
        classes = as_class_list(vocabulary)
        embedded = Vocabulary.from_classes(
            classes, self.encoder, templates=self.templates, cache_dir=self.cache_dir
        )
        return embedded.to(device)
