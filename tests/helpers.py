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


def fragile_onnx(onnx_path: Path, folder: Path) -> Path:
    """The test ONNX with its head's bias moved so that most pixels' logits sit at the threshold: any rounding of the
    INT8 path flips them, a model made to fail the INT8 check."""
    import onnx
    from onnx import numpy_helper

    from dermseg_deploy.backends.onnxruntime_backend import OnnxRuntimeBackend
    from dermseg_deploy.core.decode import read_image
    from dermseg_deploy.core.preprocess import preprocess_batch
    from dermseg_deploy.samples import sample_image_paths

    with OnnxRuntimeBackend(onnx_path) as backend:
        batch = preprocess_batch([read_image(p) for p in sample_image_paths()], backend.metadata)
        median = float(np.median(backend.infer(batch)))
    model = onnx.load(str(onnx_path))
    output = model.graph.output[0].name
    head = next(node for node in model.graph.node if output in node.output)
    assert head.op_type == "Conv", head.op_type
    bias = next(init for init in model.graph.initializer if init.name == head.input[2])
    bias.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(bias) - np.float32(median), bias.name))
    path = folder / "fragile.onnx"
    onnx.save(model, str(path))
    return path


def output_scale(onnx_path: Path) -> float:
    """The scale of the DequantizeLinear that makes an INT8 model's output."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    node = next(n for n in graph.node if graph.output[0].name in n.output)
    assert node.op_type == "DequantizeLinear", node.op_type
    scale = next(i for i in graph.initializer if i.name == node.input[1])
    return float(numpy_helper.to_array(scale))
