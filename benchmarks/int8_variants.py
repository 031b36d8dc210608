"""INT8 quantization settings tried for the OpenVINO IR, each scored as mask IoU against FP32 (ONNX Runtime) on
images that did not calibrate it: a tuning set (to choose on) and a held-out set (to report on), with OpenVINO's
inference speed at batch 4 on the same machine.

usage: python benchmarks/int8_variants.py --xml model.xml --onnx model.onnx --calib DIR --tune DIR --heldout DIR
       [--json OUT]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from dermseg_deploy.backends.onnxruntime_backend import OnnxRuntimeBackend
from dermseg_deploy.export.int8_step import network_input, stem_convolution
from dermseg_deploy.files.inputs import find_images
from dermseg_deploy.model.metadata import ModelMetadata


def masks_of(run: Any, inputs: list[np.ndarray]) -> list[np.ndarray]:
    return [run(x) > 0 for x in inputs]


def mean_iou(masks: list[np.ndarray], reference: list[np.ndarray]) -> tuple[float, float]:
    ious = []
    for a, b in zip(masks, reference):
        union = np.count_nonzero(a | b)
        ious.append(1.0 if union == 0 else np.count_nonzero(a & b) / union)
    return float(np.mean(ious)), float(np.min(ious))


def quantize_with_accuracy_control(nncf: Any, model: Any, calibration: Any, tune: list[np.ndarray],
                                   reference: list[np.ndarray], max_drop: float, count: int) -> Any:
    """NNCF's accuracy-aware mode: layers go back to floating point until the tuning set's mean mask IoU against FP32
    is within `max_drop` of the FP32 model's own (1.0)."""

    def validate(compiled: Any, items: Any) -> float:
        masks = [np.array(compiled(x)[0]) > 0 for x, _ in items]
        return mean_iou(masks, [mask for _, mask in items])[0]

    validation = nncf.Dataset(list(zip(tune, reference)), lambda item: item[0])
    return nncf.quantize_with_accuracy_control(model, calibration, validation, validate, max_drop=max_drop,
                                               subset_size=count)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("xml", "onnx", "calib", "tune", "heldout"):
        parser.add_argument(f"--{name}", type=Path, required=True)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    import nncf
    import openvino as ov

    nncf.set_log_level(logging.ERROR)
    core = ov.Core()
    base = core.read_model(str(args.xml))
    size = base.inputs[0].get_partial_shape()[-1].get_length()
    metadata = ModelMetadata(size_px=size)
    calibration = find_images(args.calib)
    tune = [network_input(p, metadata) for p in find_images(args.tune)]
    heldout = [network_input(p, metadata) for p in find_images(args.heldout)]
    with OnnxRuntimeBackend(args.onnx) as fp32:
        reference = {"tune": masks_of(fp32.infer, tune), "heldout": masks_of(fp32.infer, heldout)}
    convs = [op.get_friendly_name() for op in base.get_ordered_ops() if op.get_type_name() == "Convolution"]
    perf, mixed = nncf.QuantizationPreset.PERFORMANCE, nncf.QuantizationPreset.MIXED
    variants: dict[str, dict[str, Any]] = {
        "performance, all layers, 64 images": {"preset": perf, "count": 64, "ignored": []},
        "performance, stem in FP, 64 images": {"preset": perf, "count": 64, "ignored": [stem_convolution(base)]},
        "performance, stem in FP, 300 images": {"preset": perf, "count": 300, "ignored": [stem_convolution(base)]},
        "performance, stem in FP, 64 images, full bias correction": {
            "preset": perf, "count": 64, "ignored": [stem_convolution(base)], "fast_bias_correction": False},
        "performance, stem in FP, 300 images, full bias correction": {
            "preset": perf, "count": 300, "ignored": [stem_convolution(base)], "fast_bias_correction": False},
        "accuracy control (max drop 0.005 in tuning-set IoU), 64 images": {
            "preset": perf, "count": 64, "ignored": [], "accuracy_control": 0.005},
        "mixed, stem in FP, 300 images": {"preset": mixed, "count": 300, "ignored": [stem_convolution(base)]},
        "performance, stem and last 3 convolutions in FP, 300 images": {
            "preset": perf, "count": 300, "ignored": [stem_convolution(base), *convs[-3:]]},
    }
    results: dict[str, Any] = {}
    for name, settings in variants.items():
        dataset = nncf.Dataset(calibration[: settings["count"]], lambda path: network_input(path, metadata))
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            if "accuracy_control" in settings:
                model = quantize_with_accuracy_control(nncf, core.read_model(str(args.xml)), dataset, tune,
                                                       reference["tune"], settings["accuracy_control"], settings["count"])
            else:
                model = nncf.quantize(core.read_model(str(args.xml)), dataset, subset_size=settings["count"],
                                      preset=settings["preset"],
                                      ignored_scope=nncf.IgnoredScope(names=settings["ignored"]),
                                      fast_bias_correction=settings.get("fast_bias_correction", True))
        seconds = time.perf_counter() - started
        compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "bf16"})
        request = compiled.create_infer_request()

        def run(x: np.ndarray, request: Any = request) -> np.ndarray:
            request.infer({0: x})
            return np.array(request.get_output_tensor(0).data)

        batch = np.concatenate(tune[:4])
        run(batch)
        timing = time.perf_counter()
        for _ in range(10):
            run(batch)
        batch_ms = (time.perf_counter() - timing) * 100
        results[name] = {"quantize_s": round(seconds, 1), "batch4_ms": round(batch_ms, 1),
                         "tune_iou_mean_min": mean_iou(masks_of(run, tune), reference["tune"]),
                         "heldout_iou_mean_min": mean_iou(masks_of(run, heldout), reference["heldout"])}
        print(name, results[name], file=sys.stderr, flush=True)
    text = json.dumps({"xml": str(args.xml), "size_px": size, "calibration": str(args.calib), "tune": str(args.tune),
                       "heldout": str(args.heldout), "variants": results}, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
