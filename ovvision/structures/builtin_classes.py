"""The class lists ovvision ships: COCO, the open-vocabulary COCO split and OV-Shapes.

One module holds them so that datasets, vocabularies and evaluators read the same lists and no
package has to import another to get them.
"""

from __future__ import annotations

__all__ = [
    "COCO_OV_BASE_CLASSES",
    "COCO_OV_NOVEL_CLASSES",
    "OV_SHAPES_CLASSES",
    "OV_SHAPES_DEFAULT_NOVEL_CLASSES",
    "coco_class_names",
]

# The 48 base / 17 novel split of Bansal et al. (ECCV 2018) used by OVR-CNN, ViLD and Detic.
COCO_OV_NOVEL_CLASSES = (
    "airplane", "bus", "cat", "dog", "cow", "elephant", "umbrella", "tie", "snowboard",
    "skateboard", "cup", "knife", "cake", "couch", "keyboard", "sink", "scissors",
)  # fmt: skip
COCO_OV_BASE_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "train", "truck", "boat", "bench", "bird", "horse",
    "sheep", "bear", "zebra", "giraffe", "backpack", "handbag", "suitcase", "frisbee", "skis",
    "kite", "surfboard", "bottle", "fork", "spoon", "bowl", "banana", "apple", "sandwich",
    "orange", "broccoli", "carrot", "pizza", "donut", "chair", "bed", "toilet", "tv", "laptop",
    "mouse", "remote", "microwave", "oven", "toaster", "refrigerator", "book", "clock", "vase",
    "toothbrush",
)  # fmt: skip

# The OV-Shapes categories in category-id order (id = position + 1); the generator draws each.
OV_SHAPES_CLASSES: tuple[str, ...] = (
    "circle", "square", "triangle", "star", "cross", "ring", "hexagon", "crescent", "heart",
    "arrow", "ellipse", "semicircle", "rectangle", "trapezoid", "frame", "flower", "bolt",
    "hourglass", "teardrop", "pacman", "cloud", "house", "l-shape", "t-shape",
)  # fmt: skip

# About a quarter of the OV-Shapes classes, each unlike every base shape.
OV_SHAPES_DEFAULT_NOVEL_CLASSES: tuple[str, ...] = (
    "arrow",
    "crescent",
    "heart",
    "hourglass",
    "house",
    "star",
)


def coco_class_names() -> list[str]:
    """The 80 COCO class names in category-id order, from torchvision's COCO metadata."""
    from torchvision.models.detection import FasterRCNN_ResNet50_FPN_Weights

    categories = FasterRCNN_ResNet50_FPN_Weights.COCO_V1.meta["categories"]
    return [c for c in categories if c not in ("__background__", "N/A")]
