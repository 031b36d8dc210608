"""How much memory the long export steps need, and the calibration counts that keep them within a budget.

Peaks of one step in the export process, in GiB, as functions of the input side (r = (size_px / 512)^2) and the
images the step holds, fitted to measurements on 2 cores of an AMD EPYC Zen 3 (benchmarks/results/export-2026-12-08/):

    int8 (NNCF)       1.03 + 1.35 r + (0.0100 + 0.0098 r) S     S calibration images; NNCF's full bias correction
                                                                keeps every layer's inputs for a fifth of them
    onnx-int8 (ORT)   1.63 + 3.14 r                             ONNX Runtime's calibrator runs a graph that outputs
                                                                every tensor of one image at once; its ranges are
                                                                merged every ORT_INTERMEDIATE_OUTPUTS images, so the
                                                                count does not add
    fp16 (AutoCast)   1.5 + 2.0 r C                             C calibration images, each keeping every
                                                                intermediate tensor (2 GiB at 512 px, the README's
                                                                measurement of 1024 px)

measured for the quantization alone (a process with ONNX Runtime and OpenVINO loaded: 0.86 GiB idle), at 256, 512 and
1024 px with 16 to 120 images; plus what the export process holds besides (PyTorch, the model, its check images):
EXPORT_BASE_GB.
The default budget fits a 16 GiB machine; `--max-memory-gb` lowers it (or raises it, up to what the machine has).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError

GIB = 2**30
DEFAULT_MAX_MEMORY_GB = 12.0
"""The default budget: a 16 GiB machine, with room for the system and the rest of a desktop."""
EXPORT_BASE_GB = 1.0
NNCF_BASE_GB, NNCF_PER_AREA_GB = 1.03, 1.35
NNCF_PER_IMAGE_GB, NNCF_PER_IMAGE_PER_AREA_GB = 0.0100, 0.0098
ORT_BASE_GB, ORT_PER_AREA_GB = 1.63, 3.14
FP16_BASE_GB, FP16_PER_IMAGE_GB = 1.5, 2.0
ORT_INTERMEDIATE_OUTPUTS = 8
"""onnx-int8: ONNX Runtime merges its calibration ranges every this many images (MinMax: the same ranges)."""
MIN_INT8_CALIBRATION = 16
"""Fewer calibration images than this are not worth an INT8 model: refused rather than used."""


def area(size_px: int) -> float:
    return (size_px / 512) ** 2


def nncf_per_image_gb(size_px: int) -> float:
    return NNCF_PER_IMAGE_GB + NNCF_PER_IMAGE_PER_AREA_GB * area(size_px)


def nncf_peak_gb(size_px: int, images: int) -> float:
    return EXPORT_BASE_GB + NNCF_BASE_GB + NNCF_PER_AREA_GB * area(size_px) + nncf_per_image_gb(size_px) * images


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
    images = int8_images
    if build_int8:
        room = budget - nncf_peak_gb(size_px, 0)
        images = min(int8_images, math.floor(room / nncf_per_image_gb(size_px)) if room > 0 else 0)
        least = min(MIN_INT8_CALIBRATION, int8_images)
        if images < least:
            raise UserError(f"--formats int8 at {size_px} px needs about {nncf_peak_gb(size_px, least):.1f} GiB (NNCF with "
                            f"{least} calibration images), over the budget of {budget:.1f} GiB"
                            + _budget_hint(max_memory_gb, available))
    if build_onnx_int8 and ort_int8_peak_gb(size_px) > budget:
        raise UserError(f"--formats onnx-int8 at {size_px} px needs about {ort_int8_peak_gb(size_px):.1f} GiB (ONNX "
                        f"Runtime's calibrator holds every tensor of one image), over the budget of {budget:.1f} GiB"
                        + _budget_hint(max_memory_gb, available) + "; or export the OpenVINO INT8 IR (--formats int8)")
    if build_fp16 and fp16_peak_gb(size_px, fp16_images) > budget:
        raise UserError(f"--formats fp16 at {size_px} px with --calib-count {fp16_images} needs about "
                        f"{fp16_peak_gb(size_px, fp16_images):.1f} GiB, over the budget of {budget:.1f} GiB"
                        + _budget_hint(max_memory_gb, available) + "; lower --calib-count")
    return MemoryPlan(budget, available, images, int8_images)


def _budget_hint(max_memory_gb: float | None, available: float | None) -> str:
    if max_memory_gb is None:
        return (f" (the default; --max-memory-gb raises it, this machine has {available:.1f} GiB available)"
                if available is not None else " (the default; --max-memory-gb raises it)")
    return " (--max-memory-gb)"
