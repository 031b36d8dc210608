"""How much memory the long export steps need, and the calibration counts that keep them within a budget.

Peaks of one step in the export process, in GiB, as functions of the input side (r = (size_px / 512)^2) and the
images the step holds, fitted to measurements on 2 cores of an AMD EPYC Zen 3 (benchmarks/results/export-2026-12-08/):

    int8 (NNCF), full bias correction    0.56 + 1.01 r + 0.413 r B     B = S // 5: NNCF corrects the biases on a
                                                                      fifth of the S calibration images and keeps,
                                                                      for each of them, the inputs of every layer
                                                                      still to correct (the decoder's last layers at
                                                                      full size are the peak); at least the fast peak
    int8 (NNCF), fast bias correction    0.56 + 1.71 r                 statistics only: S does not add
    onnx-int8 (ORT)                      1.63 + 3.14 r                 ONNX Runtime's calibrator runs a graph that
                                                                      outputs every tensor of one image at once; its
                                                                      ranges are merged every ORT_INTERMEDIATE_OUTPUTS
                                                                      images, so the count does not add
    fp16 (AutoCast)                      2.3 + 1.675 r C               C calibration images, each keeping every
                                                                      intermediate tensor (6.7 GiB at 1024 px:
                                                                      10.3 GiB with one, 17.0 with two)

NNCF's figures are for the quantization alone (0.56 GiB: a process with OpenVINO and NNCF loaded), at 512 px with 40
and 100 images (full) and 60 (fast); the export process holds more besides (PyTorch, the model, its check images):
EXPORT_BASE_GB, fitted so that the whole export's peak at 512 px with 104 images (11.1 GiB) is the estimate.
AutoCast's figures are the whole export's at 1024 px. Full bias correction is the better INT8 model (held-out mean
mask IoU 0.988 on 64 images against 0.984 for fast on 300: benchmarks/results/cpu-limit-2026-12-02/
int8-variants-64px.json), so the plan keeps it with as many images as the budget allows, and takes the fast one,
said up front, only where not even MIN_INT8_CALIBRATION images fit. The default budget fits a 16 GiB machine;
`--max-memory-gb` lowers it (or raises it, up to what the machine has).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError

GIB = 2**30
DEFAULT_MAX_MEMORY_GB = 11.0
"""The default budget: a 16 GiB machine, with room for the system and the rest of a desktop."""
EXPORT_BASE_GB = 1.3
NNCF_BASE_GB = 0.56
NNCF_FULL_PER_AREA_GB, NNCF_PER_CORRECTED_IMAGE_PER_AREA_GB = 1.01, 0.413
NNCF_FAST_PER_AREA_GB = 1.71
BIAS_CORRECTION_SHARE = 5
"""NNCF's full bias correction runs on `images // BIAS_CORRECTION_SHARE` of the calibration images (at least 1)."""
ORT_BASE_GB, ORT_PER_AREA_GB = 1.63, 3.14
FP16_BASE_GB, FP16_PER_IMAGE_GB = 2.3, 1.675
ORT_INTERMEDIATE_OUTPUTS = 8
"""onnx-int8: ONNX Runtime merges its calibration ranges every this many images (MinMax: the same ranges)."""
MIN_INT8_CALIBRATION = 16
"""Fewer calibration images than this are not worth an INT8 model: refused rather than used."""


def area(size_px: int) -> float:
    return (size_px / 512) ** 2


