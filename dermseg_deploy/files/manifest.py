"""`manifest.csv`: one row per input of every command that writes masks; this module alone reads and writes it.

Columns, in this order:

    file                   the input file as given (or found in a folder)
    status                 ok (mask written), skipped (its mask existed; --overwrite redoes it), failed. A rerun
                           into the same folder keeps the earlier run's rows (`merge_rerun`)
    mask_path              where the mask is (empty when failed)
    lesion_area_fraction   share of the mask's pixels marked lesion, 0-1 (empty unless ok)
    seconds                time spent on this input (its share of its batch's inference included)
    error                  why it failed (empty otherwise), as the command's `error: <file>: <reason>` line
    note                   something worth knowing about a segmented input ("no lesion found (empty mask)",
                           decoded on the CPU, ...)
    error_kind             what kind of failure (empty otherwise): unusable (a bad input), too_large (over the
                           pixel limit), nonfinite_logits (the model's fault), not_written (its folder went),
                           internal (an exception dermseg did not expect: a bug; the command exits 70)
    predicted_jaccard      the mask's predicted Jaccard, 0-1 (`core.quality`; calibrated where the model carries a
                           calibration for the run's settings, else the raw soft Jaccard: the summary says which)
    review                 yes where the prediction is below --review-below (check that mask), no otherwise

Columns are only ever added at the end: `read_manifest` reads a manifest of an earlier version (fewer columns) and
fills the missing ones with their defaults.

Written atomically (a temp file, then a rename): readers see the old manifest or the new one, and never
into a folder that is gone (an output folder deleted mid-run is not recreated). UTF-8; a file name that is
not valid UTF-8 keeps its raw bytes (Python's `surrogateescape`: lossless, and `read_manifest` gives back the
same path). A text cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return (a formula to a
spreadsheet) is written with a `'` in front, as OWASP advises for CSV injection, and so is one that starts with
`'`; `read_manifest` removes that one quote, so the paths it returns are the real ones.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from ..errors import INTERNAL_KIND, InputImageError, UserError
from ..util.atomic import atomic_write_bytes

MANIFEST_NAME = "manifest.csv"
REVIEW_LIST_NAME = "review.txt"
"""Beside the manifest: the inputs whose masks are flagged for review, one per line."""
STATUS_OK = "ok"
STATUS_SKIPPED = "skipped"
STATUS_FAILED = "failed"
STATUSES = (STATUS_OK, STATUS_SKIPPED, STATUS_FAILED)
REVIEW_VALUES = ("yes", "no", "")


@dataclass(frozen=True)
class ManifestRow:
    """One input's outcome, as a row of `manifest.csv` (plain strings and numbers, easy to ship between processes)."""

    file: str
    status: str
    mask_path: str = ""
    lesion_area_fraction: float | None = None
    seconds: float = 0.0
    error: str = ""
    note: str = ""
    error_kind: str = ""
    predicted_jaccard: float | None = None
    review: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"manifest status {self.status!r} is not one of {', '.join(STATUSES)}")
        if self.review not in REVIEW_VALUES:
            raise ValueError(f"manifest review {self.review!r} is not one of yes, no or empty")

    @classmethod
    def input_error(cls, error: InputImageError) -> ManifestRow:
        """An input that failed before segmentation (a folder that cannot be listed, a clashing output)."""
        return cls(str(error.path), STATUS_FAILED, error=error.reason, error_kind=error.kind)

    @property
    def internal(self) -> bool:
        """Failed on an exception dermseg did not expect (a bug)."""
        return self.error_kind == INTERNAL_KIND

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ManifestRow:
        fraction = data.get("lesion_area_fraction")
        predicted = data.get("predicted_jaccard")
        return cls(
            file=str(data["file"]), status=str(data["status"]), mask_path=str(data.get("mask_path") or ""),
            lesion_area_fraction=None if fraction in (None, "") else float(fraction),
            seconds=float(data.get("seconds") or 0.0), error=str(data.get("error") or ""),
            note=str(data.get("note") or ""), error_kind=str(data.get("error_kind") or ""),
            predicted_jaccard=None if predicted in (None, "") else float(predicted), review=str(data.get("review") or ""),
        )

    def csv_values(self) -> list[str]:
        fraction = "" if self.lesion_area_fraction is None else f"{self.lesion_area_fraction:.6f}"
        return [neutralise(self.file), self.status, neutralise(self.mask_path), fraction, f"{self.seconds:.4f}",
                neutralise(self.error), neutralise(self.note), self.error_kind,
                "" if self.predicted_jaccard is None else f"{self.predicted_jaccard:.4f}", self.review]


