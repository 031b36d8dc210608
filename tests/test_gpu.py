"""CUDA paths (run where a GPU exists: benchmarks/gpu_check.sh runs them on the GPU machine)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from dermseg_deploy.backends import open_backend
from dermseg_deploy.cli import run as cli_run
from dermseg_deploy.core.decode import read_image
from dermseg_deploy.core.preprocess import preprocess_batch
from dermseg_deploy.errors import BackendUnavailableError
from dermseg_deploy.samples import sample_image_paths
from dermseg_deploy.util.devices import resolve_device

from .helpers import iou, read_png

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (benchmarks/gpu_check.sh runs these)"),
]


@pytest.fixture(autouse=True)
def true_fp32() -> None:
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def test_pytorch_backend_on_cuda_matches_the_cpu(checkpoint_path: Path) -> None:
    cpu = open_backend(checkpoint_path, torch.device("cpu"), size_px=256)
    gpu = open_backend(checkpoint_path, resolve_device("cuda"), size_px=256)
    batch = torch.from_numpy(preprocess_batch([read_image(p) for p in sample_image_paths()[:4]], cpu.metadata))
    expected = cpu.infer(batch)
    got = gpu.infer(batch.cuda()).cpu()
    assert torch.allclose(got, expected, atol=1e-3, rtol=1e-4), (got - expected).abs().max()


def test_run_on_cuda_writes_the_cpu_masks(checkpoint_path: Path, tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for path in sample_image_paths():
        shutil.copy(path, images)
    for device in ("cpu", "cuda"):
        args = ["--engine", str(checkpoint_path), str(images), "-o", str(tmp_path / device), "-q", "--device", device]
        args += ["--full-decode"] if device == "cpu" else []  # CUDA decodes JPEGs at full size with nvJPEG
        result = CliRunner().invoke(cli_run.main, args)
        assert result.exit_code == 0, result.output
        assert f"on {device}" in result.stderr
    for mask in (tmp_path / "cpu").glob("*.png"):
        # nvJPEG and libjpeg differ by a grey level here and there; this random 64 px model magnifies it (min 0.974 seen)
        assert iou(read_png(mask), read_png(tmp_path / "cuda" / mask.name)) >= 0.95


def test_auto_picks_cuda_and_says_so(checkpoint_path: Path, tmp_path: Path) -> None:
    image = sample_image_paths()[0]
    result = CliRunner().invoke(cli_run.main, ["--engine", str(checkpoint_path), str(image), "-o", str(tmp_path), "-q"])
    assert result.exit_code == 0 and "auto picked cuda" in result.stderr


def test_a_gpu_that_does_not_exist_is_unavailable() -> None:
    with pytest.raises(BackendUnavailableError, match="GPU"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")


def test_onnxruntime_cuda_is_active_or_refused(onnx_path: Path) -> None:
    """With onnxruntime-gpu the CUDA provider must really run; without it, exit 4, never a silent CPU run."""
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(BackendUnavailableError, match="CUDAExecutionProvider was requested but .* does not have it"):
            open_backend(onnx_path, resolve_device("cuda"))
        return
    with open_backend(onnx_path, resolve_device("cuda")) as backend:
        batch = torch.randn(2, 3, 64, 64, device="cuda")
        assert backend.infer(batch).shape == (2, 1, 64, 64)
