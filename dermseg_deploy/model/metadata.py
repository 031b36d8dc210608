"""The input spec that travels with every model file (checkpoint, ONNX metadata_props, plan sidecar)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ..errors import ModelFileError
from ..util.bounded_json import UntrustedJsonError, loads_bounded
from .quality_model import QUALITY_KEY, QualityModel
from .schema import (
    refuse,
    require_equal_int,
    require_finite,
    require_int,
    require_keys,
    require_mapping,
    require_numbers,
    require_optional_str,
    require_str,
)
from .sizes import MAX_SIZE_PX, SIZE_RULE, is_valid_size
from .tensor_names import INPUT_NAME, OUTPUT_NAME

METADATA_FORMAT_VERSION = 1
ONNX_METADATA_KEY = "dermseg.metadata"
OPENVINO_METADATA_PATH = ("dermseg", "metadata")
"""Where an OpenVINO IR keeps the same JSON: `rt_info/dermseg/metadata` (`Model.get_rt_info(list(...))`)."""
DEFAULT_DEPLOY_SIZE_PX = 1024
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


METADATA_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("size_px", "integer", "the square input side the deployed model expects: a multiple of 32, at most 4096"),
    ("mean", "3 numbers", "the RGB mean subtracted from a 0-1 image, finite"),
    ("std", "3 numbers", "the RGB standard deviation it is divided by, finite and above 0"),
    ("threshold", "number", "the lesion probability threshold, strictly between 0 and 1: masks are logits > "
                            "logit(threshold)"),
    ("input_name", "text", "the graph's input tensor (`image`)"),
    ("output_name", "text", "the graph's output tensor of logits (`logits`)"),
    ("train_size_px", "integer or null", "the size the weights were trained at"),
    ("train_data", "text or null", "what they were trained on"),
    ("format_version", "integer", "the metadata format: 1"),
    ("extra", "mapping", "anything else: `precision` and `calibration` of an INT8 file, `quality` (the calibration of "
                         "the predicted Jaccard: `dermseg_deploy/model/quality_model.py`), AutoCast's FP32 nodes"),
)
"""The fields of `ModelMetadata`, their types and what they mean (the documentation's table; a test holds the two
together)."""


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
            raise ModelFileError(f"model metadata size_px {self.size_px}: {SIZE_RULE}")
        values = (*self.mean, *self.std, self.threshold)
        if len(self.mean) != 3 or len(self.std) != 3 or not all(math.isfinite(v) for v in values):
            raise ModelFileError(f"model metadata mean/std must be 3 finite values each: {self.mean}, {self.std}")
        if any(s <= 0 for s in self.std):
            raise ModelFileError(f"model metadata std {self.std}: every value must be above 0")
        if not 0.0 < self.threshold < 1.0:
            raise ModelFileError(f"model metadata threshold {self.threshold} must lie strictly between 0 and 1")

    @property
    def quality(self) -> QualityModel | None:
        """The calibration of the predicted Jaccard this model carries, if any (`quality_model`)."""
        data = self.extra.get(QUALITY_KEY)
        return None if data is None else QualityModel.from_dict(data)

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
    def from_dict(cls, data: Any) -> ModelMetadata:
        """Build from what a model file carries, checking every field's type and range first (`schema`)."""
        data = require_mapping(data, "metadata")
        require_keys(data, "metadata", ("format_version", "size_px", "mean", "std", "threshold"))
        require_equal_int(data["format_version"], "metadata.format_version", METADATA_FORMAT_VERSION,
                          f"this dermseg reads metadata format {METADATA_FORMAT_VERSION}")
        size_px = require_int(data["size_px"], "metadata.size_px", 1, MAX_SIZE_PX)
        if not is_valid_size(size_px):
            raise refuse("metadata.size_px", size_px, SIZE_RULE)
        std = require_numbers(data["std"], "metadata.std", 3)
        if any(value <= 0 for value in std):
            raise refuse("metadata.std", data["std"], "every value must be above 0")
        threshold = require_finite(data["threshold"], "metadata.threshold")
        if not 0.0 < threshold < 1.0:
            raise refuse("metadata.threshold", threshold, "must lie strictly between 0 and 1 (a probability)")
        train_size = data.get("train_size_px")
        extra = require_mapping(data.get("extra", {}), "metadata.extra")
        if QUALITY_KEY in extra:
            QualityModel.from_dict(extra[QUALITY_KEY])  # refused here, with the field, if it is malformed
        known = set(cls.__dataclass_fields__)
        return cls(
            size_px=size_px,
            mean=require_numbers(data["mean"], "metadata.mean", 3),  # type: ignore[arg-type]
            std=std,  # type: ignore[arg-type]
            threshold=threshold,
            input_name=require_str(data.get("input_name", INPUT_NAME), "metadata.input_name", 256),
            output_name=require_str(data.get("output_name", OUTPUT_NAME), "metadata.output_name", 256),
            train_size_px=None if train_size is None else require_int(train_size, "metadata.train_size_px", 1,
                                                                         MAX_SIZE_PX),
            train_data=require_optional_str(data.get("train_data"), "metadata.train_data"),
            extra={**extra, **{key: value for key, value in data.items() if key not in known}},
        )

    @classmethod
    def from_json(cls, text: str) -> ModelMetadata:
        try:
            data = loads_bounded(text, "model metadata")
        except UntrustedJsonError as exc:
            raise ModelFileError(str(exc)) from exc
        return cls.from_dict(data)
