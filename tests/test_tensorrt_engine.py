"""Integration: build a small TensorRT plan and run it; wherever TensorRT and a CUDA GPU exist."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dermseg_deploy.backends.onnxruntime_backend import OnnxRuntimeBackend
from dermseg_deploy.export.check_images import choose_export_images, load_batch
from dermseg_deploy.export.fp16_onnx import convert_to_fp16_onnx
from dermseg_deploy.export.parity import mask_iou
from dermseg_deploy.model.metadata import ModelMetadata
from dermseg_deploy.samples import sample_image_paths
from dermseg_deploy.tensorrt.availability import tensorrt_installed
from dermseg_deploy.tensorrt.batch_profile import BatchProfile
from dermseg_deploy.tensorrt.build_options import BuildOptions
from dermseg_deploy.tensorrt.sidecar import PlanIncompatibleError, sidecar_path
from dermseg_deploy.util.devices import Device

from .conftest import TEST_SIZE_PX

pytestmark = [
    pytest.mark.tensorrt,
    pytest.mark.skipif(not (tensorrt_installed() and torch.cuda.is_available()), reason="needs TensorRT and a CUDA GPU"),
]


@pytest.fixture(scope="module")
def plan_path(onnx_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dermseg_deploy.tensorrt.engine_build import build_engine

    folder = tmp_path_factory.mktemp("plan")
    metadata = ModelMetadata(size_px=TEST_SIZE_PX)
    images = choose_export_images(None, None, 4, 4, synthetic=False)
    fp16 = folder / "model.fp16.onnx"
    convert_to_fp16_onnx(onnx_path, fp16, metadata, load_batch(images.calibration, metadata).numpy(), "samples")
    plan = folder / "model.plan"
    build_engine(fp16, plan, metadata, BuildOptions(BatchProfile(1, 2, 4), workspace_bytes=1 << 30))
    return plan


def test_plan_matches_onnxruntime_and_splits_large_batches(plan_path: Path, onnx_path: Path) -> None:
    from dermseg_deploy.backends.tensorrt_backend import TensorRTBackend

    sidecar = json.loads(sidecar_path(plan_path).read_text())
    assert sidecar["batch_profile"] == {"min": 1, "opt": 2, "max": 4} and sidecar["inputs"][0]["name"] == "image"
    assert plan_path.with_name("model.timing.cache").is_file()
    batch = load_batch(sample_image_paths(), ModelMetadata(size_px=TEST_SIZE_PX))  # 8 images: two runs of 4
    with OnnxRuntimeBackend(onnx_path) as reference:
        expected = torch.from_numpy(reference.infer(batch.numpy()))
    with TensorRTBackend(plan_path, Device("cuda")) as backend:
        assert backend.max_batch == 4
        logits = backend.infer(batch.cuda()).cpu()
    ious = [mask_iou(a > 0, b > 0) for a, b in zip(expected, logits)]
    assert sum(ious) / len(ious) >= 0.99, ious


def test_plan_from_another_gpu_is_refused_before_deserialising(plan_path: Path, tmp_path: Path) -> None:
    from dermseg_deploy.backends.tensorrt_backend import TensorRTBackend

    copy = tmp_path / "model.plan"
    copy.write_bytes(plan_path.read_bytes())
    data = json.loads(sidecar_path(plan_path).read_text())
    data["compute_capability"] = "5.0"
    sidecar_path(copy).write_text(json.dumps(data))
    with pytest.raises(PlanIncompatibleError, match="rebuild with dermseg-export on this machine"):
        TensorRTBackend(copy, Device("cuda"))
