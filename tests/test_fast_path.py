"""The fused inference path: exact model transforms, --compile, the FLOP count, and the GPU speed check's dry run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from dermseg_deploy.backends import BackendOptions, open_backend
from dermseg_deploy.bench.flops import dense_fp16_peak_tflops
from dermseg_deploy.cli import run as cli_run
from dermseg_deploy.model.flops import flops_per_image
from dermseg_deploy.model.model_transforms import fold_batchnorm, pad_cross_channels, prepare_for_compile
from dermseg_deploy.model.network import ResNet34UNet
from dermseg_deploy.samples import SAMPLES_DIR, sample_image_paths

from .helpers import iou, read_png, run_gpu_script_dry

ROOT = Path(__file__).resolve().parents[1]


def test_folding_and_padding_keep_the_logits(calibrated_model: torch.nn.Module) -> None:
    x = torch.randn(2, 3, 64, 64)
    prepared = prepare_for_compile(calibrated_model)  # type: ignore[arg-type]
    with torch.no_grad():
        reference, candidate = calibrated_model(x), prepared(x)
    assert float((reference - candidate).abs().max()) <= 1e-4 * float(reference.abs().max())
    assert torch.equal(reference > 0, candidate > 0)
    assert prepared.cross_padding == 5 and prepared.head.in_channels == 104
    convs_after_bn = [m for m in prepared.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(convs_after_bn) == 5  # the skip and encoder-output BatchNorms, which follow no convolution
    assert calibrated_model.cross_padding == 0  # the loaded model is untouched


def test_padding_needs_folded_batchnorms(calibrated_model: torch.nn.Module) -> None:
    import copy

    with pytest.raises(ValueError, match="fold_batchnorm first"):
        pad_cross_channels(copy.deepcopy(calibrated_model))  # type: ignore[arg-type]
    folded = fold_batchnorm(copy.deepcopy(calibrated_model))
    assert pad_cross_channels(folded, multiple=1).cross_padding == 0  # type: ignore[arg-type]


@pytest.mark.parametrize("size_px", [64, 96, 1024])
def test_the_architectures_flop_count_is_pytorchs(size_px: int) -> None:
    """The torch-free count from the architecture equals PyTorch's FlopCounterMode on the network itself."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        model = ResNet34UNet().eval()
        x = torch.empty((1, 3, size_px, size_px))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    assert flops_per_image(size_px) == counter.get_total_flops()


def test_the_flop_count_scales_with_pixels_and_known_cards_have_a_peak() -> None:
    at_1024 = flops_per_image(1024)
    assert 0.9e12 < at_1024 < 1.1e12  # about 1 TFLOP per image, as the model card says
    assert flops_per_image(512) == pytest.approx(at_1024 / 4)
    assert dense_fp16_peak_tflops("NVIDIA H100 80GB HBM3") == 989.4
    assert dense_fp16_peak_tflops("NVIDIA H100 PCIe") == 756.0
    assert dense_fp16_peak_tflops("AMD EPYC") is None and dense_fp16_peak_tflops(None) is None


def test_compile_is_a_usage_error_for_other_model_files(onnx_path: Path) -> None:
    from dermseg_deploy.errors import UserError

    with pytest.raises(UserError, match="--compile: not used by a .onnx model"):
        open_backend(onnx_path, options=BackendOptions(compile=True))


@pytest.mark.slow
def test_compiled_run_gives_the_masks_of_the_plain_run(tmp_path: Path, checkpoint_path: Path) -> None:
    images = tmp_path / "in"
    images.mkdir()
    for path in sample_image_paths()[:2]:
        shutil.copy(path, images / path.name)
    common = ["--engine", str(checkpoint_path), str(images), "-q", "--batch-size", "2", "--device", "cpu"]
    plain = CliRunner().invoke(cli_run.main, [*common, "-o", str(tmp_path / "plain")])
    compiled = CliRunner().invoke(cli_run.main, [*common, "-o", str(tmp_path / "compiled"), "--compile"])
    assert plain.exit_code == compiled.exit_code == 0, compiled.output
    assert "pytorch-fp32-compiled" in compiled.stderr and "torch.compile: first batch" in compiled.stderr
    for mask in sorted((tmp_path / "plain").glob("*_segmentation.png")):
        assert iou(read_png(mask) > 0, read_png(tmp_path / "compiled" / mask.name) > 0) >= 0.999


@pytest.mark.slow
def test_gpu_speed_dry_run_measures_every_part(tmp_path: Path) -> None:
    run_gpu_script_dry("gpu_speed.sh", SAMPLES_DIR / "images", tmp_path)
    assert "gpu_speed status: 0" in (tmp_path / "speed.txt").read_text()
    speed = json.loads((tmp_path / "speed.json").read_text())
    rows = {r["backend"]: r for r in speed["results"]}
    assert {"pytorch-fp32", "pytorch-fp16-channels-last"} <= set(rows)  # the fast path, on the CPU here
    assert all(r["achieved_tflops"] > 0 and r["mean_iou_vs_reference"] is not None for r in rows.values())
    kernels = json.loads((tmp_path / "profile" / "kernels.json").read_text())
    assert kernels["kernels"] and abs(sum(k["share"] for k in kernels["kernels"]) - 1.0) < 0.5
    encoding = json.loads((tmp_path / "mask-encoding.json").read_text())
    assert encoding["masks"] == 8 and encoding["speedup"] > 1 and np.isfinite(encoding["size_ratio"])
