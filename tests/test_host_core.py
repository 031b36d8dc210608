"""The host core (NumPy) against the CUDA stages' torch functions, run here on the CPU: one filter, one threshold,
one upsampling, one set of views, whichever stack runs them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dermseg_deploy.core import device_ops
from dermseg_deploy.core.masks import logits_to_masks, upsample_mask
from dermseg_deploy.core.preprocess import preprocess, resize_image
from dermseg_deploy.core.tta import VIEW_TRANSFORMS, average_over_views, dihedral, undo_dihedral
from dermseg_deploy.model.metadata import ModelMetadata

ODD_SIZES = [(1, 1), (7, 9), (37, 53), (64, 65), (101, 67), (31, 200), (356, 536), (513, 300)]
RESIZE_ATOL = 2e-3
"""In 0-255 units. PyTorch computes source coordinates in float32 (PyTorch's own CPU and GPU kernels differ by as
much): up to 1.3e-3 on random noise when enlarging, under 2e-4 on real images (benchmarks/results/)."""


def _torch_resize(image: np.ndarray, size_px: int) -> np.ndarray:
    """What preprocessing did before it ran on NumPy: `F.interpolate`, antialiased where the image shrinks."""
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    shrinking = image.shape[0] > size_px or image.shape[1] > size_px
    if image.shape[:2] != (size_px, size_px):
        x = F.interpolate(x, size=(size_px, size_px), mode="bilinear", align_corners=False, antialias=shrinking)
    return x[0].permute(1, 2, 0).numpy()


@pytest.mark.parametrize("height,width", ODD_SIZES)
def test_the_numpy_resize_is_torchs_bilinear_filter(height: int, width: int) -> None:
    rng = np.random.default_rng(height * 1000 + width)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    for size_px in (32, 64, 96, 256):
        got, expected = resize_image(image, size_px), _torch_resize(image, size_px)
        assert got.shape == expected.shape == (size_px, size_px, 3) and got.dtype == np.float32
        assert np.abs(got - expected).max() <= RESIZE_ATOL, (height, width, size_px)


def test_the_resize_is_not_pillows_8_bit_path() -> None:
    """A filter computed in 8 bits would round every output to an integer; this one keeps the fractions."""
    image = np.random.default_rng(1).integers(0, 256, (101, 67, 3), dtype=np.uint8)
    resized = resize_image(image, 32)
    assert np.count_nonzero(resized != np.round(resized)) > resized.size // 2


def test_host_and_device_preprocessing_agree() -> None:
    image = np.random.default_rng(2).integers(0, 256, (300, 451, 3), dtype=np.uint8)
    metadata = ModelMetadata(size_px=96)
    host = preprocess(image, metadata)
    device = device_ops.preprocess(torch.from_numpy(image).permute(2, 0, 1), metadata).numpy()
    assert host.shape == device.shape == (3, 96, 96)
    assert np.abs(host - device).max() < 1e-4


@pytest.mark.parametrize("side,height,width", [(64, 2848, 4288), (64, 37, 53), (512, 767, 1022), (96, 1000, 1001),
                                                (128, 5, 3), (64, 64, 64)])
def test_masks_are_thresholded_and_upsampled_as_torch_does(side: int, height: int, width: int) -> None:
    logits = np.random.default_rng(side + height).normal(size=(1, 1, side, side)).astype(np.float32)
    threshold = ModelMetadata(threshold=0.6).logit_threshold
    host = upsample_mask(logits_to_masks(logits, threshold)[0], height, width)
    device = device_ops.upsample_mask(device_ops.logits_to_masks(torch.from_numpy(logits), threshold)[0], height, width)
    assert host.dtype == np.uint8 and np.array_equal(host, device.numpy())


@pytest.mark.parametrize("k", range(8))
def test_views_are_the_same_on_numpy_and_torch(k: int) -> None:
    x = np.random.default_rng(k).normal(size=(2, 3, 5, 7)).astype(np.float32)
    turned = dihedral(x, k)
    assert np.array_equal(turned, dihedral(torch.from_numpy(x), k).numpy())
    assert np.array_equal(undo_dihedral(turned, k), x)


def test_views_are_averaged_alike_on_numpy_and_torch() -> None:
    x = np.random.default_rng(3).normal(size=(2, 3, 8, 8)).astype(np.float32)
    weights = np.random.default_rng(4).normal(size=(8, 8)).astype(np.float32)

    def model(batch: np.ndarray) -> np.ndarray:  # not flip-invariant: each view gives other logits
        return (batch.sum(axis=1, keepdims=True) * weights).astype(np.float32)

    for mode in VIEW_TRANSFORMS:
        host = average_over_views(model, x, mode, views_per_call=1)
        device = average_over_views(lambda b: torch.from_numpy(model(b.numpy())), torch.from_numpy(x), mode)
        assert np.allclose(host, device.numpy(), atol=1e-5), mode
