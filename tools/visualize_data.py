#!/usr/bin/env python
"""Draw ground truth (boxes, masks, class names) of a registered dataset to PNG files.

    python tools/visualize_data.py --dataset ov_shapes_val --num 8 --output output/vis
    python tools/visualize_data.py --dataset ov_shapes_train_base --source dataloader \
        --config-file configs/ov_shapes/X.yaml --output output/vis   # augmented training inputs

Captions and referring expressions of each drawn image go to ``index.txt`` in the output folder.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import torch
from PIL import Image
from torchvision.utils import draw_bounding_boxes, draw_segmentation_masks

from ovvision.config import get_cfg
from ovvision.data import (
    DatasetCatalog,
    DatasetMapper,
    MetadataCatalog,
    build_detection_train_loader,
)

# Images are enlarged (nearest neighbour) to about this many pixels so labels stay legible.
TARGET_SIDE = 512


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--dataset", required=True, help="registered dataset name")
    parser.add_argument("--num", type=int, default=8, help="images to draw")
    parser.add_argument("--output", required=True, help="folder for the PNG files")
    parser.add_argument(
        "--source",
        choices=("annotation", "dataloader"),
        default="annotation",
        help="annotation: the dataset's images as stored; dataloader: augmented training batches",
    )
    parser.add_argument("--config-file", default="", help="config for --source dataloader")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    return parser.parse_args(argv)


def stored_inputs(name: str, num: int) -> list[dict[str, Any]]:
    """The first ``num`` images of ``name`` with their instances, without augmentation."""
    dicts = DatasetCatalog.get(name)[:num]
    with_masks = any("segmentation" in a for d in dicts for a in d.get("annotations", []))
    mapper = DatasetMapper(is_train=True, use_instance_mask=with_masks, skip_unreadable=True)
    return [m for m in map(mapper, dicts) if m is not None]


def loader_inputs(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The first ``num`` images of augmented training batches built from the config."""
    cfg = get_cfg()
    if args.config_file:
        cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    cfg.DATASETS.TRAIN = (args.dataset,)
    cfg.DATALOADER.NUM_WORKERS = 0
    inputs: list[dict[str, Any]] = []
    for batch in build_detection_train_loader(cfg):
        inputs.extend(batch)
        if len(inputs) >= args.num:
            return inputs[: args.num]
    return inputs


def draw(mapped: dict[str, Any], class_names: list[str] | None) -> torch.Tensor:
    """``Tensor[3, H, W]`` uint8: the image enlarged, with masks, boxes and class names."""
    image = mapped["image"]
    scale = max(1, TARGET_SIDE // max(image.shape[-2:]))
    image = image.repeat_interleave(scale, dim=-2).repeat_interleave(scale, dim=-1)
    instances = mapped.get("instances")
    if instances is None or len(instances) == 0:
        return image
    if instances.has("gt_masks"):
        masks = instances.gt_masks.repeat_interleave(scale, dim=-2)
        image = draw_segmentation_masks(image, masks.repeat_interleave(scale, dim=-1), alpha=0.35)
    classes = instances.gt_classes.tolist()
    labels = [class_names[c] if class_names else str(c) for c in classes]
    boxes = instances.gt_boxes.tensor * scale
    return draw_bounding_boxes(image, boxes, labels=labels, colors="yellow", width=2)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    os.makedirs(args.output, exist_ok=True)
    if args.source == "annotation":
        inputs = stored_inputs(args.dataset, args.num)
    else:
        inputs = loader_inputs(args)
    class_names = MetadataCatalog.get(args.dataset).get("thing_classes")
    lines = []
    for i, mapped in enumerate(inputs):
        target = os.path.join(args.output, f"{i:03d}_{os.path.basename(mapped['file_name'])}")
        target = os.path.splitext(target)[0] + ".png"
        Image.fromarray(draw(mapped, class_names).permute(1, 2, 0).numpy()).save(target)
        texts = mapped.get("captions", []) + [e["text"] for e in mapped.get("expressions", [])]
        lines.append(f"{os.path.basename(target)}\t" + " | ".join(texts))
    with open(os.path.join(args.output, "index.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print(f"Drew {len(inputs)} images of {args.dataset} into {args.output}")


if __name__ == "__main__":
    main()
