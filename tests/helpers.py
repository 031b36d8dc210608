"""Small helpers shared by the tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps


def read_png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.mode == "L", f"{path} is {image.mode}, not single-channel 8-bit"
        return np.asarray(image)


def displayed_size(path: Path) -> tuple[int, int]:
    """(height, width) of an image as a viewer shows it (EXIF orientation applied)."""
    with Image.open(path) as image:
        width, height = ImageOps.exif_transpose(image).size
    return height, width


def iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def run_script(args: list[str], cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run a script in a session of its own, capturing its output; on a timeout, kill the whole session (a script's
    children would otherwise go on using the CPU after the test failed) and raise TimeoutExpired."""
    process = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)


def run_gpu_script_dry(script: str, images: Path, out: Path, timeout: float = 600) -> None:
    """`bash benchmarks/SCRIPT --dry-run --images IMAGES OUT` from the repository root with this Python; fails the
    test, with the end of its output, unless it exits 0."""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHON": sys.executable, "OUT": ""}
    result = run_script(["bash", f"benchmarks/{script}", "--dry-run", "--images", str(images), str(out)], root, env,
                        timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
