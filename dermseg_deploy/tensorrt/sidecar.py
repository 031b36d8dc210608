"""`model.plan.json`: what a TensorRT plan was built from and for, and whether this machine may load it.

The plan stays a plain TensorRT plan (trtexec and Triton load it); everything dermseg needs to know
about it lives here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_bytes
from ..errors import ModelFileError
from ..metadata import ModelMetadata

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
    def from_dict(cls, data: dict[str, Any], source: str = "sidecar") -> PlanSidecar:
        if not isinstance(data, dict):
            raise ModelFileError(f"{source}: must hold a JSON object")
        if data.get("format_version") != SIDECAR_FORMAT_VERSION:
            raise ModelFileError(
                f"{source}: format_version {data.get('format_version')!r} is not supported "
                f"(this dermseg reads {SIDECAR_FORMAT_VERSION}); {REBUILD_HINT}"
            )
        try:
            major, minor = (int(part) for part in str(data["compute_capability"]).split("."))
            level = str(data.get("hardware_compatibility", "none"))
            if level not in HARDWARE_LEVELS:
                raise ValueError(f"unknown hardware_compatibility {level!r}")
            return cls(
                metadata=ModelMetadata.from_dict(data["metadata"]),
                tensorrt_version=str(data["tensorrt_version"]),
                gpu_name=str(data["gpu_name"]),
                compute_capability=(major, minor),
                precision=str(data["precision"]),
                inputs=tuple(_tensor_spec(entry) for entry in data["inputs"]),
                outputs=tuple(_tensor_spec(entry) for entry in data["outputs"]),
                source_onnx=str(data["source_onnx"]),
                source_onnx_sha256=str(data["source_onnx_sha256"]),
                batch_profile={key: int(data["batch_profile"][key]) for key in ("min", "opt", "max")},
                version_compatible=bool(data.get("version_compatible", False)),
                hardware_compatibility=level,
                plan_sha256=str(data.get("plan_sha256", "")),
                extra=dict(data.get("extra", {})),
            )
        except ModelFileError as exc:
            raise ModelFileError(f"{source}: {exc}") from exc
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"{source}: malformed ({type(exc).__name__}: {exc}); {REBUILD_HINT}") from exc


def _tensor_spec(entry: dict[str, Any]) -> TensorSpec:
    return TensorSpec(str(entry["name"]), str(entry["dtype"]), tuple(int(d) for d in entry["shape"]))


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
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{path}: not valid JSON ({exc}); {REBUILD_HINT}") from exc
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
