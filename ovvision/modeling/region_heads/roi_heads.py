"""OpenVocabROIHeads: sample proposals, pool, classify against the vocabulary, box and mask.

The second stage only orchestrates: the region classifier (``modeling/classifiers``), auxiliary
losses (``modeling/losses``) and CLIP score fusion (``modeling/clip_regions``) are built from
their own config blocks and called here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torchvision.models.detection._utils import BalancedPositiveNegativeSampler, BoxCoder, Matcher
from torchvision.ops import batched_nms, box_iou, clip_boxes_to_image

from ovvision.config import CfgNode, configurable
from ovvision.modeling.classifiers import build_region_classifier
from ovvision.modeling.clip_regions import (
    ClipBoxEmbedder,
    ClipScoreFusion,
    build_clip_score_fusion,
)
from ovvision.modeling.losses import RegionLossInputs, build_auxiliary_losses
from ovvision.modeling.mask_heads import build_mask_head, mask_loss
from ovvision.modeling.text import NameEmbedder
from ovvision.structures import Boxes, ClassEmbeddings, ImageList, Instances
from ovvision.utils.registry import Registry

from .pooling import build_roi_pooler

ROI_HEADS_REGISTRY = Registry("ROI_HEADS")
ROI_HEADS_REGISTRY.__doc__ = """Region heads: ``MODEL.ROI_HEADS.NAME`` names a class built with
``cls(cfg, level_names=..., channels=..., box_embedder=...)``."""


@dataclass(frozen=True)
class ProposalSampling:
    """How training regions are drawn from proposals.

    Attributes:
        iou_threshold: a proposal is foreground if its IoU with a ground-truth box is at least this.
        batch_size_per_image: regions sampled per image.
        positive_fraction: at most this fraction of them foreground.
        append_gt: add the ground-truth boxes to the proposals.
    """

    iou_threshold: float = 0.5
    batch_size_per_image: int = 512
    positive_fraction: float = 0.25
    append_gt: bool = True


@dataclass(frozen=True)
class DetectionSettings:
    """Inference: score threshold, per-class NMS IoU, detections kept per image (<= 0: all)."""

    score_thresh: float = 0.05
    nms_thresh: float = 0.5
    detections_per_image: int = 100


@dataclass
class SampledRegions:
    """The training regions of a batch, per image.

    Attributes:
        boxes: ``Tensor[K_i, 4]`` sampled boxes.
        labels: ``LongTensor[K_i]`` class of each, ``C`` for background.
        matched: ``LongTensor[K_i]`` index of the matched ground truth (0 for background).
        objectness: ``Tensor[K_i]`` proposer objectness logits (ground-truth boxes appended as
            proposals get :data:`GT_OBJECTNESS`).
        ious: ``Tensor[K_i]`` IoU with the best-overlapping ground truth (0 without any).
    """

    boxes: list[torch.Tensor]
    labels: list[torch.Tensor]
    matched: list[torch.Tensor]
    objectness: list[torch.Tensor]
    ious: list[torch.Tensor]


# The objectness logit of a ground-truth box appended to the proposals: sigmoid(23) = 1 - 1e-10,
# the value detectron2 gives them, "certainly an object".
GT_OBJECTNESS = math.log((1.0 - 1e-10) / 1e-10)

_DEFAULT_SAMPLING = ProposalSampling()
_DEFAULT_DETECTION = DetectionSettings()


@ROI_HEADS_REGISTRY.register()
class OpenVocabROIHeads(nn.Module):
    """The second stage of OV-RCNN.

    Args:
        box_pooler: multi-scale ROI pooler for the region classifier.
        classifier: the region classifier (embeddings, class logits, box deltas, losses).
        mask_pooler, mask_head: class-agnostic mask branch (both or neither).
        sampling: training-region sampling.
        bbox_reg_weights: (wx, wy, ww, wh) of the box coder.
        detection: inference settings.
        fusion: CLIP score fusion at inference (None = classifier scores only).
        auxiliary_losses: extra training losses on region embeddings.
    """

    @configurable
    def __init__(
        self,
        *,
        box_pooler: nn.Module,
        classifier: nn.Module,
        mask_pooler: nn.Module | None = None,
        mask_head: nn.Module | None = None,
        sampling: ProposalSampling = _DEFAULT_SAMPLING,
        bbox_reg_weights: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0),
        detection: DetectionSettings = _DEFAULT_DETECTION,
        fusion: ClipScoreFusion | None = None,
        auxiliary_losses: Sequence[nn.Module] = (),
    ):
        super().__init__()
        if (mask_pooler is None) != (mask_head is None):
            raise ValueError("give both mask_pooler and mask_head, or neither")
        self.box_pooler = box_pooler
        self.classifier = classifier
        self.mask_pooler = mask_pooler
        self.mask_head = mask_head
        self.sampling = sampling
        self.matcher = Matcher(sampling.iou_threshold, sampling.iou_threshold)
        self.sampler = BalancedPositiveNegativeSampler(
            sampling.batch_size_per_image, sampling.positive_fraction
        )
        self.box_coder = BoxCoder(bbox_reg_weights)
        self.detection = detection
        self.fusion = fusion
        self.auxiliary_losses = nn.ModuleList(auxiliary_losses)

    @classmethod
    def from_config(
        cls,
        cfg: CfgNode,
        level_names: list[str],
        channels: int,
        box_embedder: ClipBoxEmbedder | None = None,
        name_embedder: NameEmbedder | None = None,
    ) -> dict:
        rcfg, bcfg, mcfg = cfg.MODEL.ROI_HEADS, cfg.MODEL.ROI_BOX_HEAD, cfg.MODEL.ROI_MASK_HEAD
        names = list(rcfg.IN_FEATURES) or list(level_names)
        unknown = sorted(set(names) - set(level_names))
        if unknown:
            raise ValueError(
                f"MODEL.ROI_HEADS.IN_FEATURES names levels {unknown} not in {level_names}"
            )
        box_pooler = build_roi_pooler(names, bcfg.POOLER_RESOLUTION, bcfg.POOLER_SAMPLING_RATIO)
        classifier = build_region_classifier(cfg, in_channels=channels)
        args = {
            "box_pooler": box_pooler,
            "classifier": classifier,
            "sampling": ProposalSampling(
                rcfg.IOU_THRESHOLD, rcfg.BATCH_SIZE_PER_IMAGE, rcfg.POSITIVE_FRACTION,
                rcfg.PROPOSAL_APPEND_GT,
            ),
            "bbox_reg_weights": tuple(bcfg.BBOX_REG_WEIGHTS),
            "detection": DetectionSettings(
                rcfg.SCORE_THRESH_TEST, rcfg.NMS_THRESH_TEST,
                0 if cfg.TEST.LVIS_FIXED_AP else cfg.TEST.DETECTIONS_PER_IMAGE,
            ),
            "fusion": build_clip_score_fusion(cfg, box_embedder),
            "auxiliary_losses": build_auxiliary_losses(
                cfg, box_embedder=box_embedder, classifier=classifier, name_embedder=name_embedder
            ),
        }  # fmt: skip
        if cfg.MODEL.MASK_ON:
            args["mask_pooler"] = build_roi_pooler(
                names, mcfg.POOLER_RESOLUTION, mcfg.POOLER_SAMPLING_RATIO
            )
            args["mask_head"] = build_mask_head(cfg, channels)
        return args

    def forward(
        self,
        images: ImageList,
        features: dict[str, torch.Tensor],
        proposals: list[torch.Tensor],
        classes: ClassEmbeddings,
        gt_instances: list[Instances] | None = None,
        captions: list[list[str]] | None = None,
        objectness: list[torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor] | list[Instances]:
        """Losses in training, detections in inference.

        Args:
            images: the normalised, padded batch.
            features: the backbone's output.
            proposals: per image ``Tensor[P_i, 4]`` proposal boxes in objectness order.
            classes: the vocabulary: ``embeddings Tensor[C, D]`` and ``seen BoolTensor[C]``
                (training: the classes the loss uses; inference: the fusion exponent).
            gt_instances: per image ``gt_boxes``, ``gt_classes`` (< C) and, for masks,
                ``gt_masks``; required in training.
            captions: per image its captions (training; for losses that read them).
            objectness: per image ``Tensor[P_i]`` objectness logits of the proposals (training;
                None = all 0).

        Returns:
            Training: named losses. Inference: per image Instances with ``pred_boxes``,
            ``scores``, ``pred_classes`` and, with masks, ``pred_mask_probs`` ``Tensor[N, M, M]``
            (in the padded input's coordinates).
        """
        if self.training:
            if gt_instances is None:
                raise ValueError("OpenVocabROIHeads needs gt_instances in training")
            captions = captions or [[] for _ in proposals]
            sampled = self._sample(proposals, objectness, gt_instances, len(classes))
            return self._losses(
                images, features, proposals, sampled, classes, gt_instances, captions
            )
        return self._detect(images, features, proposals, classes)

    def _losses(
        self,
        images: ImageList,
        features: dict[str, torch.Tensor],
        proposals: list[torch.Tensor],
        sampled: SampledRegions,
        classes: ClassEmbeddings,
        gt_instances: list[Instances],
        captions: list[list[str]],
    ) -> dict[str, torch.Tensor]:
        num_classes = len(classes)
        boxes, labels, matched = sampled.boxes, sampled.labels, sampled.matched
        extra = [loss.extra_boxes(proposals) for loss in self.auxiliary_losses]
        # One classifier pass for the sampled regions and every box an auxiliary loss asked for.
        groups = self._classify_groups(features, images, [boxes] + [e for e in extra if e])
        roi, embeddings, deltas = groups[0]
        labels_all = torch.cat(labels)
        foreground = labels_all < num_classes
        matched_boxes = [
            g.gt_boxes.tensor[m] if len(g) else b for g, m, b in zip(gt_instances, matched, boxes)
        ]
        target_deltas = self.box_coder.encode_single(torch.cat(matched_boxes), torch.cat(boxes))
        logits = self.classifier.class_logits(embeddings, classes.embeddings)
        losses = {
            "loss_cls": self.classifier.classification_loss(logits, labels_all, classes.seen),
            "loss_box_reg": self.classifier.box_regression_loss(deltas, target_deltas, foreground),
        }
        if self.mask_head is not None and all(g.has("gt_masks") for g in gt_instances):
            fg = [lab < num_classes for lab in labels]
            fg_boxes = [b[f] for b, f in zip(boxes, fg)]
            mask_logits = self.mask_head(self.mask_pooler(features, fg_boxes, images.image_sizes))
            gt_masks = [g.gt_masks for g in gt_instances]
            losses["loss_mask"] = mask_loss(
                mask_logits, fg_boxes, gt_masks, [m[f] for m, f in zip(matched, fg)]
            )
        extra_embeddings = iter(embedding for _, embedding, _ in groups[1:])
        for loss, extra_boxes in zip(self.auxiliary_losses, extra):
            if extra_boxes:
                asked = next(extra_embeddings)
            else:
                asked, extra_boxes = embeddings[:0], [b[:0] for b in boxes]
            inputs = RegionLossInputs(
                region_embeddings=embeddings,
                labels=labels_all,
                objectness=torch.cat(sampled.objectness),
                ious=torch.cat(sampled.ious),
                roi_features=roi,
                classes=classes,
                extra_embeddings=asked,
                extra_boxes=extra_boxes,
                images=images,
                features=features,
                captions=captions,
            )
            for name, value in loss(inputs).items():
                if name in losses:
                    raise ValueError(f"auxiliary loss {type(loss).__name__} repeats '{name}'")
                losses[name] = value
        return losses

    def embed_boxes(
        self, images: ImageList, features: dict[str, torch.Tensor], boxes: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        """Per image ``Tensor[K_i, D]`` classifier embeddings of ``boxes`` (``Tensor[K_i, 4]``)."""
        embeddings = self._classify_groups(features, images, [boxes])[0][1]
        return list(embeddings.split([len(b) for b in boxes]))

    def refine_proposals(
        self,
        features: dict[str, torch.Tensor],
        proposals: list[torch.Tensor],
        image_sizes: Sequence[tuple[int, int]],
    ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """The box head on class-agnostic proposals, for models that use the detector's regions
        (the grounder, OSM).

        Args:
            proposals: per image ``Tensor[R_i, 4]`` XYXY.

        Returns:
            ``Tensor[sum R_i, D]`` region embeddings of every proposal (in order); per image the
            refined boxes clipped to the image that are non-empty and finite ``Tensor[K_i, 4]``
            (float); per image ``BoolTensor[R_i]``, which proposals those boxes come from.
        """
        roi = self.box_pooler(features, proposals, image_sizes)
        embeddings, deltas = self.classifier(roi)
        refined = self.box_coder.decode_single(deltas, torch.cat(proposals))
        boxes, kept = [], []
        for b, size in zip(refined.split([len(p) for p in proposals]), image_sizes):
            b = clip_boxes_to_image(b.float().reshape(-1, 4), tuple(size))
            keep = Boxes(b).nonempty(threshold=1e-2) & torch.isfinite(b).all(dim=1)
            boxes.append(b[keep])
            kept.append(keep)
        return embeddings, boxes, kept

    def _classify_groups(
        self,
        features: dict[str, torch.Tensor],
        images: ImageList,
        groups: list[list[torch.Tensor]],
    ) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Pool and run the classifier once over several groups of boxes.

        Args:
            features: the backbone's output.
            images: the batch (for image sizes).
            groups: G groups, each per image ``Tensor[K_gi, 4]``.

        Returns:
            Per group its ``(roi_features Tensor[K_g, C, R, R], embeddings Tensor[K_g, D],
            deltas Tensor[K_g, 4])``, rows ordered by image as in the group.
        """
        per_image = [torch.cat(parts) for parts in zip(*groups)]
        roi = self.box_pooler(features, per_image, images.image_sizes)
        embeddings, deltas = self.classifier(roi)
        # rows come image by image, and within an image group by group
        sizes = [len(b) for parts in zip(*groups) for b in parts]
        chunks = list(zip(roi.split(sizes), embeddings.split(sizes), deltas.split(sizes)))
        num_groups = len(groups)
        return [
            tuple(torch.cat(parts) for parts in zip(*chunks[g::num_groups]))
            for g in range(num_groups)
        ]

    @torch.no_grad()
    def _sample(
        self,
        proposals: list[torch.Tensor],
        objectness: list[torch.Tensor] | None,
        gt_instances: list[Instances],
        num_classes: int,
    ) -> SampledRegions:
        """Draw the training regions of each image (see :class:`SampledRegions`)."""
        if objectness is None:
            objectness = [p.new_zeros(len(p)) for p in proposals]
        sampled = SampledRegions([], [], [], [], [])
        for props, logits, gt in zip(proposals, objectness, gt_instances):
            gt_boxes = gt.gt_boxes.tensor.to(props.dtype)
            if self.sampling.append_gt:
                props = torch.cat([props, gt_boxes])
                logits = torch.cat([logits, logits.new_full((len(gt_boxes),), GT_OBJECTNESS)])
            if len(gt_boxes):
                quality = box_iou(gt_boxes, props)
                matched = self.matcher(quality)
                iou = quality.max(dim=0).values
            else:
                matched = torch.full((len(props),), -1, dtype=torch.int64, device=props.device)
                iou = props.new_zeros(len(props))
            flags = (matched >= 0).to(torch.int64)
            flags[matched == Matcher.BETWEEN_THRESHOLDS] = -1
            pos, neg = self.sampler([flags])
            keep = torch.where(pos[0] | neg[0])[0]
            matched = matched[keep]
            is_fg = matched >= 0
            matched = matched.clamp(min=0)
            labels = torch.full_like(matched, num_classes)
            if len(gt_boxes):
                labels[is_fg] = gt.gt_classes[matched[is_fg]]
            sampled.boxes.append(props[keep])
            sampled.labels.append(labels)
            sampled.matched.append(matched)
            sampled.objectness.append(logits[keep])
            sampled.ious.append(iou[keep])
        return sampled

    @torch.no_grad()
    def _detect(
        self,
        images: ImageList,
        features: dict[str, torch.Tensor],
        proposals: list[torch.Tensor],
        classes: ClassEmbeddings,
    ) -> list[Instances]:
        roi = self.box_pooler(features, proposals, images.image_sizes)
        embeddings, deltas = self.classifier(roi)
        logits = self.classifier.class_logits(embeddings, classes.embeddings)
        probs = self.classifier.class_probs(logits)
        for loss in self.auxiliary_losses:  # a loss that trained a branch of its own fuses it in
            probs = loss.fuse_inference_probs(roi, probs, classes, self.classifier)
        probs = probs.split([len(p) for p in proposals])
        boxes = self.box_coder.decode_single(deltas, torch.cat(proposals)).split(
            [len(p) for p in proposals]
        )
        boxes = [clip_boxes_to_image(b, size) for b, size in zip(boxes, images.image_sizes)]
        if self.fusion is not None:
            boxes, probs = self.fusion(images, features, boxes, list(probs), classes)
        results = [self._select(b, p, size) for b, p, size in zip(boxes, probs, images.image_sizes)]
        if self.mask_head is not None:
            det_boxes = [r.pred_boxes.tensor for r in results]
            mask_roi = self.mask_pooler(features, det_boxes, images.image_sizes)
            mask_probs = self.mask_head(mask_roi).sigmoid().split([len(r) for r in results])
            for r, m in zip(results, mask_probs):
                r.pred_mask_probs = m
        return results

    def _select(
        self, boxes: torch.Tensor, probs: torch.Tensor, image_size: tuple[int, int]
    ) -> Instances:
        """Threshold, per-class NMS and cap the detections of one image.

        Args:
            boxes: ``Tensor[K, 4]`` class-agnostic boxes.
            probs: ``Tensor[K, C]`` class probabilities.
            image_size: ``(h, w)`` of the (unpadded) input image.
        """
        boxes, probs = boxes.float(), probs.float()
        valid = torch.isfinite(boxes).all(dim=1) & torch.isfinite(probs).all(dim=1)
        valid = valid & Boxes(boxes).nonempty(threshold=1e-2)  # not &=: ONNX lacks in-place and
        boxes, probs = boxes[valid], probs[valid]
        region, cls = torch.where(probs > self.detection.score_thresh)
        scores = probs[region, cls]
        keep = batched_nms(boxes[region], scores, cls, self.detection.nms_thresh)
        if self.detection.detections_per_image > 0:
            keep = keep[: self.detection.detections_per_image]
        return Instances(
            image_size,
            pred_boxes=Boxes(boxes[region[keep]]),
            scores=scores[keep],
            pred_classes=cls[keep],
        )


def build_roi_heads(
    cfg: CfgNode,
    level_names: list[str],
    channels: int,
    box_embedder: ClipBoxEmbedder | None = None,
    name_embedder: NameEmbedder | None = None,
) -> nn.Module:
    """Build the region heads named by ``MODEL.ROI_HEADS.NAME``.

    Args:
        cfg: the config.
        level_names: the backbone's pyramid levels, finest first.
        channels: channels of every level.
        box_embedder: CLIP embeddings of boxes, if the config uses them (fusion, distillation).
        name_embedder: the model's text encoder, for losses that embed words (caption nouns).
    """
    return ROI_HEADS_REGISTRY.get(cfg.MODEL.ROI_HEADS.NAME)(
        cfg,
        level_names=level_names,
        channels=channels,
        box_embedder=box_embedder,
        name_embedder=name_embedder,
    )
