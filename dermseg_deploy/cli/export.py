"""`dermseg-export model.pt`: FP32 ONNX, FP16 ONNX (ModelOpt AutoCast), and a TensorRT FP16 plan, each checked."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from ..defaults import (
    DEFAULT_ATOL,
    DEFAULT_MIN_IOU,
    DEFAULT_MIN_MEAN_IOU,
    DEFAULT_OPSET,
    EXPORTERS,
    INT8_CALIB_COUNT,
    INT8_CHECK_COUNT,
)
from ..errors import UserError
from ..tensorrt.batch_profile import BatchProfile
from ..tensorrt.build_options import BuildOptions
from ..tensorrt.sidecar import HARDWARE_LEVELS
from ..util.extras import EXPORT_EXTRA, require_installed
from ..util.peak_memory import peak_rss_gib, reset_peak_rss
from ..version import __version__
from .common import EXIT_CHECK_FAILED, EXIT_OK, error_line, handle_errors, model_or_shipped
from .progress_display import ProgressDisplay

EXPORT_MODULES = ("torch", "torchvision", "onnx", "onnxscript")
"""What every export needs (`dermseg[export]`); the FP16 step also needs ModelOpt, and says so itself."""

FORMATS = ("onnx", "fp16", "plan", "onnx-int8", "openvino", "int8", "web")
BUILT_FROM = {"onnx": None, "fp16": "onnx", "plan": "fp16", "onnx-int8": "onnx", "openvino": "onnx", "int8": "openvino",
              "web": "onnx-int8"}
"""Each format is built from another: plan from fp16 from onnx; onnx-int8 from onnx; int8 from openvino from onnx;
web from onnx-int8 (from a checkpoint; an existing .onnx goes into the web folder as it is)."""
FORMAT_LABELS = {"OnnxExport": "ONNX (FP32)", "Fp16OnnxExport": "ONNX (FP16)", "PlanExport": "TensorRT plan (FP16)",
                 "OpenVinoExport": "OpenVINO IR (FP32)", "Int8Export": "OpenVINO IR (INT8)",
                 "OnnxInt8Export": "ONNX (INT8)"}


def parse_formats(text: str, no_engine: bool) -> set[str]:
    """The formats to build: those named and the ones they are built from; `--no-engine` leaves the plan out."""
    names = {part.strip().lower() for part in text.split(",") if part.strip()}
    unknown = sorted(names - set(FORMATS))
    if unknown or not names:
        raise UserError(f"--formats {text}: use a comma-separated list of {', '.join(FORMATS)}")
    if no_engine:
        names.discard("plan")
        if not names:
            raise UserError("--no-engine leaves the plan out, and --formats asks for the plan alone")
    wanted: set[str] = set()
    for name in names:
        current: str | None = name
        while current is not None:
            wanted.add(current)
            current = BUILT_FROM[current]
    return wanted


def _megabytes(path: Path) -> str:
    """The artefact's size (an OpenVINO IR's .xml with its .bin)."""
    files = [path, path.with_suffix(".bin")] if path.suffix == ".xml" else [path]
    try:
        return f"{sum(file.stat().st_size for file in files) / 1e6:.1f} MB"
    except OSError:
        return "size unknown"


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dermseg-export")
@click.argument("checkpoint_path", type=click.Path(path_type=Path), required=False)
@click.option("--size", "size_px", type=int, default=None,
              help="Square input side of the exported models (multiple of 32). Default: the size the checkpoint was "
                   "trained at (a model runs best at the scale it learned); the paper's recipe ends at 1024.")
@click.option("-o", "--output-dir", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Folder for the exported files (default: next to the checkpoint).")
@click.option("--calib", "calib_dir", type=click.Path(path_type=Path), default=None,
              help="Folder of real images that calibrate the FP16 conversion (default: the shipped samples).")
@click.option("--calib-count", type=click.IntRange(1, 32), default=2, show_default=True,
              help="How many calibration images (or synthetic inputs). AutoCast keeps every intermediate tensor of "
                   "each in memory: about 6.7 GiB per image at 1024 px, so fewer are taken where these would pass "
                   "--max-memory-gb (the start says how many).")
@click.option("--synthetic-calib", is_flag=True, help="Calibrate on seeded random inputs instead of real images.")
@click.option("--parity-images", "parity_dir", type=click.Path(path_type=Path), default=None,
              help="Folder of real images for the checks; calibration images are left out (default: the samples).")
@click.option("--parity-count", type=click.IntRange(1, 256), default=2, show_default=True,
              help="How many check images (about 1 TFLOP each at 1024 px).")
@click.option("--atol", type=float, default=DEFAULT_ATOL, show_default=True,
              help="Max |logit difference| allowed between ONNX Runtime and PyTorch in FP32.")
@click.option("--min-iou", type=click.FloatRange(0, 1), default=DEFAULT_MIN_IOU, show_default=True,
              help="Worst per-image mask IoU allowed between ONNX Runtime and PyTorch in FP32.")
@click.option("--fp16-min-iou", type=click.FloatRange(0, 1), default=DEFAULT_MIN_MEAN_IOU, show_default=True,
              help="Mean mask IoU FP16 must reach against FP32 (PyTorch half, and the TensorRT plan).")
@click.option("--check-device", default="auto", show_default=True,
              help="Where the FP16 arithmetic check and the engine build run: auto, cpu, cuda or cuda:N.")
@click.option("--formats", default="onnx,fp16,plan", show_default=True,
              help="What to export, comma-separated: onnx (FP32), fp16 (FP16 ONNX, with the FP16 arithmetic check), "
                   "plan (TensorRT FP16), onnx-int8 (ONNX quantized by ONNX Runtime: INT8 on the CPU in the runtime "
                   "install; needs --calib), openvino (OpenVINO IR, FP32 weights; the CPU's BF16 at run time), int8 "
                   "(OpenVINO IR quantized by NNCF; needs --calib). A format brings the ones it is built from (plan "
                   "needs fp16 needs onnx; onnx-int8 needs onnx; int8 needs openvino needs onnx).")
@click.option("--int8-calib-count", type=click.IntRange(1, 4096), default=INT8_CALIB_COUNT, show_default=True,
              help="int8 and onnx-int8: real images from --calib that calibrate the quantization.")
@click.option("--int8-check-count", type=click.IntRange(1, 4096), default=INT8_CHECK_COUNT, show_default=True,
              help="int8 and onnx-int8: other real images (from --parity-images, else the rest of --calib) that check "
                   "it.")
@click.option("--int8-min-iou", type=click.FloatRange(0, 1), default=DEFAULT_MIN_MEAN_IOU, show_default=True,
              help="int8 and onnx-int8: mean mask IoU the INT8 model must reach against FP32 on the check images.")
@click.option("--no-engine", is_flag=True, help="Stop after the ONNX files (no TensorRT plan): --formats onnx,fp16.")
@click.option("--min-batch", type=click.IntRange(min=1), default=1, show_default=True,
              help="Smallest batch the plan accepts.")
@click.option("--opt-batch", type=click.IntRange(min=1), default=4, show_default=True,
              help="The batch TensorRT tunes the plan's kernels for.")
@click.option("--max-batch", type=click.IntRange(min=1), default=8, show_default=True,
              help="Largest batch the plan accepts (larger ones are split).")
@click.option("--workspace-mb", type=click.IntRange(min=64), default=4096, show_default=True,
              help="TensorRT builder workspace limit.")
@click.option("--opt-level", type=click.IntRange(0, 5), default=3, show_default=True,
              help="TensorRT builder optimisation level.")
@click.option("--version-compatible", is_flag=True,
              help="Build a plan that newer TensorRT versions of the same major version can load (with --trust-plan).")
@click.option("--hardware-compatible", type=click.Choice(HARDWARE_LEVELS), default="none", show_default=True,
              help="Build a plan for other GPUs: ampere_plus, or same_compute_capability.")
@click.option("--exporter", type=click.Choice(EXPORTERS), default="dynamo", show_default=True,
              help="PyTorch's torch.export-based exporter, or the older TorchScript one.")
@click.option("--opset", type=int, default=DEFAULT_OPSET, show_default=True, help="ONNX opset version.")
@click.option("--triton-repo", type=click.Path(path_type=Path), default=None,
              help="Also write a Triton model repository here for the checked ONNX (and plan): config.pbtxt + 1/.")
@click.option("--web-runtime", type=click.Path(path_type=Path), default=None,
              help="web: ONNX Runtime Web's npm tarball (onnxruntime-web-1.31.1.tgz, from `npm pack`) instead of "
                   "fetching it with npm (it is kept in the user's cache for the next export either way).")
@click.option("--max-memory-gb", type=click.FloatRange(min=1), default=None,
              help="Peak memory the long steps may reach, in GiB (default: 11, which fits a 16 GiB machine, or less where "
                   "the machine has less): int8 and fp16 calibrate on fewer images where --int8-calib-count or --calib-count "
                   "would pass it (the start says how many), and a step that cannot fit is refused before anything runs.")
@handle_errors
def main(
    checkpoint_path: Path, size_px: int | None, out_dir: Path | None, calib_dir: Path | None, calib_count: int,
    synthetic_calib: bool, parity_dir: Path | None, parity_count: int, atol: float, min_iou: float,
    fp16_min_iou: float, check_device: str, formats: str, no_engine: bool, min_batch: int, opt_batch: int, max_batch: int,
    workspace_mb: int, opt_level: int, version_compatible: bool, hardware_compatible: str, exporter: str, opset: int,
    triton_repo: Path | None, int8_calib_count: int, int8_check_count: int, int8_min_iou: float,
    max_memory_gb: float | None, web_runtime: Path | None,
) -> None:
    """Export a dermseg checkpoint to model.onnx (FP32), model.fp16.onnx and model.plan (TensorRT FP16), or to
    the --formats asked for.

    Checks, on real images that did not calibrate the FP16 conversion: ONNX Runtime against PyTorch in
    FP32; the FP16 graph in ONNX Runtime (weight rounding only: ORT's CPU computes it in FP32); FP16
    arithmetic against FP32 (PyTorch half on a GPU, emulated with FP32 kernels on the CPU); the plan against
    PyTorch FP32. Each step prints its check, time and size; the last line is the command that runs the result.
    A long step first says what it will do (images, size, estimated time and peak memory), then shows its progress:
    bars on a terminal, a line every 10% (or 30 s) with the time left otherwise.

    Exit codes: 0 exported and checked; 2 usage error or unreadable checkpoint; 3 a check failed;
    4 TensorRT or a GPU is missing for the plan (the ONNX files are written; --no-engine stops before), or ONNX
    Runtime Web's files cannot be had for --formats web.

    --formats web writes MODEL.web/: a page that segments in the browser, the model and ONNX Runtime Web, every file
    checked by its SHA-256. From an .onnx (or, without a model file, the shipped model) it needs only the runtime
    install.
    """
    if checkpoint_path is None or checkpoint_path.suffix.lower() == ".onnx":
        _web_only(checkpoint_path, formats, out_dir, web_runtime)
        return
    require_installed(EXPORT_MODULES, "dermseg-export", EXPORT_EXTRA)
    from ..export import ExportSettings, export_checkpoint
    from ..export.chain import ExportStep
    from ..scale.triton_repo import export_triton_models, write_triton_repo

    wanted = parse_formats(formats, no_engine)
    build = BuildOptions(BatchProfile(min_batch, opt_batch, max_batch), workspace_mb << 20, opt_level, version_compatible,
                         hardware_compatible)
    settings = ExportSettings(
        size_px=size_px, calib_dir=calib_dir, calib_count=calib_count, synthetic_calib=synthetic_calib,
        parity_dir=parity_dir, parity_count=parity_count, atol=atol, min_iou=min_iou, fp16_min_iou=fp16_min_iou,
        check_device=check_device, build_fp16="fp16" in wanted, build_plan="plan" in wanted,
        build_openvino="openvino" in wanted, build_int8="int8" in wanted, build_onnx_int8="onnx-int8" in wanted,
        int8_calib_count=int8_calib_count, int8_check_count=int8_check_count, int8_min_iou=int8_min_iou, build=build,
        exporter=exporter, opset=opset, max_memory_gb=max_memory_gb)
    clock = {"last": time.perf_counter()}
    display = ProgressDisplay()

    def show(step: ExportStep) -> None:
        display.close()
        now = time.perf_counter()
        verdict = "check passed" if step.passed else "CHECK FAILED"
        peak = peak_rss_gib()
        click.echo(step.summary())
        click.echo(f"{FORMAT_LABELS[type(step).__name__]}: {verdict} in {now - clock['last']:.1f} s"
                   + (f", peak memory {peak:.1f} GiB" if peak is not None else "")
                   + f", {step.path.name} ({_megabytes(step.path)})")
        clock["last"] = now
        reset_peak_rss()  # the next step reports its own peak

    def note(line: str) -> None:
        display.close()
        click.echo(f"plan: {line}", err=True)

    result = export_checkpoint(checkpoint_path, settings, out_dir, show, display.update, note)
    failed = result.failed_step
    if failed is not None:
        removed = "".join(f"; removed {path.name} of an earlier export" for path in result.removed)
        error_line(f"a check failed: {failed.path.name} is kept for inspection only, under a name no backend "
                   f"loads{removed}; nothing after it was built")
        sys.exit(EXIT_CHECK_FAILED)
    for name in FORMATS:
        if name not in wanted:
            click.echo(f"not built: {name} (--formats {','.join(f for f in FORMATS if f in wanted)}); build it with "
                       f"dermseg-export {checkpoint_path} --size {result.size_px} --formats {name}")
    if triton_repo is not None:
        plan = result.paths.plan if "plan" in wanted else None
        models = export_triton_models(result.paths.stem, result.paths.onnx, plan, max_batch, opt_batch)
        written = write_triton_repo(triton_repo, models)
        click.echo(f"wrote the Triton model repository {triton_repo}: {', '.join(folder.name for folder in written)}")
    click.echo(f"size: {result.size_px} px ({'--size' if size_px else 'the size the checkpoint was trained at'})")
    built = {"plan": result.paths.plan, "int8": result.paths.int8, "onnx-int8": result.paths.onnx_int8,
             "openvino": result.paths.openvino}
    engine = next((path for name, path in built.items() if name in wanted), result.paths.onnx)
    if "web" in wanted:
        from ..export.web_folder import write_web_folder

        web = write_web_folder(result.paths.onnx_int8, result.paths.onnx_int8.parent / f"{result.paths.stem}.web",
                               web_runtime)
        click.echo(web.summary())
    click.echo(f"next: dermseg-run --engine {engine} IMAGES_OR_FOLDERS -o masks")
    sys.exit(EXIT_OK)


def _web_only(model: Path | None, formats: str, out_dir: Path | None, web_runtime: Path | None) -> None:
    """--formats web from an existing ONNX (the shipped model without one): the runtime install is enough."""
    from ..export.web_folder import write_web_folder

    if {part.strip().lower() for part in formats.split(",")} != {"web"}:
        raise UserError(f"{model or 'the shipped model'}: an .onnx can only be made into --formats web here; the "
                        "other formats are exported from a checkpoint (.pt)")
    source = model_or_shipped(model)
    folder = (out_dir or (source.parent if model is not None else Path("."))) / f"{source.stem.split('.')[0]}.web"
    click.echo(write_web_folder(source, folder, web_runtime).summary())
    sys.exit(EXIT_OK)
