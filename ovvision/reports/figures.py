"""The PNG figures of an evaluation report, drawn with matplotlib's headless Agg backend.

Each figure has a fixed size in pixels (``*_size`` functions), so a reader's page lays out the
same way for every run and tests can check what was written.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

DPI = 100
SPLIT_COLORS = {"base": "#1f77b4", "novel": "#d62728", "": "#7f7f7f"}


def _save(figure: Figure, path: str) -> str:
    FigureCanvasAgg(figure)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    figure.savefig(path, dpi=DPI)
    return path


def per_class_ap_size(num_classes: int) -> tuple[int, int]:
    """``(width, height)`` in pixels of :func:`plot_per_class_ap`'s figure."""
    return 900, max(300, 60 + 22 * num_classes)


def plot_per_class_ap(
    values: Sequence[tuple[str, str, float]], path: str, metric: str = "AP50"
) -> str:
    """A horizontal bar per class, sorted by value (best on top), coloured by split.

    Args:
        values: ``(class name, split "base"/"novel"/"", value in percent)``; NaN values (no
            ground truth) are left out by the caller.
        path: the PNG to write.
        metric: the axis label.
    """
    width, height = per_class_ap_size(len(values))
    figure = Figure(figsize=(width / DPI, height / DPI))
    ax = figure.add_subplot()
    ordered = sorted(values, key=lambda v: v[2])
    ax.barh(
        range(len(ordered)),
        [v[2] for v in ordered],
        color=[SPLIT_COLORS.get(v[1], SPLIT_COLORS[""]) for v in ordered],
    )
    ax.set_yticks(range(len(ordered)), [v[0] for v in ordered])
    ax.set_xlim(0, 100)
    ax.set_xlabel(f"{metric} (%)")
    handles = [
        Patch(color=SPLIT_COLORS[split], label=split)
        for split in ("base", "novel")
        if any(v[1] == split for v in ordered)
    ]
    if handles:
        ax.legend(handles=handles, loc="lower right")
    figure.tight_layout()
    return _save(figure, path)


PR_SIZE = (640, 480)


def plot_pr_curves(curves: Mapping[str, tuple[np.ndarray, np.ndarray] | None], path: str) -> str:
    """Precision-recall curves, one line per group ("all", "base", "novel"); a group without
    ground truth (None) is named in the legend as such."""
    figure = Figure(figsize=(PR_SIZE[0] / DPI, PR_SIZE[1] / DPI))
    ax = figure.add_subplot()
    for name, curve in curves.items():
        color = SPLIT_COLORS.get(name, "black")
        if curve is None:
            ax.plot([], [], color=color, label=f"{name} (no ground truth)")
            continue
        recall, precision = curve
        ap = float(np.mean(precision)) * 100
        ax.plot(recall, precision, color=color, label=f"{name} (AP50 {ap:.1f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("Precision-recall at IoU 0.5")
    ax.legend(loc="lower left")
    ax.grid(alpha=0.3)
    figure.tight_layout()
    return _save(figure, path)


def image_grid_size(num_images: int, columns: int = 3, tile: int = 400) -> tuple[int, int]:
    """``(width, height)`` in pixels of :func:`plot_image_grid`'s figure."""
    rows = max(1, math.ceil(num_images / columns))
    return columns * (tile + 20), rows * (tile + 40)


def plot_image_grid(
    images: Sequence[np.ndarray], titles: Sequence[str], path: str, columns: int = 3
) -> str:
    """Images (``ndarray[H, W, 3]`` uint8) in a grid with a title above each."""
    tile = 400
    width, height = image_grid_size(len(images), columns, tile)
    figure = Figure(figsize=(width / DPI, height / DPI))
    rows = max(1, math.ceil(len(images) / columns))
    for i in range(rows * columns):
        ax = figure.add_subplot(rows, columns, i + 1)
        ax.axis("off")
        if i < len(images):
            ax.imshow(images[i], interpolation="nearest")
            ax.set_title(titles[i], fontsize=9)
    figure.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.94, wspace=0.05)
    return _save(figure, path)
