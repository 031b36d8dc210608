"""GPU stages and the PyTorch FP16 fast path (run where CUDA exists: benchmarks/gpu_check.sh runs them)."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from dermseg_deploy import Segmenter
from dermseg_deploy.backends import BackendOptions, open_backend
from dermseg_deploy.cli import run as cli_run
from dermseg_deploy.core.decode import read_image
from dermseg_deploy.core.gpu_decode import decode_jpegs_on_gpu
from dermseg_deploy.core.preprocess import preprocess_batch
from dermseg_deploy.export.parity import mask_iou
from dermseg_deploy.model.metadata import ModelMetadata
from dermseg_deploy.samples import sample_image_paths

from .helpers import iou, read_png

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (benchmarks/gpu_check.sh runs these)"),
]


def test_gpu_jpeg_decoding_matches_pillow_closely() -> None:
    path = sample_image_paths()[0]
    (decoded,) = decode_jpegs_on_gpu([path.read_bytes()], torch.device("cuda"))
    assert decoded is not None and decoded.is_cuda and decoded.dtype == torch.uint8
    with Image.open(path) as image:
        expected = torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1)
    assert decoded.shape == expected.shape
    assert (decoded.cpu().float() - expected.float()).abs().mean() < 2.0  # IDCT implementations differ slightly


def test_cuda_stages_write_the_cpu_masks_for_jpeg_png_and_rotated_inputs(checkpoint_path: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    for path in sample_image_paths()[:4]:
        shutil.copy(path, inputs / path.name)
    with Image.open(sample_image_paths()[4]) as image:
        image.save(inputs / "as_png.png")
        exif = image.getexif()
        exif[0x0112] = 6
        image.save(inputs / "rotated.jpg", exif=exif.tobytes())
    for device in ("cpu", "cuda"):
        result = CliRunner().invoke(cli_run.main, ["--engine", str(checkpoint_path), str(inputs), "-o",
                                                   str(tmp_path / device), "--device", device, "-q", "--size", "128"])
        assert result.exit_code == 0, result.output
    masks = sorted((tmp_path / "cpu").glob("*_segmentation.png"))
    assert len(masks) == 6
    for mask in masks:
        cpu, gpu = read_png(mask), read_png(tmp_path / "cuda" / mask.name)
        assert cpu.shape == gpu.shape
        assert iou(cpu, gpu) >= 0.97, mask.name
    with Image.open(tmp_path / "cuda" / "rotated_segmentation.png") as rotated, Image.open(inputs / "rotated.jpg") as raw:
        assert rotated.size == (raw.size[1], raw.size[0])


def test_a_cmyk_jpeg_is_segmented_on_cuda_by_the_gpu_decoder_or_the_cpu_fallback(checkpoint_path: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    with Image.open(sample_image_paths()[0]) as image:
        image.convert("CMYK").save(inputs / "cmyk.jpg")
    result = CliRunner().invoke(cli_run.main, ["--engine", str(checkpoint_path), str(inputs), "-o", str(tmp_path / "out"),
                                               "--device", "cuda", "-q", "--size", "128"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "cmyk_segmentation.png").is_file()
    for line in io.StringIO(result.stderr):
        assert "error" not in line
        if line.startswith("note:"):
            assert "cmyk.jpg" in line and "decoded on the CPU" in line


def test_fp16_fast_path_matches_fp32(checkpoint_path: Path) -> None:
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    metadata = ModelMetadata(size_px=256)
    batch = torch.from_numpy(preprocess_batch([read_image(p) for p in sample_image_paths()], metadata)).cuda()
    device = torch.device("cuda")
    with open_backend(checkpoint_path, device, 256) as fp32, \
            open_backend(checkpoint_path, device, 256, BackendOptions("auto", False, "fp16", True, True)) as fast:
        assert fast.name == "pytorch-fp16-channels-last-cuda-graphs" and fast.input_dtype == torch.float16
        reference = fp32.infer(batch)
        first = fast.infer(batch)
        second = fast.infer(batch.flip(0))  # the graph replays with new data
    ious = [mask_iou(a > 0, b > 0) for a, b in zip(reference, first)]
    assert float(np.mean(ious)) >= 0.99, ious
    replayed = [mask_iou(a > 0, b > 0) for a, b in zip(second.flip(0), first)]
    assert float(np.mean(replayed)) >= 0.999 and not torch.equal(second, first), replayed


def test_segmenter_on_cuda_with_fp16_fast_path(checkpoint_path: Path) -> None:
    options = BackendOptions(precision="fp16", channels_last=True, cuda_graphs=True)
    with Segmenter.open(checkpoint_path, "cuda", 128, options=options) as segmenter:
        mask = segmenter.segment_file(sample_image_paths()[1])
    with Image.open(sample_image_paths()[1]) as image:
        assert mask.shape == (image.size[1], image.size[0])


def test_cuda_streams_fail_an_image_with_nan_logits_and_keep_the_others(checkpoint_path: Path, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from dermseg_deploy.backends.torch_backend import TorchBackend

    real = TorchBackend.infer

    def second_image_nan(self: TorchBackend, images: torch.Tensor) -> torch.Tensor:
        logits = real(self, images)
        if logits.shape[0] > 1:
            logits[1, 0, 0, 0] = float("nan")
        return logits

    monkeypatch.setattr(TorchBackend, "infer", second_image_nan)
    inputs = tmp_path / "in"
    inputs.mkdir()
    for path in sample_image_paths()[:4]:
        shutil.copy(path, inputs / path.name)
    result = CliRunner().invoke(cli_run.main, ["--engine", str(checkpoint_path), str(inputs), "-o", str(tmp_path / "out"),
                                               "--device", "cuda", "-q", "--size", "128", "--batch-size", "4"])
    assert result.exit_code == 1, result.output
    assert result.stderr.count("NaN or infinite logits") == 1
    assert len(list((tmp_path / "out").glob("*_segmentation.png"))) == 3


def test_compiled_fp16_path_matches_fp32_masks(checkpoint_path: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    for path in sample_image_paths()[:4]:
        shutil.copy(path, inputs / path.name)
    common = ["--engine", str(checkpoint_path), str(inputs), "--device", "cuda", "-q", "--size", "256", "--batch-size", "4"]
    fp32 = CliRunner().invoke(cli_run.main, [*common, "-o", str(tmp_path / "fp32")])
    fast = CliRunner().invoke(cli_run.main, [*common, "-o", str(tmp_path / "fast"), "--precision", "fp16",
                                             "--channels-last", "--cuda-graphs", "--compile"])
    assert fp32.exit_code == fast.exit_code == 0, fast.output
    for mask in sorted((tmp_path / "fp32").glob("*_segmentation.png")):
        assert iou(read_png(mask) > 0, read_png(tmp_path / "fast" / mask.name) > 0) >= 0.99
