"""A class-agnostic region proposal network assembled from torchvision's components."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList as TVImageList
from torchvision.models.detection.rpn import (
    RegionProposalNetwork,
    RPNHead,
    concat_box_prediction_layers,
)

from ovvision.config import CfgNode, configurable
from ovvision.structures import ImageList, Instances

from .build import PROPOSAL_GENERATOR_REGISTRY


@PROPOSAL_GENERATOR_REGISTRY.register()
class RPN(nn.Module):
    """Objectness and box deltas per anchor, decoded, NMS-ed and ranked into proposals.

    The anchor generator, head, box coder, matcher and sampler are torchvision's; this class
    adapts ovvision's structures and names the losses ``loss_rpn_cls`` / ``loss_rpn_loc``.

    Args:
        level_names: the pyramid levels used, finest first.
        rpn: the torchvision RegionProposalNetwork.
    """

    @configurable
    def __init__(self, *, level_names: list[str], rpn: RegionProposalNetwork):
        super().__init__()
        self.level_names = list(level_names)
        self.rpn = rpn

    @classmethod
    def from_config(cls, cfg: CfgNode, strides: dict[str, int], channels: int) -> dict:
        rcfg = cfg.MODEL.RPN
        names = list(strides)
        sizes = _per_level(cfg.MODEL.ANCHOR_GENERATOR.SIZES, len(names), "SIZES")
        ratios = _per_level(cfg.MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS, len(names), "ASPECT_RATIOS")
        anchors = AnchorGenerator(sizes=sizes, aspect_ratios=ratios)
        per_location = set(anchors.num_anchors_per_location())
        if len(per_location) != 1:
            raise ValueError(
                "MODEL.ANCHOR_GENERATOR: every level needs the same number of sizes x aspect "
                f"ratios (one RPN head is shared by all levels); got {sizes} x {ratios}"
            )
        head = RPNHead(channels, per_location.pop(), rcfg.HEAD_CONV_DEPTH)
        rpn = ScoredRegionProposalNetwork(
            anchors,
            head,
            fg_iou_thresh=rcfg.FG_IOU_THRESH,
            bg_iou_thresh=rcfg.BG_IOU_THRESH,
            batch_size_per_image=rcfg.BATCH_SIZE_PER_IMAGE,
            positive_fraction=rcfg.POSITIVE_FRACTION,
            pre_nms_top_n={"training": rcfg.PRE_NMS_TOPK_TRAIN, "testing": rcfg.PRE_NMS_TOPK_TEST},
            post_nms_top_n={
                "training": rcfg.POST_NMS_TOPK_TRAIN,
                "testing": rcfg.POST_NMS_TOPK_TEST,
            },
            nms_thresh=rcfg.NMS_THRESH,
        )
        return {"level_names": names, "rpn": rpn}

    def forward(
        self,
        images: ImageList,
        features: dict[str, torch.Tensor],
        gt_instances: list[Instances] | None = None,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], dict[str, torch.Tensor]]:
        """Propose boxes.

        Args:
            images: the padded batch (only sizes are used).
            features: pyramid levels ``{name: Tensor[B, C, h, w]}``; must hold ``level_names``.
            gt_instances: per image, Instances with ``gt_boxes``; required in training.

        Returns:
            Per image ``Tensor[P_i, 4]`` proposals (x1, y1, x2, y2) sorted by decreasing
            objectness and their ``Tensor[P_i]`` objectness logits (neither with gradient), and
            in training ``{"loss_rpn_cls", "loss_rpn_loc"}``.
        """
        levels = {name: features[name] for name in self.level_names}
        tv_images = TVImageList(images.tensor, [tuple(s) for s in images.image_sizes])
        targets = None
        if self.training:
            if gt_instances is None:
                raise ValueError("RPN needs gt_instances in training")
            targets = [{"boxes": inst.gt_boxes.tensor} for inst in gt_instances]
        boxes, logits, tv_losses = self.rpn(tv_images, levels, targets)
        losses = {}
        if self.training:
            losses = {
                "loss_rpn_cls": tv_losses["loss_objectness"],
                "loss_rpn_loc": tv_losses["loss_rpn_box_reg"],
            }
        return [b.detach() for b in boxes], [x.detach() for x in logits], losses


class ScoredRegionProposalNetwork(RegionProposalNetwork):
    """torchvision's RPN that also returns the objectness logit of each proposal.

    torchvision computes the proposals' objectness (``filter_proposals``) and drops it; the
    second stage needs it (e.g. objectness-weighted class prototypes). The steps are
    torchvision's own methods, in its order.
    """

    def forward(
        self,
        images: TVImageList,
        features: dict[str, torch.Tensor],
        targets: list[dict[str, torch.Tensor]] | None = None,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], dict[str, torch.Tensor]]:
        """Per image ``Tensor[P_i, 4]`` boxes and ``Tensor[P_i]`` objectness logits, and the
        losses (``loss_objectness``, ``loss_rpn_box_reg``) when training."""
        maps = list(features.values())
        objectness, deltas = self.head(maps)
        anchors = self.anchor_generator(images, maps)
        per_level = [o[0].shape[0] * o[0].shape[1] * o[0].shape[2] for o in objectness]
        objectness, deltas = concat_box_prediction_layers(objectness, deltas)
        proposals = self.box_coder.decode(deltas.detach(), anchors).view(len(anchors), -1, 4)
        boxes, probs = self.filter_proposals(proposals, objectness, images.image_sizes, per_level)
        logits = [torch.logit(p, eps=_LOGIT_EPS) for p in probs]
        losses = {}
        if self.training:
            if targets is None:
                raise ValueError("targets should not be None")
            labels, matched_gt_boxes = self.assign_targets_to_anchors(anchors, targets)
            regression_targets = self.box_coder.encode(matched_gt_boxes, anchors)
            loss_objectness, loss_rpn_box_reg = self.compute_loss(
                objectness, deltas, labels, regression_targets
            )
            losses = {"loss_objectness": loss_objectness, "loss_rpn_box_reg": loss_rpn_box_reg}
        return boxes, logits, losses


# filter_proposals returns sigmoid probabilities; logit() of 0 or 1 needs a bound
_LOGIT_EPS = 1e-6


def _per_level(values: list, num_levels: int, key: str) -> tuple[tuple[float, ...], ...]:
    """Broadcast a one-entry list of per-level values to every level; check the count."""
    values = [tuple(v) for v in values]
    if len(values) == 1:
        values = values * num_levels
    if len(values) != num_levels:
        raise ValueError(
            f"MODEL.ANCHOR_GENERATOR.{key} has {len(values)} entries but the backbone has "
            f"{num_levels} pyramid levels"
        )
    return tuple(values)
