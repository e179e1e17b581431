"""OV-Shapes: the project's procedurally generated open-vocabulary benchmark."""

from .generate import generate_ov_shapes
from .shapes import COLORS, DEFAULT_NOVEL_CLASSES, SHAPE_CLASSES, SIZES

__all__ = ["COLORS", "DEFAULT_NOVEL_CLASSES", "SHAPE_CLASSES", "SIZES", "generate_ov_shapes"]
