"""Defaults that commands show in their --help, kept apart from the code that needs torch (so --help is fast)."""

from __future__ import annotations

DEFAULT_MAX_PIXELS = 120_000_000
"""Images above this many pixels are refused (decompression bombs)."""
DEFAULT_REVIEW_BELOW = 0.65
"""Masks predicted below this Jaccard are flagged for review (the ISIC challenge's cut: below it a mask counts 0)."""
DEFAULT_ATOL = 1e-3
"""Max |logit difference| allowed between ONNX Runtime and PyTorch in FP32."""
DEFAULT_MIN_IOU = 0.999
"""Worst per-image mask IoU allowed between ONNX Runtime and PyTorch in FP32."""
DEFAULT_MIN_MEAN_IOU = 0.99
"""Mean mask IoU an FP16 model (PyTorch half, a TensorRT plan) must reach against FP32."""
DEFAULT_OPSET = 18
INT8_CALIB_COUNT = 300
"""Real images that calibrate an INT8 export by default (64 gave a held-out mean mask IoU of 0.988, 300 gave 0.990)."""
INT8_CHECK_COUNT = 100
"""Other real images that check it."""
EXPORTERS = ("dynamo", "torchscript")
DEVICE_HELP = "auto (CUDA where present, else the CPU), cpu, cuda or cuda:N."
MAX_BATCH_SIZE = 256
"""The largest batch a command accepts: batches are held in memory two or three at a time (at 1024 px a
network input is 12 MB), so a mistyped batch size must not make dermseg try to allocate hundreds of GB."""
MAX_THREADS = 256
