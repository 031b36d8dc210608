"""Step `int8`, OpenVINO FP32 IR -> INT8 IR (`model.int8.xml` + `.bin`): post-training quantization by NNCF,
calibrated on real images, then checked on other real images against the FP32 ONNX in ONNX Runtime: mean mask IoU
(and the worst image, named), as OpenVINO runs the INT8 model by default on this CPU (`--precision auto`)."""

from __future__ import annotations

import contextlib
import io
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..backends.onnxruntime_backend import OnnxRuntimeBackend
from ..backends.openvino_backend import OpenVinoBackend
from ..core.decode import read_file_bytes
from ..core.decode_policy import DecodePolicy
from ..core.preprocess import preprocess
from ..defaults import DEFAULT_MIN_MEAN_IOU
from ..errors import InputImageError, UserError
from ..model.metadata import ModelMetadata
from ..util.extras import EXPORT_EXTRA, OPENVINO_EXTRA, extra_hint, require_module
from .naming import IR_WEIGHTS_SUFFIX
from .nncf_progress import ProgressCallback, nncf_progress
from .openvino_step import save_ir
from .staging import StagedArtefact


@dataclass(frozen=True)
class Int8Report:
    """The INT8 model's masks against FP32's on images that did not calibrate it, judged against `min_mean_iou`."""

    ious: dict[str, float]
    """Mask IoU per check image (by file name)."""
    finite: bool
    precision: str
    """The precision OpenVINO ran the layers NNCF left in floating point (`--precision auto`'s choice)."""
    calibration: str
    min_mean_iou: float = DEFAULT_MIN_MEAN_IOU

    @property
    def mean_iou(self) -> float:
        return sum(self.ious.values()) / len(self.ious) if self.ious else 1.0

    @property
    def worst(self) -> tuple[str, float]:
        name = min(self.ious, key=lambda key: self.ious[key])
        return name, self.ious[name]

    @property
    def passed(self) -> bool:
        return self.finite and self.mean_iou >= self.min_mean_iou

    def summary(self) -> str:
        worst, worst_iou = self.worst
        verdict = "PASS" if self.passed else "FAIL"
        return (f"INT8 (rest {self.precision}) vs FP32 (onnxruntime-cpu) on {len(self.ious)} real images that did not "
                f"calibrate it: mask IoU mean {self.mean_iou:.6f}, worst {worst_iou:.6f} ({worst}); calibrated on "
                f"{self.calibration}; required finite logits, mean mask IoU >= {self.min_mean_iou:g}: {verdict}")


@dataclass(frozen=True)
class Int8Export:
    path: Path
    check: Int8Report

    @property
    def passed(self) -> bool:
        return self.check.passed

    def describe_file(self) -> str:
        return f"(+ {self.path.with_suffix(IR_WEIGHTS_SUFFIX).name}; OpenVINO IR, INT8 by NNCF)"

    def summary(self) -> str:
        where = f"wrote {self.path}" if self.passed else f"kept {self.path} for inspection (its check failed)"
        return f"{where} {self.describe_file()}; {self.check.summary()}"


def network_input(path: Path, metadata: ModelMetadata) -> np.ndarray:
    """One image as `dermseg-run` feeds it on the CPU: a (1, 3, S, S) float32 batch."""
    try:
        pixels = DecodePolicy(metadata.size_px).decode_on_host(read_file_bytes(path), path).pixels
    except InputImageError as exc:
        raise UserError(f"export image {exc}") from exc
    return preprocess(pixels, metadata)[None]


def stem_convolution(model: Any) -> str:
    """The name of the network's first convolution (the 7x7 stem that reads the normalised image)."""
    return next(op.get_friendly_name() for op in model.get_ordered_ops() if op.get_type_name() == "Convolution")


