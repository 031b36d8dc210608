"""`model.plan.json`: what a TensorRT plan was built from and for, and whether this machine may load it.

The plan stays a plain TensorRT plan (trtexec and Triton load it); everything dermseg needs to know
about it lives here.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ModelFileError
from ..model.metadata import ModelMetadata
from ..model.schema import (
    refuse,
    require_bool,
    require_equal_int,
    require_int,
    require_keys,
    require_mapping,
    require_str,
)
from ..model.sizes import MAX_SIZE_PX
from ..util.atomic import atomic_write_bytes
from ..util.bounded_json import UntrustedJsonError, loads_bounded

SIDECAR_FORMAT_VERSION = 1
REBUILD_HINT = "rebuild with dermseg-export on this machine"
HARDWARE_LEVELS = ("none", "ampere_plus", "same_compute_capability")
AMPERE_COMPUTE_CAPABILITY = (8, 0)


class PlanIncompatibleError(ModelFileError):
    """A plan built for another TensorRT version or GPU, or one TensorRT refused to deserialise."""


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str
    shape: tuple[int, ...]
    """-1 marks a dynamic dimension."""


@dataclass(frozen=True)
class PlanSidecar:
    """Everything recorded next to `model.plan`."""

    metadata: ModelMetadata
    tensorrt_version: str
    gpu_name: str
    compute_capability: tuple[int, int]
    precision: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    source_onnx: str
    source_onnx_sha256: str
    batch_profile: dict[str, int]
    version_compatible: bool = False
    hardware_compatibility: str = "none"
    plan_sha256: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    format_version: int = SIDECAR_FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["metadata"] = self.metadata.to_dict()
        data["compute_capability"] = f"{self.compute_capability[0]}.{self.compute_capability[1]}"
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: Any, source: str = "sidecar") -> PlanSidecar:
        """Check every field's type and range (`schema`: a bool is a bool, a batch is a small positive integer)."""
        try:
            return cls._checked(data)
        except ModelFileError as exc:
            raise ModelFileError(f"{source}: {exc}; {REBUILD_HINT}") from exc

    @classmethod
    def _checked(cls, data: Any) -> PlanSidecar:
        data = require_mapping(data, "sidecar")
        require_equal_int(data.get("format_version"), "format_version", SIDECAR_FORMAT_VERSION,
                          f"this dermseg reads sidecar format {SIDECAR_FORMAT_VERSION}")
        require_keys(data, "sidecar", REQUIRED_FIELDS)
        level = require_str(data.get("hardware_compatibility", "none"), "hardware_compatibility", 64)
        if level not in HARDWARE_LEVELS:
            raise refuse("hardware_compatibility", level, f"must be one of {', '.join(HARDWARE_LEVELS)}")
        digest = require_str(data.get("plan_sha256", ""), "plan_sha256", 64)
        if digest and not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise refuse("plan_sha256", digest, "must be 64 lower-case hex digits")
        return cls(
            metadata=ModelMetadata.from_dict(data["metadata"]),
            tensorrt_version=require_str(data["tensorrt_version"], "tensorrt_version", 64),
            gpu_name=require_str(data["gpu_name"], "gpu_name", 256),
            compute_capability=_compute_capability(data["compute_capability"]),
            precision=require_str(data["precision"], "precision", 64),
            inputs=_tensor_specs(data["inputs"], "inputs"),
            outputs=_tensor_specs(data["outputs"], "outputs"),
            source_onnx=require_str(data["source_onnx"], "source_onnx"),
            source_onnx_sha256=require_str(data["source_onnx_sha256"], "source_onnx_sha256", 64),
            batch_profile=_batch_profile(data["batch_profile"]),
            version_compatible=require_bool(data.get("version_compatible", False), "version_compatible"),
            hardware_compatibility=level,
            plan_sha256=digest,
            extra=dict(require_mapping(data.get("extra", {}), "extra")),
        )


REQUIRED_FIELDS = ("metadata", "tensorrt_version", "gpu_name", "compute_capability", "precision", "inputs", "outputs",
                   "source_onnx", "source_onnx_sha256", "batch_profile")
MAX_PLAN_BATCH = 1024
"""The largest batch a sidecar may record (dermseg-export's --max-batch is far below it)."""
MAX_TENSOR_DIMS = 8


def _compute_capability(value: Any) -> tuple[int, int]:
    text = require_str(value, "compute_capability", 16)
    match = re.fullmatch(r"(\d{1,2})\.(\d{1,2})", text)
    if match is None:
        raise refuse("compute_capability", text, "must be MAJOR.MINOR, such as 9.0")
    return int(match.group(1)), int(match.group(2))


def _batch_profile(value: Any) -> dict[str, int]:
    profile = require_mapping(value, "batch_profile")
    sizes = {key: require_int(profile.get(key), f"batch_profile.{key}", 1, MAX_PLAN_BATCH) for key in ("min", "opt", "max")}
    if not sizes["min"] <= sizes["opt"] <= sizes["max"]:
        raise refuse("batch_profile", profile, "must satisfy min <= opt <= max")
    return sizes


