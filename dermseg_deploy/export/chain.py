"""Export from Python: checkpoint -> FP32 ONNX -> (INT8 ONNX) -> (OpenVINO FP32 IR -> INT8 IR) -> (FP16 ONNX ->
TensorRT plan),
the steps asked for in that order, each checked, stopping at the first step whose check fails.

    from dermseg_deploy.export import ExportSettings, export_checkpoint
    result = export_checkpoint("engines/model.pt", ExportSettings(size_px=1024, build_plan=False))
    assert result.passed, result.failed_step.summary()
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..defaults import INT8_CALIB_COUNT, INT8_CHECK_COUNT
from ..errors import UserError
from ..model.checkpoint import load_checkpoint, model_from_checkpoint
from ..model.sizes import require_valid_size
from ..tensorrt.build_options import BuildOptions
from ..util.devices import resolve_device
from .check_images import choose_export_images, choose_int8_images, load_batch, make_check_set, synthetic_batch
from .estimates import duration, nncf_seconds, ort_int8_seconds, seconds_per_image
from .fp16_check import DEFAULT_MIN_MEAN_IOU
from .fp16_step import Fp16OnnxExport, fp16_onnx_from_onnx
from .int8_step import Int8Export, int8_from_openvino
from .memory_plan import (
    MIN_INT8_CALIBRATION,
    bias_correction_images,
    fp16_peak_gb,
    nncf_peak_gb,
    ort_int8_peak_gb,
    plan_memory,
)
from .naming import IR_WEIGHTS_SUFFIX, ExportPaths, export_paths
from .onnx_export import DEFAULT_OPSET
from .onnx_int8_step import OnnxInt8Export, onnx_int8_from_onnx
from .onnx_step import DEFAULT_ATOL, DEFAULT_MIN_IOU, OnnxExport, onnx_from_checkpoint
from .openvino_step import OpenVinoExport, openvino_from_onnx
from .plan_step import PlanExport, plan_from_onnx
from .staging import remove_artefact

ExportStep = OnnxExport | OnnxInt8Export | OpenVinoExport | Int8Export | Fp16OnnxExport | PlanExport



@dataclass(frozen=True)
class ExportSettings:
    """Everything `dermseg-export` can be told; the defaults are its defaults."""

    size_px: int | None = None
    """The exported models' square input side; None: the checkpoint's own input size (the size it was trained at)."""
    calib_dir: Path | None = None
    calib_count: int = 2
    synthetic_calib: bool = False
    parity_dir: Path | None = None
    parity_count: int = 2
    atol: float = DEFAULT_ATOL
    min_iou: float = DEFAULT_MIN_IOU
    fp16_min_iou: float = DEFAULT_MIN_MEAN_IOU
    check_device: str = "auto"
    build_fp16: bool = True
    """Convert to FP16 ONNX (and run the FP16 arithmetic check); a plan needs it."""
    build_plan: bool = True
    build_openvino: bool = False
    """An OpenVINO FP32 IR from the checked ONNX (an INT8 IR needs it)."""
    build_int8: bool = False
    build_onnx_int8: bool = False
    """An INT8 ONNX quantized by ONNX Runtime from the checked FP32 ONNX (runs in the runtime install)."""
    int8_calib_count: int = INT8_CALIB_COUNT
    int8_check_count: int = INT8_CHECK_COUNT
    int8_min_iou: float = DEFAULT_MIN_MEAN_IOU
    build: BuildOptions = field(default_factory=BuildOptions)
    exporter: str = "dynamo"
    opset: int = DEFAULT_OPSET
    max_memory_gb: float | None = None
    """The peak memory the long steps may reach (`memory_plan`; None: 11 GiB, or less where the machine has less):
    NNCF calibrates on fewer images where the asked-for count would pass it, and a step that cannot fit is refused
    before anything runs."""


@dataclass(frozen=True)
class ExportResult:
    """The steps that ran, in order; `passed` when every one of them passed."""

    paths: ExportPaths
    steps: tuple[ExportStep, ...]
    size_px: int
    """The exported models' input side."""
    removed: tuple[Path, ...] = ()
    """Artefacts of an earlier export removed because this export's check failed before rebuilding them."""

    @property
    def passed(self) -> bool:
        return all(step.passed for step in self.steps)

    @property
    def failed_step(self) -> ExportStep | None:
        return next((step for step in self.steps if not step.passed), None)


