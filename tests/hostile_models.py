"""Malformed and hostile model files, and the runner that feeds them to dermseg-run under a memory limit.

`build_cases(kind, folder, full_state_dict)` writes one kind's files (checkpoint, onnx, sidecar) and returns
the cases; `python -m tests.hostile_models CASES_JSON RESULTS_JSON` runs them all in one process whose
address space is capped a few GB above what it holds after its imports, so that a refusal that only comes
from a failed allocation shows as a failure, not as a pass.
"""

from __future__ import annotations

import copy
import json
import os
import resource
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MEMORY_HEADROOM = 3 * 1024**3
"""Bytes of address space the runner may use above its baseline."""
TINY_SIZE = 64


@dataclass(frozen=True)
class Case:
    """One model file run by `dermseg-run --engine <model> <image>`; `expect` must appear in the one error line."""

    name: str
    model: str
    expect: str
    exit_code: int = 2
    flags: list[str] = field(default_factory=list)


# ---- checkpoints ------------------------------------------------------------------------------------------


def _base_checkpoint(state_dict: dict[str, Any]) -> dict[str, Any]:
    from dermseg_deploy.model.metadata import ModelMetadata
    from dermseg_deploy.model.model_config import ModelConfig

    return {"format_version": 1, "model_config": ModelConfig().to_dict(),
            "metadata": ModelMetadata(size_px=TINY_SIZE).to_dict(), "state_dict": state_dict, "metrics": {},
            "provenance": {}}


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    keys = path.split(".")

    def change(data: dict[str, Any]) -> None:
        target = data
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return change


