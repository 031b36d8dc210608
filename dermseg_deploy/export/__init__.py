"""Export as a library: one step per module, each returning a result that holds its artefact and its checks.

    onnx_step.onnx_from_checkpoint   checkpoint model -> FP32 ONNX (parity with PyTorch)
    fp16_step.fp16_onnx_from_onnx    FP32 ONNX -> FP16 ONNX (weight rounding; FP16 arithmetic check)
    plan_step.plan_from_onnx         FP16 ONNX -> TensorRT plan + sidecar (plan check)
    chain.export_checkpoint          all three, as `dermseg-export` runs them
"""

from .chain import ExportResult, ExportSettings, export_checkpoint
from .naming import ExportPaths, export_paths

__all__ = ["ExportPaths", "ExportResult", "ExportSettings", "export_checkpoint", "export_paths"]
