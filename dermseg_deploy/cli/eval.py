"""`dermseg-eval --engine MODEL DATA` or `dermseg-eval --masks PRED_DIR DATA`: the ISIC scores."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from ..defaults import DEFAULT_REVIEW_BELOW, DEVICE_HELP, MAX_BATCH_SIZE
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
@click.option("--review-below", type=click.FloatRange(0, 1), default=DEFAULT_REVIEW_BELOW, show_default=True,
              help="Masks predicted below this Jaccard count as flagged in the predicted-Jaccard figures.")
@click.option("--fit-quality", "fit_quality_path", type=click.Path(path_type=Path), default=None,
              help="Fit the calibration of the predicted Jaccard on these labelled images (with --engine: an .onnx or "
                   ".pt) and write a copy of the model carrying it here (the same suffix; the model's own path rewrites "
                   "it in place). It holds under the --tta, --postprocess and threshold of this evaluation.")
@click.option("--fit-quality-max-images", type=click.IntRange(min=20), default=1000, show_default=True,
              help="With --fit-quality: score at most this many pairs (the first by id).")
@mask_option_flags
@backend_option_flags
@debug_option
@handle_errors
def main(data: Path, model_path: Path | None, masks_dir: Path | None, size_px: int | None, device: str,
         batch_size: int, ids_file: Path | None, json_path: Path | None, csv_path: Path | None, save_dir: Path | None,
         full_decode: bool, tta: str, postprocess: str, half: str | None, precision: str, provider: str,
         threads: int | None, report_dir: Path | None, report_worst: int, report_sample: int, debug: bool,
         review_below: float, fit_quality_path: Path | None, fit_quality_max_images: int) -> None:
    """Score a model or a folder of masks against ISIC ground truth, exactly as the ISIC scorer does.

    Per image: prediction at the mask's original size, binarised at > 128; Jaccard (1 when both are
    empty), thresholded Jaccard (0 below 0.65), Dice, sensitivity, specificity; means over images.
    Images whose mask covers more than 70% are also reported apart. A pair that cannot be scored (its image, its
    ground-truth mask or its prediction unreadable, missing or wrongly sized) is counted 0 and listed, and the others
    are scored: exit 1. A pair that failed on an exception dermseg did not expect (a bug): exit 70 after the rest
    (--debug prints the tracebacks).

    Every mask's predicted Jaccard (from the model's logits; with --masks, from the manifest.csv beside them) is
    scored too: its AUROC for the failures (J < 0.65) and mean absolute error with bootstrap 95% intervals, and the
    failures among the flagged and the 10% least confident masks. --fit-quality fits its calibration here.
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
    if fit_quality_path is not None and masks_dir is not None:
        raise UserError("--fit-quality needs a model (--engine): masks alone carry no logits to fit on")
    pairs = discover_pairs(data)
    if half is not None and (ids_file is None or ids_file.suffix != ".json"):
        raise UserError("--half needs --ids model.split.json (the split file a training run wrote)")
    if ids_file is not None:
        wanted = _read_ids(ids_file, half)
        pairs = [p for p in pairs if p.image_id in wanted]
        if not pairs:
            raise UserError(f"{ids_file}: none of its ids are in {data}")
    if fit_quality_path is not None:
        pairs = pairs[:fit_quality_max_images]
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
                            tta=mask_options.tta, postprocess=mask_options.postprocess,
                            review_below=review_below) as segmenter:
            if device == "auto":
                click.echo(f"device: auto picked {segmenter.backend.device}", err=True)
            if segmenter.backend.notice:
                click.echo(printable(segmenter.backend.notice), err=True)
            evaluations = evaluate_segmenter(segmenter, pairs, batch_size, save_dir, keep, boundary=True)
            source = (f"{model_path} ({segmenter.backend.describe()}, {segmenter.metadata.size_px} px, masks "
                      f"{mask_options.describe()})")
            details |= model_details(model_path, segmenter, mask_options)
            details["predicted Jaccard"] = segmenter.quality.describe()
            if fit_quality_path is not None:
                fitted = fit_and_write(model_path, fit_quality_path, segmenter, evaluations, data, ids_file, half)
                click.echo(f"quality: {fitted}", err=True)
        if save_dir is not None:
            rows = [e.manifest_row for e in evaluations if e.manifest_row is not None]
            click.echo(f"masks in {save_dir}/, manifest {write_manifest(save_dir / MANIFEST_NAME, rows)}", err=True)
    summary = summarize(evaluations, review_below)
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
    if "quality" in summary:
        for line in quality_lines(summary["quality"], details.get("predicted Jaccard", "from manifest.csv")):
            click.echo(line)
    elif masks_dir is not None:
        click.echo(f"predicted Jaccard: not available (no manifest.csv with a predicted_jaccard column in {masks_dir})")
    if csv_path is None and json_path is not None:
        csv_path = json_path.with_name("eval.csv")
    if csv_path is not None:
        write_per_image_csv(csv_path, evaluations)
    if json_path is not None:
        failed = {escape_undecodable(key): escape_undecodable(value) for key, value in summary["failed"].items()}
        report = {"source": escape_undecodable(source), "data": escape_undecodable(str(data)), **summary["all"],
                  "large_lesions": summary["large_lesions"], "boundary": summary.get("boundary"), "failed": failed,
                  "quality": summary.get("quality"), "per_image_csv": escape_undecodable(str(csv_path))}
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


