"""Test-time augmentation and lesion post-processing: the averages and the region rules, checked by hand."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dermseg_deploy.backends.base import Backend
from dermseg_deploy.core.lesion_regions import refine_host_masks as refine_masks
from dermseg_deploy.core.mask_options import MaskOptions
from dermseg_deploy.core.masks import upsample_mask
from dermseg_deploy.core.tta import average_over_views
from dermseg_deploy.errors import UserError
from dermseg_deploy.model.metadata import ModelMetadata
from dermseg_deploy.segment.segmenter import Segmenter
from dermseg_deploy.util.devices import CPU

SIZE = 32


class AsymmetricBackend(Backend):
    """Logits that change under every flip and turn: an asymmetric 3x3 filter of the red channel plus a ramp that
    rises to the right and downwards. Records the batch sizes it was called with. A device backend on the CPU (torch
    tensors), so the host stages run it through `infer_host`, as they run PyTorch models."""

    name = "asymmetric"
    on_device = True

    def __init__(self) -> None:
        self.metadata = ModelMetadata(size_px=SIZE)
        self.device = CPU
        self.calls: list[int] = []
        self.kernel = torch.arange(9, dtype=torch.float32).view(1, 1, 3, 3) / 10 - 0.3
        ramp = torch.linspace(-1.0, 1.0, SIZE)
        self.ramp = (ramp[None, :] * 0.7 + ramp[:, None] * 0.3)[None, None]

    def infer(self, images: torch.Tensor) -> torch.Tensor:
        self.calls.append(images.shape[0])
        return F.conv2d(images[:, :1].float(), self.kernel, padding=1) + self.ramp


def _by_hand(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, mode: str) -> torch.Tensor:
    """The mean of each view's logits brought back to the original orientation, written out view by view with
    flips and transposes (not the dihedral indices the code uses)."""
    def t(a: torch.Tensor) -> torch.Tensor:
        return a.transpose(-2, -1)

    def w(a: torch.Tensor) -> torch.Tensor:
        return a.flip(-1)

    def h(a: torch.Tensor) -> torch.Tensor:
        return a.flip(-2)

    views = [f(x), w(f(w(x))), h(f(h(x))), h(w(f(h(w(x)))))]
    if mode == "dihedral":
        views += [
            t(f(t(x))),                      # transpose
            w(h(t(f(t(h(w(x))))))),          # anti-transpose
            t(w(f(w(t(x))))),                # quarter turn one way: transpose then mirror
            w(t(f(t(w(x))))),                # and the other
        ]
    return torch.stack(views).mean(dim=0)


@pytest.mark.parametrize("mode", ["flips", "dihedral"])
def test_tta_is_the_average_of_the_views_turned_back(mode: str) -> None:
    torch.manual_seed(0)
    backend = AsymmetricBackend()
    images = torch.randn(3, 3, SIZE, SIZE)
    expected = _by_hand(backend.infer, images, mode)
    plain = backend.infer(images)
    assert (expected - plain).abs().max() > 0.05  # the model is not flip-invariant, so TTA changes the logits
    backend.calls.clear()
    together = average_over_views(backend.infer, images, mode)
    assert backend.calls == [3 * (4 if mode == "flips" else 8)]  # all views in one batch
    backend.calls.clear()
    one_by_one = average_over_views(backend.infer, images, mode, views_per_call=1)
    assert backend.calls == [3] * (4 if mode == "flips" else 8)
    torch.testing.assert_close(together, expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(one_by_one, together, rtol=0, atol=0)
    assert torch.equal(average_over_views(backend.infer, images, "none"), plain)


def test_the_segmenter_thresholds_the_averaged_logits_and_upsamples_them() -> None:
    backend = AsymmetricBackend()
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)
    plain = Segmenter(backend).segment(image)
    with_tta = Segmenter(backend, mask_options=MaskOptions("dihedral")).segment(image)
    stages = Segmenter(backend).stages()
    from dermseg_deploy.core.preprocess import preprocess

    network_input = torch.from_numpy(preprocess(image, backend.metadata))[None]
    logits = _by_hand(backend.infer, network_input, "dihedral")
    expected = upsample_mask((logits > stages.metadata.logit_threshold)[0].numpy(), 48, 40)
    assert np.array_equal(with_tta, expected)
    assert not np.array_equal(with_tta, plain)


def _masks(*rows: str) -> np.ndarray:
    """A (1,1,S,S) uint8 mask from rows of '#' (lesion) and '.' (background)."""
    return np.array([[c == "#" for c in row] for row in rows], dtype=np.uint8)[None, None]


TWO_BLOBS = _masks(
    "##......",
    "##......",
    "........",
    "...####.",
    "...####.",
    "...####.",
    "........",
    "#.......",
)
RING = _masks(
    "........",
    ".######.",
    ".#....#.",
    ".#.#..#.",
    ".#....#.",
    ".######.",
    "........",
    "........",
)
BORDER_GAP = _masks(
    "#####...",
    "#...#...",
    "#...#...",
    "#####...",
    "........",
    "........",
    "........",
    "........",
)
"""A lesion that reaches the top-left border: its inside is enclosed (a hole) since the lesion itself is on the
border, not the gap."""
OPEN_TO_BORDER = _masks(
    ".####...",
    ".#..#...",
    ".#..#...",
    ".####...",
    "........",
    "........",
    "........",
    "........",
)


def test_largest_keeps_the_largest_region_and_diagonal_pixels_join_it() -> None:
    kept = refine_masks(TWO_BLOBS, ("largest",))
    expected = TWO_BLOBS.copy()
    expected[0, 0, :2, :2] = 0
    expected[0, 0, 7, 0] = 0
    assert np.array_equal(kept, expected)
    diagonal = _masks("#...", ".#..", "..#.", "...#")  # one region with 8-connectivity
    assert np.array_equal(refine_masks(diagonal, ("largest",)), diagonal)
    tie = _masks("##..", "....", "..##", "....")
    assert np.array_equal(refine_masks(tie, ("largest",)), _masks("##..", "....", "....", "...."))  # first in raster order


def test_fill_holes_fills_enclosed_background_only() -> None:
    filled = refine_masks(RING, ("fill-holes",))
    assert np.array_equal(filled, _masks("........", ".######.", ".######.", ".######.", ".######.", ".######.",
                                      "........", "........"))
    assert np.array_equal(refine_masks(BORDER_GAP, ("fill-holes",))[0, 0, 1:3, 1:4], np.ones((2, 3), dtype=np.uint8))
    assert np.array_equal(refine_masks(OPEN_TO_BORDER, ("fill-holes",))[0, 0, 1:3, 2:4], np.ones((2, 2), dtype=np.uint8))
    gap = _masks("#.##", "#..#", "####", "....")  # the gap reaches the top border: not a hole
    assert np.array_equal(refine_masks(gap, ("fill-holes",)), gap)


def test_largest_runs_before_fill_holes_whatever_the_order_asked() -> None:
    options = MaskOptions.parse("none", "fill-holes,largest")
    assert options.postprocess == ("largest", "fill-holes")
    solid_and_ring = _masks(
        "#######.....",
        "#######.....",
        "............",
        "....####....",
        "....#..#....",
        "....#..#....",
        "....####....",
        "............",
    )  # the solid region (14 px) is larger than the ring (12 px) but not than the ring filled (16 px)
    solid_only = solid_and_ring.copy()
    solid_only[0, 0, 3:] = 0
    assert np.array_equal(refine_masks(solid_and_ring, options.postprocess), solid_only)


@pytest.mark.parametrize("steps", [("largest",), ("fill-holes",), ("largest", "fill-holes")])
def test_empty_stays_empty_and_full_stays_full(steps: tuple[str, ...]) -> None:
    empty = np.zeros((2, 1, 8, 8), dtype=np.uint8)
    full = np.ones((2, 1, 8, 8), dtype=np.uint8)
    assert np.array_equal(refine_masks(empty, steps), empty)
    assert np.array_equal(refine_masks(full, steps), full)
    batch = np.concatenate([TWO_BLOBS, RING, np.zeros_like(RING)])
    refined = refine_masks(batch, steps)
    for index in range(3):  # each image on its own
        assert np.array_equal(refined[index : index + 1], refine_masks(batch[index : index + 1], steps))


def test_mask_options_refuse_unknown_values_and_describe_themselves() -> None:
    assert MaskOptions.parse("none", "none").plain and MaskOptions.parse("none", "").plain
    assert MaskOptions.parse("flips", "largest").describe() == "tta flips, postprocess largest"
    assert MaskOptions("dihedral").views == 8 and MaskOptions("flips").views == 4
    with pytest.raises(UserError, match="tta = 'rot'"):
        MaskOptions("rot")
    with pytest.raises(UserError, match="postprocess = 'biggest'"):
        MaskOptions.parse("none", "largest,biggest")
    with pytest.raises(UserError, match="postprocess"):
        Segmenter.open("unused.onnx", postprocess="biggest")  # refused before the file is opened
