"""Mask PNGs: standard 8-bit greyscale files that decode to exactly the mask, smaller than Pillow's."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from dermseg_deploy.files.png_encode import encode_grey_png
from dermseg_deploy.samples import SAMPLES_DIR


def decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG" and image.mode == "L"
        return np.asarray(image)


@pytest.mark.parametrize("shape", [(1, 1), (1, 257), (300, 1), (97, 131)])
def test_any_uint8_image_round_trips(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    for pixels in (rng.integers(0, 256, shape, dtype=np.uint8), np.full(shape, 255, np.uint8),
                   np.zeros(shape, np.uint8), (rng.random(shape) > 0.5).astype(np.uint8) * 255):
        assert np.array_equal(decode(encode_grey_png(pixels)), pixels)


def test_real_masks_round_trip_and_are_no_larger_than_pillows() -> None:
    for path in sorted((SAMPLES_DIR / "masks").glob("*.png")):
        with Image.open(path) as image:
            mask = np.where(np.asarray(image.convert("L")) > 127, 255, 0).astype(np.uint8)
        data = encode_grey_png(mask)
        assert np.array_equal(decode(data), mask)
        buffer = io.BytesIO()
        Image.fromarray(mask).save(buffer, format="PNG", compress_level=1)
        assert len(data) <= 1.5 * len(buffer.getvalue())


@pytest.mark.parametrize("bad", [np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2), np.float32), np.zeros((0, 4), np.uint8)])
def test_what_is_not_a_grey_image_is_refused(bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        encode_grey_png(bad)
