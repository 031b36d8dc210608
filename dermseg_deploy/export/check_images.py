"""Real images for export: a calibration set for AutoCast and a disjoint set for the numerical checks."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..core.decode import read_file_bytes
from ..core.decode_policy import DecodePolicy
from ..core.preprocess import preprocess_batch
from ..errors import InputImageError, UserError
from ..files.inputs import image_files
from ..model.metadata import ModelMetadata

SYNTHETIC_SEED = 0


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class ExportImages:
    """Calibration images (empty when synthetic) and check images; no file is in both."""

    calibration: tuple[Path, ...]
    check: tuple[Path, ...]
    calibration_source: str


def choose_export_images(
    calib_dir: Path | None, check_dir: Path | None, calib_count: int, check_count: int, synthetic: bool
) -> ExportImages:
    """Take `calib_count` calibration images, then `check_count` check images that are not among them.

    With both folders left at the default (the shipped samples), the first images calibrate and the
    following ones check.
    """
    calibration: list[Path] = []
    if not synthetic:
        calibration = image_files(calib_dir)[:calib_count]
        if not calibration:
            raise UserError(f"no calibration images in {calib_dir or 'the shipped samples'}")
    used = {_digest(p) for p in calibration}
    check = [p for p in image_files(check_dir) if _digest(p) not in used][:check_count]
    if not check:
        raise UserError(
            f"no check images left in {check_dir or 'the shipped samples'} once the calibration images are "
            "set aside; pass --parity-images DIR with other real images"
        )
    source = (
        f"{calib_count} SYNTHETIC random inputs (--synthetic-calib; not real images)" if synthetic
        else f"{len(calibration)} real images from {calib_dir or 'the shipped samples'}"
    )
    return ExportImages(tuple(calibration), tuple(check), source)


def load_batch(paths: tuple[Path, ...] | list[Path], metadata: ModelMetadata) -> torch.Tensor:
    """Decode and preprocess images as `dermseg-run` does on the CPU into one (N,3,S,S) float32 batch."""
    policy = DecodePolicy(metadata.size_px)
    try:
        pixels = [policy.decode_on_host(read_file_bytes(p), p).pixels for p in paths]
    except InputImageError as exc:
        raise UserError(f"export image {exc}") from exc
    return torch.from_numpy(preprocess_batch(pixels, metadata))


@dataclass(frozen=True)
class Int8Images:
    """Images that calibrate the INT8 quantization and others that check it; no file is in both."""

    calibration: tuple[Path, ...]
    check: tuple[Path, ...]
    source: str


def choose_int8_images(calib_dir: Path | None, check_dir: Path | None, calib_count: int, check_count: int) -> Int8Images:
    """`calib_count` images from `calib_dir`, then `check_count` others (from `check_dir`, or the rest of
    `calib_dir`). Real images only: INT8 ranges from the 8 shipped samples would not be worth checking."""
    if calib_dir is None:
        raise UserError(f"--formats int8 and onnx-int8 need --calib DIR, a folder of real images: {calib_count} calibrate the "
                        f"quantization and {check_count} others check it (--int8-calib-count, --int8-check-count)")
    calibration = image_files(calib_dir)[:calib_count]
    if len(calibration) < calib_count:
        raise UserError(f"--calib {calib_dir}: {len(calibration)} images, fewer than the {calib_count} INT8 calibration "
                        "asks for (--int8-calib-count)")
    used = {_digest(p) for p in calibration}
    check = [p for p in image_files(check_dir or calib_dir) if _digest(p) not in used][:check_count]
    if len(check) < check_count:
        raise UserError(f"{check_dir or calib_dir}: {len(check)} images besides the calibration ones, fewer than the "
                        f"{check_count} the INT8 check asks for (--int8-check-count; --parity-images DIR adds others)")
    return Int8Images(tuple(calibration), tuple(check), f"{len(calibration)} real images from {calib_dir}")


@dataclass(frozen=True)
class CheckSet:
    """Real images that check every export step, preprocessed, with PyTorch FP32's logits for them."""

    batch: torch.Tensor
    reference: torch.Tensor


@torch.inference_mode()
def make_check_set(model: torch.nn.Module, metadata: ModelMetadata, paths: tuple[Path, ...] | list[Path]) -> CheckSet:
    """Preprocess the images and run the model on them in FP32 on the CPU, one at a time (bounded memory at 1024 px)."""
    batch = load_batch(paths, metadata)
    model = model.eval().float().cpu()
    reference = torch.cat([model(image[None]) for image in batch])
    return CheckSet(batch, reference)


def synthetic_batch(count: int, metadata: ModelMetadata) -> torch.Tensor:
    """Seeded random images in the normalised input range: only when the user asks for them."""
    generator = np.random.default_rng(SYNTHETIC_SEED)
    pixels = generator.integers(0, 256, (count, metadata.size_px, metadata.size_px, 3), dtype=np.uint8)
    return torch.from_numpy(preprocess_batch(list(pixels), metadata))
