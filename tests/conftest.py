"""Shared fixtures: a small BatchNorm-calibrated model, its checkpoint and ONNX export, real-data paths."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from dermseg_deploy.core.decode import read_image
from dermseg_deploy.core.preprocess import preprocess_batch
from dermseg_deploy.model.checkpoint import Checkpoint, save_checkpoint
from dermseg_deploy.model.metadata import ModelMetadata
from dermseg_deploy.model.model_config import ModelConfig
from dermseg_deploy.samples import sample_image_paths
from dermseg_train.encoder_weights import build_model

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
ISIC2018_512 = SHARED_DATA / "isic2018-task1-512"
ISIC2017_FULLRES = SHARED_DATA / "isic2017-fullres"
GPU_DATA = ROOT / "gpu_data"
"""Where benchmarks/prepare_gpu_data.sh copies real images for the GPU machine (../shared does not travel there)."""
TEST_SIZE_PX = 64


def require_shared(path: Path) -> Path:
    """`path`, or its copy under gpu_data/; skip (saying why) where neither exists, as on a user's clone (CI has
    ../shared/data)."""
    if path.is_dir():
        return path
    copy = GPU_DATA / path.name
    if copy.is_dir():
        return copy
    pytest.skip(f"{path} is absent: real-data tests need ../shared/data beside the checkout (CI has it)")


@pytest.fixture(scope="session")
def calibrated_model() -> torch.nn.Module:
    """Random weights, BatchNorm statistics taken from real images so that logits have realistic magnitudes."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(), encoder_weights=None)
    metadata = ModelMetadata(size_px=TEST_SIZE_PX)
    batch = torch.from_numpy(preprocess_batch([read_image(p) for p in sample_image_paths()], metadata))
    model.train()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.momentum = None  # cumulative average
        for _ in range(2):
            model(batch)
    return model.eval()


@pytest.fixture(scope="session")
def checkpoint_path(tmp_path_factory: pytest.TempPathFactory, calibrated_model: torch.nn.Module) -> Path:
    path = tmp_path_factory.mktemp("model") / "model.pt"
    checkpoint = Checkpoint(
        ModelConfig().to_dict(),
        ModelMetadata(size_px=TEST_SIZE_PX, train_size_px=TEST_SIZE_PX, train_data="test fixture"),
        calibrated_model.state_dict(),
        metrics={"note": "random weights"},
    )
    save_checkpoint(checkpoint, path)
    return path


@pytest.fixture(scope="session")
def onnx_path(checkpoint_path: Path, calibrated_model: torch.nn.Module) -> Path:
    from dermseg_deploy.export.onnx_export import export_onnx

    path = checkpoint_path.with_suffix(".onnx")
    export_onnx(calibrated_model, ModelMetadata(size_px=TEST_SIZE_PX, train_size_px=TEST_SIZE_PX), path)
    return path


@pytest.fixture(scope="session")
def ray_session() -> Iterator[Any]:
    """One local Ray cluster for the whole test run (4 logical CPUs, so that Ray Data actors and Serve replicas
    of different tests never wait on each other); only this cluster is stopped at the end."""
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'dermseg[ray]' (the dev extra has it)")
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    yield ray
    from ray import serve

    serve.shutdown()
    ray.shutdown()
