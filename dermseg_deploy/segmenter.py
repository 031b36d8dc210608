"""The Python API: open a model file, segment images (arrays, tensors or files), get masks back.

    from dermseg_deploy import Segmenter
    with Segmenter.open("engines/model.onnx") as seg:
        mask = seg.segment_file("lesion.jpg")     # (H, W) uint8 array of 0/255, the image's own size
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import numpy as np
import torch

from .backends import Backend, BackendOptions, open_backend
from .decode import DEFAULT_MAX_PIXELS, read_image_for_input
from .devices import resolve_device
from .errors import UserError
from .postprocess import logits_to_masks, upsample_mask
from .preprocess import preprocess_batch

ImageLike = np.ndarray | torch.Tensor


def as_image_tensor(image: ImageLike) -> torch.Tensor:
    """An (H,W,3) uint8 array (as PIL/OpenCV-RGB give) or a (3,H,W) uint8 tensor -> (3,H,W) uint8 tensor."""
    if isinstance(image, np.ndarray):
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        if image.ndim != 3 or image.shape[2] != 3:
            raise UserError(f"expected an (H, W, 3) RGB array, got shape {image.shape}")
        return torch.from_numpy(np.ascontiguousarray(image, dtype=np.uint8)).permute(2, 0, 1)
    if image.dim() != 3 or image.shape[0] != 3:
        raise UserError(f"expected a (3, H, W) tensor, got shape {tuple(image.shape)}")
    return image


class Segmenter:
    """A backend plus the pre- and postprocessing that turn images into masks at their own size."""

    def __init__(self, backend: Backend, threshold: float | None = None) -> None:
        self.backend = backend
        self.metadata = backend.metadata if threshold is None else backend.metadata.with_updates(threshold=threshold)

    @classmethod
    def open(
        cls, model_path: str | Path, device: str = "cpu", size_px: int | None = None, threshold: float | None = None,
        options: BackendOptions | None = None,
    ) -> Segmenter:
        """Open `.pt`, `.onnx` or `.plan`; `device` is auto, cpu, cuda or cuda:N."""
        return cls(open_backend(model_path, resolve_device(device), size_px, options), threshold)

    def predict_masks(
        self, images: Sequence[torch.Tensor], sizes: Sequence[tuple[int, int]] | None = None
    ) -> list[torch.Tensor]:
        """(3,H,W) uint8 images -> uint8 masks of 0/255 on the backend's device, one per image, each of the
        image's own size or of `sizes` (height, width) where given (for draft-decoded images)."""
        if not images:
            return []
        device = self.backend.device
        batch = preprocess_batch([image.to(device) for image in images], self.metadata)
        logits = self.backend.infer(batch)
        masks = logits_to_masks(logits, self.metadata.logit_threshold)
        targets = list(sizes) if sizes is not None else [(image.shape[-2], image.shape[-1]) for image in images]
        return [upsample_mask(mask, height, width) for mask, (height, width) in zip(masks, targets)]

    def predict_files(self, paths: Sequence[str | Path], max_pixels: int = DEFAULT_MAX_PIXELS) -> list[torch.Tensor]:
        """Image files -> masks of their displayed size, decoded as `dermseg-run` decodes them."""
        decoded = [read_image_for_input(path, self.metadata.size_px, max_pixels) for path in paths]
        return self.predict_masks([pixels for pixels, _ in decoded], [size for _, size in decoded])

    def segment(self, images: Sequence[ImageLike], batch_size: int = 8) -> list[np.ndarray]:
        """RGB images -> (H,W) uint8 numpy masks of 0/255, each the size of its image."""
        tensors = [as_image_tensor(image) for image in images]
        masks: list[np.ndarray] = []
        for start in range(0, len(tensors), batch_size):
            masks += [m.cpu().numpy() for m in self.predict_masks(tensors[start : start + batch_size])]
        return masks

    def segment_file(self, path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
        """One image file -> its (H,W) uint8 mask of 0/255 (EXIF orientation applied, as a viewer shows it)."""
        return self.predict_files([path], max_pixels)[0].cpu().numpy()

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Segmenter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
