"""Images kept out of training: lists of image ids the trainer reads (`--exclude FILE`), recorded in model.split.json.

A list is a text file of ISIC ids, one per line; blank lines and lines starting with `#` are ignored. Excluded images
are removed from the training half only: the validation split stays what the seed makes it, so scores stay comparable
with runs that excluded nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from dermseg_deploy.errors import UserError

HELDOUT_IDS = Path(__file__).with_name("heldout_ids.txt")
"""The 24 full-resolution ISIC 2017 images (and so the 8 shipped samples): `--preset scratch` never trains on them."""


def read_id_list(path: str | Path) -> list[str]:
    """The ids a list file names, in file order."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read the exclusion list ({exc})") from exc
    ids = [line.strip() for line in text.splitlines()]
    return [image_id for image_id in ids if image_id and not image_id.startswith("#")]


def excluded_ids(paths: Iterable[str | Path]) -> set[str]:
    """Every id the lists name."""
    return {image_id for path in paths for image_id in read_id_list(path)}
