"""The TensorRT code that needs no TensorRT: sidecar, compatibility rules, profile, batch splitting, messages."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from dermseg_deploy.backends.onnxruntime_backend import OnnxRuntimeBackend
from dermseg_deploy.errors import BackendUnavailableError, ModelFileError, UserError
from dermseg_deploy.model.metadata import ModelMetadata
from dermseg_deploy.tensorrt.availability import require_tensorrt, tensorrt_installed
from dermseg_deploy.tensorrt.batch_profile import BatchProfile, padding_for_profile, split_batch
from dermseg_deploy.tensorrt.build_options import BuildOptions
from dermseg_deploy.tensorrt.sidecar import (
    REBUILD_HINT,
    PlanIncompatibleError,
    PlanSidecar,
    TensorSpec,
    check_compatibility,
    check_plan_digest,
    plan_digest,
    read_sidecar,
    sidecar_path,
    write_sidecar,
)


def make_sidecar(**changes: object) -> PlanSidecar:
    sidecar = PlanSidecar(
        metadata=ModelMetadata(size_px=1024, train_size_px=512, train_data="isic2018"),
        tensorrt_version="10.13.0.35",
        gpu_name="NVIDIA H100 80GB HBM3",
        compute_capability=(9, 0),
        precision="fp16",
        inputs=(TensorSpec("image", "float", (-1, 3, 1024, 1024)),),
        outputs=(TensorSpec("logits", "float", (-1, 1, 1024, 1024)),),
        source_onnx="model.fp16.onnx",
        source_onnx_sha256="ab" * 32,
        batch_profile={"min": 1, "opt": 4, "max": 8},
    )
    return replace(sidecar, **changes)  # type: ignore[arg-type]


def test_sidecar_round_trips_through_its_json_file(tmp_path: Path) -> None:
    plan = tmp_path / "model.plan"
    sidecar = make_sidecar(version_compatible=True, hardware_compatibility="ampere_plus", extra={"workspace_bytes": 1})
    path = write_sidecar(plan, sidecar)
    assert path == tmp_path / "model.plan.json" == sidecar_path(plan)
    data = json.loads(path.read_text())
    assert data["compute_capability"] == "9.0" and data["metadata"]["size_px"] == 1024
    assert data["tensorrt_version"] == "10.13.0.35" and data["inputs"][0]["name"] == "image"
    assert read_sidecar(plan) == sidecar


def test_missing_or_malformed_sidecar_says_rebuild(tmp_path: Path) -> None:
    plan = tmp_path / "model.plan"
    with pytest.raises(ModelFileError, match="model.plan.json is missing; " + REBUILD_HINT):
        read_sidecar(plan)
    sidecar_path(plan).write_text("{not json")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        read_sidecar(plan)
    data = make_sidecar().to_dict()
    del data["tensorrt_version"]
    sidecar_path(plan).write_text(json.dumps(data))
    with pytest.raises(ModelFileError, match="sidecar lacks tensorrt_version"):
        read_sidecar(plan)


def test_same_version_and_capability_load_without_host_code() -> None:
    decision = check_compatibility(make_sidecar(), "m.plan", "10.13.0.35", (9, 0), trust_host_code=False)
    assert not decision.allow_host_code


def test_another_tensorrt_version_is_refused_with_a_rebuild_hint() -> None:
    with pytest.raises(PlanIncompatibleError) as info:
        check_compatibility(make_sidecar(), "m.plan", "10.14.1.48", (9, 0), trust_host_code=True)
    message = str(info.value)
    assert "built with TensorRT 10.13.0.35" in message and "10.14.1.48" in message
    assert "not version-compatible" in message and message.endswith(REBUILD_HINT)


def test_a_version_compatible_plan_always_needs_the_trust_flag_and_then_allows_host_code() -> None:
    sidecar = make_sidecar(version_compatible=True)
    for runtime in ("10.13.0.35", "10.14.1.48"):  # the same TensorRT too: the plan carries host code either way
        with pytest.raises(PlanIncompatibleError, match="carries host code.*--trust-plan"):
            check_compatibility(sidecar, "m.plan", runtime, (9, 0), trust_host_code=False)
        assert check_compatibility(sidecar, "m.plan", runtime, (9, 0), trust_host_code=True).allow_host_code
    for runtime in ("10.12.0.36", "11.0.0.1"):
        with pytest.raises(PlanIncompatibleError, match="same major version, same or newer"):
            check_compatibility(sidecar, "m.plan", runtime, (9, 0), trust_host_code=True)


def test_the_plan_digest_must_match_the_sidecar() -> None:
    plan = b"serialised engine bytes"
    sidecar = make_sidecar(plan_sha256=plan_digest(plan))
    check_plan_digest(sidecar, plan, "m.plan")
    with pytest.raises(ModelFileError, match="SHA-256 .* is not the .* its sidecar recorded"):
        check_plan_digest(sidecar, b"another plan swapped in", "m.plan")
    with pytest.raises(ModelFileError, match="records no plan SHA-256"):
        check_plan_digest(make_sidecar(), plan, "m.plan")


def test_compute_capability_rules() -> None:
    with pytest.raises(PlanIncompatibleError, match=r"built for compute capability 9\.0 .*this GPU has 8\.9"):
        check_compatibility(make_sidecar(), "m.plan", "10.13.0.35", (8, 9), trust_host_code=False)
    ampere = make_sidecar(hardware_compatibility="ampere_plus", compute_capability=(8, 6))
    check_compatibility(ampere, "m.plan", "10.13.0.35", (9, 0), trust_host_code=False)
    with pytest.raises(PlanIncompatibleError, match="Ampere and newer"):
        check_compatibility(ampere, "m.plan", "10.13.0.35", (7, 5), trust_host_code=False)
    same = make_sidecar(hardware_compatibility="same_compute_capability")
    check_compatibility(same, "m.plan", "10.13.0.35", (9, 0), trust_host_code=False)
    with pytest.raises(PlanIncompatibleError, match="this GPU has 10.0"):
        check_compatibility(same, "m.plan", "10.13.0.35", (10, 0), trust_host_code=False)


def test_batch_profile_validates_and_gives_input_shapes() -> None:
    profile = BatchProfile(1, 4, 8)
    assert profile.shapes(1024) == ((1, 3, 1024, 1024), (4, 3, 1024, 1024), (8, 3, 1024, 1024))
    assert profile.to_dict() == {"min": 1, "opt": 4, "max": 8}
    for bad in ((0, 1, 1), (2, 1, 4), (1, 8, 4)):
        with pytest.raises(UserError, match="1 <= min <= opt <= max"):
            BatchProfile(*bad)
    with pytest.raises(UserError, match="hardware compatibility"):
        BuildOptions(hardware_compatibility="turing")
    with pytest.raises(UserError, match="optimisation level"):
        BuildOptions(optimization_level=6)


@pytest.mark.parametrize("count,min_batch,max_batch,padding",
                         [(1, 1, 8, 0), (1, 2, 8, 1), (9, 2, 8, 1), (16, 4, 8, 0), (3, 4, 8, 1)])
def test_padding_keeps_every_chunk_within_the_profile(count: int, min_batch: int, max_batch: int, padding: int) -> None:
    assert padding_for_profile(count, min_batch, max_batch) == padding
    chunks = split_batch(count + padding, max_batch)
    assert all(min_batch <= c.stop - c.start <= max_batch for c in chunks)


@pytest.mark.parametrize("count,max_batch,sizes", [(0, 4, []), (3, 4, [3]), (8, 4, [4, 4]), (9, 4, [4, 4, 1]), (5, 1, [1] * 5)])
def test_split_batch_covers_every_image_in_order(count: int, max_batch: int, sizes: list[int]) -> None:
    parts = split_batch(count, max_batch)
    assert [p.stop - p.start for p in parts] == sizes
    covered = [i for p in parts for i in range(count)[p]]
    assert covered == list(range(count))


@pytest.mark.skipif(tensorrt_installed(), reason="TensorRT is installed here")
def test_missing_tensorrt_message_names_the_extra() -> None:
    expected = r"model.plan needs TensorRT, which is not installed: pip install 'dermseg\[tensorrt\]'"
    with pytest.raises(BackendUnavailableError, match=expected):
        require_tensorrt("model.plan")


def test_onnxruntime_provider_must_exist_and_match_the_device(onnx_path: Path) -> None:
    import onnxruntime

    if torch.cuda.is_available():  # a GPU is here, and the CPU was chosen: the two flags disagree
        with pytest.raises(UserError, match="does not run on device cpu"):
            OnnxRuntimeBackend(onnx_path, torch.device("cpu"), provider="tensorrt")
    else:  # no GPU at all: the provider is unavailable here
        with pytest.raises(BackendUnavailableError, match="CUDA is not available on this machine"):
            OnnxRuntimeBackend(onnx_path, torch.device("cpu"), provider="tensorrt")
    if "TensorrtExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(BackendUnavailableError, match="TensorrtExecutionProvider was requested"):
            OnnxRuntimeBackend(onnx_path, torch.device("cuda", 0), provider="tensorrt")
    with OnnxRuntimeBackend(onnx_path, torch.device("cpu"), provider="cpu") as backend:
        assert backend.name == "onnxruntime-cpu"
