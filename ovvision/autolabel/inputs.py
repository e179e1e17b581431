"""Which images to label: folders, globs and text files of paths, local or any fsspec URL."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import fsspec
import numpy as np
from fsspec.core import url_to_fs

from ovvision.data import ImageReadError, read_image

logger = logging.getLogger(__name__)

__all__ = ["IMAGE_EXTENSIONS", "is_local", "list_images", "load_image"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
_GLOB_CHARS = "*?["


def is_local(key: str) -> bool:
    """Whether an image key is a local path (not a ``protocol://`` URL)."""
    return "://" not in key


def list_images(specs: Sequence[str]) -> list[str]:
    """The image keys that ``specs`` name, sorted and without repeats.

    Args:
        specs: each a folder (its image files, recursively, by extension), a glob
            (``photos/**/*.jpg``), a ``.txt`` file with one path or URL per line (``#`` starts a
            comment; relative paths are read from the current folder), or one image. Each may be
            a local path or an fsspec URL (``s3://bucket/photos/``, ``memory://...``).

    Returns:
        Keys: absolute paths for local images, full URLs for the others. A file that does not
        exist is kept; reading it later records why it was skipped.
    """
    keys: set[str] = set()
    for spec in specs:
        fs, path = url_to_fs(spec)
        local = is_local(spec) or spec.startswith("file://")
        if any(c in path for c in _GLOB_CHARS):
            found = [p for p in fs.glob(path) if fs.isfile(p)]
            if not found:
                logger.warning("--input %s matches no file", spec)
        elif fs.isdir(path):
            found = [p for p in fs.find(path) if p.lower().endswith(IMAGE_EXTENSIONS)]
            if not found:
                logger.warning(
                    "--input %s holds no image file (%s)", spec, ", ".join(IMAGE_EXTENSIONS)
                )
        elif path.endswith(".txt") and fs.isfile(path):
            with fs.open(path, "rt", encoding="utf-8") as f:
                lines = [line.strip() for line in f]
            keys.update(_key(line) for line in lines if line and not line.startswith("#"))
            continue
        else:
            found = [path]
        keys.update(os.path.abspath(p) if local else fs.unstrip_protocol(p) for p in found)
    return sorted(keys)


def _key(path_or_url: str) -> str:
    if is_local(path_or_url):
        return os.path.abspath(path_or_url)
    if path_or_url.startswith("file://"):
        return os.path.abspath(path_or_url[len("file://") :])
    return path_or_url


def load_image(key: str, max_pixels: int | None) -> np.ndarray:
    """``ndarray[H, W, 3]`` RGB uint8 of an image key, read as :func:`ovvision.data.read_image`
    reads files (EXIF orientation, every mode to RGB, pixel cap).

    A URL is fetched once into fsspec's local cache and read from there.

    Raises:
        ImageReadError: the image is missing, unreadable, not an image or too large; the
            message names the key.
    """
    if is_local(key):
        return read_image(key, "RGB", max_pixels)
    try:
        local = fsspec.open_local(f"simplecache::{key}")
    except (OSError, ValueError) as e:
        raise ImageReadError(f"Cannot fetch image '{key}': {e}") from e
    try:
        return read_image(local, "RGB", max_pixels)
    except ImageReadError as e:  # name the URL, not the cache file
        raise ImageReadError(str(e).replace(local, key)) from e