class _Evil:
    """Unpickling this runs a shell command: weights_only loading must refuse it."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("echo pwned",))


def checkpoint_cases(folder: Path, full_state_dict: dict[str, Any]) -> list[Case]:
    import torch

    small = {"head.bias": torch.zeros(1)}
    nan = float("nan")
    edits: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
        ("format_version as a string", _set("format_version", "1"), "format_version = '1': must be the integer 1"),
        ("format_version 2", _set("format_version", 2), "format_version = 2: must be the integer 1"),
        ("model_config a string", _set("model_config", "resnet34"), "model_config = 'resnet34': must be a mapping"),
        ("model_config a list", _set("model_config", [1, 2]), "model_config = [1, 2]: must be a mapping"),
        ("out_channels 1e9", _set("model_config.out_channels", 10**9),
         "model_config.out_channels = 1000000000: must be the integer 1"),
        ("in_channels 4", _set("model_config.in_channels", 4), "model_config.in_channels = 4: must be the integer 3"),
        ("another architecture", _set("model_config.architecture", "vgg16"),
         "model_config.architecture = 'vgg16': this dermseg builds only"),
        ("unknown model_config key", _set("model_config.width", 10**6), "model_config = ['width']: unknown keys"),
        ("last_cross a string", _set("model_config.last_cross", "false"),
         "model_config.last_cross = 'false': must be true or false"),
        ("metadata a string", _set("metadata", "fast"), "metadata = 'fast': must be a mapping"),
        ("size_px 2**20", _set("metadata.size_px", 2**20), "metadata.size_px = 1048576: must be at most 4096"),
        ("size_px 64.9", _set("metadata.size_px", 64.9), "metadata.size_px = 64.9: must be an integer"),
        ("size_px 100", _set("metadata.size_px", 100), "metadata.size_px = 100: must be a positive multiple of 32"),
        ("mean a string", _set("metadata.mean", "123"), "metadata.mean = '123': must be a list of 3 numbers"),
        ("mean NaN", _set("metadata.mean", [nan, 0.5, 0.5]), "metadata.mean[0] = nan: must be finite"),
        ("std inf", _set("metadata.std", [0.2, float("inf"), 0.2]), "metadata.std[1] = inf: must be finite"),
        ("std zero", _set("metadata.std", [0.2, 0.0, 0.2]), "metadata.std = [0.2, 0.0, 0.2]: every value must be above 0"),
        ("threshold 1.5", _set("metadata.threshold", 1.5), "metadata.threshold = 1.5: must lie strictly between 0 and 1"),
        ("threshold NaN", _set("metadata.threshold", nan), "metadata.threshold = nan: must be finite"),
        ("metadata format_version a string", _set("metadata.format_version", "1"),
         "metadata.format_version = '1': must be the integer 1"),
        ("state_dict a string", _set("state_dict", "weights"), "state_dict = 'weights': must be a mapping"),
        ("state_dict a list", _set("state_dict", [1.0]), "state_dict = [1.0]: must be a mapping"),
        ("an int among the weights", _set("state_dict", {"head.bias": 3}), "state_dict['head.bias'] = 3: must be a tensor"),
        ("metrics a string", _set("metrics", "great"), "metrics = 'great': must be a mapping"),
        ("provenance a list", _set("provenance", ["me"]), "provenance = ['me']: must be a mapping"),
        ("weights that do not match", lambda data: None, "weights do not match the model: missing keys"),
    ]
    cases = []
    for index, (name, change, expect) in enumerate(edits):
        data = _base_checkpoint(dict(small))
        change(data)
        path = folder / f"checkpoint-{index:02d}.pt"
        torch.save(data, path)
        cases.append(Case(name, str(path), expect))
    for name, weights, expect in (
        ("head.bias inf", {**full_state_dict, "head.bias": torch.full((1,), float("inf"))},
         "state_dict['head.bias'] holds non-finite values"),
        ("all weights NaN", {k: v.float().fill_(nan) if v.is_floating_point() else v for k, v in
                             copy.deepcopy(full_state_dict).items()}, "holds non-finite values (NaN or inf)"),
    ):
        path = folder / f"checkpoint-{name.replace(' ', '-')}.pt"
        torch.save(_base_checkpoint(weights), path)
        cases.append(Case(name, str(path), expect))
    evil = folder / "checkpoint-code.pt"
    torch.save({**_base_checkpoint(small), "provenance": {"x": _Evil()}}, evil)
    cases.append(Case("code in the pickle", str(evil), "refused to load"))
    huge = folder / "checkpoint-huge-storage.pt"
    _declare_huge_storage(folder / "small-tensor.pt", huge)
    cases.append(Case("a storage declared 200 GB", str(huge), "record size (40 bytes) does not match expected size"))
    not_dict = folder / "checkpoint-list.pt"
    torch.save([1, 2, 3], not_dict)
    cases.append(Case("a list, not a checkpoint", str(not_dict), "not a dermseg checkpoint (found list"))
    cases.append(Case("--size 100000", str(folder / "checkpoint-00.pt"),
                      "--size 100000: must be a positive multiple of 32, at most 4096", flags=["--size", "100000"]))
    return cases


def _declare_huge_storage(small: Path, huge: Path) -> None:
    """A checkpoint whose one storage declares 200 GB while its record holds 40 bytes (the pickle says the size)."""
    import zipfile

    import torch

    torch.save({"w": torch.zeros(10)}, small)
    with zipfile.ZipFile(small) as source, zipfile.ZipFile(huge, "w") as target:
        for name in source.namelist():
            data = source.read(name)
            if name.endswith("data.pkl"):
                declared = b"X\x03\x00\x00\x00cpuq\x06K\n"  # location 'cpu', then the storage's numel 10
                assert declared in data
                data = data.replace(declared, declared[:-2] + b"\x8a\x08" + (200 * 10**9).to_bytes(8, "little"))
            target.writestr(name, data)


# ---- ONNX files ---------------------------------------------------------------------------------------------


def tiny_onnx(path: Path, *, in_shape: list[Any] | None = None, out_shape: list[Any] | None = None,
              out_channels: int = 1, out_type: int | None = None, metadata: str | None = "default",
              extra_input: bool = False, pool: bool = False, double_batch: bool = False, squeeze: bool = False) -> Path:
    """A 1x1 convolution from RGB to `out_channels` logits, declared with the shapes given (or N x 3 x 64 x 64)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from dermseg_deploy.model.metadata import ONNX_METADATA_KEY, ModelMetadata

    in_shape = in_shape or ["N", 3, TINY_SIZE, TINY_SIZE]
    out_shape = out_shape or ["N", out_channels, TINY_SIZE, TINY_SIZE]
    weight = numpy_helper.from_array(np.full((out_channels, in_shape[1] if isinstance(in_shape[1], int) else 3, 1, 1),
                                             0.1, dtype=np.float32), "weight")
    nodes = [helper.make_node("Conv", ["image", "weight"], ["conv"])]
    last = "conv"
    if pool:
        nodes.append(helper.make_node("AveragePool", [last], ["pooled"], kernel_shape=[2, 2], strides=[2, 2]))
        last = "pooled"
    if double_batch:
        nodes.append(helper.make_node("Concat", [last, last], ["doubled"], axis=0))
        last = "doubled"
    if squeeze:
        axes = numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")
        nodes.append(helper.make_node("Squeeze", [last, "axes"], ["squeezed"]))
        last = "squeezed"
    if out_type is not None:
        nodes.append(helper.make_node("Cast", [last], ["cast"], to=out_type))
        last = "cast"
    nodes.append(helper.make_node("Identity", [last], ["logits"]))
    inputs = [helper.make_tensor_value_info("image", TensorProto.FLOAT, in_shape)]
    if extra_input:
        inputs.append(helper.make_tensor_value_info("second", TensorProto.FLOAT, in_shape))
    outputs = [helper.make_tensor_value_info("logits", out_type or TensorProto.FLOAT, out_shape)]
    initializers = [weight, axes] if squeeze else [weight]
    graph = helper.make_graph(nodes, "tiny", inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if metadata is not None:
        entry = model.metadata_props.add()
        entry.key = ONNX_METADATA_KEY
        entry.value = ModelMetadata(size_px=TINY_SIZE).to_json() if metadata == "default" else metadata
    onnx.save(model, path)
    return path


def onnx_cases(folder: Path) -> list[Case]:
    from onnx import TensorProto

    from dermseg_deploy.model.metadata import ModelMetadata

    nan_mean = {**ModelMetadata(size_px=TINY_SIZE).to_dict(), "mean": [float("nan"), 0.5, 0.5]}
    specs: list[tuple[str, dict[str, Any], str]] = [
        ("input 100000 x 100000", {"in_shape": ["N", 3, 100000, 100000], "out_shape": ["N", 1, 100000, 100000]},
         "input 'image' side 100000: must be a positive multiple of 32, at most 4096"),
        ("non-square input", {"in_shape": ["N", 3, 64, 128], "out_shape": ["N", 1, 64, 128]},
         "input 'image' is 64 x 128; dermseg runs square inputs"),
        ("2-channel output", {"out_channels": 2}, "output 'logits' has 2 channels"),
        ("64x64 output for 128 input", {"in_shape": ["N", 3, 128, 128], "out_shape": ["N", 1, 64, 64], "pool": True},
         "output 'logits' height is 64, not the input's 128"),
        ("int64 output", {"out_type": TensorProto.INT64}, "output 'logits' is tensor(int64); dermseg needs tensor(float)"),
        ("two inputs", {"extra_input": True}, "has 2 input(s) and 1 output(s)"),
        ("1-channel input", {"in_shape": ["N", 1, 64, 64]}, "input 'image' has 1 channels; dermseg feeds RGB"),
        ("3-dimensional output", {"out_shape": ["N", 64, 64], "squeeze": True},
         "output 'logits' has shape ['N', 64, 64]; dermseg needs 4 dimensions"),
        ("no dermseg metadata", {"metadata": None}, "no 'dermseg.metadata' metadata"),
        ("metadata not JSON", {"metadata": "{size_px: 64"}, "model metadata: not valid JSON"),
        ("metadata mean NaN", {"metadata": json.dumps(nan_mean)}, "model metadata: NaN is not a JSON number"),
        ("metadata size_px 2**20", {"metadata": json.dumps({**nan_mean, "mean": [0.5] * 3, "size_px": 2**20})},
         "metadata.size_px = 1048576: must be at most 4096"),
        ("fixed output batch, dynamic input", {"out_shape": [1, 1, 64, 64]},
         "output batch is 1 for an input batch of dynamic"),
        ("output batch 2N", {"out_shape": ["M", 1, 64, 64], "double_batch": True},
         "the model returned float32 logits of shape (2, 1, 64, 64), not float32 (1, 1, 64, 64)"),
    ]
    cases = [Case(name, str(tiny_onnx(folder / f"model-{index:02d}.onnx", **options)), expect)
             for index, (name, options, expect) in enumerate(specs)]
    garbage = folder / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07" + os.urandom(200))
    cases.append(Case("not an ONNX file", str(garbage), "ONNX Runtime cannot load it"))
    valid = str(tiny_onnx(folder / "valid.onnx"))
    cases.append(Case("--precision fp16 with an .onnx", valid, "--precision fp16: not used by a .onnx model",
                      flags=["--precision", "fp16"]))
    cases.append(Case("--cuda-graphs with an .onnx", valid, "--cuda-graphs: not used by a .onnx model",
                      flags=["--cuda-graphs"]))
    return cases


# ---- plan sidecars ------------------------------------------------------------------------------------------


def sidecar_cases(folder: Path, valid_sidecar: dict[str, Any]) -> list[Case]:
    edits: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
        ("version_compatible 'false'", _set("version_compatible", "false"),
         "version_compatible = 'false': must be true or false"),
        ("batch min -5", _set("batch_profile.min", -5), "batch_profile.min = -5: must be at least 1"),
        ("batch max 1e12", _set("batch_profile.max", 10**12), "batch_profile.max = 1000000000000: must be at most 1024"),
        ("batch opt above max", _set("batch_profile.opt", 16), "must satisfy min <= opt <= max"),
        ("batch as a float", _set("batch_profile.max", 8.0), "batch_profile.max = 8.0: must be an integer"),
        ("compute capability a number", _set("compute_capability", 9), "compute_capability = 9: must be a string"),
        ("compute capability 'nine'", _set("compute_capability", "nine"), "compute_capability = 'nine': must be MAJOR"),
        ("format_version as a string", _set("format_version", "1"), "format_version = '1': must be the integer 1"),
        ("metadata size_px 2**20", _set("metadata.size_px", 2**20), "metadata.size_px = 1048576: must be at most 4096"),
        ("input side 100000", _set("inputs", [{"name": "image", "dtype": "float", "shape": [-1, 3, 100000, 100000]}]),
         "inputs[0].shape[2] = 100000: must be at most 4096"),
        ("plan_sha256 not hex", _set("plan_sha256", "xyz"), "plan_sha256 = 'xyz': must be 64 lower-case hex digits"),
        ("hardware_compatibility 'any'", _set("hardware_compatibility", "any"), "hardware_compatibility = 'any'"),
        ("no gpu_name", lambda data: data.pop("gpu_name"), "sidecar lacks gpu_name"),
        ("a list", lambda data: None, "sidecar = []: must be a mapping"),
    ]
    cases = []
    for index, (name, change, expect) in enumerate(edits):
        plan = folder / f"plan-{index:02d}.plan"
        plan.write_bytes(b"not a real plan")
        data = copy.deepcopy(valid_sidecar)
        change(data)
        text = json.dumps([] if name == "a list" else data)
        plan.with_name(plan.name + ".json").write_text(text)
        cases.append(Case(name, str(plan), expect))
    broken = folder / "plan-json.plan"
    broken.write_bytes(b"not a real plan")
    broken.with_name(broken.name + ".json").write_text("{ not json")
    cases.append(Case("sidecar not JSON", str(broken), "not valid JSON"))
    return cases