def _interval(values: tuple[float, float] | list[float]) -> str:
    return f"[{values[0]:.3f}, {values[1]:.3f}]"


def quality_lines(quality: dict[str, Any], how: str) -> list[str]:
    """The summary's lines on the predicted Jaccard: how well it picks out the failures (J < 0.65)."""
    failures = quality["failures"]
    share = quality["least_confident_failure_share"]
    lines = [f"predicted Jaccard ({how}) on {quality['images']} masks: AUROC for J < 0.65 {quality['auroc']:.3f} "
             f"{_interval(quality['auroc_ci95'])}, mean absolute error {quality['mae']:.3f} {_interval(quality['mae_ci95'])}; "
             f"flagged below {quality['review_below']:g}: {quality['flagged']} masks holding {quality['flagged_failures']} "
             f"of the {failures} failures; the 10% least confident hold {quality['least_confident_failures']} of them"
             + (f" ({100 * share:.0f}%)" if failures else "")]
    raw = quality.get("raw_soft_jaccard")
    if raw is not None:
        difference = quality["auroc_minus_raw"]
        lines.append(f"  the raw soft Jaccard alone: AUROC {raw['auroc']:.3f} {_interval(raw['auroc_ci95'])}, mean absolute "
                     f"error {raw['mae']:.3f}; calibrated minus raw AUROC {difference['difference']:+.3f} "
                     f"{_interval(difference['ci95'])} (paired bootstrap)")
    return lines


def fit_and_write(model_path: Path, target: Path, segmenter: Any, evaluations: list[Any], data: Path,
                  ids_file: Path | None, half: str | None) -> str:
    """Fit the calibration on the scored masks' signals and write the calibrated copy; the line that says so."""
    import numpy as np

    from ..evaluation.quality_file import write_calibrated_copy
    from ..evaluation.quality_fit import fit_quality_model
    from ..model.quality_model import FittedOn

    scored = [e for e in evaluations if e.score is not None and e.quality is not None and e.quality.signals]
    source = f"{data.name}" + (f", {ids_file.name}" if ids_file else "") + (f" {half} half" if half else "")
    options = segmenter.mask_options
    fitted_on = FittedOn(len(scored), source, options.tta, ",".join(options.postprocess) or "none",
                         segmenter.metadata.threshold)
    calibration = fit_quality_model(np.array([e.quality.signals for e in scored]), [e.score.jaccard for e in scored],
                                    fitted_on)
    written = write_calibrated_copy(model_path, target, segmenter.backend.metadata, calibration)
    return (f"calibration fitted on {len(scored)} images ({source}; {len(calibration.knot_scores)} knots) written into "
            f"{written}; it holds with --tta {fitted_on.tta}, --postprocess {fitted_on.postprocess}, threshold "
            f"{fitted_on.threshold:g}")


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
