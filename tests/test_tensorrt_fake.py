"""The TensorRT code paths, run against a stand-in `tensorrt` module (no TensorRT, no GPU needed)."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

from dermseg_deploy.cli.common import EXIT_INTERNAL, EXIT_USAGE, exit_code_for
from dermseg_deploy.errors import InferenceError, ModelFileError
from dermseg_deploy.export import plan_step
from dermseg_deploy.export.check_images import CheckSet
from dermseg_deploy.model.metadata import ModelMetadata
from dermseg_deploy.tensorrt.build_options import BuildOptions
from dermseg_deploy.tensorrt.sidecar import PlanIncompatibleError, plan_digest, sidecar_path
from dermseg_deploy.util.devices import Device

from .fake_tensorrt import Context, Engine, make_fake_tensorrt
from .test_tensorrt_parts import make_sidecar

TRT_MODULES = ("dermseg_deploy.tensorrt.engine_build", "dermseg_deploy.backends.tensorrt_backend")


@pytest.fixture()
def fake_trt(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The stand-in installed as `tensorrt`; dermseg's TensorRT modules are imported against it and dropped after."""
    fake = make_fake_tensorrt()
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    saved = {name: sys.modules.pop(name) for name in TRT_MODULES if name in sys.modules}
    yield fake
    for name in TRT_MODULES:
        sys.modules.pop(name, None)
        package, _, attribute = name.rpartition(".")
        if hasattr(sys.modules[package], attribute):
            delattr(sys.modules[package], attribute)
    sys.modules.update(saved)


@pytest.fixture()
def fake_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    """Just enough of torch.cuda for the backend's constructor on a machine without a GPU."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=None: (9, 0))
    monkeypatch.setattr(torch.cuda, "device", lambda device: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "Stream", lambda device=None: object())


def write_plan(folder: Path, plan: bytes, **sidecar_changes: Any) -> Path:
    path = folder / "model.plan"
    path.write_bytes(plan)
    sidecar = make_sidecar(plan_sha256=plan_digest(plan), **sidecar_changes)
    sidecar_path(path).write_text(sidecar.to_json())
    return path


# ---- run time -------------------------------------------------------------------------------------------


def test_a_swapped_plan_is_refused_before_deserialising(fake_trt: ModuleType, fake_cuda: None, tmp_path: Path) -> None:
    from dermseg_deploy.backends.tensorrt_backend import TensorRTBackend

    plan = write_plan(tmp_path, b"the plan that was built")
    plan.write_bytes(b"another plan, swapped in")
    with pytest.raises(ModelFileError, match="SHA-256 .* its sidecar recorded") as info:
        TensorRTBackend(plan, Device("cuda", 0))
    assert exit_code_for(info.value) == EXIT_USAGE
    assert not [c for c in fake_trt.state.calls if c[0] == "deserialize_cuda_engine"]


def test_a_version_compatible_plan_loads_only_when_trusted_and_then_with_host_code(
    fake_trt: ModuleType, fake_cuda: None, tmp_path: Path
) -> None:
    from dermseg_deploy.backends.tensorrt_backend import TensorRTBackend

    fake_trt.state.engine = Engine()
    plan = write_plan(tmp_path, b"version-compatible plan", version_compatible=True, metadata=ModelMetadata(size_px=64))
    with pytest.raises(PlanIncompatibleError, match="--trust-plan"):
        TensorRTBackend(plan, Device("cuda", 0))  # same TensorRT version as the build: still host code
    backend = TensorRTBackend(plan, Device("cuda", 0), trust_host_code=True)
    assert fake_trt.state.host_code_allowed_at_deserialise is True
    assert (backend.min_batch, backend.max_batch) == (1, 4) and backend.input_dtype == torch.float32
    (tmp_path / "plain").mkdir()
    TensorRTBackend(write_plan(tmp_path / "plain", b"ordinary plan", metadata=ModelMetadata(size_px=64)), Device("cuda", 0))
    assert fake_trt.state.host_code_allowed_at_deserialise is False


def test_a_plan_tensorrt_cannot_deserialise_says_rebuild(fake_trt: ModuleType, fake_cuda: None, tmp_path: Path) -> None:
    from dermseg_deploy.backends.tensorrt_backend import TensorRTBackend

    fake_trt.state.engine = None
    with pytest.raises(PlanIncompatibleError, match="could not deserialise this plan.*rebuild with dermseg-export"):
        TensorRTBackend(write_plan(tmp_path, b"plan"), Device("cuda", 0))


@pytest.mark.parametrize("context,message", [
    (Context(shape_ok=False), "refused input shape"),
    (Context(refused_address="image"), "refused the address of tensor 'image'"),
    (Context(refused_address="logits"), "refused the address of tensor 'logits'"),
    (Context(execute_ok=False), "execute_async_v3 failed"),
])
def test_every_refusal_while_running_is_an_inference_error(fake_trt: ModuleType, context: Context, message: str) -> None:
    from dermseg_deploy.backends.tensorrt_backend import execute_chunk

    with pytest.raises(InferenceError, match=message) as info:
        execute_chunk(context, "image", "logits", (2, 3, 64, 64), 1000, 2000, 7)  # type: ignore[arg-type]
    assert exit_code_for(info.value) == EXIT_INTERNAL


def test_a_chunk_is_bound_by_name_then_enqueued(fake_trt: ModuleType) -> None:
    from dermseg_deploy.backends.tensorrt_backend import execute_chunk

    context = Context()
    execute_chunk(context, "image", "logits", (2, 3, 64, 64), 1000, 2000, 7)  # type: ignore[arg-type]
    assert context.calls == [("set_input_shape", "image", (2, 3, 64, 64)), ("set_tensor_address", "image", 1000),
                             ("set_tensor_address", "logits", 2000), ("execute_async_v3", 7)]


# ---- build time -----------------------------------------------------------------------------------------


@pytest.fixture()
def device_scope(fake_trt: ModuleType, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Replace the CUDA device scope with one that records the device and tells the fake builder it is inside."""
    from dermseg_deploy.tensorrt import engine_build

    entered: list[int] = []
    inside = {"now": False}

    @contextlib.contextmanager
    def scope(index: int) -> Iterator[engine_build.DeviceInfo]:
        entered.append(index)
        inside["now"] = True
        try:
            yield engine_build.DeviceInfo("Fake GPU 3", (8, 6))
        finally:
            inside["now"] = False

    fake_trt.state.in_device_scope = lambda: inside["now"]
    monkeypatch.setattr(engine_build, "cuda_device_scope", scope)
    return entered


