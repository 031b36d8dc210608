"""The input spec that travels with every model file (checkpoint, ONNX metadata_props, plan sidecar)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from .errors import ModelFileError
from .sizes import SIZE_MULTIPLE, is_valid_size
from .tensor_names import INPUT_NAME, OUTPUT_NAME

METADATA_FORMAT_VERSION = 1
ONNX_METADATA_KEY = "dermseg.metadata"
DEFAULT_DEPLOY_SIZE_PX = 1024
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelMetadata:
    """How to feed a model and read its output.

    `size_px` is the square input side the deployed model expects; `mean`/`std` are RGB on a 0-1 scale;
    masks are `logits > logit(threshold)`.
    """

    size_px: int = DEFAULT_DEPLOY_SIZE_PX
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    threshold: float = 0.5
    input_name: str = INPUT_NAME
    output_name: str = OUTPUT_NAME
    train_size_px: int | None = None
    train_data: str | None = None
    format_version: int = METADATA_FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.format_version != METADATA_FORMAT_VERSION:
            raise ModelFileError(
                f"model metadata format_version {self.format_version} is not supported "
                f"(this dermseg reads {METADATA_FORMAT_VERSION})"
            )
        if not is_valid_size(self.size_px):
            raise ModelFileError(f"model metadata size_px {self.size_px} is not a positive multiple of {SIZE_MULTIPLE}")
        if len(self.mean) != 3 or len(self.std) != 3 or any(s <= 0 for s in self.std):
            raise ModelFileError(f"model metadata mean/std must be 3 values each, std > 0: {self.mean}, {self.std}")
        if not 0.0 < self.threshold < 1.0:
            raise ModelFileError(f"model metadata threshold {self.threshold} must lie strictly between 0 and 1")

    @property
    def logit_threshold(self) -> float:
        """The threshold on logits that equals `probability > threshold`."""
        return math.log(self.threshold / (1.0 - self.threshold))

    def with_updates(self, **changes: Any) -> ModelMetadata:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["mean"] = list(self.mean)
        data["std"] = list(self.std)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelMetadata:
        if not isinstance(data, dict):
            raise ModelFileError(f"model metadata must be a JSON object, found {type(data).__name__}")
        known = set(cls.__dataclass_fields__)
        missing = {"size_px", "mean", "std", "threshold", "format_version"} - set(data)
        if missing:
            raise ModelFileError(f"model metadata lacks fields {sorted(missing)}")
        unknown = {k: v for k, v in data.items() if k not in known}
        fields = {k: v for k, v in data.items() if k in known}
        try:
            fields["mean"] = tuple(float(v) for v in fields["mean"])
            fields["std"] = tuple(float(v) for v in fields["std"])
            fields["size_px"] = int(fields["size_px"])
            fields["threshold"] = float(fields["threshold"])
            fields["extra"] = {**fields.get("extra", {}), **unknown}
            return cls(**fields)
        except (TypeError, ValueError) as exc:
            raise ModelFileError(f"model metadata is malformed: {exc}") from exc

    @classmethod
    def from_json(cls, text: str) -> ModelMetadata:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelFileError(f"model metadata is not valid JSON: {exc}") from exc
        return cls.from_dict(data)
