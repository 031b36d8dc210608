"""Shared fixtures: a small BatchNorm-calibrated model, its checkpoint and ONNX export, real-data paths."""

from __future__ import annotations

import contextlib
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


SERVE_MAX_PIXELS = 1_000_000
"""The pixel limit of the served test application (a larger image is refused with 413)."""
SERVE_MAX_BODY_BYTES = 4 * 2**20
"""Its body limit (a larger body is refused with 413 before it is read)."""


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def served_model_spec(onnx_path: Path, max_pixels: int = SERVE_MAX_PIXELS) -> Any:
    """The session's ONNX model on the CPU, one thread per replica, as a served application opens it."""
    from dermseg_deploy.backends import BackendOptions
    from dermseg_deploy.scale.segmenter_spec import SegmenterSpec

    return SegmenterSpec(str(onnx_path), "cpu", options=BackendOptions(threads=1), max_pixels=max_pixels)


@contextlib.contextmanager
def served_application(model: Any, name: str, replicas: int = 1, limits: Any = None, max_batch_size: int = 4,
                       batch_wait_ms: float = 20.0) -> Iterator[str]:
    """`dermseg-serve`'s application as dermseg-serve runs it (`serving`): replicas on the shared Ray cluster, no Ray
    HTTP proxy, the bounded front on a free port of 127.0.0.1; yields the front's URL."""
    from dermseg_deploy.scale.serve_app import ServeSettings
    from dermseg_deploy.scale.serve_front import serving
    from dermseg_deploy.scale.serve_limits import ServeLimits

    limits = limits or ServeLimits(max_ongoing=2 * max_batch_size)
    settings = ServeSettings(model, max_batch_size=max_batch_size, batch_wait_ms=batch_wait_ms, limits=limits)
    port = _free_port()
    with serving(settings, replicas, 1.0, 0.0, "127.0.0.1", port, name):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def served(ray_session: Any, onnx_path: Path) -> Iterator[Any]:
    """`dermseg-serve`'s application on the shared Ray cluster, behind its front at 127.0.0.1 on a free port: 2
    replicas of the test model, batches up to 4, bodies up to 4 MB; the serve tests and the page's browser tests use
    it."""
    from dermseg_deploy.scale.serve_client import ServeClient
    from dermseg_deploy.scale.serve_limits import ServeLimits

    limits = ServeLimits(max_body_bytes=SERVE_MAX_BODY_BYTES, max_ongoing=8)
    with served_application(served_model_spec(onnx_path), "dermseg-test", replicas=2, limits=limits) as url:
        yield ServeClient(url)