def test_the_build_runs_under_the_device_its_sidecar_records(fake_trt: ModuleType, device_scope: list[int],
                                                             tmp_path: Path) -> None:
    from dermseg_deploy.tensorrt.engine_build import build_plan

    onnx = tmp_path / "model.fp16.onnx"
    onnx.write_bytes(b"onnx")
    built = build_plan(onnx, ModelMetadata(size_px=64), BuildOptions(version_compatible=True), 3, tmp_path / "t.cache")
    assert device_scope == [3]
    assert fake_trt.state.calls == [("Builder", True), ("build_serialized_network", True)]
    assert built.sidecar.gpu_name == "Fake GPU 3" and built.sidecar.compute_capability == (8, 6)
    assert built.plan == b"fake plan bytes" and built.sidecar.plan_sha256 == plan_digest(built.plan)
    assert built.sidecar.version_compatible and "version_compatible" in fake_trt.state.config.flags
    assert (tmp_path / "t.cache").read_bytes() == b"timing cache"


def test_build_failures_list_every_parser_error_or_say_the_builder_failed(
    fake_trt: ModuleType, device_scope: list[int], tmp_path: Path
) -> None:
    from dermseg_deploy.tensorrt.engine_build import EngineBuildError, build_plan

    onnx = tmp_path / "model.fp16.onnx"
    onnx.write_bytes(b"onnx")
    fake_trt.state.parse_ok = False
    with pytest.raises(EngineBuildError, match="2 error.*node 7: unsupported; node 9: bad type"):
        build_plan(onnx, ModelMetadata(size_px=64), BuildOptions(), 0, tmp_path / "t.cache")
    fake_trt.state.parse_ok, fake_trt.state.plan = True, None
    with pytest.raises(EngineBuildError, match="returned no engine"):
        build_plan(onnx, ModelMetadata(size_px=64), BuildOptions(), 0, tmp_path / "t.cache")


# ---- the export's plan step -----------------------------------------------------------------------------


class RecordingBackend:
    """Stands in for TensorRTBackend in the plan step: checks what it is asked to trust, returns set logits."""

    opened: list[tuple[Path, bool, str]] = []
    logits = torch.zeros(0)

    def __init__(self, plan: Path, device: Device, trust_host_code: bool = False) -> None:
        sidecar = json.loads(sidecar_path(plan).read_text())
        RecordingBackend.opened.append((plan, trust_host_code, sidecar["plan_sha256"]))
        self.index = 0

    def __enter__(self) -> RecordingBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def infer(self, images: torch.Tensor) -> torch.Tensor:
        self.index += 1
        return RecordingBackend.logits[self.index - 1 : self.index]


@pytest.mark.parametrize("agrees", [True, False])
def test_the_plan_step_trusts_the_plan_it_built_and_names_it_by_its_check(
    fake_trt: ModuleType, device_scope: list[int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, agrees: bool
) -> None:
    from dermseg_deploy.backends import tensorrt_backend as engine_runtime

    monkeypatch.setattr(engine_runtime, "TensorRTBackend", RecordingBackend)
    monkeypatch.setattr(plan_step, "require_tensorrt", lambda what: None)
    reference = torch.randn(2, 1, 64, 64)
    RecordingBackend.opened, RecordingBackend.logits = [], reference.clone() if agrees else -reference
    onnx = tmp_path / "model.fp16.onnx"
    onnx.write_bytes(b"onnx")
    checks = CheckSet(torch.zeros(2, 3, 64, 64), reference)
    result = plan_step.plan_from_onnx(onnx, tmp_path / "model.plan", tmp_path / "model.failed.plan", tmp_path / "t.cache",
                                      ModelMetadata(size_px=64), BuildOptions(version_compatible=True), checks,
                                      Device("cuda", 0))
    ((checked, trusted, digest),) = RecordingBackend.opened
    assert trusted and digest == plan_digest(b"fake plan bytes") and checked.name.startswith(".dermseg-tmp-")
    assert result.passed is agrees
    name = "model.plan" if agrees else "model.failed.plan"
    assert result.path == tmp_path / name and result.path.read_bytes() == b"fake plan bytes"
    assert json.loads(sidecar_path(result.path).read_text())["plan_sha256"] == digest
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, f"{name}.json", "model.fp16.onnx", "t.cache"])