# ---- the runner -----------------------------------------------------------------------------------------------


def address_space_bytes() -> int:
    """This process's virtual memory size (VmSize)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


def run_cases(cases: list[Case], image: str, out_root: Path) -> list[dict[str, Any]]:
    """Each case through dermseg-run in this process, after capping the address space; one record per case."""
    import onnxruntime  # noqa: F401  (imported before the baseline is taken, as dermseg-run would import it)
    from click.testing import CliRunner

    from dermseg_deploy.backends import openvino_backend, torch_backend  # noqa: F401  (what a .pt or .xml loads)
    from dermseg_deploy.cli import run as cli_run  # noqa: F401  (what dermseg-run imports once it has parsed)
    from dermseg_deploy.cli import run_job as run_job  # noqa: F401  (what dermseg-run imports once it has parsed)

    limit = address_space_bytes() + MEMORY_HEADROOM
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    records = []
    for index, case in enumerate(cases):
        out = out_root / f"out-{index:02d}"
        result = CliRunner().invoke(cli_run.main, ["--engine", case.model, image, "-o", str(out), "-q", *case.flags])
        masks = sorted(str(p) for p in out.rglob("*_segmentation.png")) if out.exists() else []
        records.append({**asdict(case), "got_exit": result.exit_code, "stderr": result.stderr, "masks": masks,
                        "exception": repr(result.exception) if result.exit_code not in (0, 1, 2, 3, 4) else ""})
    return records


def limit_holds() -> bool:
    """Whether the cap binds: an allocation just above the headroom must fail."""
    try:
        block = bytearray(MEMORY_HEADROOM + 512 * 1024**2)
    except MemoryError:
        return True
    del block
    return False


def main(cases_json: str, results_json: str) -> None:
    spec = json.loads(Path(cases_json).read_text())
    cases = [Case(**case) for case in spec["cases"]]
    records = run_cases(cases, spec["image"], Path(spec["out_root"]))
    Path(results_json).write_text(json.dumps({"records": records, "limit_holds": limit_holds()}, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:])


def tiny_ir(folder: Path) -> Path:
    """A valid OpenVINO IR of the tiny ONNX model, with dermseg's metadata in its rt_info."""
    import openvino as ov

    from dermseg_deploy.export.openvino_step import save_ir
    from dermseg_deploy.model.metadata import ModelMetadata

    xml = folder / "valid.xml"
    save_ir(ov.convert_model(str(tiny_onnx(folder / "for-ir.onnx"))), ModelMetadata(size_px=TINY_SIZE), xml)
    return xml


