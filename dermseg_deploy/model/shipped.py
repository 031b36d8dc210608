"""The model that ships inside the package (`dermseg_deploy/models/`): what `dermseg-run`, `dermseg-eval`,
`dermseg-serve` and `Segmenter.open()` use when no model file is given.

    models/manifest.json    the file's name, SHA-256 and size, its licence and model card, and how it was made
    models/<name>.onnx      an INT8 ONNX (ONNX Runtime runs it: the runtime install needs nothing else)
    models/MODEL_CARD.md    what it is for and not for, its training, its data, its scores
    models/LICENSE          the weights' licence (CC BY-NC 4.0, from the ISIC 2018 data they learned): not the code's

The file is checked against its manifest's SHA-256 before it is opened, so a damaged or replaced file is refused
in one line instead of giving other masks than the card's. Before a byte of it is read, the manifest's `file` and
`card` must be plain names of regular files in `models/` (no path, no link, no device) and the file must have the
manifest's `size_bytes`.
"""

from __future__ import annotations

import functools
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ModelFileError
from ..util.bounded_json import UntrustedJsonError, read_bounded_json_file
from ..util.digest import file_sha256

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "models"
MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class ShippedModel:
    path: Path
    sha256: str
    size_bytes: int
    licence: str
    card: Path
    summary: str
    """One line: what the model is and how well it scored (the card has the rest)."""

    def notice(self) -> str:
        """The line a command says when it uses this model."""
        return (f"no --engine given: using the model shipped with dermseg, {self.path.name} ({self.summary}); weights "
                f"under {self.licence}, for research only, not for diagnosis: {self.card}")


def shipped_model(folder: Path = SHIPPED_DIR) -> ShippedModel:
    """The shipped model as its manifest describes it (not yet checked: `verified_shipped_model`)."""
    manifest = folder / MANIFEST_NAME
    try:
        data = read_bounded_json_file(manifest)
        size = data["size_bytes"]
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise ValueError(f"size_bytes = {size!r} is not a positive integer")
        return ShippedModel(_plain_file(folder, data, "file"), str(data["sha256"]), size, str(data["licence"]),
                            _plain_file(folder, data, "card"), str(data["summary"]))
    except (UntrustedJsonError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelFileError(f"{manifest}: the shipped model's manifest is missing or unreadable ({exc}); reinstall "
                             "dermseg, or give a model file with --engine") from exc


def _plain_file(folder: Path, data: dict[str, Any], key: str) -> Path:
    """`folder / data[key]`, where that is a plain file name: no folder part, not `.` or `..`."""
    name = data[key]
    if not isinstance(name, str) or not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise ValueError(f"{key} = {name!r} is not a plain file name in {folder}")
    return folder / name


@functools.cache
def _verified(path: Path, sha256: str, size: int, mtime_ns: int) -> bool:
    return file_sha256(path) == sha256


def verified_shipped_model(folder: Path = SHIPPED_DIR) -> ShippedModel:
    """The shipped model, its file checked against the manifest's SHA-256 (once per process while the file is
    unchanged); a missing or different file is a ModelFileError."""
    model = shipped_model(folder)
    try:
        info = model.path.lstat()
    except OSError as exc:
        raise ModelFileError(f"{model.path}: the shipped model is missing ({exc.strerror or exc}); reinstall dermseg, "
                             "or give a model file with --engine") from exc
    if not stat.S_ISREG(info.st_mode):
        raise ModelFileError(f"{model.path}: the shipped model is not a regular file (a folder, link or device); "
                             "reinstall dermseg, or give a model file with --engine")
    if info.st_size != model.size_bytes:
        raise ModelFileError(f"{model.path}: {info.st_size} bytes where {MANIFEST_NAME} records {model.size_bytes} (the "
                             "file is damaged or was replaced); reinstall dermseg, or give a model file with --engine")
    if not _verified(model.path, model.sha256, info.st_size, info.st_mtime_ns):
        raise ModelFileError(f"{model.path}: its SHA-256 differs from the one in {MANIFEST_NAME} (the file is damaged "
                             "or was replaced); reinstall dermseg, or give a model file with --engine")
    return model


def shipped_model_path(say: Callable[[str], None]) -> Path:
    """The verified shipped model's file, after `say`ing the line that announces it (what every entry point does when
    it is given no model file: the commands print the line, the Python API warns)."""
    model = verified_shipped_model()
    say(model.notice())
    return model.path
