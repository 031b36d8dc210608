"""The per-image core's arithmetic on torch tensors, for the CUDA stages (the host runs `preprocess` and `masks` on
NumPy with the same filters: a test pins the two together).

Resize: `F.interpolate(bilinear, align_corners=False)`, antialiased where the image shrinks; masks: the threshold,
then nearest-exact upsampling to the displayed size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..model.metadata import ModelMetadata
from .lesion_regions import cupy_modules, refine_host_masks, refine_mask


def resize_image(image: torch.Tensor, size_px: int) -> torch.Tensor:
    """(3,H,W) or (N,3,H,W) uint8/float in 0-255 -> float32 (…,3,size,size) in 0-255, bilinear, antialiased where
    the image shrinks."""
    batched = image.dim() == 4
    x = (image if batched else image.unsqueeze(0)).float()
    height, width = x.shape[-2:]
    if (height, width) != (size_px, size_px):
        shrinking = height > size_px or width > size_px
        x = F.interpolate(x, size=(size_px, size_px), mode="bilinear", align_corners=False, antialias=shrinking)
    return x if batched else x.squeeze(0)


def normalize(image: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Float 0-255 RGB (3,H,W) or (N,3,H,W) -> (x/255 - mean) / std, channel-wise; mean/std on the 0-1 scale."""
    shape = (3, 1, 1) if image.dim() == 3 else (1, 3, 1, 1)
    mean_t = torch.tensor(mean, dtype=image.dtype, device=image.device).view(shape)
    std_t = torch.tensor(std, dtype=image.dtype, device=image.device).view(shape)
    return (image / 255.0 - mean_t) / std_t


def preprocess(image: torch.Tensor, metadata: ModelMetadata, size_px: int | None = None) -> torch.Tensor:
    """One decoded (3,H,W) uint8 image -> the normalised (3,S,S) float32 network input, on the image's device."""
    return normalize(resize_image(image, size_px or metadata.size_px), metadata.mean, metadata.std)


def logits_to_masks(logits: torch.Tensor, logit_threshold: float) -> torch.Tensor:
    """(N,1,S,S) logits -> (N,1,S,S) uint8 masks holding 0 or 1."""
    return (logits > logit_threshold).to(torch.uint8)


def upsample_mask(mask: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(1,S,S) or (S,S) 0/1 mask -> (height, width) uint8 mask of 0/255, nearest neighbour (pixel centres)."""
    m = mask.reshape(1, 1, *mask.shape[-2:]).to(torch.uint8)
    if m.shape[-2:] != (height, width):
        m = F.interpolate(m, size=(height, width), mode="nearest-exact")
    return m[0, 0] * 255


def refine_device_masks(masks: torch.Tensor, steps: tuple[str, ...]) -> torch.Tensor:
    """(N,1,S,S) uint8 0/1 masks on a CUDA device -> the same, post-processed: CuPy on the device where it is
    installed (on the current torch stream, sharing memory through DLPack), else SciPy on a host copy."""
    if not steps or masks.shape[0] == 0:
        return masks
    modules = cupy_modules()
    if modules is None:
        host = refine_host_masks(masks.cpu().numpy(), steps)
        return torch.from_numpy(host).to(masks.device)
    cupy, ndimage = modules
    stream = torch.cuda.current_stream(masks.device)
    out = torch.empty_like(masks)
    with cupy.cuda.Device(masks.device.index or 0), cupy.cuda.ExternalStream(stream.cuda_stream):
        source = cupy.from_dlpack(masks.contiguous()).astype(bool)
        target = cupy.from_dlpack(out)
        for index in range(source.shape[0]):
            target[index, 0] = refine_mask(source[index, 0], steps, cupy, ndimage)
    return out
