"""OpenVocabROIHeads: sample proposals, pool, classify against the vocabulary, box and mask."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torchvision.models.detection._utils import BalancedPositiveNegativeSampler, BoxCoder, Matcher
from torchvision.ops import batched_nms, box_iou, clip_boxes_to_image

from ovvision.config import CfgNode, configurable
from ovvision.modeling.mask_heads import build_mask_head, mask_loss
from ovvision.structures import Boxes, ImageList, Instances
from ovvision.utils.registry import Registry

from .clip_region_head import ClipRegionHead
from .pooling import build_roi_pooler
from .region_clip import RegionClipEmbedder, clip_class_probs, fuse_scores

ROI_HEADS_REGISTRY = Registry("ROI_HEADS")
ROI_HEADS_REGISTRY.__doc__ = """Region heads: ``MODEL.ROI_HEADS.NAME`` names a class built with
``cls(cfg, level_names=..., channels=..., region_clip=...)``."""


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


@dataclass(frozen=True)
class ScoreFusion:
    """Geometric-mean fusion with CLIP region scores (see ``fuse_scores``).

    Attributes:
        clip_temperature: multiplier of CLIP cosine similarities before the softmax.
        alpha_seen: CLIP exponent for classes seen in training.
        beta_unseen: CLIP exponent for the others.
        max_regions: with the ``crops`` source, only the first this many regions per image in
            the proposer's objectness order are scored by CLIP and kept (0 = all). The order is
            class-agnostic on purpose: the region head learnt to call unannotated (novel)
            objects background, so ranking by its class scores drops them before CLIP sees
            them.
    """

    clip_temperature: float = 100.0
    alpha_seen: float = 0.35
    beta_unseen: float = 0.65
    max_regions: int = 0


@dataclass(frozen=True)
class Distillation:
    """ViLD: L1 between region embeddings and CLIP embeddings of the top proposals."""

    weight: float = 1.0
    regions_per_image: int = 32


_DEFAULT_SAMPLING = ProposalSampling()
_DEFAULT_DETECTION = DetectionSettings()


@ROI_HEADS_REGISTRY.register()
class OpenVocabROIHeads(nn.Module):
    """The second stage of OV-RCNN.

    Args:
        box_pooler: multi-scale ROI pooler for the region head.
        region_head: the CLIP-aligned classifier and class-agnostic box regressor.
        mask_pooler, mask_head: class-agnostic mask branch (both or neither).
        region_clip: CLIP region embeddings, needed by ``fusion`` and ``distillation``.
        sampling: training-region sampling.
        bbox_reg_weights: (wx, wy, ww, wh) of the box coder.
        detection: inference settings.
        fusion: score fusion at inference (None = detector scores only).
        distillation: ViLD distillation in training (None = off).
    """

    @configurable
    def __init__(
        self,
        *,
        box_pooler: nn.Module,
        region_head: ClipRegionHead,
        mask_pooler: nn.Module | None = None,
        mask_head: nn.Module | None = None,
        region_clip: RegionClipEmbedder | None = None,
        sampling: ProposalSampling = _DEFAULT_SAMPLING,
        bbox_reg_weights: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0),
        detection: DetectionSettings = _DEFAULT_DETECTION,
        fusion: ScoreFusion | None = None,
        distillation: Distillation | None = None,
    ):
        super().__init__()
        if (mask_pooler is None) != (mask_head is None):
            raise ValueError("give both mask_pooler and mask_head, or neither")
        if (fusion is not None or distillation is not None) and region_clip is None:
            raise ValueError("score fusion and distillation need region_clip (MODEL.REGION_CLIP)")
        self.box_pooler = box_pooler
        self.region_head = region_head
        self.mask_pooler = mask_pooler
        self.mask_head = mask_head
        self.region_clip = region_clip
        self.sampling = sampling
        self.matcher = Matcher(sampling.iou_threshold, sampling.iou_threshold)
        self.sampler = BalancedPositiveNegativeSampler(
            sampling.batch_size_per_image, sampling.positive_fraction
        )
        self.box_coder = BoxCoder(bbox_reg_weights)
        self.detection = detection
        self.fusion = fusion
        self.distillation = distillation

    @classmethod
    def from_config(
        cls,
        cfg: CfgNode,
        level_names: list[str],
        channels: int,
        region_clip: RegionClipEmbedder | None = None,
    ) -> dict:
        rcfg, bcfg, mcfg = cfg.MODEL.ROI_HEADS, cfg.MODEL.ROI_BOX_HEAD, cfg.MODEL.ROI_MASK_HEAD
        hcfg, ccfg = cfg.MODEL.CLIP_REGION_HEAD, cfg.MODEL.REGION_CLIP
        names = list(rcfg.IN_FEATURES) or list(level_names)
        unknown = sorted(set(names) - set(level_names))
        if unknown:
            raise ValueError(
                f"MODEL.ROI_HEADS.IN_FEATURES names levels {unknown} not in {level_names}"
            )
        box_pooler = build_roi_pooler(names, bcfg.POOLER_RESOLUTION, bcfg.POOLER_SAMPLING_RATIO)
        args = {
            "box_pooler": box_pooler,
            "region_head": ClipRegionHead(cfg, in_channels=channels),
            "region_clip": region_clip,
            "sampling": ProposalSampling(
                rcfg.IOU_THRESHOLD, rcfg.BATCH_SIZE_PER_IMAGE, rcfg.POSITIVE_FRACTION,
                rcfg.PROPOSAL_APPEND_GT,
            ),
            "bbox_reg_weights": tuple(bcfg.BBOX_REG_WEIGHTS),
            "detection": DetectionSettings(
                rcfg.SCORE_THRESH_TEST, rcfg.NMS_THRESH_TEST,
                0 if cfg.TEST.LVIS_FIXED_AP else cfg.TEST.DETECTIONS_PER_IMAGE,
            ),
        }  # fmt: skip
        if cfg.MODEL.MASK_ON:
            args["mask_pooler"] = build_roi_pooler(
                names, mcfg.POOLER_RESOLUTION, mcfg.POOLER_SAMPLING_RATIO
            )
            args["mask_head"] = build_mask_head(cfg, channels)
        if ccfg.FUSION:
            temperature = ccfg.TEMPERATURE
            if temperature <= 0 and region_clip is not None:
                temperature = region_clip.tower.logit_scale
            args["fusion"] = ScoreFusion(
                temperature, ccfg.ALPHA_SEEN, ccfg.BETA_UNSEEN, ccfg.MAX_CROPS_PER_IMAGE
            )
        if hcfg.DISTILL_WEIGHT > 0:
            args["distillation"] = Distillation(hcfg.DISTILL_WEIGHT, hcfg.DISTILL_REGIONS_PER_IMAGE)
        return args

    def forward(
        self,
        images: ImageList,
        features: dict[str, torch.Tensor],
        proposals: list[torch.Tensor],
        class_embeddings: torch.Tensor,
        seen: torch.Tensor,
        gt_instances: list[Instances] | None = None,
    ) -> dict[str, torch.Tensor] | list[Instances]:
        """Losses in training, detections in inference.

        Args:
            images: the normalised, padded batch.
            features: the backbone's output.
            proposals: per image ``Tensor[P_i, 4]`` proposal boxes.
            class_embeddings: ``Tensor[C, D]`` unit rows, the vocabulary.
            seen: ``BoolTensor[C]`` classes seen in training (training: the classes the loss
                uses; inference: the fusion exponent).
            gt_instances: per image ``gt_boxes``, ``gt_classes`` (< C) and, for masks,
                ``gt_masks``; required in training.

        Returns:
            Training: named losses. Inference: per image Instances with ``pred_boxes``,
            ``scores``, ``pred_classes`` and, with masks, ``pred_mask_probs`` ``Tensor[N, M, M]``
            (in the padded input's coordinates).
        """
        if self.training:
            if gt_instances is None:
                raise ValueError("OpenVocabROIHeads needs gt_instances in training")
            return self._losses(images, features, proposals, class_embeddings, seen, gt_instances)
        return self._detect(images, features, proposals, class_embeddings, seen)

    def _losses(
        self,
        images: ImageList,
        features: dict[str, torch.Tensor],
        proposals: list[torch.Tensor],
        class_embeddings: torch.Tensor,
        seen: torch.Tensor,
        gt_instances: list[Instances],
    ) -> dict[str, torch.Tensor]:
        num_classes = class_embeddings.shape[0]
        boxes, labels, matched = self._sample(proposals, gt_instances, num_classes)
        roi = self.box_pooler(features, boxes, images.image_sizes)
        embeddings, deltas = self.region_head(roi)
        labels_all = torch.cat(labels)
        foreground = labels_all < num_classes
        matched_boxes = [
            g.gt_boxes.tensor[m] if len(g) else b for g, m, b in zip(gt_instances, matched, boxes)
        ]
        target_deltas = self.box_coder.encode_single(torch.cat(matched_boxes), torch.cat(boxes))
        logits = self.region_head.class_logits(embeddings, class_embeddings)
        losses = {
            "loss_cls": self.region_head.classification_loss(logits, labels_all, seen),
            "loss_box_reg": self.region_head.box_regression_loss(deltas, target_deltas, foreground),
        }
        if self.mask_head is not None and all(g.has("gt_masks") for g in gt_instances):
            fg = [lab < num_classes for lab in labels]
            fg_boxes = [b[f] for b, f in zip(boxes, fg)]
            mask_logits = self.mask_head(self.mask_pooler(features, fg_boxes, images.image_sizes))
            gt_masks = [g.gt_masks for g in gt_instances]
            losses["loss_mask"] = mask_loss(
                mask_logits, fg_boxes, gt_masks, [m[f] for m, f in zip(matched, fg)]
            )
        if self.distillation is not None:
            losses["loss_distill"] = self._distillation_loss(images, features, proposals)
        return losses

    @torch.no_grad()
    def _sample(
        self, proposals: list[torch.Tensor], gt_instances: list[Instances], num_classes: int
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        """Per image: sampled boxes, their labels (``num_classes`` = background) and the index
        of their matched ground truth (0 for background)."""
        all_boxes, all_labels, all_matched = [], [], []
        for props, gt in zip(proposals, gt_instances):
            gt_boxes = gt.gt_boxes.tensor.to(props.dtype)
            if self.sampling.append_gt:
                props = torch.cat([props, gt_boxes])
            if len(gt_boxes):
                matched = self.matcher(box_iou(gt_boxes, props))
            else:
                matched = torch.full((len(props),), -1, dtype=torch.int64, device=props.device)
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
            all_boxes.append(props[keep])
            all_labels.append(labels)
            all_matched.append(matched)
        return all_boxes, all_labels, all_matched

    def _distillation_loss(
        self, images: ImageList, features: dict[str, torch.Tensor], proposals: list[torch.Tensor]
    ) -> torch.Tensor:
        """Mean over the top proposals of ``|region embedding - CLIP embedding|_1``."""
        top = [p[: self.distillation.regions_per_image] for p in proposals]
        embeddings, _ = self.region_head(self.box_pooler(features, top, images.image_sizes))
        targets = self.region_clip(images, features, top)
        l1 = (embeddings - targets).abs().sum()
        return self.distillation.weight * l1 / max(embeddings.shape[0], 1)

    @torch.no_grad()
    def _detect(
        self,
        images: ImageList,
        features: dict[str, torch.Tensor],
        proposals: list[torch.Tensor],
        class_embeddings: torch.Tensor,
        seen: torch.Tensor,
    ) -> list[Instances]:
        roi = self.box_pooler(features, proposals, images.image_sizes)
        embeddings, deltas = self.region_head(roi)
        logits = self.region_head.class_logits(embeddings, class_embeddings)
        probs = self.region_head.class_probs(logits).split([len(p) for p in proposals])
        boxes = self.box_coder.decode_single(deltas, torch.cat(proposals)).split(
            [len(p) for p in proposals]
        )
        boxes = [clip_boxes_to_image(b, size) for b, size in zip(boxes, images.image_sizes)]
        if self.fusion is not None:
            boxes, probs = self._fuse(images, features, boxes, list(probs), class_embeddings, seen)
        results = [self._select(b, p, size) for b, p, size in zip(boxes, probs, images.image_sizes)]
        if self.mask_head is not None:
            det_boxes = [r.pred_boxes.tensor for r in results]
            mask_roi = self.mask_pooler(features, det_boxes, images.image_sizes)
            mask_probs = self.mask_head(mask_roi).sigmoid().split([len(r) for r in results])
            for r, m in zip(results, mask_probs):
                r.pred_mask_probs = m
        return results

    def _fuse(
        self,
        images: ImageList,
        features: dict[str, torch.Tensor],
        boxes: list[torch.Tensor],
        probs: list[torch.Tensor],
        class_embeddings: torch.Tensor,
        seen: torch.Tensor,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Fuse detector and CLIP probabilities; with crops, first keep the regions of the
        ``max_regions`` most object-like proposals (``boxes`` come in objectness order)."""
        limit = self.fusion.max_regions
        if self.region_clip.source == "crops" and limit > 0:
            boxes = [b[:limit] for b in boxes]
            probs = [p[:limit] for p in probs]
        clip_emb = self.region_clip(images, features, boxes)
        clip_probs = clip_class_probs(clip_emb, class_embeddings, self.fusion.clip_temperature)
        fused = fuse_scores(
            torch.cat(probs), clip_probs, seen, self.fusion.alpha_seen, self.fusion.beta_unseen
        )
        return boxes, list(fused.split([len(b) for b in boxes]))

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
        valid &= Boxes(boxes).nonempty(threshold=1e-2)
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
    region_clip: RegionClipEmbedder | None = None,
) -> nn.Module:
    """Build the region heads named by ``MODEL.ROI_HEADS.NAME``.

    Args:
        cfg: the config.
        level_names: the backbone's pyramid levels, finest first.
        channels: channels of every level.
        region_clip: the CLIP region embedder, if the config uses one.
    """
    return ROI_HEADS_REGISTRY.get(cfg.MODEL.ROI_HEADS.NAME)(
        cfg, level_names=level_names, channels=channels, region_clip=region_clip
    )
