"""The stages around inference: EXIF orientation on tensors, DCT-domain draft decoding, benchmark statistics."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dermseg_deploy.bench.stats import nearest_rank, summarize_ms
from dermseg_deploy.core.decode import decode_image, displayed_size
from dermseg_deploy.core.orientation import apply_orientation
from dermseg_deploy.core.preprocess import preprocess
from dermseg_deploy.model.metadata import ModelMetadata
from dermseg_deploy.samples import SAMPLES_DIR, sample_image_paths

from .conftest import ISIC2017_FULLRES, require_shared
from .helpers import run_gpu_script_dry

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("orientation", range(1, 9))
def test_tensor_orientation_matches_pillows_exif_transpose(orientation: int) -> None:
    raw = Image.fromarray(np.random.default_rng(orientation).integers(0, 255, (5, 7, 3), dtype=np.uint8))
    exif = raw.getexif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    raw.save(buffer, format="PNG", exif=exif.tobytes())
    expected = decode_image(buffer.getvalue())  # PIL's exif_transpose
    pixels = torch.from_numpy(np.array(raw)).permute(2, 0, 1)  # the CUDA stages turn (3, H, W) tensors
    assert np.array_equal(apply_orientation(pixels, orientation).permute(1, 2, 0).numpy(), expected)
    assert displayed_size(buffer.getvalue()) == tuple(expected.shape[:2])


def test_draft_decoding_keeps_both_sides_at_least_the_input_size() -> None:
    path = sample_image_paths()[0]
    data = path.read_bytes()
    full = decode_image(data)
    reduced = decode_image(data, draft_min_side_px=128)
    assert min(reduced.shape[:2]) >= 128 and reduced.shape[1] <= full.shape[1] // 2
    assert displayed_size(data) == tuple(full.shape[:2])


def test_draft_decoding_changes_the_network_input_little_on_full_resolution_photos() -> None:
    folder = require_shared(ISIC2017_FULLRES) / "ISIC-2017_Validation_Data"
    metadata = ModelMetadata(size_px=512)
    for path in sorted(folder.glob("*.jpg"))[:4]:
        data = path.read_bytes()
        full = preprocess(decode_image(data), metadata)
        drafted = preprocess(decode_image(data, draft_min_side_px=512), metadata)
        # normalised units (about 4.4 per 255 grey levels): under 1 grey level on average
        assert np.abs(full - drafted).mean() < 0.02, path.name


def test_nearest_rank_percentiles_as_trtexec() -> None:
    values = [float(v) for v in range(1, 101)]
    assert nearest_rank(values, 50) == 50 and nearest_rank(values, 90) == 90 and nearest_rank(values, 99) == 99
    assert nearest_rank([3.0, 1.0, 2.0], 50) == 2.0 and nearest_rank([5.0], 99) == 5.0
    summary = summarize_ms([1.0, 2.0, 3.0, 4.0])
    assert summary["mean"] == 2.5 and summary["median"] == 2.0 and summary["p99"] == 4.0 and summary["count"] == 4
    with pytest.raises(ValueError):
        nearest_rank([], 50)


@pytest.mark.slow
def test_gpu_check_dry_run_benchmarks_every_engine(tmp_path: Path) -> None:
    run_gpu_script_dry("gpu_check.sh", SAMPLES_DIR / "images", tmp_path, timeout=900)
    document = json.loads((tmp_path / "bench.json").read_text())
    rows = {(r["backend"], r["batch_size"]) for r in document["results"]}
    assert {("pytorch-fp32", 1), ("pytorch-fp32", 2), ("pytorch-fp32-tf32", 1), ("pytorch-fp16-channels-last", 2),
            ("naive-pil-pytorch-fp32-eager", 1)} <= rows
    for row in document["results"]:
        inference = row["stage_ms"]["inference"]
        assert inference["count"] >= 1 and inference["min"] <= inference["median"] <= inference["p99"] <= inference["max"]
        assert row["end_to_end_images_per_s"] > 0 and row["inference_images_per_s"] > 0
        assert row["mean_iou_vs_reference"] is not None
    reference = [r for r in document["results"] if r["backend"] == "pytorch-fp32" and r["batch_size"] == 1][0]
    assert reference["mean_iou_vs_reference"] == 1.0
    assert document["environment"]["cpu_count"] and document["environment"]["torch"]
    with Image.open(tmp_path / "bench.png") as plot:
        assert plot.format == "PNG" and plot.size[0] > 500
    assert "gpu_check status: 0" in (tmp_path / "bench.txt").read_text()
    agreement = json.loads((tmp_path / "cpu-vs-gpu-masks.json").read_text())
    assert (agreement["a"], agreement["b"], agreement["images"]) == ("cpu", "cpu-full", 8) and agreement["mean_iou"] > 0.5


def test_tf32_settings_come_back_after_a_benchmark_whatever_happens() -> None:
    from dermseg_deploy.bench.engines import tf32_enabled

    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    with pytest.raises(RuntimeError), tf32_enabled(not before[0]):
        assert torch.backends.cuda.matmul.allow_tf32 is (not before[0])
        raise RuntimeError("a failed benchmark")
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before
