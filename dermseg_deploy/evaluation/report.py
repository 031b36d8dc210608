"""`dermseg-eval --report DIR`: one self-contained HTML page to look at, beside its pictures and CSV.

    DIR/index.html        scores (all images, the large-lesion subset apart), the model and its settings, the histogram
                          of per-image Jaccard, the worst images and a seeded random sample as pictures, and a sortable
                          table of every image (rows link to their picture where the page has one)
    DIR/histogram.png     the histogram (matplotlib: the `plot` extra; without it the page says so)
    DIR/pictures/*.jpg    image | ground truth | both outlines over the image, downscaled (`ReportOptions.panel_px`)
    DIR/per_image.csv     every image's scores, sorted by Jaccard, then id (ties stay in a stable order)

Nothing is fetched from anywhere: the page's style and script are inline, its images beside it. The folder is built
under a temp name beside DIR and renamed into place, so DIR holds a whole report or the previous one, never a part.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import random
import re
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.decode import decode_image, read_file_bytes
from ..errors import InputImageError, OutputWriteError, UserError
from ..files.overlay import comparison_strip, encode_jpeg, fit_size, shrink_mask
from ..util.atomic import FOLDER_MODE, TEMP_PREFIX
from ..util.printable import csv_bytes
from .boundary import BOUNDARY_NAMES
from .metrics import SCORE_NAMES
from .pairs import Pair, read_mask
from .report_figures import histogram_png, quality_scatter_png
from .report_page import PageContent, render_page
from .scoring import ImageEvaluation

PAGE_NAME = "index.html"
CSV_NAME = "per_image.csv"
HISTOGRAM_NAME = "histogram.png"
SCATTER_NAME = "predicted-jaccard.png"
PICTURES_FOLDER = "pictures"
MARKER_NAME = ".dermseg-report"
"""Marks a folder as a report, so that writing a new report over it may replace it; any other non-empty folder is
refused rather than deleted."""
MAX_PICTURES = 500


@dataclass(frozen=True)
class ReportOptions:
    """`worst`: pictures of the K lowest-Jaccard images; `sample`: a seeded random sample of the others;
    `panel_px`: the longer side of each picture's panel."""

    worst: int = 12
    sample: int = 12
    panel_px: int = 192
    seed: int = 0

    def __post_init__(self) -> None:
        if not (0 <= self.worst <= MAX_PICTURES and 0 <= self.sample <= MAX_PICTURES):
            raise UserError(f"report pictures: worst {self.worst} and sample {self.sample} must be from 0 to "
                            f"{MAX_PICTURES}")
        if not 64 <= self.panel_px <= 1024:
            raise UserError(f"report panel size {self.panel_px} px: must be from 64 to 1024")


class PredictionThumbnails:
    """Every image's predicted mask at picture size, bit-packed (about 3.5 KB an image at 192 px), kept while the
    evaluation runs so that the report can draw whichever images turn out worst without segmenting them again."""

    def __init__(self, panel_px: int) -> None:
        self.panel_px = panel_px
        self._masks: dict[str, tuple[tuple[int, int], np.ndarray]] = {}

    def add(self, pair: Pair, prediction: np.ndarray) -> None:
        height, width = fit_size(int(prediction.shape[0]), int(prediction.shape[1]), self.panel_px)
        small = shrink_mask(prediction, height, width) > 0
        self._masks[pair.image_id] = ((height, width), np.packbits(small))

    def get(self, image_id: str) -> np.ndarray | None:
        entry = self._masks.get(image_id)
        if entry is None:
            return None
        (height, width), packed = entry
        bits = np.unpackbits(packed, count=height * width).reshape(height, width)
        return bits.astype(np.uint8) * np.uint8(255)


@dataclass(frozen=True)
class WrittenReport:
    folder: Path
    pictures: int
    total_bytes: int
    seconds: float
    notes: list[str] = field(default_factory=list)


def jaccard_of(evaluation: ImageEvaluation) -> float:
    """The image's Jaccard; a failed image counts 0, as in the means."""
    return evaluation.score.jaccard if evaluation.score is not None else 0.0


def rank_key(evaluation: ImageEvaluation) -> tuple[float, str]:
    """Worst first: Jaccard, then id (so ties keep one order everywhere: the page, its CSV, the pictures)."""
    return jaccard_of(evaluation), evaluation.image_id


def choose_pictures(evaluations: Sequence[ImageEvaluation], options: ReportOptions
                    ) -> tuple[list[ImageEvaluation], list[ImageEvaluation]]:
    """The `worst` lowest-ranked images, and a seeded random sample of `sample` others (sorted the same way)."""
    ranked = sorted(evaluations, key=rank_key)
    worst, rest = ranked[: options.worst], ranked[options.worst :]
    sample = random.Random(options.seed).sample(rest, min(options.sample, len(rest)))
    return worst, sorted(sample, key=rank_key)


