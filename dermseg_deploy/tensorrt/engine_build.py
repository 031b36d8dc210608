"""FP16 ONNX -> TensorRT plan bytes and sidecar: a strongly typed network, one batch profile, a timing cache.

Written to the TensorRT 10.8+ and 11.x Python APIs (the calls are type-checked against tensorrt-stubs).
Import only after `availability.require_tensorrt`. The build runs with the CUDA device it records in the
sidecar made current, so the plan is built for the GPU the sidecar names.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import tensorrt as trt
import torch

from ..errors import CheckFailedError, ModelFileError
from ..model.metadata import ModelMetadata
from ..util.atomic import atomic_write_bytes
from ..util.digest import file_sha256
from .build_options import BuildOptions
from .sidecar import PlanSidecar, TensorSpec, plan_digest

HARDWARE_LEVEL_BY_NAME = {
    "none": trt.HardwareCompatibilityLevel.NONE,
    "ampere_plus": trt.HardwareCompatibilityLevel.AMPERE_PLUS,
    "same_compute_capability": trt.HardwareCompatibilityLevel.SAME_COMPUTE_CAPABILITY,
}


class EngineBuildError(CheckFailedError):
    """The ONNX parser or the TensorRT builder failed."""


@dataclass(frozen=True)
class DeviceInfo:
    name: str
    compute_capability: tuple[int, int]


@contextlib.contextmanager
def cuda_device_scope(index: int) -> Iterator[DeviceInfo]:
    """Make CUDA device `index` current (TensorRT builds for the current device) and describe it."""
    with torch.cuda.device(index):
        properties = torch.cuda.get_device_properties(index)
        yield DeviceInfo(properties.name, (properties.major, properties.minor))


@dataclass(frozen=True)
class BuiltPlan:
    """The serialised plan and the sidecar that describes it (nothing written yet)."""

    plan: bytes
    sidecar: PlanSidecar


def _parse_onnx(network: trt.INetworkDefinition, logger: trt.ILogger, onnx_path: Path) -> None:
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(index)) for index in range(parser.num_errors)]
        listed = "; ".join(errors) or "no error recorded"
        raise EngineBuildError(f"{onnx_path}: TensorRT's ONNX parser failed with {len(errors)} error(s): {listed}")


def _tensor_spec(tensor: trt.ITensor) -> TensorSpec:
    shape = tensor.shape
    return TensorSpec(tensor.name, str(tensor.dtype).rsplit(".", 1)[-1].lower(), tuple(shape[i] for i in range(len(shape))))


def _configure(
    builder: trt.Builder, metadata: ModelMetadata, options: BuildOptions, cache_bytes: bytes
) -> trt.IBuilderConfig:
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_bytes)
    config.builder_optimization_level = options.optimization_level
    minimum, optimum, maximum = options.profile.shapes(metadata.size_px)
    profile = builder.create_optimization_profile()
    profile.set_shape(metadata.input_name, trt.Dims(list(minimum)), trt.Dims(list(optimum)), trt.Dims(list(maximum)))
    config.add_optimization_profile(profile)
    cache = config.create_timing_cache(cache_bytes)
    if not config.set_timing_cache(cache, ignore_mismatch=False):
        raise EngineBuildError("TensorRT refused the timing cache; delete it and build again")
    if options.version_compatible:
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
    config.hardware_compatibility_level = HARDWARE_LEVEL_BY_NAME[options.hardware_compatibility]
    return config


def build_plan(
    onnx_path: Path, metadata: ModelMetadata, options: BuildOptions, device_index: int, timing_cache: Path
) -> BuiltPlan:
    """Build a plan from an FP16 ONNX file on CUDA device `device_index`; the timing cache is read from and saved
    to `timing_cache` (atomically). The plan and its sidecar are returned, not written."""
    if not onnx_path.is_file():
        raise ModelFileError(f"{onnx_path}: ONNX model not found")
    with cuda_device_scope(device_index) as device:
        logger = trt.Logger(trt.Logger.WARNING)
        builder = trt.Builder(logger)
        network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
        _parse_onnx(network, logger, onnx_path)
        names_in = [network.get_input(i).name for i in range(network.num_inputs)]
        names_out = [network.get_output(i).name for i in range(network.num_outputs)]
        if names_in != [metadata.input_name] or names_out != [metadata.output_name]:
            raise ModelFileError(f"{onnx_path}: I/O {names_in} -> {names_out}, expected {metadata.input_name} -> "
                                 f"{metadata.output_name}")
        cache_bytes = timing_cache.read_bytes() if timing_cache.is_file() else b""
        config = _configure(builder, metadata, options, cache_bytes)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise EngineBuildError(f"{onnx_path}: TensorRT's builder returned no engine (its log above says why)")
        plan_bytes = bytes(memoryview(serialized))
        atomic_write_bytes(timing_cache, bytes(config.get_timing_cache().serialize()))
        inputs = tuple(_tensor_spec(network.get_input(i)) for i in range(network.num_inputs))
        outputs = tuple(_tensor_spec(network.get_output(i)) for i in range(network.num_outputs))
    sidecar = PlanSidecar(
        metadata=metadata,
        tensorrt_version=trt.__version__,
        gpu_name=device.name,
        compute_capability=device.compute_capability,
        precision="fp16 (strongly typed from the FP16 ONNX)",
        inputs=inputs,
        outputs=outputs,
        source_onnx=onnx_path.name,
        source_onnx_sha256=file_sha256(onnx_path),
        batch_profile=options.profile.to_dict(),
        version_compatible=options.version_compatible,
        hardware_compatibility=options.hardware_compatibility,
        plan_sha256=plan_digest(plan_bytes),
        extra={"workspace_bytes": options.workspace_bytes, "optimization_level": options.optimization_level},
    )
    return BuiltPlan(plan_bytes, sidecar)
