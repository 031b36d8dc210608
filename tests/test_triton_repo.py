"""The Triton model repository: every config parses into Triton's own ModelConfig and matches the model."""

from __future__ import annotations

import shutil
from pathlib import Path

import onnx
import pytest
from click.testing import CliRunner

from dermseg_deploy.cli import export as cli_export
from dermseg_deploy.model.metadata import ModelMetadata
from dermseg_deploy.scale.triton_repo import export_triton_models, write_triton_repo
from dermseg_deploy.tensorrt.sidecar import TensorSpec, sidecar_path

from .test_tensorrt_parts import make_sidecar

model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2",
                                       reason="tritonclient is not installed (the dev extra has it)")
text_format = pytest.importorskip("google.protobuf.text_format")

ONNX_TYPES = {onnx.TensorProto.FLOAT: model_config_pb2.TYPE_FP32, onnx.TensorProto.FLOAT16: model_config_pb2.TYPE_FP16}


def parse(config: Path) -> object:
    return text_format.Parse(config.read_text(), model_config_pb2.ModelConfig())


def test_the_onnx_config_matches_the_graph(onnx_path: Path, tmp_path: Path) -> None:
    (folder,) = write_triton_repo(tmp_path / "repo", export_triton_models("model", onnx_path, None, 8, 4))
    assert folder.name == "model_onnx" and (folder / "1" / "model.onnx").read_bytes() == onnx_path.read_bytes()
    config = parse(folder / "config.pbtxt")
    graph = onnx.load(str(onnx_path)).graph
    assert config.name == "model_onnx" and config.platform == "onnxruntime_onnx" and config.max_batch_size == 8
    for declared, actual in ((config.input, graph.input), (config.output, graph.output)):
        assert [t.name for t in declared] == [v.name for v in actual]
        for tensor, value in zip(declared, actual):
            assert tensor.data_type == ONNX_TYPES[value.type.tensor_type.elem_type]
            shape = [d.dim_value for d in value.type.tensor_type.shape.dim]
            assert list(tensor.dims) == shape[1:] and not value.type.tensor_type.shape.dim[0].HasField("dim_value")
    assert list(config.dynamic_batching.preferred_batch_size) == [4]
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU
    metadata = ModelMetadata.from_json(config.parameters["dermseg.metadata"].string_value)
    assert metadata.size_px == 64 and metadata.input_name == "image"


def test_the_plan_config_matches_the_sidecar(tmp_path: Path) -> None:
    plan = tmp_path / "model.plan"
    plan.write_bytes(b"plan bytes")
    sidecar = make_sidecar(outputs=(TensorSpec("logits", "half", (-1, 1, 1024, 1024)),),
                           metadata=ModelMetadata(size_px=1024, train_data="café data"))  # non-ASCII survives
    sidecar_path(plan).write_text(sidecar.to_json())
    (folder,) = write_triton_repo(tmp_path / "repo", export_triton_models("model", None, plan, 99, 99))
    config = parse(folder / "config.pbtxt")
    assert folder.name == "model_tensorrt" and (folder / "1" / "model.plan").read_bytes() == b"plan bytes"
    assert config.platform == "tensorrt_plan" and config.max_batch_size == sidecar.batch_profile["max"] == 8
    assert list(config.dynamic_batching.preferred_batch_size) == [sidecar.batch_profile["opt"]]
    declared = [(t.name, t.data_type, list(t.dims)) for t in (*config.input, *config.output)]
    assert declared == [("image", model_config_pb2.TYPE_FP32, [3, 1024, 1024]),
                        ("logits", model_config_pb2.TYPE_FP16, [1, 1024, 1024])]
    assert ModelMetadata.from_json(config.parameters["dermseg.metadata"].string_value).train_data == "café data"


@pytest.mark.parametrize("wrong,right", [("max_batch_size", "max_batch_sise"), ("TYPE_FP32", "TYPE_FP33"),
                                         ("KIND_GPU", "KIND_GPUS")])
def test_a_misspelt_field_or_value_is_caught(onnx_path: Path, tmp_path: Path, wrong: str, right: str) -> None:
    (folder,) = write_triton_repo(tmp_path / "repo", export_triton_models("model", onnx_path, None, 8, 4))
    text = (folder / "config.pbtxt").read_text()
    assert wrong in text
    with pytest.raises(text_format.ParseError):
        text_format.Parse(text.replace(wrong, right, 1), model_config_pb2.ModelConfig())


def test_export_cli_writes_a_repository_of_what_it_checked(checkpoint_path: Path, tmp_path: Path) -> None:
    model = tmp_path / "model.pt"
    shutil.copy(checkpoint_path, model)
    repo = tmp_path / "repo"
    result = CliRunner().invoke(cli_export.main, [str(model), "--size", "64", "--no-engine", "--triton-repo", str(repo)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in repo.iterdir()) == ["model_onnx"]  # no plan was built: none in the repository
    assert (repo / "model_onnx" / "1" / "model.onnx").read_bytes() == (tmp_path / "model.onnx").read_bytes()
    assert parse(repo / "model_onnx" / "config.pbtxt").max_batch_size == 8
    assert "wrote the Triton model repository" in result.output
