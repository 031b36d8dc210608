"""What dermseg runs, checked against a model graph's declared inputs and outputs when it is opened (ONNX Runtime's
session, OpenVINO's model), and how a fixed batch is honoured.

One input, N x 3 x S x S float32 (S square, the size rule's multiple of 32 and at most 4096); one output,
N x 1 x S x S float32 logits; N dynamic, or a fixed number that batches are cut and padded to.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelFileError
from ..model.sizes import SIZE_RULE, is_valid_size

FLOAT_TYPE = "tensor(float)"


@dataclass(frozen=True)
class GraphIO:
    """The input side the model was exported for, and its fixed batch size (None: dynamic)."""

    size_px: int | None
    static_batch: int | None


def _dim(value: Any) -> int | None:
    """A declared dimension: an int, or None for a symbolic or unknown one."""
    return value if isinstance(value, int) and value > 0 else None


def check_graph_io(inputs: Sequence[Any], outputs: Sequence[Any], path: Path) -> GraphIO:
    """Raise ModelFileError naming what differs from N x 3 x S x S float in, N x 1 x S x S float out.

    `inputs`/`outputs` have `name`, `shape` (ints, or names for dynamic dimensions) and `type` (ONNX's names:
    `tensor(float)`), as ONNX Runtime's NodeArgs do. S is None when the model leaves the spatial sides dynamic (its
    metadata's size is then used).
    """
    if len(inputs) != 1 or len(outputs) != 1:
        raise ModelFileError(f"{path}: has {len(inputs)} input(s) and {len(outputs)} output(s); dermseg runs models "
                             "with one image input and one logits output")
    source, target = inputs[0], outputs[0]
    for role, arg in (("input", source), ("output", target)):
        if arg.type != FLOAT_TYPE:
            raise ModelFileError(f"{path}: {role} {arg.name!r} is {arg.type}; dermseg needs {FLOAT_TYPE} (float32)")
        if len(arg.shape) != 4:
            raise ModelFileError(f"{path}: {role} {arg.name!r} has shape {arg.shape}; dermseg needs 4 dimensions "
                                 "(batch, channels, height, width)")
    in_batch, channels, height, width = (_dim(d) for d in source.shape)
    out_batch, out_channels, out_height, out_width = (_dim(d) for d in target.shape)
    if channels != 3:
        raise ModelFileError(f"{path}: input {source.name!r} has {source.shape[1]} channels; dermseg feeds RGB (3)")
    if out_channels != 1:
        raise ModelFileError(f"{path}: output {target.name!r} has {target.shape[1]} channels; dermseg reads one "
                             "lesion logit per pixel (1)")
    if (height is None) != (width is None) or height != width:
        raise ModelFileError(f"{path}: input {source.name!r} is {source.shape[2]} x {source.shape[3]}; dermseg runs "
                             "square inputs (export again with dermseg-export)")
    if height is not None and not is_valid_size(height):
        raise ModelFileError(f"{path}: input {source.name!r} side {height}: {SIZE_RULE}")
    for label, declared in (("height", out_height), ("width", out_width)):
        if declared is not None and height is not None and declared != height:
            raise ModelFileError(f"{path}: output {target.name!r} {label} is {declared}, not the input's {height}; "
                                 "dermseg needs logits at the input's size")
    if out_batch is not None and out_batch != in_batch:
        shown = in_batch if in_batch is not None else "dynamic"
        raise ModelFileError(f"{path}: output batch is {out_batch} for an input batch of {shown}; dermseg needs one "
                             "logits map per image")
    return GraphIO(height, in_batch)


def _numpy_zeros(images: Any, count: int) -> Any:
    return np.zeros((count, *images.shape[1:]), dtype=images.dtype)


def run_in_fixed_batches(images: Any, static_batch: int | None, run: Callable[[Any], Any],
                         concatenate: Callable[[list[Any]], Any] = np.concatenate,
                         zeros: Callable[[Any, int], Any] = _numpy_zeros) -> Any:
    """`run` on `images` as they are, or cut and zero-padded to `static_batch` where the graph fixes its batch; the
    padding's outputs are dropped. NumPy arrays by default; a device backend passes torch's `concatenate` and
    `zeros`."""
    count = images.shape[0]
    if static_batch is None or count == static_batch:
        return run(images)
    padding = -count % static_batch
    if padding:
        images = concatenate([images, zeros(images, padding)])
    parts = [run(images[start : start + static_batch]) for start in range(0, images.shape[0], static_batch)]
    return concatenate(parts)[:count]
