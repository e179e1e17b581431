"""``DatasetMapper``: one dataset dict → the model's input dict (image tensor, Instances, text)."""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from ..config import configurable
from ..structures import Boxes, Instances
from .image_io import DEFAULT_MAX_IMAGE_PIXELS, ImageReadError, read_image
from .transforms import (
    build_augmentation,
    masks_to_tight_boxes,
    mirror_text,
    segmentation_to_mask,
    stack_masks,
)

logger = logging.getLogger(__name__)

__all__ = ["DatasetMapper"]


class DatasetMapper:
    """Read the image of a dataset dict, augment it with its boxes/masks, build ``Instances``.

    Output (a new dict; the input is not modified)::

        {"image": Tensor[3, H', W'] uint8 RGB (augmented),
         "instances": Instances(gt_boxes: Boxes XYXY, gt_classes: Tensor[N] int64,
                                gt_masks: BoolTensor[N, H', W'] when use_instance_mask),
         "captions": list[str], "expressions": list[{"text", "box": Tensor[4] XYXY,
                                                     "category_id", "ann_id"}],
         "file_name", "image_id", "height", "width",  # height/width: the ORIGINAL image size
         ...every other key of the dataset dict}

    Crowd annotations never become instances. ``instances`` is produced in training only (as in
    detectron2; evaluators read ground truth from the json). A horizontal flip also swaps the
    words left/right in captions and expressions. Instances and expressions whose box becomes
    empty after augmentation are dropped. In training, an image with several captions gets one
    of them, drawn anew each time it is mapped (the caption losses read ``captions[0]``).

    Args:
        is_train: training (random augmentation, instances) or inference.
        augmentations: ``torchvision.transforms.v2`` transforms applied to the image, boxes and
            masks together.
        horizontal_flip_prob: probability of a horizontal flip (training only).
        use_instance_mask: decode segmentations into ``gt_masks``.
        recompute_boxes: set boxes to the tight box of the augmented masks (use with crops, where
            a transformed box of a rotated object is loose); needs ``use_instance_mask``.
        max_image_pixels: pixel cap of :func:`~ovvision.data.read_image` (0 = none).
        skip_unreadable: return ``None`` for an image that cannot be read (logged and counted in
            :attr:`num_unreadable`) instead of raising :class:`~ovvision.data.ImageReadError`.
    """

    @configurable
    def __init__(
        self,
        is_train: bool,
        *,
        augmentations: Sequence[v2.Transform] = (),
        horizontal_flip_prob: float = 0.0,
        use_instance_mask: bool = False,
        recompute_boxes: bool = False,
        max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
        skip_unreadable: bool = True,
    ):
        if recompute_boxes and not use_instance_mask:
            raise ValueError("DatasetMapper: recompute_boxes=True needs use_instance_mask=True")
        self.is_train = is_train
        self.augmentations = list(augmentations)
        self.horizontal_flip_prob = horizontal_flip_prob if is_train else 0.0
        self.use_instance_mask = use_instance_mask
        self.recompute_boxes = recompute_boxes
        self.max_image_pixels = max_image_pixels
        self.skip_unreadable = skip_unreadable
        self.num_unreadable = 0

    @classmethod
    def from_config(cls, cfg: Any, is_train: bool = True) -> dict[str, Any]:
        """Arguments from ``cfg.INPUT``, ``cfg.DATALOADER`` and ``cfg.MODEL.MASK_ON``."""
        mask_on = cfg.MODEL.MASK_ON
        return {
            "is_train": is_train,
            "augmentations": build_augmentation(cfg, is_train),
            "horizontal_flip_prob": 0.5 if cfg.INPUT.RANDOM_FLIP == "horizontal" else 0.0,
            "use_instance_mask": mask_on,
            "recompute_boxes": mask_on and is_train and cfg.INPUT.LSJ.ENABLED,
            "max_image_pixels": cfg.INPUT.MAX_IMAGE_PIXELS,
            "skip_unreadable": cfg.DATALOADER.SKIP_UNREADABLE_IMAGES,
        }

    def __call__(self, dataset_dict: dict[str, Any]) -> dict[str, Any] | None:
        """Map one dataset dict; ``None`` when its image is unreadable and skipping is on."""
        file_name = dataset_dict["file_name"]
        try:
            image = read_image(file_name, "RGB", self.max_image_pixels)
        except ImageReadError as e:
            if not self.skip_unreadable:
                raise
            self.num_unreadable += 1
            logger.warning("Skipping unreadable image (%d so far): %s", self.num_unreadable, e)
            return None
        height, width = image.shape[:2]
        expected = (dataset_dict.get("height", height), dataset_dict.get("width", width))
        if expected != (height, width):
            raise ValueError(
                f"Image '{file_name}' is {height}x{width} (HxW) after EXIF rotation, but its "
                f"dataset dict says {expected[0]}x{expected[1]}"
            )
        out = {k: copy.deepcopy(v) for k, v in dataset_dict.items() if k != "annotations"}
        out.update(height=height, width=width)
        out.setdefault("captions", [])
        if self.is_train and len(out["captions"]) > 1:  # one caption per image and step
            out["captions"] = [out["captions"][int(torch.randint(len(out["captions"]), ()))]]
        anns = _annotations(dataset_dict) if self.is_train else []
        sample = self._sample(image, anns, dataset_dict)
        for transform in self.augmentations:
            sample = transform(sample)
        if self.horizontal_flip_prob > 0 and torch.rand(()) < self.horizontal_flip_prob:
            sample = {k: F.horizontal_flip(v) for k, v in sample.items()}
            out["captions"] = [mirror_text(c) for c in out["captions"]]
            for expr in out.get("expressions", []):
                expr["text"] = mirror_text(expr["text"])
        out["image"] = sample["image"].as_subclass(torch.Tensor).contiguous()
        if "expressions" in out:
            out["expressions"] = self._expressions(out["expressions"], sample["expression_boxes"])
        if self.is_train:
            out["instances"] = self._instances(sample, anns)
        return out

    def _sample(
        self, image: np.ndarray, anns: list[dict[str, Any]], dataset_dict: dict[str, Any]
    ) -> dict[str, Any]:
        """tv_tensors of the image, the boxes/masks of ``anns`` and the expression boxes."""
        height, width = image.shape[:2]
        canvas = (height, width)
        sample: dict[str, Any] = {
            "image": tv_tensors.Image(torch.from_numpy(image).permute(2, 0, 1))
        }
        if self.is_train:
            sample["boxes"] = _xywh_boxes([a["bbox"] for a in anns], canvas)
            if self.use_instance_mask:
                sample["masks"] = tv_tensors.Mask(
                    stack_masks([_mask(a, height, width, dataset_dict) for a in anns], *canvas)
                )
        if "expressions" in dataset_dict:
            boxes = [e["bbox"] for e in dataset_dict["expressions"]]
            sample["expression_boxes"] = _xywh_boxes(boxes, canvas)
        return sample

    def _instances(self, sample: dict[str, Any], anns: list[dict[str, Any]]) -> Instances:
        image_size = tuple(sample["image"].shape[-2:])
        classes = torch.tensor([a["category_id"] for a in anns], dtype=torch.int64)
        if self.recompute_boxes:
            boxes = masks_to_tight_boxes(sample["masks"].bool())
        else:
            boxes = F.clamp_bounding_boxes(sample["boxes"]).as_subclass(torch.Tensor)
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        instances = Instances(image_size)
        instances.gt_boxes = Boxes(boxes[keep].float())
        instances.gt_classes = classes[keep]
        if self.use_instance_mask:
            instances.gt_masks = sample["masks"].as_subclass(torch.Tensor)[keep].bool()
        return instances

    @staticmethod
    def _expressions(expressions: list[dict[str, Any]], boxes: Any) -> list[dict[str, Any]]:
        boxes = F.clamp_bounding_boxes(boxes).as_subclass(torch.Tensor).float()
        out = []
        for expr, box in zip(expressions, boxes):
            if box[2] > box[0] and box[3] > box[1]:
                out.append(
                    {
                        "text": expr["text"],
                        "box": box,
                        "category_id": expr["category_id"],
                        "ann_id": expr["ann_id"],
                    }
                )
        return out


def _annotations(dataset_dict: dict[str, Any]) -> list[dict[str, Any]]:
    """The non-crowd annotations (crowd regions are never training instances)."""
    return [a for a in dataset_dict.get("annotations", []) if not a.get("iscrowd", 0)]


def _xywh_boxes(boxes: list[list[float]], canvas: tuple[int, int]) -> tv_tensors.BoundingBoxes:
    xywh = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    xyxy = torch.cat([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], dim=1)
    return tv_tensors.BoundingBoxes(xyxy, format="XYXY", canvas_size=canvas)


def _mask(ann: dict[str, Any], height: int, width: int, dataset_dict: dict[str, Any]) -> np.ndarray:
    if "segmentation" not in ann:
        raise ValueError(
            f"Annotation {ann.get('id')} of image '{dataset_dict['file_name']}' has no "
            f"segmentation, but masks are on (MODEL.MASK_ON)"
        )
    return segmentation_to_mask(ann["segmentation"], height, width)
