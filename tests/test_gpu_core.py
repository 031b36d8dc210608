"""One core on CUDA: every CUDA entry point writes the same masks; CPU and GPU decoding compared (needs a GPU)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from dermseg_deploy import Segmenter
from dermseg_deploy.backends import open_backend
from dermseg_deploy.bench.measure import BenchSettings, measure_stages
from dermseg_deploy.cli import eval as eval_cli
from dermseg_deploy.cli import run as cli_run

from .helpers import iou
from .test_core import SIZE_PX, fullres_data  # noqa: F401  (the fixture)

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (benchmarks/gpu_check.sh runs these)"),
]


def _masks(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*_segmentation.png"))}


def test_every_cuda_entry_point_writes_the_same_masks(
    fullres_data: Path, checkpoint_path: Path, tmp_path: Path  # noqa: F811
) -> None:
    images = sorted((fullres_data / "images").glob("*.jpg"))
    model, common = str(checkpoint_path), ["--size", str(SIZE_PX), "--device", "cuda"]
    outputs: dict[str, Path] = {}
    for name, extra in (("run", []), ("run-overlay", ["--overlay"])):
        outputs[name] = tmp_path / name
        result = CliRunner().invoke(cli_run.main, ["--engine", model, str(fullres_data / "images"), "-o",
                                                   str(outputs[name]), "-q", *common, *extra])
        assert result.exit_code == 0, result.output
    outputs["segment_files"] = tmp_path / "segment_files"
    with Segmenter.open(checkpoint_path, "cuda", SIZE_PX) as segmenter:
        assert all(r.ok for r in segmenter.segment_files(images, outputs["segment_files"]))
    outputs["eval"] = tmp_path / "eval"
    result = CliRunner().invoke(eval_cli.main, [str(fullres_data), "--engine", model, *common, "--save-masks",
                                                str(outputs["eval"])])
    assert result.exit_code == 0, result.output
    outputs["bench"] = tmp_path / "bench"
    outputs["bench"].mkdir()
    with Segmenter(open_backend(checkpoint_path, torch.device("cuda"), SIZE_PX)) as segmenter:
        measure_stages(segmenter, images, BenchSettings(len(images), 0, 1, 0.0), outputs["bench"])
    reference = _masks(outputs["run"])
    assert len(reference) == len(images)
    for name, folder in outputs.items():
        assert _masks(folder) == reference, name


def test_cpu_and_gpu_decoding_give_nearly_the_same_masks(
    fullres_data: Path, checkpoint_path: Path, tmp_path: Path  # noqa: F811
) -> None:
    """The CPU decodes at libjpeg's reduced DCT scale, the GPU at full size with nvJPEG: the masks differ a little.
    The IoU is recorded (in $DERMSEG_RESULTS/cpu-vs-gpu-masks.json when that folder is set)."""
    ious: dict[str, float] = {}
    with Segmenter.open(checkpoint_path, "cpu", SIZE_PX) as cpu, Segmenter.open(checkpoint_path, "cuda", SIZE_PX) as gpu:
        images = sorted((fullres_data / "images").glob("*.jpg"))
        for a, b in zip(cpu.segment_files(images), gpu.segment_files(images)):
            assert a.mask is not None and b.mask is not None and a.mask.shape == b.mask.shape
            ious[Path(a.source).name] = iou(a.mask, b.mask)
    summary = {"model": "random weights (test fixture)", "size_px": SIZE_PX, "images": len(ious),
               "mean_iou": float(np.mean(list(ious.values()))), "worst_iou": min(ious.values()), "per_image": ious,
               "gpu": torch.cuda.get_device_name()}
    results = os.environ.get("DERMSEG_RESULTS")
    if results:
        Path(results).mkdir(parents=True, exist_ok=True)
        (Path(results) / "cpu-vs-gpu-masks-test.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "per_image"}))
    assert summary["mean_iou"] >= 0.9, summary


def test_tta_and_post_processing_on_cuda_match_the_cpu(checkpoint_path: Path) -> None:
    """The views are averaged and the regions refined on the GPU (CuPy where installed) by the same rules as on the
    CPU: the masks agree closely (resizing on the GPU rounds differently) and a hand-made ring comes out the same."""
    from PIL import Image

    from dermseg_deploy.core.device_ops import refine_device_masks
    from dermseg_deploy.core.lesion_regions import postprocess_engine, refine_host_masks
    from dermseg_deploy.samples import sample_image_paths
    from dermseg_deploy.util.devices import Device

    images = [np.asarray(Image.open(path).convert("RGB")) for path in sample_image_paths()]  # one decoder for both
    options = {"tta": "dihedral", "postprocess": "largest,fill-holes"}
    with Segmenter.open(checkpoint_path, "cuda", SIZE_PX, **options) as on_gpu:
        gpu = on_gpu.segment(images)
    with Segmenter.open(checkpoint_path, "cpu", SIZE_PX, **options) as on_cpu:
        cpu = on_cpu.segment(images)
    assert float(np.mean([iou(a > 0, b > 0) for a, b in zip(gpu, cpu)])) >= 0.95
    ring = torch.zeros(1, 1, 8, 8, dtype=torch.uint8)
    ring[0, 0, 1:6, 1:6] = 1
    ring[0, 0, 2:5, 2:5] = 0
    ring[0, 0, 7, 7] = 1
    expected = refine_host_masks(ring.numpy(), ("largest", "fill-holes"))
    assert np.array_equal(refine_device_masks(ring.cuda(), ("largest", "fill-holes")).cpu().numpy(), expected)
    print("post-processing on CUDA:", postprocess_engine(Device("cuda")))