def export_checkpoint(
    checkpoint_path: str | Path, settings: ExportSettings | None = None, out_dir: str | Path | None = None,
    on_step: Callable[[ExportStep], None] = lambda step: None,
    on_progress: Callable[[str, int, int], None] = lambda what, done, total: None,
    on_note: Callable[[str], None] = lambda line: None,
) -> ExportResult:
    """Run the export steps for `checkpoint_path`, calling `on_step` after each; files are named by `export_paths`.

    `on_progress(what, done, total)` follows the work: each step starts with (what, 0, 1); calibration, NNCF's
    statistics and bias correction, and every check go image by image (or layer by layer). `on_note(line)` gets what
    a long step will do before it starts: its images, size, and estimated time and peak memory.

    Raises typed errors for what stops an export before a check can judge it (an unreadable checkpoint,
    missing images, TensorRT or a GPU missing for the plan); a failed check is a result, not an exception.
    """
    settings = settings or ExportSettings()
    if settings.size_px is not None:
        require_valid_size(settings.size_px)
    if settings.build_plan and not settings.build_fp16:
        raise UserError("a TensorRT plan is built from the FP16 ONNX: build_plan needs build_fp16")
    if settings.build_int8 and not settings.build_openvino:
        raise UserError("an INT8 IR is quantized from the OpenVINO FP32 IR: build_int8 needs build_openvino")
    int8_images = (choose_int8_images(settings.calib_dir, settings.parity_dir, settings.int8_calib_count,
                                      settings.int8_check_count)
                   if settings.build_int8 or settings.build_onnx_int8 else None)
    device = resolve_device(settings.check_device)
    paths = export_paths(checkpoint_path, out_dir)
    checkpoint = load_checkpoint(checkpoint_path)
    size_px = settings.size_px or checkpoint.metadata.size_px
    memory = plan_memory(size_px, settings.int8_calib_count, settings.calib_count, settings.max_memory_gb,
                         settings.build_int8, settings.build_onnx_int8, settings.build_fp16 and not device.is_cuda)
    model = model_from_checkpoint(checkpoint, str(checkpoint_path))
    metadata = checkpoint.metadata.with_updates(size_px=size_px)
    images = choose_export_images(settings.calib_dir, settings.parity_dir,
                                  memory.fp16_images if settings.build_fp16 else settings.calib_count,
                                  settings.parity_count, settings.synthetic_calib)
    checks = make_check_set(model, metadata, images.check)
    steps: list[ExportStep] = []

    def record(step: ExportStep) -> bool:
        steps.append(step)
        on_step(step)
        return step.passed

    on_note(f"memory budget {memory.budget_gb:.1f} GiB"
            + (f" ({memory.available_gb:.1f} GiB available)" if memory.available_gb is not None else "")
            + (f"; --max-memory-gb {settings.max_memory_gb:g}" if settings.max_memory_gb is not None else ""))
    on_progress("ONNX (FP32): export and parity check", 0, 1)
    onnx = onnx_from_checkpoint(model, metadata, paths.onnx, paths.failed_onnx, checks, settings.exporter, settings.opset,
                                settings.atol, settings.min_iou)
    if not record(onnx):
        return ExportResult(paths, tuple(steps), metadata.size_px, _remove_downstream(paths, steps))
    per_image = (seconds_per_image(onnx.path, checks.batch.numpy())
                 if int8_images is not None else 0.0)
    if settings.build_onnx_int8 and int8_images is not None:
        calib_count, check_count = len(int8_images.calibration), len(int8_images.check)
        on_note(f"ONNX (INT8): ONNX Runtime calibrates on {calib_count} images and checks on {check_count} others at "
                f"{size_px} px: {duration(ort_int8_seconds(per_image, calib_count, check_count))} (FP32 here: "
                f"{per_image:.2f} s per image), peak about {ort_int8_peak_gb(size_px):.1f} GiB")
        on_progress("ONNX (INT8): ONNX Runtime quantization", 0, 1)
        onnx_int8 = onnx_int8_from_onnx(onnx.path, metadata, paths.onnx_int8, paths.failed_onnx_int8,
                                        int8_images.calibration, int8_images.source, int8_images.check,
                                        settings.int8_min_iou, lambda done, total: on_progress("INT8 check", done, total),
                                        lambda done, total: on_progress("ONNX Runtime calibration", done, total))
        if not record(onnx_int8):
            return ExportResult(paths, tuple(steps), metadata.size_px, _remove_downstream(paths, steps))
    if settings.build_openvino:
        on_progress("OpenVINO (FP32): conversion and parity check", 0, 1)
        openvino = openvino_from_onnx(onnx.path, metadata, paths.openvino, paths.failed_openvino, checks, settings.atol,
                                      settings.min_iou)
        if not record(openvino):
            return ExportResult(paths, tuple(steps), metadata.size_px, _remove_downstream(paths, steps))
        if settings.build_int8 and int8_images is not None:
            nncf_images = int8_images.calibration[: memory.nncf_images]
            source = (int8_images.source if not memory.int8_reduced
                      else f"{len(nncf_images)} real images from {settings.calib_dir}")
            check_count = len(int8_images.check)
            fast = memory.fast_bias_correction
            reduced = (f" (of the {memory.requested_images} --int8-calib-count asks for: more would pass the memory "
                       f"budget of {memory.budget_gb:.1f} GiB)" if memory.int8_reduced else "")
            correction = (f"the fast bias correction (the full one on {MIN_INT8_CALIBRATION} images would pass the "
                          f"memory budget of {memory.budget_gb:.1f} GiB)" if fast
                          else f"bias correction on {bias_correction_images(len(nncf_images))} of them")
            if fast:
                source = f"{source}; NNCF's fast bias correction"
            on_note(f"OpenVINO (INT8): NNCF calibrates on {len(nncf_images)} images{reduced}, {correction}, then "
                    f"checks on {check_count} others at {size_px} px: "
                    f"{duration(nncf_seconds(per_image, len(nncf_images), check_count, fast))} (FP32 here: "
                    f"{per_image:.2f} s per image), peak about {nncf_peak_gb(size_px, len(nncf_images), fast):.1f} GiB")
            on_progress("OpenVINO (INT8): NNCF quantization", 0, 1)
            int8 = int8_from_openvino(openvino.path, onnx.path, metadata, paths.int8, paths.failed_int8,
                                      nncf_images, source, int8_images.check,
                                      settings.int8_min_iou, lambda done, total: on_progress("INT8 check", done, total),
                                      on_progress, fast)
            if not record(int8):
                return ExportResult(paths, tuple(steps), metadata.size_px, _remove_downstream(paths, steps))
    if settings.build_fp16:
        fp16_images = memory.fp16_images
        reduced = (f" (of the {memory.requested_fp16_images} --calib-count asks for: more would pass the memory budget "
                   f"of {memory.budget_gb:.1f} GiB)" if memory.fp16_reduced else "")
        on_note(f"ONNX (FP16): AutoCast on {fp16_images} calibration images{reduced} at {size_px} px, peak about "
                f"{fp16_peak_gb(size_px, fp16_images):.1f} GiB; then the FP16 arithmetic check on "
                f"{len(images.check)} others")
        on_progress("ONNX (FP16): AutoCast conversion", 0, 1)
        calibration = (synthetic_batch(fp16_images, metadata) if settings.synthetic_calib
                       else load_batch(images.calibration, metadata))
        fp16 = fp16_onnx_from_onnx(onnx.path, paths.fp16_onnx, paths.failed_fp16_onnx, model, metadata,
                                   calibration.numpy(), images.calibration_source, checks, device.to_torch(),
                                   settings.fp16_min_iou,
                                   lambda done, total: on_progress("FP16 arithmetic check", done, total))
        if record(fp16) and settings.build_plan:
            on_progress("TensorRT plan: build and check", 0, 1)
            record(plan_from_onnx(fp16.path, paths.plan, paths.failed_plan, paths.timing_cache, metadata, settings.build,
                                  checks, device, settings.fp16_min_iou))
    return ExportResult(paths, tuple(steps), metadata.size_px, _remove_downstream(paths, steps))


def _remove_downstream(paths: ExportPaths, steps: list[ExportStep]) -> tuple[Path, ...]:
    """After a failed step, the files of the steps after it (in the chain's order) left by an earlier export would not
    match this checkpoint: remove them."""
    if all(step.passed for step in steps):
        return ()
    chain: list[tuple[type, Path, bool, tuple[str, ...]]] = [
        (OnnxExport, paths.onnx, False, ()), (OnnxInt8Export, paths.onnx_int8, False, ()),
        (OpenVinoExport, paths.openvino, False, (IR_WEIGHTS_SUFFIX,)),
        (Int8Export, paths.int8, False, (IR_WEIGHTS_SUFFIX,)), (Fp16OnnxExport, paths.fp16_onnx, False, ()),
        (PlanExport, paths.plan, True, ()),
    ]
    failed = next(index for index, (kind, *_) in enumerate(chain) if type(steps[-1]) is kind)
    return tuple(path for _, path, sidecar, companions in chain[failed + 1 :]
                 if remove_artefact(path, sidecar, companions))
