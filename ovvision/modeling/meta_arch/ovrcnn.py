"""OV-RCNN: a two-stage open-vocabulary detector and instance segmenter."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ovvision.config import CfgNode, configurable
from ovvision.modeling.backbone import Backbone, build_backbone
from ovvision.modeling.postprocessing import detector_postprocess
from ovvision.modeling.proposals import build_proposal_generator
from ovvision.modeling.region_heads import build_region_clip, build_roi_heads
from ovvision.structures import ImageList, Instances
from ovvision.structures.vocabulary import Vocabulary

from .build import META_ARCH_REGISTRY
from .input_checks import check_image, check_masks_everywhere_or_nowhere, check_targets
from .vocabulary_source import NameEmbedder, initial_vocabulary, name_key


@META_ARCH_REGISTRY.register()
class OVRCNN(nn.Module):
    """Backbone -> class-agnostic RPN -> CLIP-aligned region head (+ class-agnostic masks).

    Classes are rows of a vocabulary of text embeddings held as buffers (not saved in
    checkpoints); :meth:`set_vocabulary` swaps them, so any class name can be detected.

    Args:
        backbone: pyramid feature extractor.
        proposal_generator: class-agnostic proposer, ``(images, features, gt) -> (boxes, losses)``.
        roi_heads: second stage (``OpenVocabROIHeads``).
        pixel_mean, pixel_std: per-channel input normalisation, 0-255 units.
        vocabulary: the training vocabulary; its base classes are the "seen" classes.
        name_embedder: embeds plain name lists given to :meth:`set_vocabulary`.
        mask_threshold: mask probability threshold when pasting masks.
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
    ):
        super().__init__()
        self.backbone = backbone
        self.proposal_generator = proposal_generator
        self.roi_heads = roi_heads
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)
        self.name_embedder = name_embedder
        self.mask_threshold = mask_threshold
        self.trained_class_names = [
            n for n, novel in zip(vocabulary.names, vocabulary.is_novel.tolist()) if not novel
        ]
        self.register_buffer("class_embeddings", torch.zeros(0), persistent=False)
        self.register_buffer("seen_classes", torch.zeros(0, dtype=torch.bool), persistent=False)
        self.class_names: list[str] = []
        self.set_vocabulary(vocabulary)

    @classmethod
    def from_config(cls, cfg: CfgNode) -> dict[str, Any]:
        backbone = build_backbone(cfg)
        levels = backbone.output_names
        strides = {name: backbone.strides[name] for name in levels}
        vocabulary, name_embedder = initial_vocabulary(cfg)
        return {
            "backbone": backbone,
            "proposal_generator": build_proposal_generator(cfg, strides, backbone.out_channels),
            "roi_heads": build_roi_heads(
                cfg, levels, backbone.out_channels, build_region_clip(cfg, backbone)
            ),
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
            "vocabulary": vocabulary,
            "name_embedder": name_embedder,
            "mask_threshold": cfg.MODEL.ROI_MASK_HEAD.MASK_THRESHOLD,
        }

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def set_vocabulary(self, vocabulary: Vocabulary | Sequence[str]) -> None:
        """Detect the classes of ``vocabulary`` from now on.

        A class counts as seen (for the loss and for score fusion) when it is not marked novel
        and its name is one of the base classes of the training vocabulary.

        Args:
            vocabulary: a :class:`Vocabulary`, or class names embedded with the config's text
                encoder (``MODEL.TEXT_ENCODER``, ``VOCABULARY.TEMPLATES``).

        Raises:
            ValueError: empty vocabulary, or embeddings of the wrong dimension.
            TypeError: a single string instead of a list of names.
        """
        if isinstance(vocabulary, str):
            raise TypeError("set_vocabulary takes a list of class names or a Vocabulary, not a str")
        if not isinstance(vocabulary, Vocabulary):
            if self.name_embedder is None:
                raise ValueError("this model has no text encoder; pass a Vocabulary")
            vocabulary = self.name_embedder(list(vocabulary), self.device)
        expected = self.roi_heads.region_head.embed_dim
        if vocabulary.dim != expected:
            raise ValueError(
                f"vocabulary embeddings have dimension {vocabulary.dim} but the region head "
                f"projects to {expected} (MODEL.CLIP_REGION_HEAD.EMBED_DIM)"
            )
        trained = {name_key(n) for n in self.trained_class_names}
        in_training = torch.tensor([name_key(n) in trained for n in vocabulary.names])
        self.class_embeddings = vocabulary.embeddings.detach().float().to(self.device)
        self.seen_classes = (~vocabulary.is_novel.cpu() & in_training).to(self.device)
        self.class_names = list(vocabulary.names)

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
        num_classes = len(self.class_names)
        gt = [
            check_targets(x, i, num_classes, self.seen_classes).to(self.device)
            for i, x in enumerate(batched_inputs)
        ]
        check_masks_everywhere_or_nowhere(batched_inputs)
        images = self.preprocess_image(batched_inputs)
        features = self.backbone(images.tensor)
        proposals, losses = self.proposal_generator(images, features, gt)
        losses.update(
            self.roi_heads(
                images, features, proposals, self.class_embeddings, self.seen_classes, gt
            )
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
            masks, ``pred_masks`` (``BoolTensor[N, height, width]``). Without: the raw
            Instances at the network's input resolution.
        """
        images = self.preprocess_image(batched_inputs)
        features = self.backbone(images.tensor)
        proposals, _ = self.proposal_generator(images, features)
        results = self.roi_heads(
            images, features, proposals, self.class_embeddings, self.seen_classes
        )
        if not do_postprocess:
            return results
        outputs = []
        for item, result in zip(batched_inputs, results):
            height = int(item.get("height", result.image_size[0]))
            width = int(item.get("width", result.image_size[1]))
            outputs.append(
                {"instances": detector_postprocess(result, height, width, self.mask_threshold)}
            )
        return outputs

    def preprocess_image(self, batched_inputs: list[dict[str, Any]]) -> ImageList:
        """Normalise and pad the images of a batch into an :class:`ImageList`."""
        if not batched_inputs:
            raise ValueError("the batch is empty")
        images = [
            (check_image(x, i).to(self.device, torch.float32) - self.pixel_mean) / self.pixel_std
            for i, x in enumerate(batched_inputs)
        ]
        return ImageList.from_tensors(images, self.backbone.size_divisibility)
