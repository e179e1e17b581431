"""read_image on image files of every awkward kind, written by the tests."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ovvision.data import ImageReadError, read_image

EXIF_ORIENTATION = 0x0112


def _left_red_right_blue(width: int, height: int) -> Image.Image:
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[:, : width // 2] = (255, 0, 0)
    pixels[:, width // 2 :] = (0, 0, 255)
    return Image.fromarray(pixels)


def test_exif_orientation_is_applied(tmp_path):
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # stored sideways: display = rotate 90 degrees clockwise
    _left_red_right_blue(40, 20).save(path, exif=exif.tobytes(), quality=95)
    image = read_image(path)
    assert image.shape == (40, 20, 3)
    # the stored left half (red) is on top once rotated clockwise
    assert image[:15, :, 0].mean() > 200 and image[:15, :, 2].mean() < 60
    assert image[-15:, :, 2].mean() > 200 and image[-15:, :, 0].mean() < 60


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(path, quality=95)
    assert Image.open(path).mode == "CMYK"
    image = read_image(path)
    assert image.dtype == np.uint8 and image.shape == (16, 16, 3)
    np.testing.assert_allclose(image.reshape(-1, 3).mean(0), (255, 0, 0), atol=8)


def test_16_bit_png_is_scaled_to_8_bits(tmp_path):
    path = tmp_path / "deep.png"
    values = np.array([[0, 65535, 128 * 257, 1000]], dtype=np.uint16)
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I")
    image = read_image(path)
    assert image.dtype == np.uint8 and image.shape == (1, 4, 3)
    np.testing.assert_array_equal(image[0, :, 0], [0, 255, 128, 4])
    assert (image == image[:, :, :1]).all()  # grey: equal channels


def test_rgba_is_composited_on_white(tmp_path):
    path = tmp_path / "alpha.png"
    pixels = np.array([[[255, 0, 0, 255], [0, 0, 255, 0], [0, 0, 0, 128]]], dtype=np.uint8)
    Image.fromarray(pixels, "RGBA").save(path)
    image = read_image(path)
    np.testing.assert_array_equal(image[0, 0], (255, 0, 0))
    np.testing.assert_array_equal(image[0, 1], (255, 255, 255))
    np.testing.assert_allclose(image[0, 2], (127, 127, 127), atol=1)


def test_palette_image_with_and_without_transparency(tmp_path):
    rgb = _left_red_right_blue(8, 4)
    plain = tmp_path / "palette.png"
    rgb.convert("P").save(plain)
    assert Image.open(plain).mode == "P"
    np.testing.assert_array_equal(read_image(plain), np.asarray(rgb))

    transparent = tmp_path / "palette_alpha.png"
    palette_image = rgb.convert("P")
    red_index = palette_image.getpixel((0, 0))
    palette_image.save(transparent, transparency=red_index)
    image = read_image(transparent)
    np.testing.assert_array_equal(image[:, :4], 255)  # the transparent red shows the background
    np.testing.assert_array_equal(image[0, -1], (0, 0, 255))


@pytest.mark.parametrize("mode", ["L", "LA", "1"])
def test_grey_images_become_three_equal_channels(tmp_path, mode):
    path = tmp_path / f"grey_{mode}.png"
    grey = Image.fromarray(np.array([[0, 77, 255]], dtype=np.uint8))
    source = (
        grey.convert(mode) if mode != "LA" else Image.merge("LA", [grey, grey.point(lambda _: 255)])
    )
    source.save(path)
    image = read_image(path)
    assert image.shape == (1, 3, 3)
    expected = {"L": [0, 77, 255], "LA": [0, 77, 255], "1": [0, 0, 255]}[mode]
    np.testing.assert_array_equal(image[0, :, 1], expected)
    assert (image == image[:, :, :1]).all()


def test_formats_bgr_and_l(tmp_path):
    path = tmp_path / "rgb.png"
    _left_red_right_blue(4, 2).save(path)
    rgb = read_image(path)
    bgr = read_image(path, format="BGR")
    np.testing.assert_array_equal(bgr, rgb[:, :, ::-1])
    assert bgr.flags["C_CONTIGUOUS"] and rgb.flags["WRITEABLE"]
    assert read_image(path, format="L").shape == (2, 4, 1)
    with pytest.raises(ValueError, match="format"):
        read_image(path, format="HSV")


def test_truncated_jpeg_raises_with_path(tmp_path):
    path = tmp_path / "truncated.jpg"
    _left_red_right_blue(64, 64).save(path, quality=95)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="truncated.jpg"):
        read_image(path)


def test_text_file_named_jpg_raises_with_path(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not an image\n")
    with pytest.raises(ImageReadError, match="notes.jpg"):
        read_image(path)


def test_missing_file_raises_with_path(tmp_path):
    with pytest.raises(ImageReadError, match="absent.png"):
        read_image(tmp_path / "absent.png")


def test_pixel_cap(tmp_path):
    path = tmp_path / "big.png"
    Image.new("RGB", (100, 60)).save(path)
    with pytest.raises(ImageReadError, match=r"big.png.*100x60 = 6000 pixels.*cap of 5999"):
        read_image(path, max_pixels=5999)
    assert read_image(path, max_pixels=6000).shape == (60, 100, 3)
    assert read_image(path, max_pixels=0).shape == (60, 100, 3)


def test_pil_images_are_capped_before_decoding(tmp_path):
    """pil_to_rgb_array (the Predictor's path for PIL inputs) checks the pixel cap from the
    header: an oversized image whose data is truncated raises ImageTooLargeError, not a decode
    error, so nothing is decoded; under the cap it equals read_image of the same file."""
    from PIL import Image

    from ovvision.data import ImageTooLargeError, pil_to_rgb_array, read_image

    path = tmp_path / "big.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(path)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ImageTooLargeError, match="80x60 = 4800 pixels"):
        pil_to_rgb_array(Image.open(truncated), "big", max_pixels=1000)
    with Image.open(path) as img:
        assert np.array_equal(pil_to_rgb_array(img, "big"), read_image(path))
