"""ONNX Runtime backend for `.onnx` files: the CPU provider, or CUDA when asked for and really active."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import BackendUnavailableError, ModelFileError, UserError
from ..metadata import ONNX_METADATA_KEY, ModelMetadata
from .base import Backend

CPU_PROVIDER = "CPUExecutionProvider"
CUDA_PROVIDER = "CUDAExecutionProvider"


def _import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise BackendUnavailableError("onnxruntime is not installed: pip install 'dermseg' (or dermseg[gpu])") from exc
    return onnxruntime


def read_onnx_metadata(session: Any, source: str) -> ModelMetadata:
    """The dermseg input spec from an ONNX Runtime session's custom metadata."""
    custom = session.get_modelmeta().custom_metadata_map
    if ONNX_METADATA_KEY not in custom:
        raise ModelFileError(f"{source}: no {ONNX_METADATA_KEY!r} metadata; export it with dermseg-export")
    try:
        return ModelMetadata.from_json(custom[ONNX_METADATA_KEY])
    except ModelFileError as exc:
        raise ModelFileError(f"{source}: {exc}") from exc


class OnnxRuntimeBackend(Backend):
    """ONNX Runtime inference with a fixed square input size and a dynamic batch dimension."""

    def __init__(self, path: str | Path, device: torch.device, size_px: int | None = None) -> None:
        ort = _import_onnxruntime()
        path = Path(path)
        if not path.is_file():
            raise ModelFileError(f"{path}: ONNX model not found")
        providers: list[Any] = [CPU_PROVIDER]
        if device.type == "cuda":
            if CUDA_PROVIDER not in ort.get_available_providers():
                raise BackendUnavailableError(
                    f"device {device} was requested but this onnxruntime has no CUDA provider "
                    f"(available: {', '.join(ort.get_available_providers())}); install dermseg[gpu]"
                )
            providers = [(CUDA_PROVIDER, {"device_id": device.index or 0}), CPU_PROVIDER]
        options = ort.SessionOptions()
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        except Exception as exc:
            raise ModelFileError(f"{path}: ONNX Runtime cannot load it ({str(exc).strip().splitlines()[0]})") from exc
        active = self.session.get_providers()
        if device.type == "cuda" and (not active or active[0] != CUDA_PROVIDER):
            raise BackendUnavailableError(
                f"device {device} was requested but ONNX Runtime did not activate the CUDA provider "
                f"(active: {', '.join(active)})"
            )
        self.metadata = read_onnx_metadata(self.session, str(path))
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        names_in, names_out = [i.name for i in inputs], [o.name for o in outputs]
        if names_in != [self.metadata.input_name] or names_out != [self.metadata.output_name]:
            raise ModelFileError(
                f"{path}: I/O names {names_in} -> {names_out} differ from its metadata "
                f"({self.metadata.input_name} -> {self.metadata.output_name})"
            )
        shape = inputs[0].shape
        built_size = shape[-1] if isinstance(shape[-1], int) else self.metadata.size_px
        if size_px is not None and size_px != built_size:
            raise UserError(
                f"--size {size_px}: {path.name} was exported for {built_size}x{built_size} input; "
                f"export again with dermseg-export --size {size_px}"
            )
        self.metadata = self.metadata.with_updates(size_px=built_size)
        self.device = device
        self.name = "onnxruntime-cuda" if device.type == "cuda" else "onnxruntime-cpu"

    def infer(self, images: torch.Tensor) -> torch.Tensor:
        images = images.to(self.device, torch.float32).contiguous()
        if self.device.type == "cpu":
            (logits,) = self.session.run([self.metadata.output_name], {self.metadata.input_name: images.numpy()})
            return torch.from_numpy(logits)
        return self._infer_cuda(images)

    def _infer_cuda(self, images: torch.Tensor) -> torch.Tensor:
        """Zero-copy I/O binding on torch CUDA tensors; ORT runs on its own stream, so sync around it."""
        index = self.device.index or 0
        size = self.metadata.size_px
        logits = torch.empty((images.shape[0], 1, size, size), dtype=torch.float32, device=self.device)
        binding = self.session.io_binding()
        binding.bind_input(
            name=self.metadata.input_name, device_type="cuda", device_id=index, element_type=np.float32,
            shape=tuple(images.shape), buffer_ptr=images.data_ptr(),
        )
        binding.bind_output(
            name=self.metadata.output_name, device_type="cuda", device_id=index, element_type=np.float32,
            shape=tuple(logits.shape), buffer_ptr=logits.data_ptr(),
        )
        torch.cuda.current_stream(self.device).synchronize()
        self.session.run_with_iobinding(binding)
        return logits

    def close(self) -> None:
        self.session = None