def _edited_ir(source: Path, target: Path, edit: Any) -> Path:
    """A copy of the IR at `target` (its .bin copied too) whose XML tree `edit(root)` changed."""
    import shutil
    import xml.etree.ElementTree as ElementTree

    tree = ElementTree.parse(source)
    edit(tree.getroot())
    tree.write(target)
    shutil.copy(source.with_suffix(".bin"), target.with_suffix(".bin"))
    return target


def _set_metadata(root: Any, value: str | None) -> None:
    dermseg = root.find("rt_info/dermseg")
    if value is None:
        root.find("rt_info").remove(dermseg)
    else:
        dermseg.find("metadata").set("value", value)


def openvino_cases(folder: Path) -> list[Case]:
    """Broken and hostile OpenVINO IRs: a missing or truncated .bin, hostile rt_info, a foreign IR version."""
    from dermseg_deploy.model.metadata import ModelMetadata

    valid = tiny_ir(folder)
    huge = json.dumps({**ModelMetadata(size_px=TINY_SIZE).to_dict(), "size_px": 2**20})
    edits: list[tuple[str, Any, str]] = [
        ("rt_info size_px 2**20", lambda root: _set_metadata(root, huge),
         "metadata.size_px = 1048576: must be at most 4096"),
        ("rt_info not JSON", lambda root: _set_metadata(root, "{size_px: 64"), "model metadata: not valid JSON"),
        ("no dermseg rt_info", lambda root: _set_metadata(root, None), "no dermseg/metadata in its rt_info"),
        ("IR version 9", lambda root: root.set("version", "9"), "OpenVINO cannot read it"),
        ("IR version 99", lambda root: root.set("version", "99"), "OpenVINO cannot read it"),
    ]
    cases = [Case(name, str(_edited_ir(valid, folder / f"ir-{index:02d}.xml", edit)), expect)
             for index, (name, edit, expect) in enumerate(edits)]
    lonely = folder / "lonely.xml"
    lonely.write_bytes(valid.read_bytes())
    cases.append(Case("an .xml without its .bin", str(lonely), "its weights file lonely.bin is missing"))
    truncated = folder / "truncated.xml"
    truncated.write_bytes(valid.read_bytes())
    weights = valid.with_suffix(".bin").read_bytes()
    truncated.with_suffix(".bin").write_bytes(weights[: len(weights) // 2])
    cases.append(Case("a truncated .bin", str(truncated), "OpenVINO cannot"))
    garbage = folder / "garbage.xml"
    garbage.write_bytes(b"<net" + os.urandom(200))
    garbage.with_suffix(".bin").write_bytes(b"")
    cases.append(Case("not an IR", str(garbage), "OpenVINO cannot read it"))
    cases.append(Case("--precision fp16 with an .xml", str(valid), "--precision fp16: not used by a .xml model",
                      flags=["--precision", "fp16"]))
    return cases
