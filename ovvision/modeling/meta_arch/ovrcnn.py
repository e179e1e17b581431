"""OV-RCNN: a two-stage open-vocabulary detector and instance segmenter."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ovvision.checkpoint import Checkpointer
from ovvision.config import CfgNode, configurable
from ovvision.modeling.backbone import BACKBONE_REGISTRY, Backbone, build_backbone
from ovvision.modeling.captioning import CaptionGenerationLoss
from ovvision.modeling.clip_regions import build_clip_box_embedder
from ovvision.modeling.postprocessing import detector_postprocess
from ovvision.modeling.proposals import build_proposal_generator
from ovvision.modeling.region_heads import build_roi_heads
from ovvision.modeling.text import (
    NameEmbedder,
    TextEncoder,
    VocabularyLike,
    build_vocabulary_from_cfg,
    text_encoder_from_cfg,
)
from ovvision.structures import ClassEmbeddings, ImageList, Instances, Vocabulary, name_key

from .build import META_ARCH_REGISTRY
from .input_checks import check_image, check_masks_everywhere_or_nowhere, check_targets

logger = logging.getLogger(__name__)


@META_ARCH_REGISTRY.register()
class OVRCNN(nn.Module):
    """Backbone -> class-agnostic RPN -> CLIP-aligned region classifier (+ class-agnostic masks).

    Classes are rows of a :class:`Vocabulary` of text embeddings (not saved in checkpoints);
    :meth:`set_vocabulary` swaps it, so any class name can be detected. A class counts as
    *seen* when it is one of the base classes the model is trained on
    (:meth:`set_training_vocabulary`, by default the base classes of the configured vocabulary),
    by name or (with ``seen_cosine_threshold``) by text embedding, and not marked novel: only
    seen classes reach the classification loss, and score fusion leans on CLIP for the others.

    Args:
        backbone: pyramid feature extractor.
        proposal_generator: class-agnostic proposer, ``(images, features, gt) -> (boxes, losses)``.
        roi_heads: second stage (``OpenVocabROIHeads``).
        pixel_mean, pixel_std: per-channel input normalisation, 0-255 units.
        vocabulary: the training vocabulary.
        name_embedder: embeds names given to :meth:`set_vocabulary` (None: only Vocabulary
            objects are accepted).
        mask_threshold: mask probability threshold when pasting masks.
        seen_cosine_threshold: a class also counts as seen when its embedding's cosine with a
            trained class's exceeds this (0 = by name only).
        captions_at_test: inference also writes each image's ``"caption"`` (needs a caption
            generator, ``CaptionGenerationLoss``; ``TEST.CAPTIONS``).
    """

    @configurable
    def __init__(
        self,
        *,
        backbone: Backbone,
        proposal_generator: nn.Module,
        roi_heads: nn.Module,
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
        vocabulary: Vocabulary,
        name_embedder: NameEmbedder | None = None,
        mask_threshold: float = 0.5,
        seen_cosine_threshold: float = 0.0,
        captions_at_test: bool = False,
    ):
        super().__init__()
        self.backbone = backbone
        self.proposal_generator = proposal_generator
        self.roi_heads = roi_heads
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)
        self.name_embedder = name_embedder
        self.mask_threshold = mask_threshold
        self.seen_cosine_threshold = seen_cosine_threshold
        if captions_at_test and self.caption_writer is None:
            raise ValueError(
                "TEST.CAPTIONS needs a caption generator: add CaptionGenerationLoss to "
                "MODEL.ROI_HEADS.AUXILIARY_LOSSES"
            )
        self.captions_at_test = captions_at_test
        # The vocabulary as tensors: buffers, so that .to(device) moves them with the model.
        self.register_buffer("_class_embeddings", torch.zeros(0), persistent=False)
        self.register_buffer("_seen", torch.zeros(0, dtype=torch.bool), persistent=False)
        self._vocabulary: Vocabulary | None = None
        self._trained_keys: set[str] = set()
        self._trained_embeddings = torch.zeros(0)
        self.set_training_vocabulary(vocabulary)

    @classmethod
    def from_config(cls, cfg: CfgNode) -> dict[str, Any]:
        clip_model = _model_clip(cfg)
        backbone = build_backbone(cfg, clip_model=clip_model)
        levels = backbone.output_names
        strides = {name: backbone.strides[name] for name in levels}
        box_embedder = build_clip_box_embedder(cfg, backbone, clip_model)
        name_embedder = NameEmbedder.from_config(cfg, clip_model)
        return {
            "backbone": backbone,
            "proposal_generator": build_proposal_generator(cfg, strides, backbone.out_channels),
            "roi_heads": build_roi_heads(
                cfg, levels, backbone.out_channels, box_embedder, name_embedder
            ),
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
            "vocabulary": build_vocabulary_from_cfg(cfg, clip_model),
            "name_embedder": name_embedder,
            "mask_threshold": cfg.MODEL.ROI_MASK_HEAD.MASK_THRESHOLD,
            "seen_cosine_threshold": cfg.MODEL.PROXY_MIXUP.SEEN_COSINE_THRESHOLD,
            "captions_at_test": cfg.TEST.CAPTIONS,
        }

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    @property
    def caption_writer(self) -> CaptionGenerationLoss | None:
        """The caption generator among the ROI heads' auxiliary losses (None: there is none)."""
        losses = getattr(self.roi_heads, "auxiliary_losses", ())
        return next((m for m in losses if isinstance(m, CaptionGenerationLoss)), None)

    @property
    def vocabulary(self) -> Vocabulary:
        """The classes detected now; ``pred_classes`` index its rows."""
        assert self._vocabulary is not None  # set in __init__
        return self._vocabulary

    @property
    def class_names(self) -> list[str]:
        """Names of the classes ``pred_classes`` index into."""
        return list(self.vocabulary.names)

    @property
    def classes(self) -> ClassEmbeddings:
        """The vocabulary's embeddings and seen flags on the model's device."""
        return ClassEmbeddings(self._class_embeddings, self._seen)

    def set_training_vocabulary(self, vocabulary: VocabularyLike) -> None:
        """Train on these classes: its classes not marked novel become the seen ones.

        Call it before training with the training dataset's classes (``gt_classes`` index
        them); ``tools/train_net.py`` and the Predictor do, from ``DATASETS.TRAIN[0]``.
        """
        vocabulary = self._embed(vocabulary)
        trained = vocabulary.is_base.cpu()  # _embed checked the vocabulary: safe to keep it
        self._trained_keys = {name_key(n) for n, t in zip(vocabulary.names, trained.tolist()) if t}
        self._trained_embeddings = vocabulary.embeddings.detach().float().cpu()[trained]
        self.set_vocabulary(vocabulary)

    def set_vocabulary(self, vocabulary: VocabularyLike) -> None:
        """Detect the classes of ``vocabulary`` from now on.

        Args:
            vocabulary: a :class:`Vocabulary`; a :class:`ClassList`; or class names, each
                optionally followed by ``|``-separated synonyms (``["mug|cup", "lamp"]``).
                Names are embedded with the model's text encoder, every synonym averaged in.

        Raises:
            ValueError: empty vocabulary, or embeddings of the wrong dimension.
            TypeError: a single string instead of a list of names.
        """
        vocabulary = self._embed(vocabulary)
        in_training = torch.tensor([name_key(n) in self._trained_keys for n in vocabulary.names])
        if self.seen_cosine_threshold > 0 and len(self._trained_embeddings):
            cosine = vocabulary.embeddings.detach().float().cpu() @ self._trained_embeddings.t()
            in_training |= cosine.max(dim=1).values > self.seen_cosine_threshold
        self._class_embeddings = vocabulary.embeddings.detach().float().to(self.device)
        self._seen = (~vocabulary.is_novel.cpu() & in_training).to(self.device)
        self._vocabulary = vocabulary

    def _embed(self, vocabulary: VocabularyLike) -> Vocabulary:
        """``vocabulary`` as a Vocabulary of the classifier's dimension (embedded if needed)."""
        if not isinstance(vocabulary, Vocabulary):
            if self.name_embedder is None:
                raise ValueError("this model has no text encoder; pass a Vocabulary")
            vocabulary = self.name_embedder(vocabulary, self.device)
        expected = self.roi_heads.classifier.embed_dim
        if vocabulary.dim != expected:
            raise ValueError(
                f"vocabulary embeddings have dimension {vocabulary.dim} but the region classifier "
                f"projects to {expected} (MODEL.ZERO_SHOT_CLASSIFIER.EMBED_DIM)"
            )
        return vocabulary

    def forward(self, batched_inputs: list[dict[str, Any]]) -> dict[str, torch.Tensor] | list[dict]:
        """Training: named losses. Inference: see :meth:`inference`.

        Args:
            batched_inputs: per image a dict with ``"image"`` (uint8 ``Tensor[3, H, W]`` RGB),
                in training ``"instances"`` (``gt_boxes``, ``gt_classes`` indexing the
                vocabulary, optionally ``gt_masks``), and optionally the original ``"height"``,
                ``"width"``, ``"file_name"``, ``"image_id"``.
        """
        if not self.training:
            return self.inference(batched_inputs)
        classes = self.classes
        gt = [
            check_targets(x, i, len(classes), classes.seen).to(self.device)
            for i, x in enumerate(batched_inputs)
        ]
        check_masks_everywhere_or_nowhere(batched_inputs)
        images = self.preprocess_image(batched_inputs)
        features = self.backbone(images.tensor)
        proposals, objectness, losses = self.proposal_generator(images, features, gt)
        captions = [list(x.get("captions", [])) for x in batched_inputs]
        losses.update(
            self.roi_heads(images, features, proposals, classes, gt, captions, objectness)
        )
        return losses

    def inference(
        self, batched_inputs: list[dict[str, Any]], do_postprocess: bool = True
    ) -> list[dict[str, Instances]] | list[Instances]:
        """Detect the vocabulary's classes.

        Args:
            batched_inputs: as in :meth:`forward` (no ``"instances"`` needed).
            do_postprocess: rescale to each item's ``"height"``/``"width"`` (default: the input
                size) and paste masks.

        Returns:
            With ``do_postprocess``: per image ``{"instances": Instances}`` with ``pred_boxes``
            (Boxes), ``scores``, ``pred_classes`` (indices into :attr:`class_names`) and, with
            masks, ``pred_masks`` (``BoolTensor[N, height, width]``); with ``captions_at_test``
            also ``"caption"`` (str). Without: the raw Instances at the network's input
            resolution.
        """
        images = self.preprocess_image(batched_inputs)
        features = self.backbone(images.tensor)
        proposals, _, _ = self.proposal_generator(images, features)
        results = self.roi_heads(images, features, proposals, self.classes)
        if not do_postprocess:
            return results
        outputs = []
        for item, result in zip(batched_inputs, results):
            height = int(item.get("height", result.image_size[0]))
            width = int(item.get("width", result.image_size[1]))
            outputs.append(
                {"instances": detector_postprocess(result, height, width, self.mask_threshold)}
            )
        if self.captions_at_test:
            captions = self._write_captions(images, features, proposals, None)
            for output, caption in zip(outputs, captions):
                output["caption"] = caption
        return outputs

    @torch.no_grad()
    def describe(
        self, batched_inputs: list[dict[str, Any]], beam_size: int | None = None
    ) -> list[str]:
        """A caption per image, written from the embeddings of its top proposals.

        Args:
            batched_inputs: as in :meth:`inference`.
            beam_size: 1 = greedy, > 1 = beam search; None = ``MODEL.CAPTION_GENERATION.BEAM_SIZE``.

        Raises:
            ValueError: the model has no caption generator (``CaptionGenerationLoss`` is not in
                ``MODEL.ROI_HEADS.AUXILIARY_LOSSES``).
        """
        if self.caption_writer is None:
            raise ValueError(
                "this model has no caption generator: add CaptionGenerationLoss to "
                "MODEL.ROI_HEADS.AUXILIARY_LOSSES and train it"
            )
        images = self.preprocess_image(batched_inputs)
        features = self.backbone(images.tensor)
        proposals, _, _ = self.proposal_generator(images, features)
        return self._write_captions(images, features, proposals, beam_size)

    def _write_captions(
        self,
        images: ImageList,
        features: dict[str, torch.Tensor],
        proposals: list[torch.Tensor],
        beam_size: int | None,
    ) -> list[str]:
        """A caption per image from the embeddings of its top proposals (``Tensor[R_i, 4]``,
        objectness order)."""
        writer = self.caption_writer
        assert writer is not None  # checked by the callers
        boxes = [p[: writer.regions_per_image] for p in proposals]
        return writer.generate(self.roi_heads.embed_boxes(images, features, boxes), beam_size)

    def preprocess_image(self, batched_inputs: list[dict[str, Any]]) -> ImageList:
        """Normalise and pad the images of a batch into an :class:`ImageList`."""
        if not batched_inputs:
            raise ValueError("the batch is empty")
        images = [
            (check_image(x, i).to(self.device, torch.float32) - self.pixel_mean) / self.pixel_std
            for i, x in enumerate(batched_inputs)
        ]
        return ImageList.from_tensors(images, self.backbone.size_divisibility)


def _model_clip(cfg: CfgNode) -> TextEncoder | None:
    """The model's one CLIP, when any part needs it now: the vocabulary's text embeddings (no
    ``VOCABULARY.EMBEDDINGS``), a CLIP backbone, or CLIP crops of boxes."""
    needs = (
        not cfg.VOCABULARY.EMBEDDINGS
        or getattr(BACKBONE_REGISTRY.get(cfg.MODEL.BACKBONE.NAME), "needs_clip_model", False)
        or cfg.MODEL.CLIP_BOX_EMBEDDER.SOURCE == "crops"
    )
    return text_encoder_from_cfg(cfg) if needs else None


def load_detector_weights(detector: OVRCNN, path: str, key: str) -> None:
    """Load an OV-RCNN checkpoint into ``detector`` strictly (tensors only, as every checkpoint of
    the project); a missing file raises FileNotFoundError naming the config ``key`` that gave it."""
    if not path or not os.path.isfile(path):
        raise FileNotFoundError(
            f"{key}: detector checkpoint '{path}' does not exist (train one with "
            "tools/train_net.py, e.g. `make quickstart`)"
        )
    Checkpointer(detector, save_to_disk=False).load(path, checkpointables=[])
    logger.info("%s: detector weights loaded from %s", key, path)