def picture_name(index: int, image_id: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", image_id)[:80]
    return f"{PICTURES_FOLDER}/{index:04d}-{safe}.jpg"


def write_report(folder: Path, evaluations: Sequence[ImageEvaluation], pairs: Sequence[Pair],
                 thumbnails: PredictionThumbnails, summary: dict[str, object], details: dict[str, str],
                 options: ReportOptions | None = None) -> WrittenReport:
    """Write the report for `evaluations` (of `pairs`) into `folder`, replacing an earlier report there."""
    options = options or ReportOptions()
    start = time.perf_counter()
    folder = Path(folder)
    check_report_folder(folder)
    pair_by_id = {pair.image_id: pair for pair in pairs}
    worst, sample = choose_pictures(evaluations, options)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-report-", dir=folder.parent))
        os.chmod(staging, FOLDER_MODE)
    except OSError as exc:
        raise OutputWriteError(f"{folder}: cannot create the report folder ({exc.strerror or exc})") from exc
    try:
        notes: list[str] = []
        (staging / PICTURES_FOLDER).mkdir()
        pictures: dict[str, str] = {}
        for index, evaluation in enumerate([*worst, *sample]):
            name = picture_name(index, evaluation.image_id)
            try:
                strip = _strip(pair_by_id[evaluation.image_id], thumbnails.get(evaluation.image_id), options.panel_px)
            except InputImageError as exc:
                notes.append(f"no picture of {evaluation.image_id}: {exc.reason}")
                continue
            (staging / name).write_bytes(encode_jpeg(strip, quality=85))
            pictures[evaluation.image_id] = name
        scored = [jaccard_of(e) for e in evaluations]
        histogram, missing = histogram_png(scored, f"{len(scored)} images")
        if histogram is not None:
            (staging / HISTOGRAM_NAME).write_bytes(histogram)
        scatter = _quality_scatter(evaluations, summary)
        if scatter is not None:
            (staging / SCATTER_NAME).write_bytes(scatter)
        ranked = sorted(evaluations, key=rank_key)
        (staging / CSV_NAME).write_bytes(per_image_csv(ranked, pictures))
        content = PageContent(summary, details, ranked, worst, sample, pictures,
                              HISTOGRAM_NAME if histogram is not None else None, missing, options.panel_px, CSV_NAME,
                              notes, SCATTER_NAME if scatter is not None else None)
        (staging / PAGE_NAME).write_text(render_page(content), encoding="utf-8")
        (staging / MARKER_NAME).write_text("written by dermseg-eval --report\n", encoding="utf-8")
        _swap_into_place(staging, folder)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise OutputWriteError(f"{folder}: cannot write the report ({exc.strerror or exc}); an earlier report there is "
                               "left as it was") from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    total = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
    return WrittenReport(folder, len(pictures), total, time.perf_counter() - start, notes)


def _quality_scatter(evaluations: Sequence[ImageEvaluation], summary: dict[str, object]) -> bytes | None:
    quality = summary.get("quality")
    points = [(e.quality.predicted_jaccard, e.score.jaccard) for e in evaluations
              if e.score is not None and e.quality is not None]
    if not isinstance(quality, dict) or not points:
        return None
    png, _ = quality_scatter_png([p for p, _ in points], [j for _, j in points], float(quality["review_below"]),
                                 f"{len(points)} masks")
    return png


def _strip(pair: Pair, prediction: np.ndarray | None, panel_px: int) -> np.ndarray:
    image = decode_image(read_file_bytes(pair.image), pair.image, draft_min_side_px=panel_px)
    return comparison_strip(image, read_mask(pair.mask), prediction, panel_px)


def per_image_csv(ranked: Sequence[ImageEvaluation], pictures: dict[str, str]) -> bytes:
    """Every image's scores in `ranked` order (Jaccard, then id), with its picture's file where it has one."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["image_id", *SCORE_NAMES, *BOUNDARY_NAMES, "truth_fraction", "large_lesion", "picture", "error"])
    for e in ranked:
        values = [getattr(e.score, n) for n in SCORE_NAMES] if e.score else [0.0] * len(SCORE_NAMES)
        border = [f"{getattr(e.boundary, n):.6f}" if e.boundary else "" for n in BOUNDARY_NAMES]
        writer.writerow([e.image_id, *(f"{v:.6f}" for v in values), *border, f"{e.truth_fraction:.6f}",
                         int(e.large_lesion), pictures.get(e.image_id, ""), e.error or ""])
    return csv_bytes(buffer.getvalue())


def check_report_folder(folder: Path) -> None:
    """Refuse a folder a report may not replace (before any work: a long evaluation should not end in this error):
    a file, a symbolic link (which a report would replace by a folder of its own), or a non-empty folder that is
    not a report."""
    if folder.is_symlink():
        raise UserError(f"{folder}: is a symbolic link; give the folder it points to ({os.path.realpath(folder)}) as "
                        "--report, or another folder")
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder}: exists and is not a folder; choose another --report folder")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / MARKER_NAME).is_file():
        raise UserError(f"{folder}: a folder that is not a dermseg report and is not empty; choose another --report "
                        "folder (an earlier report there is replaced, other files are never deleted)")


def _swap_into_place(staging: Path, folder: Path) -> None:
    """Rename the finished report into place; an earlier report there is moved aside first, then removed."""
    old = None
    if folder.exists():
        old = folder.with_name(f"{TEMP_PREFIX}{os.getpid()}-old-{folder.name}")
        os.replace(folder, old)
    try:
        os.replace(staging, folder)
    except OSError:
        if old is not None:
            os.replace(old, folder)
        raise
    if old is not None:
        with contextlib.suppress(OSError):
            shutil.rmtree(old)
