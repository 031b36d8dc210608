"""Decoding, resizing, normalising and mask postprocessing on synthetic images of odd sizes and modes."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dermseg_deploy.core.decode import decode_image, read_image
from dermseg_deploy.core.masks import logits_to_masks, upsample_mask
from dermseg_deploy.core.preprocess import normalize, preprocess, preprocess_batch, resize_image
from dermseg_deploy.errors import InputImageError
from dermseg_deploy.files.outputs import encode_png
from dermseg_deploy.files.overlay import mask_outline, render_overlay
from dermseg_deploy.model.metadata import ModelMetadata

WIDTH, HEIGHT = 53, 37


def _gradient_rgb() -> np.ndarray:
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    return np.stack([x * 4, y * 6, (x + y) * 2], axis=-1).clip(0, 255).astype(np.uint8)


def _encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "LA", "1", "CMYK"])
def test_every_mode_becomes_rgb_of_the_same_size(mode: str) -> None:
    image = Image.fromarray(_gradient_rgb()).convert(mode)
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    decoded = decode_image(_encode(image, fmt), f"x.{fmt.lower()}")
    assert decoded.shape == (HEIGHT, WIDTH, 3) and decoded.dtype == np.uint8


def test_palette_with_transparency_decodes() -> None:
    image = Image.fromarray(_gradient_rgb()).convert("P")
    image.info["transparency"] = 0
    assert decode_image(_encode(image, "PNG", transparency=0)).shape == (HEIGHT, WIDTH, 3)


def test_sixteen_bit_png_is_scaled_not_clipped() -> None:
    values = np.array([[0, 257 * 128, 65535]], dtype=np.uint16)
    decoded = decode_image(_encode(Image.fromarray(values), "PNG"))
    assert decoded[0, :, 0].tolist() == [0, 128, 255]
    assert np.array_equal(decoded[..., 0], decoded[..., 2])


@pytest.mark.parametrize("fmt", ["BMP", "TIFF", "JPEG", "PNG"])
def test_formats(fmt: str) -> None:
    decoded = decode_image(_encode(Image.fromarray(_gradient_rgb()), fmt))
    assert decoded.shape == (HEIGHT, WIDTH, 3)
    if fmt != "JPEG":
        assert np.array_equal(decoded, _gradient_rgb())


@pytest.mark.parametrize("orientation,rotated", [(1, False), (3, False), (6, True), (8, True)])
def test_exif_orientation_gives_the_displayed_size(orientation: int, rotated: bool) -> None:
    image = Image.fromarray(_gradient_rgb())
    exif = image.getexif()
    exif[0x0112] = orientation
    decoded = decode_image(_encode(image, "JPEG", exif=exif.tobytes()))
    assert decoded.shape[:2] == ((WIDTH, HEIGHT) if rotated else (HEIGHT, WIDTH))


@pytest.mark.parametrize("data,reason", [
    (b"", "empty"),
    (b"this is text, not an image\n", "not an image"),
])
def test_bad_bytes_are_input_errors(data: bytes, reason: str) -> None:
    with pytest.raises(InputImageError, match=reason):
        decode_image(data, "bad.jpg")


def test_truncated_jpeg_is_an_input_error() -> None:
    data = _encode(Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 300, 3), np.uint8)), "JPEG")
    with pytest.raises(InputImageError, match="cannot be decoded"):
        decode_image(data[: len(data) // 2], "cut.jpg")


def test_pixel_limit_refuses_huge_images() -> None:
    with pytest.raises(InputImageError, match="over the limit of 100"):
        decode_image(_encode(Image.fromarray(_gradient_rgb()), "PNG"), "big.png", max_pixels=100)


def test_read_image_names_missing_and_non_regular_files(tmp_path: Path) -> None:
    with pytest.raises(InputImageError, match="does not exist"):
        read_image(tmp_path / "absent.jpg")
    with pytest.raises(InputImageError, match="not a regular file"):
        read_image(tmp_path)


def test_resize_and_normalise() -> None:
    image = _gradient_rgb()
    metadata = ModelMetadata(size_px=64)
    x = preprocess(image, metadata)
    assert x.shape == (3, 64, 64) and x.dtype == np.float32 and x.flags.c_contiguous
    flat = np.full((10, 10, 3), 255, dtype=np.uint8)
    expected = (1.0 - np.array(metadata.mean)) / np.array(metadata.std)
    assert np.allclose(normalize(resize_image(flat, 32), metadata.mean, metadata.std)[:, 5, 5], expected)
    batch = preprocess_batch([image, flat], metadata)
    assert batch.shape == (2, 3, 64, 64)


def test_shrinking_is_antialiased() -> None:
    stripes = np.zeros((256, 256, 3), dtype=np.uint8)
    stripes[:, ::2] = 255
    small = resize_image(stripes, 32)
    assert np.allclose(small, 127.5, atol=6.0)  # not aliased to 0 or 255


def test_masks_come_back_at_the_original_odd_size() -> None:
    logits = np.full((1, 1, 64, 64), -5.0, dtype=np.float32)
    logits[..., 16:48, 16:48] = 5.0
    masks = logits_to_masks(logits, ModelMetadata().logit_threshold)
    full = upsample_mask(masks[0], HEIGHT, WIDTH)
    assert full.shape == (HEIGHT, WIDTH) and full.dtype == np.uint8
    assert set(np.unique(full).tolist()) == {0, 255}
    assert full[HEIGHT // 2, WIDTH // 2] == 255 and full[0, 0] == 0


def test_threshold_is_applied_on_logits() -> None:
    logits = np.array([[[[0.0, 1.0, 2.0]]]], dtype=np.float32)
    assert logits_to_masks(logits, ModelMetadata(threshold=0.8).logit_threshold).flatten().tolist() == [0, 0, 1]


def test_png_is_single_channel_8_bit() -> None:
    mask = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    mask[5:10, 5:20] = 255
    with Image.open(io.BytesIO(encode_png(mask))) as image:
        assert image.mode == "L" and image.size == (WIDTH, HEIGHT)
        assert np.array_equal(np.asarray(image), mask)


def test_overlay_draws_the_outline() -> None:
    image = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
    mask = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    mask[10:30, 10:40] = 255
    outline = mask_outline(mask, 1)
    assert outline[10, 20] and not outline[20, 25] and not outline[0, 0]
    with Image.open(io.BytesIO(render_overlay(image, mask))) as overlay:
        assert overlay.size == (WIDTH, HEIGHT)
        assert np.asarray(overlay)[10, 20, 1] > 150 > np.asarray(overlay)[10, 20, 0]


def test_an_empty_mask_is_labelled_on_its_overlay() -> None:
    image = np.full((200, 300, 3), 128, dtype=np.uint8)
    empty = np.zeros((200, 300), dtype=np.uint8)
    lesion = empty.copy()
    lesion[50:150, 100:200] = 255
    with Image.open(io.BytesIO(render_overlay(image, empty))) as labelled, \
            Image.open(io.BytesIO(render_overlay(image, lesion))) as outlined:
        corner = np.asarray(labelled)[:40, :160]
        assert corner.max() > 200 and corner.min() < 50  # white text on a black box
        assert np.abs(np.asarray(outlined)[:40, :160].astype(int) - 128).max() < 10  # no label where a lesion is
