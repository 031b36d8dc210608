"""The Python API's input contract: what `Segmenter.segment` accepts as one image, and the errors for the rest.

One image is an (H, W, 3), (H, W) or (H, W, 4) uint8 numpy array (RGB, grey, or RGBA with the alpha
dropped, as file decoding does), a (3, H, W) uint8 torch tensor, a PIL image (EXIF orientation applied,
as for files), or a path to an image file. A list or tuple of them is several images. torch is never imported
here: a tensor is recognised by its type's module.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from ..core.decode import image_to_rgb_array
from ..core.image_formats import require_listed_format
from ..errors import UserError

ImageLike = Any
"""An image the API takes (see the module docstring)."""
EXPECTED = ("an (H, W, 3), (H, W) or (H, W, 4) uint8 numpy array, a (3, H, W) uint8 torch tensor, a PIL image "
            "or a path")


class ImageTypeError(UserError, TypeError):
    """An image argument of a type or dtype the API does not take."""


class ImageShapeError(UserError, ValueError):
    """An image array or tensor of a shape the API does not take."""


def is_torch_tensor(value: object) -> bool:
    """A torch.Tensor, recognised without importing torch (a tensor exists only where torch is loaded)."""
    return any(cls.__module__ == "torch" and cls.__name__ == "Tensor" for cls in type(value).__mro__)


def is_single_image(value: object) -> bool:
    """True for one image (array, tensor, PIL image, path); False for a list or tuple of them."""
    if isinstance(value, (list, tuple)):
        return False
    if isinstance(value, (np.ndarray, Image.Image, str, os.PathLike)) or is_torch_tensor(value):
        return True
    raise ImageTypeError(f"expected one image ({EXPECTED}) or a list of them, got {_describe(value)}")


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray) or is_torch_tensor(value):
        kind = f"{type(value).__module__.split('.')[0]} {type(value).__name__}"
        return f"a {kind} of dtype {value.dtype} and shape {tuple(value.shape)}"
    return f"a {type(value).__module__}.{type(value).__qualname__}"


def _from_array(array: np.ndarray, label: str) -> np.ndarray:
    if array.dtype != np.uint8:
        hint = " (scale float images in [0, 1] by 255 and round them)" if np.issubdtype(array.dtype, np.floating) else ""
        raise ImageTypeError(f"{label}: expected uint8 pixels, got {_describe(array)}{hint}")
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    elif array.ndim == 3 and array.shape[2] == 4:
        array = array[..., :3]
    elif array.ndim == 4:
        raise ImageShapeError(f"{label}: got {_describe(array)}; pass several images as a list, not one 4-D array")
    if array.ndim != 3 or array.shape[2] != 3 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageShapeError(f"{label}: expected {EXPECTED}, got {_describe(array)}")
    return np.array(array, dtype=np.uint8, copy=True, order="C")  # one copy: the caller may change theirs


def _from_tensor(tensor: Any, label: str) -> np.ndarray:
    if str(tensor.dtype) != "torch.uint8":
        raise ImageTypeError(f"{label}: expected a uint8 tensor, got {_describe(tensor)}")
    if tensor.dim() != 3 or tensor.shape[0] != 3 or tensor.shape[1] == 0 or tensor.shape[2] == 0:
        raise ImageShapeError(f"{label}: expected a (3, H, W) uint8 tensor, got {_describe(tensor)}")
    return np.ascontiguousarray(tensor.detach().cpu().permute(1, 2, 0).numpy())


def as_pixels_or_path(image: object, label: str = "image") -> np.ndarray | Path:
    """One image -> (H, W, 3) uint8 RGB pixels as a viewer shows them, or the Path of a file to decode."""
    if isinstance(image, (str, os.PathLike)):
        return Path(image)
    if isinstance(image, np.ndarray):
        return _from_array(image, label)
    if is_torch_tensor(image):
        return _from_tensor(image, label)
    if isinstance(image, Image.Image):
        require_listed_format(image, label)  # before exif_transpose loads a lazily opened file
        oriented = ImageOps.exif_transpose(image)
        return _from_array(image_to_rgb_array(oriented if oriented is not None else image), label)
    raise ImageTypeError(f"{label}: expected {EXPECTED}, got {_describe(image)}")
