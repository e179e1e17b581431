"""Reading images robustly: EXIF orientation, every PIL mode to RGB uint8, clear errors."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = ["DEFAULT_MAX_IMAGE_PIXELS", "ImageReadError", "read_image"]

# PIL's own decompression-bomb warning threshold (about 9459 x 9459 pixels).
DEFAULT_MAX_IMAGE_PIXELS = 89_478_485

# Transparent pixels are composited onto this colour, the way viewers show them on a page.
_ALPHA_BACKGROUND = (255, 255, 255)


class ImageReadError(OSError):
    """An image file is missing, not an image, truncated, or larger than the pixel cap."""


class ImageTooLargeError(ImageReadError):
    """An image has more pixels than the cap (``INPUT.MAX_IMAGE_PIXELS``)."""


def read_image(
    path: str | os.PathLike,
    format: str = "RGB",
    max_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS,
) -> np.ndarray:
    """Read an image file as a uint8 array with its EXIF orientation applied.

    Grey (``L``, ``1``), ``LA``, palette (``P``), ``RGBA``, ``CMYK``, ``YCbCr`` and 16-bit
    (``I;16``, ``I``) images are converted explicitly: transparency is composited onto white and
    16-bit values are scaled to 0–255 (``v * 255 / 65535``, rounded).

    Args:
        path: the image file.
        format: ``"RGB"`` or ``"BGR"`` (``ndarray[H, W, 3]``) or ``"L"`` (``ndarray[H, W, 1]``).
        max_pixels: images with more pixels (width x height, read from the header before
            decoding) raise; ``None`` or 0 disables the cap.

    Returns:
        ``ndarray[H, W, C]`` of uint8, C-contiguous and writable.

    Raises:
        ImageReadError: the file is missing, unreadable, not an image, truncated or too large;
            the message names the path.
        ValueError: ``format`` is not one of the above.
    """
    if format not in ("RGB", "BGR", "L"):
        raise ValueError(f"read_image: format must be 'RGB', 'BGR' or 'L', got {format!r}")
    path = os.fspath(path)
    try:
        with Image.open(path) as img:
            _check_pixel_cap(img, path, max_pixels)
            img.load()
            rgb = _to_rgb(ImageOps.exif_transpose(img))
    except ImageReadError:
        raise
    except Image.DecompressionBombError as e:
        raise ImageReadError(f"Image '{path}' is too large for PIL: {e}") from e
    except UnidentifiedImageError as e:
        raise ImageReadError(f"'{path}' is not an image file PIL can identify") from e
    except FileNotFoundError as e:
        raise ImageReadError(f"Image file '{path}' does not exist") from e
    except (OSError, SyntaxError, ValueError) as e:
        # PIL raises OSError for truncated data and SyntaxError/ValueError for corrupt headers.
        raise ImageReadError(f"Cannot decode image '{path}': {e}") from e
    if format == "L":
        return np.array(rgb.convert("L"))[:, :, None]
    array = np.array(rgb)  # a writable copy
    return np.ascontiguousarray(array[:, :, ::-1]) if format == "BGR" else array


def pil_to_rgb_array(
    img: Image.Image, name: str = "PIL image", max_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS
) -> np.ndarray:
    """A PIL image as a file read by :func:`read_image` would give it: the pixel cap checked
    before any decoding, EXIF orientation applied, any mode converted to RGB.

    Args:
        img: the image (any mode).
        name: how error messages name it.
        max_pixels: the cap (``None`` or 0: none).

    Returns:
        ``ndarray[H, W, 3]`` uint8 RGB, writable.

    Raises:
        ImageTooLargeError: over the cap.
    """
    _check_pixel_cap(img, name, max_pixels)
    return np.array(_to_rgb(ImageOps.exif_transpose(img)))


def _check_pixel_cap(img: Image.Image, path: str, max_pixels: int | None) -> None:
    width, height = img.size
    if max_pixels and width * height > max_pixels:
        raise ImageTooLargeError(
            f"Image '{path}' has {width}x{height} = {width * height} pixels, more than the cap "
            f"of {max_pixels} (INPUT.MAX_IMAGE_PIXELS)"
        )


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to ``RGB`` with explicit rules for alpha and 16-bit data."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode.startswith("I;16") or mode in ("I", "F"):
        return Image.fromarray(_high_bit_depth_to_uint8(img, mode)).convert("RGB")
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode in ("LA", "La", "PA", "RGBa"):
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        background = Image.new("RGBA", img.size, (*_ALPHA_BACKGROUND, 255))
        return Image.alpha_composite(background, img).convert("RGB")
    # L, 1, CMYK, YCbCr, LAB, HSV: PIL's conversions are exact or the standard ones.
    return img.convert("RGB")


def _high_bit_depth_to_uint8(img: Image.Image, mode: str) -> np.ndarray:
    """``ndarray[H, W]`` uint8 from a 16-bit (or 32-bit int holding 16-bit) grey image."""
    values = np.asarray(img).astype(np.float64)
    if mode == "F":
        scaled = values  # float images are taken to be in 0-255 already
    else:
        scaled = values * (255.0 / 65535.0)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
