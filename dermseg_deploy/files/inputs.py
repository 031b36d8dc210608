"""Input discovery: files and folders (recursive) -> work items with output paths (`dermseg-run`, the API), or the
image files of a folder (`dermseg-export`'s calibration and check images, `dermseg-bench`). One walker for both: it
passes over temp files, the output folder, ground truth and dermseg's overlays, and follows symlinked folders once."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..core.decode import IMAGE_SUFFIXES
from ..core.work_item import WorkItem
from ..errors import InputImageError, UserError
from ..samples import sample_image_paths
from ..util.atomic import is_temp_file

MASK_SUFFIX = "_segmentation.png"
OVERLAY_SUFFIX = "_overlay.jpg"
GROUND_TRUTH = "ground truth"
DERMSEG_OUTPUT = "dermseg output"
PASSED_OVER_REASONS = {
    GROUND_TRUTH: "file(s) named like ground-truth masks (*_segmentation.*, *_Segmentation.*)",
    DERMSEG_OUTPUT: "dermseg overlay(s) (*_overlay.jpg)",
}


def passed_over_reason(path: Path) -> str | None:
    """Why a file found in a folder is not an input: named like a ground-truth mask (ISIC 2017/2018
    `_segmentation`, ISIC 2016 `_Segmentation`, any case; also what dermseg names its masks), or like a dermseg
    overlay. None for an input."""
    stem = path.stem.lower()
    if stem.endswith("_segmentation"):
        return GROUND_TRUTH
    if path.name.lower().endswith(OVERLAY_SUFFIX):
        return DERMSEG_OUTPUT
    return None


def output_paths(source: Path, folder: Path) -> tuple[Path, Path]:
    """Where the mask and the overlay of `source` go in `folder`: `<stem>_segmentation.png`, `<stem>_overlay.jpg`."""
    return folder / f"{source.stem}{MASK_SUFFIX}", folder / f"{source.stem}{OVERLAY_SUFFIX}"


@dataclass(frozen=True)
class InputPlan:
    """The work items; the inputs that cannot be used (one error each); notes worth a line (a symlink loop)."""

    items: list[WorkItem]
    errors: list[InputImageError]
    notes: list[str] = field(default_factory=list)
    passed_over: dict[str, int] = field(default_factory=dict)
    """Files found in folders that are not inputs, counted by why: `ground truth` (named like an ISIC mask) and
    `dermseg output` (a mask or overlay that dermseg writes)."""

    def passed_over_line(self) -> str | None:
        """One line that says how many files in the input folders were passed over and why, or None."""
        if not self.passed_over:
            return None
        parts = [f"{count} {PASSED_OVER_REASONS[reason]}" for reason, count in sorted(self.passed_over.items())]
        return (f"passed over {', '.join(parts)} in the input folders (name such a file on the command line to "
                "segment it)")


def _is_within(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder)
    except ValueError:
        return False
    return True


def _item(source: Path, out_dir: Path, relative_parent: Path) -> WorkItem:
    return WorkItem(source, *output_paths(source, out_dir / relative_parent))


def _walk_folder(root: Path, out_dir: Path | None, errors: list[InputImageError], notes: list[str],
                 passed_over: dict[str, int]) -> list[tuple[Path, Path]]:
    """(file, parent relative to root) for image files under root, sorted; unlistable folders become errors.

    Symlinked folders are followed, as symlinked files are; one that leads back to a folder already walked (a
    loop, or a second way into the same tree) is passed over with a note."""
    found: list[tuple[Path, Path]] = []
    visited: dict[str, Path] = {os.path.realpath(root): root}

    def on_error(exc: OSError) -> None:
        errors.append(InputImageError(exc.filename or root, f"folder cannot be listed ({exc.strerror or exc})"))

    for dirpath, dirnames, filenames in os.walk(root, onerror=on_error, followlinks=True):
        folder = Path(dirpath)
        kept = []
        for name in sorted(dirnames):
            sub = folder / name
            if out_dir is not None and _is_within(sub, out_dir):
                continue
            real = os.path.realpath(sub)
            if real in visited:
                notes.append(f"{sub}: leads to the same folder as {visited[real]} (a symlink), already searched; passed "
                             "over")
                continue
            visited[real] = sub
            kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            path = folder / name
            if is_temp_file(path) or path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            reason = passed_over_reason(path)
            if reason is not None:
                passed_over[reason] = passed_over.get(reason, 0) + 1
                continue
            found.append((path, folder.relative_to(root)))
    return found


def plan_inputs(inputs: list[str | Path], out_dir: str | Path) -> InputPlan:
    """Expand files and folders to work items; outputs mirror each input folder's tree under `out_dir`.

    The output folder and temp files are never inputs; files in folders named like ground truth or like
    dermseg's overlays are passed over (counted in `passed_over`), but taken when named one by one. Two inputs
    that would write the same mask make the second an error. A path that does not exist at all is a usage error.
    """
    out_root = Path(out_dir).resolve()
    missing = [str(p) for p in inputs if not Path(p).exists() and not Path(p).is_symlink()]
    if missing:
        raise UserError(f"input not found: {', '.join(missing)}")
    errors: list[InputImageError] = []
    notes: list[str] = []
    passed_over: dict[str, int] = {}
    candidates: list[tuple[Path, Path]] = []
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            if _is_within(path, out_root):
                raise UserError(f"{path}: the input folder lies inside the output folder {out_root}; choose another -o")
            candidates += _walk_folder(path, out_root, errors, notes, passed_over)
        else:
            candidates.append((path, Path()))
    items, clashes = unique_outputs([_item(source, out_root, parent) for source, parent in candidates])
    return InputPlan(items, errors + clashes, notes, passed_over)


def find_images(folder: Path) -> list[Path]:
    """The image files under `folder` in the order `dermseg-run` takes them (recursive, sorted per folder), passing
    over what `dermseg-run` passes over; a missing or unlistable folder is a UserError."""
    if not folder.is_dir():
        raise UserError(f"{folder}: image folder not found")
    errors: list[InputImageError] = []
    found = _walk_folder(folder, None, errors, [], {})
    if errors:
        raise UserError(str(errors[0]))
    return [path for path, _ in found]


def image_files(folder: Path | None) -> list[Path]:
    """Images in `folder` as `dermseg-run` finds them (`find_images`), or the samples dermseg ships when `folder` is
    None (what `dermseg-export` calibrates and checks on, and `dermseg-bench` times, by default)."""
    return sample_image_paths() if folder is None else find_images(folder)


def unique_outputs(items: Sequence[WorkItem]) -> tuple[list[WorkItem], list[InputImageError]]:
    """Items whose masks go to distinct files; a later item that would overwrite an earlier one's mask is an error."""
    kept: list[WorkItem] = []
    errors: list[InputImageError] = []
    claimed: dict[Path, Path | str] = {}
    for item in items:
        key = item.mask_path
        if key is not None and key in claimed:
            errors.append(InputImageError(item.source, f"its mask {key} would overwrite that of {claimed[key]}"))
            continue
        if key is not None:
            claimed[key] = item.source
        kept.append(item)
    return kept, errors
