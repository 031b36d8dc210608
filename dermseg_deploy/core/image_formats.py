"""The one list of image formats dermseg decodes, and the one way every Pillow caller opens a file with it.

    JPEG (and MPO, the multi-picture JPEG cameras write), PNG, BMP, TIFF

Pillow is always asked with `formats=`, so no other plugin is ever tried: not EPS/PostScript (which Pillow hands to
Ghostscript, a process), not GIF, ICO, WebP, PSD, PCX or the dozens of others. WebP is left out on purpose: no
dermatoscope, ISIC release or PH2 writes it, and its decoder (libwebp) is a separate attack surface (CVE-2023-4863, a
heap overflow exploited in the wild, 2023) for no image this field uses. Every refusal names the file and says
`is not an image in a format dermseg reads (JPEG, PNG, BMP, TIFF)`.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import IO

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import ImageTooLargeError, InputImageError

ALLOWED_FORMATS = ("JPEG", "PNG", "BMP", "TIFF")
"""Pillow's plugins that may open a file (`Image.open(..., formats=ALLOWED_FORMATS)`)."""
DECODED_FORMATS = (*ALLOWED_FORMATS, "MPO")
"""The formats those plugins give: Pillow's JPEG plugin opens a JPEG with extra pictures (cameras write them) as MPO."""
FORMAT_NAMES = "JPEG, PNG, BMP, TIFF"
UNREADABLE = f"is not an image in a format dermseg reads ({FORMAT_NAMES})"


@contextlib.contextmanager
def open_image(source: str | IO[bytes], name: object, max_pixels: int | None = None) -> Iterator[Image.Image]:
    """Open an image file or stream with the allowed plugins only; with `max_pixels`, refuse (ImageTooLargeError)
    an image whose header claims more pixels, before anything is decoded. Pillow's own bomb check is left to
    that limit. Errors name `name`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(source, formats=ALLOWED_FORMATS)
    except UnidentifiedImageError as exc:
        raise InputImageError(name, UNREADABLE) from exc
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(name, f"is too large to decode safely ({exc})") from exc
    with image:
        width, height = image.size
        if max_pixels is not None and width * height > max_pixels:
            raise ImageTooLargeError(name, f"has {width}x{height} = {width * height} pixels, over the limit of "
                                           f"{max_pixels}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield image


def require_listed_format(image: Image.Image, name: object) -> None:
    """A PIL image handed to the API: refused (before anything loads it) where it was opened from a file of a format
    that is not on the list; an image made in memory (no format) is fine."""
    if image.format is not None and image.format not in DECODED_FORMATS:
        raise InputImageError(name, f"is a PIL image of format {image.format}, which {UNREADABLE[3:]}")


def read_gray(path: str, name: object, what: str, max_pixels: int) -> np.ndarray:
    """A mask file (ground truth or prediction) -> (H, W) uint8 array of its gray values; a file that is not one
    is an InputImageError that says which `what` ("mask", "prediction") it is."""
    try:
        with open_image(path, name, max_pixels) as image:
            return np.array(image.convert("L"), dtype=np.uint8)
    except ImageTooLargeError as exc:
        raise ImageTooLargeError(name, f"{what} {exc.reason}") from exc
    except InputImageError as exc:
        raise InputImageError(name, f"{what} {exc.reason}") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InputImageError(name, f"{what} cannot be decoded ({exc})") from exc