def quantize(fp32_xml: Path, metadata: ModelMetadata, calibration: Sequence[Path],
             on_progress: ProgressCallback = lambda what, done, total: None, fast_bias_correction: bool = False) -> Any:
    """NNCF's post-training quantization of the IR (symmetric, the CPU's fast INT8 path), with activation ranges from
    the calibration images (decoded one by one as NNCF asks for them) and NNCF's full bias correction. The stem
    convolution stays in floating point: quantizing the image itself cost about 0.5 points of held-out mean mask IoU for
    0.5% of the FLOPs; full bias correction on 300 images brought the held-out mean from 0.985 to 0.990
    (benchmarks/results/cpu-limit-2026-12-02/int8-variants-64px.json). `fast_bias_correction`: NNCF's fast one, which
    holds no layer inputs (`memory_plan` takes it where the full one cannot fit)."""
    ov = require_module("openvino", "--formats int8", extra_hint(OPENVINO_EXTRA))
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # NNCF imports torch where it is installed
    nncf = require_module("nncf", "--formats int8", extra_hint(EXPORT_EXTRA))
    nncf.set_log_level(logging.ERROR)
    model = ov.Core().read_model(str(fp32_xml))
    dataset = nncf.Dataset(list(calibration), lambda path: network_input(path, metadata))
    with contextlib.redirect_stdout(io.StringIO()), nncf_progress(on_progress):  # one progress display: the export's
        return nncf.quantize(model, dataset, subset_size=len(calibration), preset=nncf.QuantizationPreset.PERFORMANCE,
                             fast_bias_correction=fast_bias_correction,
                             ignored_scope=nncf.IgnoredScope(names=[stem_convolution(model)]))


def check_int8(onnx_path: Path, int8_xml: Path, metadata: ModelMetadata, check: Sequence[Path], calibration: str,
               min_mean_iou: float, on_image: Callable[[int, int], None]) -> Int8Report:
    """Each check image through ONNX Runtime FP32 and OpenVINO INT8; masks compared image by image."""
    with OnnxRuntimeBackend(onnx_path) as fp32, OpenVinoBackend(int8_xml) as int8:
        return compare_int8(fp32, int8, metadata, check, calibration, min_mean_iou, int8.precision, on_image)


def compare_int8(reference: Any, candidate: Any, metadata: ModelMetadata, check: Sequence[Path], calibration: str,
                 min_mean_iou: float, rest_precision: str, on_image: Callable[[int, int], None]) -> Int8Report:
    """Each check image through the FP32 `reference` and the INT8 `candidate` (host backends); masks compared image by
    image. `rest_precision`: what the candidate computes its layers left in floating point in."""
    ious: dict[str, float] = {}
    finite = True
    for index, path in enumerate(check):
        x = network_input(path, metadata)
        expected, got = reference.infer(x), candidate.infer(x)
        finite = finite and bool(np.isfinite(got).all())
        a, b = expected > metadata.logit_threshold, got > metadata.logit_threshold
        union = int(np.count_nonzero(a | b))
        ious[path.name] = 1.0 if union == 0 else int(np.count_nonzero(a & b)) / union
        on_image(index + 1, len(check))
    return Int8Report(ious, finite and all(math.isfinite(v) for v in ious.values()), rest_precision, calibration,
                      min_mean_iou)


def int8_from_openvino(
    fp32_xml: Path, onnx_path: Path, metadata: ModelMetadata, final: Path, failed: Path, calibration: Sequence[Path],
    calibration_source: str, check: Sequence[Path], min_mean_iou: float = DEFAULT_MIN_MEAN_IOU,
    on_image: Callable[[int, int], None] = lambda done, total: None,
    on_progress: ProgressCallback = lambda what, done, total: None, fast_bias_correction: bool = False,
) -> Int8Export:
    """Quantize the FP32 IR on `calibration` (NNCF's loops reported to `on_progress`), then check it on `check` (no
    image in both)."""
    staged = StagedArtefact(final, failed, companions=(IR_WEIGHTS_SUFFIX,))
    try:
        extra = {**metadata.extra, "precision": "int8", "calibration": calibration_source}
        quantized = quantize(fp32_xml, metadata, calibration, on_progress, fast_bias_correction)
        save_ir(quantized, metadata.with_updates(extra=extra), staged.temp)
        report = check_int8(onnx_path, staged.temp, metadata, check, calibration_source, min_mean_iou, on_image)
    except BaseException:
        staged.discard()
        raise
    return Int8Export(staged.publish(report.passed), report)
