"""What a benchmark ran on: recorded with every result."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from typing import Any

from ..util.devices import Device


def _nvidia_driver() -> str | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None


def _version(distribution: str) -> str | None:
    """An installed distribution's version, read from its metadata (nothing is imported), or None."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def cpu_model() -> str:
    """The CPU's model name (`/proc/cpuinfo` on Linux, `sysctl` on macOS), else what `platform` knows."""
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8", errors="replace"):
            if line.lower().startswith(("model name", "hardware")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    try:
        out = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, timeout=5)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    return platform.processor() or platform.machine()


def describe_environment(device: Device) -> dict[str, Any]:
    """GPU, driver, CUDA, TensorRT, ONNX Runtime, torch versions (None where not installed), CPU count and threads."""
    from ..tensorrt.availability import tensorrt_installed

    torch = sys.modules.get("torch")  # loaded where a row needs it; never imported for the record alone

    env: dict[str, Any] = {
        "device": str(device),
        "cpu_count": os.cpu_count(),
        "cpu": cpu_model(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "torch": _version("torch"),
        "torchvision": _version("torchvision"),
        "onnxruntime": _version("onnxruntime") or _version("onnxruntime-gpu"),
        "openvino": _version("openvino"),
        "tensorrt": (_version("tensorrt") or _version("tensorrt-cu13") or _version("tensorrt-cu12")
                     if tensorrt_installed() else None),
        "torch_threads": torch.get_num_threads() if torch is not None else None,
    }
    if device.is_cuda and torch is not None:
        props = torch.cuda.get_device_properties(device.to_torch())
        env.update({
            "gpu": props.name,
            "gpu_memory_gib": round(props.total_memory / 2**30, 1),
            "compute_capability": f"{props.major}.{props.minor}",
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
            "driver": _nvidia_driver(),
        })
    return env
