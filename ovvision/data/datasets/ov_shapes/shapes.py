"""The OV-Shapes vocabulary: shape silhouettes, colours and sizes.

Every shape is a list of polygons, each drawn with fill 1 (add) or 0 (cut out), in a unit frame
centred on the shape and scaled so its farthest vertex lies at distance 1; rotating and scaling
the frame never moves the shape outside a circle of radius ``extent / 2``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ovvision.structures.builtin_classes import (
    OV_SHAPES_CLASSES,
    OV_SHAPES_DEFAULT_NOVEL_CLASSES,
)

__all__ = [
    "COLORS",
    "DEFAULT_NOVEL_CLASSES",
    "SHAPE_CLASSES",
    "SIZES",
    "shape_polygons",
]

Polygon = np.ndarray  # float64[K, 2] of (x, y); y points down
Op = tuple[Polygon, int]  # (polygon, fill): fill 1 adds, 0 cuts out


def _regular(n: int, radius: float = 1.0, phase: float = -math.pi / 2, cx=0.0, cy=0.0) -> Polygon:
    t = phase + 2 * math.pi * np.arange(n) / n
    return np.stack([cx + radius * np.cos(t), cy + radius * np.sin(t)], axis=1)


def _ellipse(rx: float, ry: float, n: int = 48) -> Polygon:
    t = 2 * math.pi * np.arange(n) / n
    return np.stack([rx * np.cos(t), ry * np.sin(t)], axis=1)


def _arc(start: float, stop: float, n: int, radius: float = 1.0) -> Polygon:
    t = np.linspace(start, stop, n)
    return np.stack([radius * np.cos(t), radius * np.sin(t)], axis=1)


def _poly(*points: tuple[float, float]) -> Polygon:
    return np.asarray(points, dtype=np.float64)


def _star() -> list[Op]:
    radii = np.where(np.arange(10) % 2 == 0, 1.0, 0.42)
    t = -math.pi / 2 + math.pi * np.arange(10) / 5
    return [(np.stack([radii * np.cos(t), radii * np.sin(t)], axis=1), 1)]


def _heart() -> list[Op]:
    t = np.linspace(0, 2 * math.pi, 64, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    return [(np.stack([x, y], axis=1), 1)]


def _teardrop() -> list[Op]:
    t = np.linspace(0, 2 * math.pi, 64, endpoint=False)
    return [(np.stack([0.8 * np.sin(t) * np.sin(t / 2), -np.cos(t)], axis=1), 1)]


def _pacman() -> list[Op]:
    mouth = math.radians(35)
    return [(np.vstack([[0.0, 0.0], _arc(mouth, 2 * math.pi - mouth, 40)]), 1)]


def _cloud() -> list[Op]:
    lobes = [(-0.55, 0.15, 0.42), (0.0, -0.18, 0.55), (0.55, 0.15, 0.42)]
    ops: list[Op] = [(_regular(32, r, cx=cx, cy=cy), 1) for cx, cy, r in lobes]
    ops.append((_poly((-0.55, 0.15), (0.55, 0.15), (0.55, 0.57), (-0.55, 0.57)), 1))
    return ops


def _flower() -> list[Op]:
    petals = [
        (_regular(24, 0.36, cx=0.62 * math.cos(a), cy=0.62 * math.sin(a)), 1)
        for a in 2 * math.pi * np.arange(6) / 6
    ]
    return [*petals, (_regular(32, 0.5), 1)]


# name -> builder of its ops in an arbitrary frame (normalised by shape_polygons)
_BUILDERS: dict[str, Callable[[], list[Op]]] = {
    "circle": lambda: [(_regular(48), 1)],
    "square": lambda: [(_poly((-1, -1), (1, -1), (1, 1), (-1, 1)), 1)],
    "triangle": lambda: [(_regular(3), 1)],
    "star": _star,
    "cross": lambda: [
        (
            _poly(
                (-0.3, -1),
                (0.3, -1),
                (0.3, -0.3),
                (1, -0.3),
                (1, 0.3),
                (0.3, 0.3),
                (0.3, 1),
                (-0.3, 1),
                (-0.3, 0.3),
                (-1, 0.3),
                (-1, -0.3),
                (-0.3, -0.3),
            ),
            1,
        )
    ],  # fmt: skip
    "ring": lambda: [(_regular(48), 1), (_regular(48, 0.55), 0)],
    "hexagon": lambda: [(_regular(6, phase=0.0), 1)],
    "crescent": lambda: [(_regular(48), 1), (_regular(48, 0.85, cx=0.5, cy=-0.1), 0)],
    "heart": _heart,
    "arrow": lambda: [
        (
            _poly(
                (-1, -0.2), (0.2, -0.2), (0.2, -0.62), (1, 0), (0.2, 0.62), (0.2, 0.2), (-1, 0.2)
            ),
            1,
        )
    ],
    "ellipse": lambda: [(_ellipse(1.0, 0.55), 1)],
    "semicircle": lambda: [(_arc(math.pi, 2 * math.pi, 40), 1)],
    "rectangle": lambda: [(_poly((-1, -0.42), (1, -0.42), (1, 0.42), (-1, 0.42)), 1)],
    "trapezoid": lambda: [(_poly((-1, 0.6), (1, 0.6), (0.45, -0.6), (-0.45, -0.6)), 1)],
    "frame": lambda: [
        (_poly((-1, -1), (1, -1), (1, 1), (-1, 1)), 1),
        (_poly((-0.58, -0.58), (0.58, -0.58), (0.58, 0.58), (-0.58, 0.58)), 0),
    ],
    "flower": _flower,
    "bolt": lambda: [
        (
            _poly(
                (0.15, -1),
                (-0.6, 0.15),
                (-0.05, 0.15),
                (-0.3, 1),
                (0.6, -0.2),
                (0.05, -0.2),
                (0.4, -1),
            ),
            1,
        )
    ],
    "hourglass": lambda: [
        (_poly((-0.7, -1), (0.7, -1), (0.12, 0), (0.7, 1), (-0.7, 1), (-0.12, 0)), 1)
    ],
    "teardrop": _teardrop,
    "pacman": _pacman,
    "cloud": _cloud,
    "house": lambda: [
        (_poly((-0.7, 1), (0.7, 1), (0.7, 0.05), (1, 0.05), (0, -1), (-1, 0.05), (-0.7, 0.05)), 1)
    ],
    "l-shape": lambda: [
        (_poly((-0.75, -1), (-0.2, -1), (-0.2, 0.45), (0.75, 0.45), (0.75, 1), (-0.75, 1)), 1)
    ],
    "t-shape": lambda: [
        (
            _poly(
                (-1, -1),
                (1, -1),
                (1, -0.45),
                (0.28, -0.45),
                (0.28, 1),
                (-0.28, 1),
                (-0.28, -0.45),
                (-1, -0.45),
            ),
            1,
        )
    ],  # fmt: skip
}

SHAPE_CLASSES: tuple[str, ...] = OV_SHAPES_CLASSES
DEFAULT_NOVEL_CLASSES: tuple[str, ...] = OV_SHAPES_DEFAULT_NOVEL_CLASSES
if tuple(_BUILDERS) != SHAPE_CLASSES:  # the id order of every generated json depends on it
    raise RuntimeError("OV-Shapes builders and OV_SHAPES_CLASSES list different classes")

# name -> RGB; saturated or bright, so every colour stands out from the dark, muted backgrounds.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (215, 40, 40),
    "orange": (245, 135, 25),
    "yellow": (240, 215, 35),
    "green": (45, 175, 65),
    "cyan": (40, 205, 215),
    "blue": (45, 95, 235),
    "purple": (150, 70, 215),
    "pink": (245, 125, 190),
    "white": (240, 240, 240),
}

# name -> range of the shape's extent (diameter of its bounding circle) at 128 x 128 pixels.
SIZES: dict[str, tuple[float, float]] = {
    "small": (20.0, 28.0),
    "medium": (29.0, 39.0),
    "large": (40.0, 52.0),
}


def _normalise(ops: list[Op]) -> list[Op]:
    """Centre the added polygons' bounding box and scale the farthest vertex to radius 1."""
    added = np.vstack([p for p, fill in ops if fill])
    centre = (added.min(axis=0) + added.max(axis=0)) / 2
    radius = float(np.sqrt(((added - centre) ** 2).sum(axis=1)).max())
    return [((p - centre) / radius, fill) for p, fill in ops]


_NORMALISED: dict[str, list[Op]] = {name: _normalise(build()) for name, build in _BUILDERS.items()}


def shape_polygons(name: str, centre: tuple[float, float], extent: float, angle: float) -> list[Op]:
    """The ops of shape ``name`` placed in pixel coordinates.

    Args:
        name: one of :data:`SHAPE_CLASSES`.
        centre: ``(x, y)`` pixel position of the shape's centre.
        extent: diameter in pixels of the circle the shape fits in.
        angle: rotation in radians.

    Returns:
        ``[(float64[K, 2] pixel polygon, fill), ...]`` to draw in order.
    """
    cos, sin = math.cos(angle), math.sin(angle)
    rotation = np.array([[cos, -sin], [sin, cos]])
    scale = extent / 2
    return [(p @ rotation.T * scale + np.asarray(centre), fill) for p, fill in _NORMALISED[name]]
