"""Where OV-RCNN's class embeddings come from: the one place that talks to the text encoder."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

import torch

from ovvision.config import CfgNode
from ovvision.data.catalog import MetadataCatalog
from ovvision.modeling.text import TextEncoder, build_vocabulary_from_cfg, create_text_encoder
from ovvision.structures.vocabulary import Vocabulary


class NameEmbedder:
    """Turns class names into a :class:`Vocabulary` with the config's text encoder.

    The encoder is created on first use and kept (it is not part of the model's state).

    Args:
        encoder_name: ``MODEL.TEXT_ENCODER.NAME``.
        pretrained: ``MODEL.TEXT_ENCODER.PRETRAINED`` (``""`` = random weights).
        templates: prompt template set name or format strings.
        cache_dir: text-embedding cache folder (None = default).
    """

    def __init__(
        self,
        encoder_name: str,
        pretrained: str,
        templates: str | Sequence[str],
        cache_dir: str | None = None,
        encoder: TextEncoder | None = None,
    ):
        self.encoder_name = encoder_name
        self.pretrained = pretrained
        self.templates = templates
        self.cache_dir = cache_dir
        self._encoder = encoder

    @classmethod
    def from_config(cls, cfg: CfgNode, encoder: TextEncoder | None = None) -> NameEmbedder:
        voc = cfg.VOCABULARY
        return cls(
            cfg.MODEL.TEXT_ENCODER.NAME,
            cfg.MODEL.TEXT_ENCODER.PRETRAINED,
            list(voc.CUSTOM_TEMPLATES) or voc.TEMPLATES,
            voc.CACHE_DIR or None,
            encoder,
        )

    def __call__(self, names: Sequence[str], device: torch.device) -> Vocabulary:
        """Embed ``names`` (no novel flags: every class counts as seen if it was trained on)."""
        if self._encoder is None:
            self._encoder = create_text_encoder(
                self.encoder_name, pretrained=self.pretrained or None, device=device
            )
        return Vocabulary.from_names(
            list(names), self._encoder, templates=self.templates, cache_dir=self.cache_dir
        )


def initial_vocabulary(cfg: CfgNode) -> tuple[Vocabulary, NameEmbedder]:
    """The training vocabulary and an embedder for name lists given later.

    The configured vocabulary (``VOCABULARY.*``, embedded by ``MODEL.TEXT_ENCODER`` or read
    from ``VOCABULARY.EMBEDDINGS``) is restricted and ordered to the ``thing_classes`` of
    ``DATASETS.TRAIN[0]`` when one is set, so that ``gt_classes`` index it; its ``is_novel``
    flags mark classes the losses never use.
    """
    encoder = None
    if not cfg.VOCABULARY.EMBEDDINGS:
        encoder = create_text_encoder(
            cfg.MODEL.TEXT_ENCODER.NAME,
            pretrained=cfg.MODEL.TEXT_ENCODER.PRETRAINED or None,
            device=torch.device(cfg.MODEL.DEVICE),
        )
    vocabulary = build_vocabulary_from_cfg(cfg, encoder)
    if cfg.DATASETS.TRAIN:
        vocabulary = vocabulary_for_dataset(vocabulary, cfg.DATASETS.TRAIN[0])
    return vocabulary, NameEmbedder.from_config(cfg, encoder)


def vocabulary_for_dataset(vocabulary: Vocabulary, dataset_name: str) -> Vocabulary:
    """The rows of ``vocabulary`` for a registered dataset's ``thing_classes``, in their order.

    Use it to evaluate on a dataset: ``model.set_vocabulary(vocabulary_for_dataset(v, name))``.

    Raises:
        ValueError: a class of the dataset is not in ``vocabulary``.
    """
    classes = MetadataCatalog.get(dataset_name).thing_classes
    rows = []
    for name in classes:
        try:
            rows.append(vocabulary.index(name))
        except KeyError:
            raise ValueError(
                f"class '{name}' of dataset '{dataset_name}' is not in the configured vocabulary "
                f"({len(vocabulary)} classes, see VOCABULARY.NAME)"
            ) from None
    return vocabulary.select(rows)


def name_key(name: str) -> str:
    """Case-, whitespace- and unicode-insensitive key of a class name."""
    return " ".join(unicodedata.normalize("NFC", name).split()).casefold()
