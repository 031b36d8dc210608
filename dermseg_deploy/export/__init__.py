"""Export as a library: one step per module, each returning a result that holds its artefact and its checks.

    onnx_step.onnx_from_checkpoint   checkpoint model -> FP32 ONNX (parity with PyTorch)
    fp16_step.fp16_onnx_from_onnx    FP32 ONNX -> FP16 ONNX (weight rounding; FP16 arithmetic check)
    plan_step.plan_from_onnx         FP16 ONNX -> TensorRT plan + sidecar (plan check)
    chain.export_checkpoint          all three, as `dermseg-export` runs them
"""

from typing import TYPE_CHECKING, Any

from .naming import ExportPaths, export_paths

if TYPE_CHECKING:
    from .chain import ExportResult, ExportSettings, export_checkpoint

LAZY = ("ExportResult", "ExportSettings", "export_checkpoint")


def __getattr__(name: str) -> Any:
    """The chain needs torch: it is imported on first use."""
    if name in LAZY:
        from . import chain

        return getattr(chain, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ExportPaths", "ExportResult", "ExportSettings", "export_checkpoint", "export_paths"]
