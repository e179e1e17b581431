"""Rendering one OV-Shapes scene: background, placed shapes with occlusion, visible masks."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from .shapes import COLORS, SIZES, shape_polygons

__all__ = ["SceneObject", "render_scene"]

# Each object keeps at least this fraction of its own area visible (moderate occlusion) ...
MIN_VISIBLE_FRACTION = 0.6
# ... and at least this many visible pixels at 128 x 128 (scaled with the image area).
MIN_VISIBLE_PIXELS = 60
PLACEMENT_TRIES = 30
# Objects are tilted by at most this angle either way, like photographed objects that are mostly
# upright; silhouettes keep a recognisable orientation.
MAX_TILT_DEGREES = 45.0
COLOR_JITTER = 12


@dataclass
class SceneObject:
    """One shape of a scene.

    Attributes:
        category: class name.
        color: colour name.
        size: size name (``small`` | ``medium`` | ``large``).
        mask: ``bool[H, W]`` visible part (what later objects do not cover).
        full_area: pixels of the whole, unoccluded shape.
    """

    category: str
    color: str
    size: str
    mask: np.ndarray
    full_area: int

    def box(self) -> tuple[int, int, int, int]:
        """Tight ``(x, y, w, h)`` of the visible mask, counting whole pixels (COCO convention)."""
        ys = np.flatnonzero(self.mask.any(axis=1))
        xs = np.flatnonzero(self.mask.any(axis=0))
        return int(xs[0]), int(ys[0]), int(xs[-1] - xs[0] + 1), int(ys[-1] - ys[0] + 1)

    def centre(self) -> tuple[float, float]:
        """``(x, y)`` centre of the visible box."""
        x, y, w, h = self.box()
        return x + w / 2, y + h / 2


def render_scene(
    rng: np.random.Generator,
    classes: Sequence[str],
    first_class: str,
    image_size: int,
    max_objects: int,
) -> tuple[np.ndarray, list[SceneObject], str]:
    """Draw one scene.

    Args:
        rng: the scene's own generator (its whole content depends on it alone).
        classes: names to draw objects from.
        first_class: class of the first object (lets a split cover every class).
        image_size: side of the square image in pixels.
        max_objects: objects are 1 to this many (fewer when no free place is found).

    Returns:
        ``uint8[H, W, 3]`` image, its objects in drawing order (later ones occlude earlier ones),
        and a word for the background (``"dark"`` | ``"gray"``).
    """
    image, background = _background(rng, image_size)
    scale = image_size / 128
    objects: list[SceneObject] = []
    full_masks: list[np.ndarray] = []
    colors: list[np.ndarray] = []
    for k in range(int(rng.integers(1, max_objects + 1))):
        category = first_class if k == 0 else str(rng.choice(classes))
        color = str(rng.choice(list(COLORS)))
        size = str(rng.choice(list(SIZES)))
        for _ in range(PLACEMENT_TRIES):
            mask = _draw_mask(rng, category, size, image_size, scale)
            if _fits(mask, color, objects, min_pixels=MIN_VISIBLE_PIXELS * scale**2):
                break
        else:
            continue
        for obj in objects:
            obj.mask &= ~mask
        objects.append(SceneObject(category, color, size, mask.copy(), int(mask.sum())))
        full_masks.append(mask)
        jitter = rng.integers(-COLOR_JITTER, COLOR_JITTER + 1, size=3)
        colors.append(np.clip(np.asarray(COLORS[color]) + jitter, 0, 255))
    for mask, rgb in zip(full_masks, colors):
        image[mask] = rgb
    noise = rng.normal(0.0, rng.uniform(2.0, 7.0), size=image.shape)
    return np.clip(np.rint(image + noise), 0, 255).astype(np.uint8), objects, background


def _background(rng: np.random.Generator, size: int) -> tuple[np.ndarray, str]:
    """``float64[H, W, 3]`` muted background: grey level, tint and a linear gradient."""
    level = rng.uniform(25.0, 105.0)
    tint = rng.uniform(-15.0, 15.0, size=3)
    theta = rng.uniform(0.0, 2 * math.pi)
    amplitude = rng.uniform(0.0, 30.0)
    coords = np.arange(size, dtype=np.float64) / size - 0.5
    ramp = coords[None, :] * math.cos(theta) + coords[:, None] * math.sin(theta)
    image = level + tint[None, None, :] + amplitude * ramp[:, :, None]
    return image, "dark" if level < 60 else "gray"


def _draw_mask(
    rng: np.random.Generator, category: str, size: str, image_size: int, scale: float
) -> np.ndarray:
    """``bool[H, W]`` of a shape with random extent (within ``size``), tilt and position."""
    low, high = SIZES[size]
    extent = rng.uniform(low, high) * scale
    angle = math.radians(rng.uniform(-MAX_TILT_DEGREES, MAX_TILT_DEGREES))
    half = extent / 2
    centre = (rng.uniform(half, image_size - half), rng.uniform(half, image_size - half))
    canvas = Image.new("L", (image_size, image_size), 0)
    draw = ImageDraw.Draw(canvas)
    for polygon, fill in shape_polygons(category, centre, extent, angle):
        draw.polygon(polygon.ravel().tolist(), fill=fill)
    return np.asarray(canvas, dtype=bool)


def _fits(mask: np.ndarray, color: str, objects: list[SceneObject], min_pixels: float) -> bool:
    """Whether a new shape on top leaves every object visible enough and distinguishable.

    A shape may not touch (4-neighbourhood) a visible shape of its own colour, since the two
    silhouettes would merge into one.
    """
    grown = _dilate(mask)
    for obj in objects:
        remaining = int(np.count_nonzero(obj.mask & ~mask))
        if remaining < MIN_VISIBLE_FRACTION * obj.full_area or remaining < min_pixels:
            return False
        if obj.color == color and (grown & obj.mask).any():
            return False
    return True


def _dilate(mask: np.ndarray) -> np.ndarray:
    grown = mask.copy()
    grown[1:] |= mask[:-1]
    grown[:-1] |= mask[1:]
    grown[:, 1:] |= mask[:, :-1]
    grown[:, :-1] |= mask[:, 1:]
    return grown
