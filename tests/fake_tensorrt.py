"""A stand-in for the `tensorrt` module: just enough of its API for engine_build and the TensorRT backend to run
without TensorRT or a GPU, recording what they call. Behaviour is switched per test through attributes."""

from __future__ import annotations

import enum
import types
from typing import Any


class DataType(enum.Enum):
    FLOAT = 0
    HALF = 1
    BF16 = 2
    INT32 = 3
    INT64 = 4
    INT8 = 5
    UINT8 = 6
    BOOL = 7


class TensorIOMode(enum.Enum):
    INPUT = 1
    OUTPUT = 2


class Logger:
    WARNING = 2

    def __init__(self, severity: int = 2) -> None:
        self.severity = severity


class Tensor:
    def __init__(self, name: str, shape: tuple[int, ...], dtype: DataType = DataType.FLOAT) -> None:
        self.name, self.shape, self.dtype = name, shape, dtype


class Network:
    def __init__(self, state: Any) -> None:
        self.inputs = [Tensor("image", (-1, 3, 64, 64))]
        self.outputs = [Tensor("logits", (-1, 1, 64, 64))]

    @property
    def num_inputs(self) -> int:
        return len(self.inputs)

    @property
    def num_outputs(self) -> int:
        return len(self.outputs)

    def get_input(self, index: int) -> Tensor:
        return self.inputs[index]

    def get_output(self, index: int) -> Tensor:
        return self.outputs[index]


class TimingCache:
    def serialize(self) -> bytes:
        return b"timing cache"


class Config:
    def __init__(self) -> None:
        self.flags: list[Any] = []
        self.builder_optimization_level = 3
        self.hardware_compatibility_level: Any = None

    def set_memory_pool_limit(self, pool: Any, size: int) -> None:
        self.workspace = size

    def add_optimization_profile(self, profile: Any) -> int:
        return 0

    def create_timing_cache(self, data: bytes) -> TimingCache:
        return TimingCache()

    def set_timing_cache(self, cache: TimingCache, ignore_mismatch: bool) -> bool:
        return True

    def get_timing_cache(self) -> TimingCache:
        return TimingCache()

    def set_flag(self, flag: Any) -> None:
        self.flags.append(flag)


class Profile:
    def set_shape(self, name: str, minimum: Any, optimum: Any, maximum: Any) -> None:
        self.shapes = (name, minimum, optimum, maximum)


def make_fake_tensorrt() -> types.ModuleType:
    """A fresh fake module; `module.state` holds the switches and the record of calls."""
    module = types.ModuleType("tensorrt")
    state = types.SimpleNamespace()
    state.parse_ok = True
    state.parser_errors = ["node 7: unsupported", "node 9: bad type"]
    state.plan = b"fake plan bytes"
    state.engine = None
    state.calls = []
    state.in_device_scope = lambda: True
    state.host_code_allowed_at_deserialise = None

    class Builder:
        def __init__(self, logger: Logger) -> None:
            state.calls.append(("Builder", state.in_device_scope()))

        def create_network(self, flags: int) -> Network:
            state.network_flags = flags
            return Network(state)

        def create_builder_config(self) -> Config:
            state.config = Config()
            return state.config

        def create_optimization_profile(self) -> Profile:
            state.profile = Profile()
            return state.profile

        def build_serialized_network(self, network: Network, config: Config) -> Any:
            state.calls.append(("build_serialized_network", state.in_device_scope()))
            return None if state.plan is None else memoryview(state.plan)

    class OnnxParser:
        def __init__(self, network: Network, logger: Logger) -> None:
            pass

        def parse_from_file(self, path: str) -> bool:
            return bool(state.parse_ok)

        @property
        def num_errors(self) -> int:
            return 0 if state.parse_ok else len(state.parser_errors)

        def get_error(self, index: int) -> str:
            return str(state.parser_errors[index])

    class Runtime:
        def __init__(self, logger: Logger) -> None:
            self.engine_host_code_allowed = False

        def deserialize_cuda_engine(self, data: bytes) -> Any:
            state.calls.append(("deserialize_cuda_engine", len(data)))
            state.host_code_allowed_at_deserialise = self.engine_host_code_allowed
            return state.engine

    module.DataType = DataType
    module.TensorIOMode = TensorIOMode
    module.Logger = Logger
    module.Builder = Builder
    module.OnnxParser = OnnxParser
    module.Runtime = Runtime
    module.Dims = list
    module.MemoryPoolType = types.SimpleNamespace(WORKSPACE="workspace")
    module.BuilderFlag = types.SimpleNamespace(VERSION_COMPATIBLE="version_compatible")
    module.NetworkDefinitionCreationFlag = types.SimpleNamespace(STRONGLY_TYPED=0)
    module.HardwareCompatibilityLevel = types.SimpleNamespace(NONE="none", AMPERE_PLUS="ampere_plus",
                                                               SAME_COMPUTE_CAPABILITY="same_compute_capability")
    module.__version__ = "10.13.0.35"
    module.state = state
    return module


class Engine:
    """A deserialised engine with one input `image` and one output `logits`, FP32, batch profile 1..4."""

    names = ("image", "logits")

    def __init__(self, context: Any = "context") -> None:
        self.context = context

    def create_execution_context(self) -> Any:
        return self.context

    @property
    def num_io_tensors(self) -> int:
        return 2

    def get_tensor_name(self, index: int) -> str:
        return self.names[index]

    def get_tensor_mode(self, name: str) -> TensorIOMode:
        return TensorIOMode.INPUT if name == "image" else TensorIOMode.OUTPUT

    def get_tensor_dtype(self, name: str) -> DataType:
        return DataType.FLOAT

    def get_tensor_profile_shape(self, name: str, profile: int) -> list[tuple[int, ...]]:
        return [(1, 3, 64, 64), (2, 3, 64, 64), (4, 3, 64, 64)]


class Context:
    """Answers set_input_shape / set_tensor_address / execute_async_v3 as told, recording the calls."""

    def __init__(self, shape_ok: bool = True, refused_address: str | None = None, execute_ok: bool = True) -> None:
        self.shape_ok, self.refused_address, self.execute_ok = shape_ok, refused_address, execute_ok
        self.calls: list[tuple[Any, ...]] = []

    def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool:
        self.calls.append(("set_input_shape", name, shape))
        return self.shape_ok

    def set_tensor_address(self, name: str, address: int) -> bool:
        self.calls.append(("set_tensor_address", name, address))
        return name != self.refused_address

    def execute_async_v3(self, stream: int) -> bool:
        self.calls.append(("execute_async_v3", stream))
        return self.execute_ok
