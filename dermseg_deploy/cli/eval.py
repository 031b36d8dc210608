"""`dermseg-eval --engine MODEL DATA` or `dermseg-eval --masks PRED_DIR DATA`: the ISIC scores."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from ..defaults import DEVICE_HELP, MAX_BATCH_SIZE
from ..errors import UserError
from ..evaluation.val_split import VAL_HALVES, read_split_val_ids
from ..util.atomic import atomic_write_bytes
from ..util.printable import escape_undecodable, printable
from ..version import __version__
from .common import (
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_SOME_INPUTS_FAILED,
    INTERNAL_HINT,
    backend_option_flags,
    debug_option,
    debugging,
    error_line,
    handle_errors,
    mask_option_flags,
    model_or_shipped,
)


def _line(label: str, means: dict[str, Any]) -> str:
    if not means.get("images"):
        return f"{label}: no images"
    return (
        f"{label} ({means['images']} images): jaccard {means['jaccard']:.4f}, thresholded jaccard "
        f"{means['thresholded_jaccard']:.4f}, dice {means['dice']:.4f}, sensitivity {means['sensitivity']:.4f}, "
        f"specificity {means['specificity']:.4f}"
    )


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dermseg-eval")
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--engine", "model_path", type=click.Path(path_type=Path), default=None,
              help="Model to evaluate (.onnx, .xml with the openvino extra, .pt with train, .plan with tensorrt). "
                   "Default (without --masks): the model shipped with dermseg.")
@click.option("--masks", "masks_dir", type=click.Path(path_type=Path), default=None,
              help="Folder of written <id>_segmentation.png masks to score instead of a model.")
@click.option("--size", "size_px", type=int, default=None, help="Network input side (default: the model's).")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@click.option("--batch-size", type=click.IntRange(1, MAX_BATCH_SIZE), default=4, show_default=True,
              help="Images per inference batch (with --engine).")
@click.option("--ids", "ids_file", type=click.Path(path_type=Path), default=None,
              help="Only these images: a text file of ISIC ids, or a model.split.json (its validation ids).")
@click.option("--half", type=click.Choice(VAL_HALVES), default=None,
              help="With --ids model.split.json: only this seeded half of its validation ids (choose settings on "
                   "selection, report on reporting).")
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None, help="Write the means here.")
@click.option("--csv", "csv_path", type=click.Path(path_type=Path), default=None,
              help="Per-image scores (default: eval.csv beside --json, else none).")
@click.option("--save-masks", "save_dir", type=click.Path(path_type=Path), default=None,
              help="--engine: also write the scored masks here, named as dermseg-run names them, with a manifest.csv.")
@click.option("--full-decode", is_flag=True, help="On the CPU, decode JPEGs at full size (as dermseg-run --full-decode).")
@click.option("--report", "report_dir", type=click.Path(path_type=Path), default=None,
              help="Also write an HTML report to this folder: scores, histogram, the worst images and a random sample "
                   "as pictures (image | ground truth | both outlines), a sortable table of every image, its CSV. "
                   "Self-contained (opens offline); an earlier report there is replaced.")
@click.option("--report-worst", type=click.IntRange(0, 500), default=12, show_default=True,
              help="Pictures of the K images with the lowest Jaccard in the report.")
@click.option("--report-sample", type=click.IntRange(0, 500), default=12, show_default=True,
              help="Pictures of a seeded random sample of K other images in the report.")
@mask_option_flags
@backend_option_flags
@debug_option
@handle_errors
def main(data: Path, model_path: Path | None, masks_dir: Path | None, size_px: int | None, device: str,
         batch_size: int, ids_file: Path | None, json_path: Path | None, csv_path: Path | None, save_dir: Path | None,
         full_decode: bool, tta: str, postprocess: str, half: str | None, precision: str, provider: str,
         threads: int | None, report_dir: Path | None, report_worst: int, report_sample: int, debug: bool) -> None:
    """Score a model or a folder of masks against ISIC ground truth, exactly as the ISIC scorer does.

    Per image: prediction at the mask's original size, binarised at > 128; Jaccard (1 when both are
    empty), thresholded Jaccard (0 below 0.65), Dice, sensitivity, specificity; means over images.
    Images whose mask covers more than 70% are also reported apart. A pair that cannot be scored (its image, its
    ground-truth mask or its prediction unreadable, missing or wrongly sized) is counted 0 and listed, and the others
    are scored: exit 1. A pair that failed on an exception dermseg did not expect (a bug): exit 70 after the rest
    (--debug prints the tracebacks).
    """
    from ..backends import BackendOptions
    from ..core.mask_options import MaskOptions
    from ..evaluation.pairs import discover_pairs
    from ..evaluation.report import PAGE_NAME, PredictionThumbnails, ReportOptions, check_report_folder, write_report
    from ..evaluation.scoring import evaluate_mask_folder, evaluate_segmenter, summarize, write_per_image_csv
    from ..files.manifest import MANIFEST_NAME, write_manifest
    from ..segment.segmenter import Segmenter

    if model_path is not None and masks_dir is not None:
        raise UserError("give one of --engine MODEL and --masks PRED_DIR, not both")
    if save_dir is not None and masks_dir is not None:
        raise UserError("--save-masks goes with a model, not --masks (those masks are already written)")
    mask_options = MaskOptions.parse(tta, postprocess)
    if masks_dir is not None and not mask_options.plain:
        raise UserError("--tta and --postprocess go with --engine (--masks scores masks already made)")
    pairs = discover_pairs(data)
    if half is not None and (ids_file is None or ids_file.suffix != ".json"):
        raise UserError("--half needs --ids model.split.json (the split file a training run wrote)")
    if ids_file is not None:
        wanted = _read_ids(ids_file, half)
        pairs = [p for p in pairs if p.image_id in wanted]
        if not pairs:
            raise UserError(f"{ids_file}: none of its ids are in {data}")
    if report_dir is not None:
        check_report_folder(report_dir)
    report_options = ReportOptions(report_worst, report_sample) if report_dir is not None else None
    thumbnails = PredictionThumbnails(report_options.panel_px) if report_options is not None else None
    keep = thumbnails.add if thumbnails is not None else None
    details: dict[str, str] = {"data": str(data)}
    if masks_dir is not None:
        if not masks_dir.is_dir():
            raise UserError(f"{masks_dir}: prediction folder not found")
        evaluations = evaluate_mask_folder(masks_dir, pairs, keep, boundary=True)
        source = str(masks_dir)
        details["predicted masks"] = str(masks_dir)
    else:
        model_path = model_or_shipped(model_path)
        options = BackendOptions(provider, precision=precision, threads=threads)
        with Segmenter.open(model_path, device, size_px, options=options, reduced_jpeg=not full_decode,
                            tta=mask_options.tta, postprocess=mask_options.postprocess) as segmenter:
            if device == "auto":
                click.echo(f"device: auto picked {segmenter.backend.device}", err=True)
            if segmenter.backend.notice:
                click.echo(printable(segmenter.backend.notice), err=True)
            evaluations = evaluate_segmenter(segmenter, pairs, batch_size, save_dir, keep, boundary=True)
            source = (f"{model_path} ({segmenter.backend.describe()}, {segmenter.metadata.size_px} px, masks "
                      f"{mask_options.describe()})")
            details |= model_details(model_path, segmenter, mask_options)
        if save_dir is not None:
            rows = [e.manifest_row for e in evaluations if e.manifest_row is not None]
            click.echo(f"masks in {save_dir}/, manifest {write_manifest(save_dir / MANIFEST_NAME, rows)}", err=True)
    summary = summarize(evaluations)
    traces = {e.image_id: e.traceback for e in evaluations if e.traceback}
    for image_id, error in summary["failed"].items():
        click.echo(f"error: {printable(image_id)}: {printable(error)} (counted 0)", err=True)
        if debugging(debug) and image_id in traces:
            click.echo(traces[image_id].rstrip("\n"), err=True)
    click.echo(printable(f"{source} on {data}"))
    click.echo(_line("all", summary["all"]))
    click.echo(_line("lesions over 70% of the image", summary["large_lesions"]))
    if "boundary" in summary:
        border = summary["boundary"]
        click.echo(f"borders ({border['images']} images, in pixels of the original images): contour distance "
                   f"{border['contour_distance_px']:.2f} px, boundary F1 {border['boundary_f1']:.4f} (tolerance "
                   f"{100 * border['tolerance_of_diagonal']:.2f}% of the image diagonal)")
    if csv_path is None and json_path is not None:
        csv_path = json_path.with_name("eval.csv")
    if csv_path is not None:
        write_per_image_csv(csv_path, evaluations)
    if json_path is not None:
        failed = {escape_undecodable(key): escape_undecodable(value) for key, value in summary["failed"].items()}
        report = {"source": escape_undecodable(source), "data": escape_undecodable(str(data)), **summary["all"],
                  "large_lesions": summary["large_lesions"], "boundary": summary.get("boundary"), "failed": failed,
                  "per_image_csv": escape_undecodable(str(csv_path))}
        atomic_write_bytes(json_path, json.dumps(report, indent=2, sort_keys=True).encode())
    if report_dir is not None and thumbnails is not None:
        if ids_file is not None:
            details["images scored"] = f"{ids_file}" + (f", {half} half" if half else "")
        written = write_report(report_dir, evaluations, pairs, thumbnails, summary, details, report_options)
        for note in written.notes:
            click.echo(f"note: {printable(note)}", err=True)
        click.echo(f"report: {written.folder / PAGE_NAME} ({written.pictures} pictures, "
                   f"{written.total_bytes / 1e6:.1f} MB, written in {written.seconds:.1f} s)")
    internal = sum(e.internal for e in evaluations)
    if internal:
        error_line(f"{internal} image(s) failed on an internal error ({INTERNAL_HINT}); the others are scored")
        sys.exit(EXIT_INTERNAL)
    sys.exit(EXIT_SOME_INPUTS_FAILED if summary["failed"] else EXIT_OK)


def model_details(model_path: Path, segmenter: Any, mask_options: Any) -> dict[str, str]:
    """What the report says of the model: its file, input size, masks' settings, backend, precision, device."""
    backend = segmenter.backend
    return {"model file": str(model_path), "input size": f"{segmenter.metadata.size_px} px",
            "test-time augmentation": mask_options.tta, "post-processing": ",".join(mask_options.postprocess) or "none",
            "backend": backend.describe(), "precision": backend.arithmetic, "device": str(backend.device),
            "threshold": f"{segmenter.metadata.threshold} (probability)"}


def _read_ids(path: Path, half: str | None = None) -> set[str]:
    if not path.is_file():
        raise UserError(f"{path}: ids file not found")
    if path.suffix == ".json":
        return set(read_split_val_ids(path, half))
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}
