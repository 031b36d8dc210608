"""How `--ray` and `dermseg-serve` size their actors, and the usage errors caught before any cluster starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from dermseg_deploy.cli import run as cli_run
from dermseg_deploy.errors import BackendUnavailableError, UserError
from dermseg_deploy.files.manifest import ManifestRow
from dermseg_deploy.samples import sample_image_paths
from dermseg_deploy.scale.ray_batch import SegmentActor, _row, plan_actors
from dermseg_deploy.scale.ray_cluster import ClusterInfo

CPU_NODE = ClusterInfo(cpus=16, gpus=0, started_here=True)
GPU_NODES = ClusterInfo(cpus=64, gpus=4, started_here=False)


def test_cpu_actors_share_the_cores_and_gpu_actors_take_one_gpu_each() -> None:
    default = plan_actors(CPU_NODE, "auto", None, None)
    assert (default.actors, default.threads, default.cpus_per_actor, default.gpus_per_actor) == (8, 2, 2.0, 0.0)
    assert plan_actors(CPU_NODE, "cpu", 4, None).threads == 4 and plan_actors(CPU_NODE, "cpu", None, 1).actors == 16
    gpu = plan_actors(GPU_NODES, "auto", None, None)
    assert (gpu.actors, gpu.device, gpu.gpus_per_actor) == (4, "cuda", 1.0)
    assert plan_actors(GPU_NODES, "cpu", None, 4).device == "cpu"
    with pytest.raises(BackendUnavailableError, match="has no GPU"):
        plan_actors(CPU_NODE, "cuda", None, None)
    with pytest.raises(UserError):
        plan_actors(CPU_NODE, "tpu", None, None)


def test_ray_options_go_with_ray(onnx_path: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli_run.main, ["--engine", str(onnx_path), str(sample_image_paths()[0]), "-o",
                                               str(tmp_path), "--ray-actors", "2"])
    assert result.exit_code == 2 and "go with --ray" in result.stderr


def test_an_actor_reports_a_model_that_does_not_load_in_band(tmp_path: Path) -> None:
    """Ray would only say that the actor died; the driver re-raises this with its own type and exit code."""
    from dermseg_deploy.scale.ray_batch import ActorSettings
    from dermseg_deploy.scale.segmenter_spec import SegmenterSpec

    actor = SegmentActor(ActorSettings(SegmenterSpec(str(tmp_path / "absent.onnx"))))
    import numpy as np

    out = actor({"source": np.array(["a.jpg"]), "mask_path": np.array(["a.png"]), "overlay_path": np.array(["a.jpg"]),
                 "index": np.array([0])})
    assert out["fatal_type"] == ["ModelFileError"] and "not found" in out["fatal_message"][0]
    assert _row({**ManifestRow("a.jpg", "ok", "a.png").to_dict(), "lesion_area_fraction": float("nan")}) == \
        ManifestRow("a.jpg", "ok", "a.png")
