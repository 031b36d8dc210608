"""Image decoding to (H, W, 3) uint8 RGB arrays, as a viewer shows the image (EXIF orientation applied)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ..defaults import DEFAULT_MAX_PIXELS
from ..errors import InputImageError
from .image_formats import open_image

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"})
"""Images with more pixels are refused (decompression bombs); the largest ISIC images have about 30 M."""


def read_file_bytes(path: Path) -> bytes:
    """Read a whole input file; raise InputImageError for anything that is not a readable regular file."""
    try:
        if not path.is_file():
            reason = "does not exist" if not path.exists() else "is not a regular file"
            if path.is_symlink() and not path.exists():
                reason = "is a broken symbolic link"
            raise InputImageError(path, reason)
        data = path.read_bytes()
    except OSError as exc:
        raise InputImageError(path, f"cannot be read ({exc.strerror or exc})") from exc
    if not data:
        raise InputImageError(path, "is empty (0 bytes)")
    return data


def image_to_rgb_array(image: Image.Image) -> np.ndarray:
    """Any PIL mode to an (H, W, 3) uint8 array; 16-bit and 32-bit integer images are scaled, not clipped."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
        gray = np.clip(np.rint(values * (255.0 / top)), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "F":
        gray = np.clip(np.rint(np.asarray(image, dtype=np.float64)), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.array(image, dtype=np.uint8)


EXIF_ORIENTATION_TAG = 0x0112
SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})


def is_jpeg(data: bytes) -> bool:
    return data[:3] == b"\xff\xd8\xff"


def decode_image(
    data: bytes, name: object = "<bytes>", max_pixels: int = DEFAULT_MAX_PIXELS, draft_min_side_px: int | None = None
) -> np.ndarray:
    """Decode JPEG/PNG/BMP/TIFF bytes (`image_formats`: no other format) to an (H, W, 3) uint8 RGB array with EXIF
    orientation applied.

    With `draft_min_side_px`, a JPEG is decoded at the largest libjpeg DCT scale (1/2, 1/4, 1/8) that still
    leaves both sides at least that long, which is much faster for a large photo going to a small input;
    `displayed_size` gives the full size. Which decoding an image gets for a model is `DecodePolicy`'s call.
    Raises InputImageError (naming `name`) for empty, truncated, unknown or oversized images.
    """
    if not data:
        raise InputImageError(name, "is empty (0 bytes)")
    try:
        with open_image(io.BytesIO(data), name, max_pixels) as image:
            if draft_min_side_px is not None and image.format in ("JPEG", "MPO"):
                image.draft("RGB", (draft_min_side_px, draft_min_side_px))
            image.load()
            oriented = ImageOps.exif_transpose(image)
            array = image_to_rgb_array(oriented if oriented is not None else image)
    except InputImageError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InputImageError(name, f"cannot be decoded ({exc})") from exc
    if array.ndim != 3 or array.shape[0] == 0 or array.shape[1] == 0:
        raise InputImageError(name, f"decoded to an unusable shape {array.shape}")
    return np.ascontiguousarray(array)


def read_header(data: bytes, name: object = "<bytes>") -> tuple[tuple[int, int], int]:
    """From the header alone: the (height, width) a viewer shows (EXIF orientation applied) and the EXIF
    orientation (1-8; 1 when absent or invalid)."""
    try:
        with open_image(io.BytesIO(data), name) as image:
            width, height = image.size
            orientation = image.getexif().get(EXIF_ORIENTATION_TAG, 1)
    except InputImageError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InputImageError(name, f"cannot be decoded ({exc})") from exc
    orientation = orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else 1
    return ((width, height) if orientation in SWAPPING_ORIENTATIONS else (height, width)), orientation


def pixel_count(data: bytes, name: object = "<bytes>") -> int:
    """Width x height from the header alone (no EXIF read: a PNG's EXIF may come after its pixels)."""
    try:
        with open_image(io.BytesIO(data), name) as image:
            width, height = image.size
    except InputImageError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InputImageError(name, f"cannot be decoded ({exc})") from exc
    return width * height


def displayed_size(data: bytes, name: object = "<bytes>") -> tuple[int, int]:
    """(height, width) of an image as a viewer shows it (EXIF orientation applied), from its header alone."""
    return read_header(data, name)[0]


def read_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read and decode one image file to an (H, W, 3) uint8 RGB array."""
    path = Path(path)
    return decode_image(read_file_bytes(path), path, max_pixels)
