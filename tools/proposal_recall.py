#!/usr/bin/env python
"""Recall of a trained detector's class-agnostic proposals on a dataset, base and novel apart.

The fraction of (non-crowd) ground-truth boxes that some proposal covers with IoU >= --iou when
only the first K proposals of each image (in the proposer's objectness order) are kept. It shows
whether the proposer finds the novel objects at all, and how many proposals the CLIP region
scoring (``MODEL.CLIP_SCORE_FUSION.MAX_REGIONS_PER_IMAGE``) must see to reach them.

    python tools/proposal_recall.py --config-file CFG --weights model_final.pth \\
        --dataset ov_shapes_val --top 30,100 [--iou 0.5] [--output recall.json] [KEY VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence

import torch
from torchvision.ops import box_convert, box_iou

from ovvision.data import DatasetCatalog, MetadataCatalog, build_detection_test_loader
from ovvision.engine.config_paths import check_dataset_files, require_file
from ovvision.engine.defaults import run_tool
from ovvision.engine.predictor import Predictor
from ovvision.structures import Boxes
from ovvision.utils.file_io import atomic_write
from ovvision.utils.logger import setup_logger

logger = logging.getLogger("ovvision.proposal_recall")


def proposal_recall(
    proposals: Sequence[torch.Tensor],
    gt_boxes: Sequence[torch.Tensor],
    gt_novel: Sequence[torch.Tensor],
    top: Sequence[int],
    iou_threshold: float = 0.5,
) -> dict[str, dict[str, float | int]]:
    """Recall of ground truth by the first K proposals of each image, for each K in ``top``.

    Args:
        proposals: per image ``Tensor[P_i, 4]`` (x1, y1, x2, y2), best first.
        gt_boxes: per image ``Tensor[G_i, 4]`` (x1, y1, x2, y2), same coordinates.
        gt_novel: per image ``BoolTensor[G_i]``, whether each box is of a novel class.
        top: the proposal counts K.
        iou_threshold: a box is found if a kept proposal overlaps it at least this much.

    Returns:
        ``{str(K): {"base": r, "novel": r, "all": r, "num_base": n, "num_novel": n}}`` with
        recalls in [0, 1] (None for a split without boxes).
    """
    found = {k: torch.zeros(2, dtype=torch.int64) for k in top}  # [base, novel] counts
    total = torch.zeros(2, dtype=torch.int64)
    for props, boxes, novel in zip(proposals, gt_boxes, gt_novel):
        split = novel.long()
        total += torch.bincount(split, minlength=2)
        if len(boxes) == 0:
            continue
        iou = box_iou(boxes.float(), props.float().view(-1, 4))
        for k in top:
            kept = iou[:, :k]
            # Without a kept proposal a box is missed, whatever the threshold.
            best = kept.max(dim=1).values if kept.shape[1] else kept.new_full((len(boxes),), -1.0)
            found[k] += torch.bincount(split[best >= iou_threshold], minlength=2)

    def ratio(hit: int, count: int) -> float | None:
        return round(hit / count, 4) if count else None

    return {
        str(k): {
            "base": ratio(int(f[0]), int(total[0])),
            "novel": ratio(int(f[1]), int(total[1])),
            "all": ratio(int(f.sum()), int(total.sum())),
            "num_base": int(total[0]),
            "num_novel": int(total[1]),
        }
        for k, f in found.items()
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--config-file", required=True)
    p.add_argument("--weights", required=True)
    p.add_argument("--dataset", required=True, help="registered dataset with annotations")
    p.add_argument(
        "--top", default="30,100", help="comma-separated proposal counts K (default: 30,100)"
    )
    p.add_argument("--iou", type=float, default=0.5, help="IoU at which a box counts as found")
    p.add_argument("--output", help="json file to write the recalls to")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    args = p.parse_args()
    try:
        top = [int(k) for k in args.top.split(",")]
    except ValueError:
        top = []
    if not top or any(k < 1 for k in top):
        p.error(f"--top takes comma-separated positive proposal counts, got {args.top!r}")
    setup_logger(None)

    require_file(args.config_file, "--config-file")
    require_file(args.weights, "--weights")
    predictor = Predictor(args.config_file, args.weights, opts=args.opts)  # registers datasets
    check_dataset_files(args.dataset, "--dataset")
    model = predictor.model
    metadata = MetadataCatalog.get(args.dataset)
    novel_names = set(metadata.get("novel_classes", []))
    novel_ids = torch.tensor([name in novel_names for name in metadata.thing_classes])
    dicts = {d["image_id"]: d for d in DatasetCatalog.get(args.dataset)}
    proposals, gt_boxes, gt_novel = [], [], []
    with torch.no_grad():
        for batch in build_detection_test_loader(predictor.cfg, args.dataset):
            images = model.preprocess_image(batch)
            boxes, _, _ = model.proposal_generator(images, model.backbone(images.tensor))
            for item, props, (in_h, in_w) in zip(batch, boxes, images.image_sizes):
                record = dicts[item["image_id"]]
                anns = [a for a in record.get("annotations", []) if not a.get("iscrowd", 0)]
                xywh = torch.tensor([a["bbox"] for a in anns], dtype=torch.float32).view(-1, 4)
                kept = Boxes(props.cpu().clone())
                kept.scale(record["width"] / in_w, record["height"] / in_h)
                proposals.append(kept.tensor)
                gt_boxes.append(box_convert(xywh, "xywh", "xyxy"))
                gt_novel.append(novel_ids[[a["category_id"] for a in anns]].view(-1))
    recall = proposal_recall(proposals, gt_boxes, gt_novel, top, args.iou)
    for k, r in recall.items():
        logger.info(
            "first %s proposals: recall@%.2f base %s, novel %s, all %s (%d base, %d novel boxes)",
            k, args.iou, r["base"], r["novel"], r["all"], r["num_base"], r["num_novel"],
        )  # fmt: skip
    if args.output:
        text = json.dumps(recall, indent=2, sort_keys=True) + "\n"
        atomic_write(args.output, lambda f: f.write(text.encode()))
        logger.info("Recall written to %s", args.output)


if __name__ == "__main__":
    run_tool(main, prog="proposal_recall.py")
