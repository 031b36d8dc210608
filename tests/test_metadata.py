from __future__ import annotations

import math
from pathlib import Path

import onnx
import pytest

from dermseg_deploy.backends.onnxruntime_backend import OnnxRuntimeBackend
from dermseg_deploy.errors import ModelFileError
from dermseg_deploy.model.metadata import ONNX_METADATA_KEY, ModelMetadata
from dermseg_deploy.model.tensor_names import INPUT_NAME, OUTPUT_NAME


def test_json_round_trip() -> None:
    metadata = ModelMetadata(size_px=512, threshold=0.3, train_size_px=256, train_data="isic")
    assert ModelMetadata.from_json(metadata.to_json()) == metadata


def test_logit_threshold_is_the_logit_of_the_probability() -> None:
    assert ModelMetadata(threshold=0.5).logit_threshold == 0.0
    assert math.isclose(ModelMetadata(threshold=0.8).logit_threshold, math.log(4.0))


def test_unknown_fields_are_kept_as_extra() -> None:
    data = ModelMetadata().to_dict() | {"future_field": 1}
    assert ModelMetadata.from_dict(data).extra == {"future_field": 1}


@pytest.mark.parametrize("change,expected", [
    ({"size_px": 100}, "multiple of 32"),
    ({"threshold": 1.0}, "threshold"),
    ({"format_version": 99}, "format_version = 99: must be the integer 1"),
    ({"std": [0, 1, 1]}, "std"),
])
def test_invalid_metadata_is_a_model_file_error(change: dict[str, object], expected: str) -> None:
    with pytest.raises(ModelFileError, match=expected):
        ModelMetadata.from_dict(ModelMetadata().to_dict() | change)


def test_missing_fields_are_named() -> None:
    with pytest.raises(ModelFileError, match="size_px"):
        ModelMetadata.from_dict({"mean": [0, 0, 0]})
    with pytest.raises(ModelFileError, match="not valid JSON"):
        ModelMetadata.from_json("{")


def test_onnx_carries_the_metadata_and_tensor_names(onnx_path: Path) -> None:
    proto = onnx.load(str(onnx_path))
    (entry,) = [p for p in proto.metadata_props if p.key == ONNX_METADATA_KEY]
    metadata = ModelMetadata.from_json(entry.value)
    assert metadata.size_px == 64 and metadata.train_size_px == 64
    assert [i.name for i in proto.graph.input] == [INPUT_NAME]
    assert [o.name for o in proto.graph.output] == [OUTPUT_NAME]
    with OnnxRuntimeBackend(onnx_path) as backend:
        assert backend.metadata.size_px == 64
        assert backend.metadata.mean == metadata.mean
