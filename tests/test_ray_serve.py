"""`dermseg-serve`'s application on Ray Serve (127.0.0.1): the masks `dermseg-run` writes, 400 and 413 for bad
images with the replicas still serving, and in-flight requests finished when the application is deleted."""

from __future__ import annotations

import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from dermseg_deploy.cli import run as cli_run
from dermseg_deploy.errors import ImageTooLargeError, InputImageError
from dermseg_deploy.samples import sample_image_paths
from dermseg_deploy.scale.serve_client import ServeClient

from .conftest import SERVE_MAX_PIXELS, served_application, served_model_spec
from .helpers import displayed_size

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def _replica_pids(client: ServeClient, images: list[Path]) -> set[int]:
    with ThreadPoolExecutor(8) as pool:
        return {int(r["pid"]) for r in pool.map(client.segment_json, images * 2)}


def test_concurrent_requests_get_the_masks_dermseg_run_writes(served: ServeClient, onnx_path: Path, tmp_path: Path) -> None:
    images = sample_image_paths()
    assert CliRunner().invoke(cli_run.main, ["--engine", str(onnx_path), *map(str, images), "-o", str(tmp_path), "-q",
                                             "--device", "cpu"]).exit_code == 0
    with ThreadPoolExecutor(8) as pool:
        masks = list(pool.map(served.segment, images))
    for path, mask in zip(images, masks):
        with Image.open(tmp_path / f"{path.stem}_segmentation.png") as expected:
            assert mask.dtype == np.uint8 and np.array_equal(mask, np.asarray(expected)), path.name
    info = served.segment_json(images[0])
    assert (info["height"], info["width"]) == masks[0].shape and 0.0 <= info["lesion_fraction"] <= 1.0
    assert 0.0 <= info["predicted_jaccard"] <= 1.0 and info["predicted_jaccard_calibrated"] is False
    assert isinstance(info["review"], bool)
    health = served.health()
    assert health["status"] == "ok" and health["backend"] == "onnxruntime-cpu" and health["input_size_px"] == 64


def test_bad_images_get_400_or_413_and_the_same_replicas_keep_serving(served: ServeClient) -> None:
    images = sample_image_paths()
    before = _replica_pids(served, images)
    with pytest.raises(InputImageError, match="is not an image in a format dermseg reads") as garbage:
        served.segment(b"<html>garbage, not an image</html>", name="garbage.jpg")
    assert str(garbage.value).startswith("garbage.jpg: ") and not isinstance(garbage.value, ImageTooLargeError)
    bomb = io.BytesIO()
    Image.new("L", (4000, 4000)).save(bomb, format="PNG")  # 16 M pixels in a few kilobytes
    with pytest.raises(ImageTooLargeError, match=f"over the limit of {SERVE_MAX_PIXELS}"):
        served.segment(bomb.getvalue(), name="bomb.png")
    with pytest.raises(InputImageError, match="is empty"):
        served.segment(b"", name="empty.jpg")
    after = _replica_pids(served, images)
    assert after <= before and len(before) == 2, (before, after)


def test_stopping_lets_in_flight_requests_finish(ray_session: Any, served: ServeClient, onnx_path: Path) -> None:
    outcome: dict[str, Any] = {}
    with served_application(served_model_spec(onnx_path), "dermseg-drain", max_batch_size=8,
                            batch_wait_ms=1500) as url:  # a lone request waits 1.5 s for its batch to fill
        client = ServeClient(url)
        client.health()
        request = threading.Thread(target=lambda: outcome.update(mask=client.segment(sample_image_paths()[0])))
        request.start()
        time.sleep(0.5)
    # leaving the block stopped the front and deleted the application, as dermseg-serve does on SIGTERM
    request.join(timeout=60)
    assert "mask" in outcome and outcome["mask"].shape == displayed_size(sample_image_paths()[0])