COLUMNS = tuple(f.name for f in fields(ManifestRow))
FIRST_COLUMNS = 7
"""The columns of the first manifest version (up to `note`): every later one starts with them."""
TEXT_COLUMNS = ("file", "mask_path", "error", "note")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"
ENCODING, ENCODING_ERRORS = "utf-8", "surrogateescape"


def neutralise(cell: str) -> str:
    """A cell a spreadsheet will not run as a formula: `'` in front of one that starts like a formula (or with `'`,
    so that `restore` is exact)."""
    return QUOTE + cell if cell.startswith((*FORMULA_STARTS, QUOTE)) else cell


def restore(cell: str) -> str:
    """The value `neutralise` was given."""
    return cell[1:] if cell.startswith(QUOTE) and cell[1:].startswith((*FORMULA_STARTS, QUOTE)) else cell


def write_manifest(path: Path, rows: Iterable[ManifestRow], failures_only: bool = False) -> Path:
    """Write the rows as CSV, atomically; `failures_only` keeps the failed rows (the `--report` file)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for row in rows:
        if not failures_only or row.status == STATUS_FAILED:
            writer.writerow(row.csv_values())
    atomic_write_bytes(path, buffer.getvalue().encode(ENCODING, ENCODING_ERRORS), make_folder=False)
    return path


def mark_missing_masks(rows: Iterable[ManifestRow]) -> list[ManifestRow]:
    """The rows, with those whose mask no longer exists (deleted after it was written) turned into failures that
    say so."""
    checked = []
    for row in rows:
        if row.status != STATUS_FAILED and row.mask_path and not Path(row.mask_path).exists():
            row = replace(row, status=STATUS_FAILED, lesion_area_fraction=None,
                          error=f"its mask {row.mask_path} is gone (deleted after it was written)")
        checked.append(row)
    return checked


def merge_rerun(earlier: Iterable[ManifestRow], current: Iterable[ManifestRow],
                fraction_on_disk: Callable[[str], float | None]) -> list[ManifestRow]:
    """The manifest of a rerun into the same folder: what the earlier run recorded stays.

    By input file: a new result replaces the old; a `skipped` row (its mask existed) keeps the earlier row's
    status, lesion fraction and time; a skipped row with no earlier record (the run that wrote its mask was
    killed before its manifest) gets its lesion fraction from `fraction_on_disk(mask_path)`. Earlier rows of
    files not in this run come first, unchanged; then this run's rows in its order.
    """
    before = {row.file: row for row in earlier}
    merged: dict[str, ManifestRow] = {}
    for row in current:
        old = before.get(row.file)
        if row.status == STATUS_SKIPPED and old is not None and old.status != STATUS_FAILED:
            row = old
        elif row.status == STATUS_SKIPPED and row.lesion_area_fraction is None and row.mask_path:
            row = replace(row, lesion_area_fraction=fraction_on_disk(row.mask_path))
        merged[row.file] = row
    kept = [row for file, row in before.items() if file not in merged]
    return kept + list(merged.values())


def read_manifest(path: Path) -> list[ManifestRow]:
    """The rows of a manifest written by `write_manifest`; a file with other columns is a UserError."""
    try:
        text = path.read_bytes().decode(ENCODING, ENCODING_ERRORS)
    except OSError as exc:
        raise UserError(f"{path}: cannot read the manifest ({exc.strerror or exc})") from exc
    reader = csv.DictReader(io.StringIO(text))
    found = tuple(reader.fieldnames or ())
    if len(found) < FIRST_COLUMNS or found != COLUMNS[: len(found)]:
        raise UserError(f"{path}: not a dermseg manifest (columns {reader.fieldnames}, expected {list(COLUMNS)})")
    try:
        return [ManifestRow.from_dict({key: restore(value) if key in TEXT_COLUMNS and value else value
                                       for key, value in record.items()}) for record in reader]
    except (KeyError, ValueError) as exc:
        raise UserError(f"{path}: malformed manifest row ({exc})") from exc