def bias_correction_images(images: int) -> int:
    """The calibration images NNCF's full bias correction runs on."""
    return max(images // BIAS_CORRECTION_SHARE, 1)


def nncf_peak_gb(size_px: int, images: int, fast_bias_correction: bool = False) -> float:
    fast = EXPORT_BASE_GB + NNCF_BASE_GB + NNCF_FAST_PER_AREA_GB * area(size_px)
    if fast_bias_correction:
        return fast
    return max(fast, EXPORT_BASE_GB + NNCF_BASE_GB + area(size_px) * (
        NNCF_FULL_PER_AREA_GB + NNCF_PER_CORRECTED_IMAGE_PER_AREA_GB * bias_correction_images(images)))


def ort_int8_peak_gb(size_px: int) -> float:
    return EXPORT_BASE_GB + ORT_BASE_GB + ORT_PER_AREA_GB * area(size_px)


def fp16_peak_gb(size_px: int, images: int) -> float:
    return EXPORT_BASE_GB + FP16_BASE_GB + FP16_PER_IMAGE_GB * area(size_px) * images


def available_memory_gb() -> float | None:
    """Memory this process may still take: MemAvailable, or a cgroup's limit where lower; None where unknown."""
    values = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                values.append(int(line.split()[1]) * 1024 / GIB)
    except OSError:
        pass
    for limit in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:
            values.append(int(text) / GIB)
    if not values and hasattr(os, "sysconf"):
        try:
            values.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES") / GIB)
        except (ValueError, OSError):
            pass
    return min(values) if values else None


@dataclass(frozen=True)
class MemoryPlan:
    """The budget and the counts that keep each step within it."""

    budget_gb: float
    available_gb: float | None
    nncf_images: int
    """Calibration images NNCF gets (the asked-for count, or fewer to fit the budget)."""
    requested_images: int
    fast_bias_correction: bool = False
    """NNCF's fast bias correction: where not even MIN_INT8_CALIBRATION images fit the full one."""
    fp16_images: int = 0
    """Calibration images AutoCast gets (the asked-for --calib-count, or fewer to fit the budget)."""
    requested_fp16_images: int = 0

    @property
    def fp16_reduced(self) -> bool:
        return self.fp16_images < self.requested_fp16_images

    @property
    def int8_reduced(self) -> bool:
        return self.nncf_images < self.requested_images


def plan_memory(size_px: int, int8_images: int, fp16_images: int, max_memory_gb: float | None, build_int8: bool,
                build_onnx_int8: bool, build_fp16: bool) -> MemoryPlan:
    """The counts for a budget of `max_memory_gb` (default `DEFAULT_MAX_MEMORY_GB`, never more than the machine has);
    a step that cannot fit is a UserError, said before anything runs."""
    available = available_memory_gb()
    if max_memory_gb is not None and available is not None and max_memory_gb > available:
        raise UserError(f"--max-memory-gb {max_memory_gb:g}: this machine has {available:.1f} GiB available")
    budget = max_memory_gb if max_memory_gb is not None else DEFAULT_MAX_MEMORY_GB
    if max_memory_gb is None and available is not None:
        budget = min(budget, available)
    images, fast = int8_images, False
    if build_int8:
        images = max((count for count in range(int8_images, 0, -1) if nncf_peak_gb(size_px, count) <= budget), default=0)
        least = min(MIN_INT8_CALIBRATION, int8_images)
        if images < least:
            images, fast = int8_images, True
            if nncf_peak_gb(size_px, images, fast_bias_correction=True) > budget:
                raise UserError(f"--formats int8 at {size_px} px needs about "
                                f"{nncf_peak_gb(size_px, images, fast_bias_correction=True):.1f} GiB (NNCF with its fast "
                                f"bias correction; {nncf_peak_gb(size_px, least):.1f} GiB with the full one on {least} "
                                f"calibration images), over the budget of {budget:.1f} GiB"
                                + _budget_hint(max_memory_gb, available))
    if build_onnx_int8 and ort_int8_peak_gb(size_px) > budget:
        raise UserError(f"--formats onnx-int8 at {size_px} px needs about {ort_int8_peak_gb(size_px):.1f} GiB (ONNX "
                        f"Runtime's calibrator holds every tensor of one image), over the budget of {budget:.1f} GiB"
                        + _budget_hint(max_memory_gb, available) + "; or export the OpenVINO INT8 IR (--formats int8)")
    fp16_count = fp16_images
    if build_fp16:
        fp16_count = max((count for count in range(fp16_images, 0, -1) if fp16_peak_gb(size_px, count) <= budget),
                         default=0)
        if fp16_count == 0:
            raise UserError(f"--formats fp16 at {size_px} px needs about {fp16_peak_gb(size_px, 1):.1f} GiB (AutoCast "
                            f"with one calibration image), over the budget of {budget:.1f} GiB"
                            + _budget_hint(max_memory_gb, available))
    return MemoryPlan(budget, available, images, int8_images, fast, fp16_count, fp16_images)


def _budget_hint(max_memory_gb: float | None, available: float | None) -> str:
    if max_memory_gb is None:
        return (f" (the default; --max-memory-gb raises it, this machine has {available:.1f} GiB available)"
                if available is not None else " (the default; --max-memory-gb raises it)")
    return " (--max-memory-gb)"
