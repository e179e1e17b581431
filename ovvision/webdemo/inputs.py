"""What a web-demo request may contain: caps on uploads and vocabularies, with clear messages.

Everything a browser sends is checked here before a model sees it; a refused input raises
:class:`DemoInputError` whose message is shown to the user as is (it never names server paths).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ovvision.data import ImageReadError, ImageTooLargeError, read_image
from ovvision.structures import ClassList


class DemoInputError(ValueError):
    """An input the demo refuses; the message is meant for the person who sent it."""


@dataclass(frozen=True)
class DemoLimits:
    """Caps on what one request may send.

    Attributes:
        max_upload_bytes: the largest uploaded file (also handed to the server, which refuses
            larger uploads before they are stored).
        max_image_pixels: the most pixels (width x height) of an image, read from its header
            before decoding.
        max_vocabulary_classes: the most comma-separated classes.
        max_vocabulary_chars: the longest vocabulary text.
    """

    max_upload_bytes: int = 10 * 1024 * 1024
    max_image_pixels: int = 4096 * 4096
    max_vocabulary_classes: int = 100
    max_vocabulary_chars: int = 2000


DEFAULT_LIMITS = DemoLimits()


def read_upload(path: str | os.PathLike | None, limits: DemoLimits) -> np.ndarray:
    """The uploaded image as ``ndarray[H, W, 3]`` uint8 RGB.

    Raises:
        DemoInputError: no file, a file over the size cap, not an image, or over the pixel cap.
    """
    if path is None or not os.fspath(path):
        raise DemoInputError("Upload an image (PNG, JPEG, ...) or pick an example first.")
    path = os.fspath(path)
    name = os.path.basename(path)
    size = os.path.getsize(path)
    if size > limits.max_upload_bytes:
        raise DemoInputError(
            f"{name} is {size / 2**20:.1f} MiB; this demo accepts files up to "
            f"{limits.max_upload_bytes / 2**20:.1f} MiB."
        )
    try:
        return read_image(path, "RGB", limits.max_image_pixels)
    except ImageTooLargeError as e:
        reason = str(e).replace(f"'{path}'", name).replace(path, name)
        raise DemoInputError(
            f"{name} is too large: this demo accepts images of up to "
            f"{limits.max_image_pixels:,} pixels ({reason.split(' (')[0]})."
        ) from None
    except ImageReadError as e:
        reason = str(e).replace(f"'{path}'", name).replace(path, name)
        raise DemoInputError(f"{name} is not an image this demo can read ({reason}).") from None


def parse_vocabulary(text: str, limits: DemoLimits) -> ClassList:
    """Classes from ``"name|synonym, name2"`` (never read as a file path, unlike the demo CLI).

    Raises:
        DemoInputError: empty, too long, or too many classes.
    """
    text = (text or "").strip()
    if len(text) > limits.max_vocabulary_chars:
        raise DemoInputError(
            f"The vocabulary has {len(text)} characters; at most "
            f"{limits.max_vocabulary_chars} are accepted."
        )
    entries = [e for e in text.split(",") if e.strip()]
    if not entries:
        raise DemoInputError("Type at least one class name (e.g. 'star, heart, moon|crescent').")
    if len(entries) > limits.max_vocabulary_classes:
        raise DemoInputError(
            f"The vocabulary has {len(entries)} classes; at most "
            f"{limits.max_vocabulary_classes} are accepted."
        )
    try:
        return ClassList.from_entries(entries, "the vocabulary")
    except ValueError as e:
        raise DemoInputError(str(e)) from None