def _tensor_specs(value: Any, field: str) -> tuple[TensorSpec, ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_TENSOR_DIMS:
        raise refuse(field, value, f"must be a list of 1 to {MAX_TENSOR_DIMS} tensor descriptions")
    specs = []
    for index, entry in enumerate(value):
        where = f"{field}[{index}]"
        entry = require_mapping(entry, where)
        shape = entry.get("shape")
        if not isinstance(shape, list) or len(shape) > MAX_TENSOR_DIMS:
            raise refuse(f"{where}.shape", shape, f"must be a list of at most {MAX_TENSOR_DIMS} dimensions")
        dims = tuple(require_int(dim, f"{where}.shape[{axis}]", -1, MAX_SIZE_PX) for axis, dim in enumerate(shape))
        if 0 in dims:
            raise refuse(f"{where}.shape", shape, "dimensions are positive, or -1 for a dynamic one")
        specs.append(TensorSpec(require_str(entry.get("name"), f"{where}.name", 256),
                                require_str(entry.get("dtype"), f"{where}.dtype", 64), dims))
    return tuple(specs)


def sidecar_path(plan_path: str | Path) -> Path:
    """`model.plan` -> `model.plan.json`."""
    plan_path = Path(plan_path)
    return plan_path.with_name(plan_path.name + ".json")


def write_sidecar(plan_path: str | Path, sidecar: PlanSidecar) -> Path:
    """Write the sidecar next to the plan, atomically."""
    path = sidecar_path(plan_path)
    atomic_write_bytes(path, sidecar.to_json().encode("utf-8"))
    return path


def read_sidecar(plan_path: str | Path) -> PlanSidecar:
    """The sidecar of a plan; a missing or malformed one is a ModelFileError that says how to get one."""
    path = sidecar_path(plan_path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ModelFileError(f"{plan_path}: its sidecar {path.name} is missing; {REBUILD_HINT}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{path}: cannot be read ({exc})") from exc
    try:
        data = loads_bounded(text, path)
    except UntrustedJsonError as exc:
        raise ModelFileError(f"{exc}; {REBUILD_HINT}") from exc
    return PlanSidecar.from_dict(data, str(path))


def _version_tuple(version: str) -> tuple[int, ...]:
    parts: list[int] = []
    for piece in version.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


@dataclass(frozen=True)
class LoadPlan:
    """How to load a compatible plan: `allow_host_code` is set for a trusted version-compatible plan."""

    allow_host_code: bool


def check_compatibility(
    sidecar: PlanSidecar, plan_path: str | Path, tensorrt_version: str, compute_capability: tuple[int, int],
    trust_host_code: bool,
) -> LoadPlan:
    """Compare the sidecar with this machine's TensorRT and GPU; raise PlanIncompatibleError that says why.

    A plan built version-compatible always carries host code (TensorRT's lean runtime), which runs here when
    it is deserialised: it loads only when `trust_host_code` (`--trust-plan`), whatever the TensorRT version.
    Same TensorRT version: loads. Another version: only a version-compatible plan, on a newer TensorRT of the
    same major version. Compute capability: equal, unless the plan was built hardware-compatible (Ampere and
    newer, or the same compute capability on any GPU model).
    """
    built, here = _version_tuple(sidecar.tensorrt_version), _version_tuple(tensorrt_version)
    if built != here:
        if not sidecar.version_compatible:
            raise PlanIncompatibleError(
                f"{plan_path}: built with TensorRT {sidecar.tensorrt_version}, this machine has TensorRT "
                f"{tensorrt_version}, and the plan is not version-compatible; {REBUILD_HINT}"
            )
        if not built or not here or built[0] != here[0] or here < built:
            raise PlanIncompatibleError(
                f"{plan_path}: version-compatible plan built with TensorRT {sidecar.tensorrt_version} cannot run "
                f"on TensorRT {tensorrt_version} (needs the same major version, same or newer); {REBUILD_HINT}"
            )
    if sidecar.version_compatible and not trust_host_code:
        raise PlanIncompatibleError(
            f"{plan_path}: a version-compatible plan (built with TensorRT {sidecar.tensorrt_version}) carries host code "
            f"that runs when it is loaded. Pass --trust-plan if you trust its origin, or {REBUILD_HINT} without "
            "--version-compatible"
        )
    built_cc = sidecar.compute_capability
    level = sidecar.hardware_compatibility
    cc_text = f"{compute_capability[0]}.{compute_capability[1]}"
    built_text = f"{built_cc[0]}.{built_cc[1]}"
    if level == "ampere_plus":
        if compute_capability < AMPERE_COMPUTE_CAPABILITY:
            raise PlanIncompatibleError(
                f"{plan_path}: built hardware-compatible for Ampere and newer GPUs (compute capability 8.0+), "
                f"this GPU has {cc_text}; {REBUILD_HINT}"
            )
    elif compute_capability != built_cc:
        raise PlanIncompatibleError(
            f"{plan_path}: built for compute capability {built_text} ({sidecar.gpu_name}), this GPU has {cc_text}; "
            f"{REBUILD_HINT}"
        )
    return LoadPlan(allow_host_code=sidecar.version_compatible)


def plan_digest(plan_bytes: bytes) -> str:
    return hashlib.sha256(plan_bytes).hexdigest()


def check_plan_digest(sidecar: PlanSidecar, plan_bytes: bytes, plan_path: str | Path) -> None:
    """Refuse a plan whose SHA-256 is not the one its sidecar recorded (a swapped or damaged plan)."""
    if not sidecar.plan_sha256:
        raise ModelFileError(f"{plan_path}: its sidecar records no plan SHA-256, so the plan cannot be verified; "
                             f"{REBUILD_HINT}")
    actual = plan_digest(plan_bytes)
    if actual != sidecar.plan_sha256:
        raise ModelFileError(
            f"{plan_path}: its SHA-256 {actual[:16]}... is not the {sidecar.plan_sha256[:16]}... its sidecar recorded "
            f"when it was built (another or a damaged plan beside this sidecar); {REBUILD_HINT}"
        )
