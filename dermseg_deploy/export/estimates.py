"""What a long export step will cost, said before it starts: its images, its time (from the FP32 model's measured time
per image on this CPU, at this size, times factors measured on the reference CPU) and its peak memory
(`memory_plan`)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..backends.onnxruntime_backend import OnnxRuntimeBackend

NNCF_PER_IMAGE = 2.9
"""NNCF's statistics and full bias correction, per calibration image, in FP32 ONNX Runtime images (2 cores of a Zen 3,
512 px: 223 s for 40 images, 550 s for 100, at 1.86 s per FP32 image)."""
NNCF_FAST_PER_IMAGE = 1.2
"""The same with the fast bias correction (133 s for 60 images)."""
ORT_CALIBRATION_PER_IMAGE = 1.4
CHECK_PER_IMAGE = 1.6
"""An INT8 check image: the FP32 reference and the INT8 candidate."""
FIXED_SECONDS = 20.0


def seconds_per_image(onnx_path: Path, batch: np.ndarray) -> float:
    """ONNX Runtime FP32's time for one image of `batch` here (the second of two runs: the first warms up)."""
    with OnnxRuntimeBackend(onnx_path, threads=None) as backend:
        backend.infer(batch[:1])
        start = time.perf_counter()
        backend.infer(batch[:1])
        return time.perf_counter() - start


def duration(seconds: float) -> str:
    """`about 12 min` / `about 40 s`."""
    return f"about {seconds / 60:.0f} min" if seconds >= 90 else f"about {seconds:.0f} s"


def nncf_seconds(per_image: float, calibration: int, check: int, fast_bias_correction: bool = False) -> float:
    factor = NNCF_FAST_PER_IMAGE if fast_bias_correction else NNCF_PER_IMAGE
    return FIXED_SECONDS + per_image * (factor * calibration + CHECK_PER_IMAGE * check)


def ort_int8_seconds(per_image: float, calibration: int, check: int) -> float:
    return FIXED_SECONDS + per_image * (ORT_CALIBRATION_PER_IMAGE * calibration + CHECK_PER_IMAGE * check)
