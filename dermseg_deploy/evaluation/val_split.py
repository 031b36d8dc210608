"""The validation split's two halves: settings are chosen on one and reported on the other (no torch here, so
`dermseg-eval --help` stays fast)."""

from __future__ import annotations

import random
from pathlib import Path

from dermseg_deploy.errors import UserError
from dermseg_deploy.util.bounded_json import read_bounded_json_file

VAL_HALVES = ("selection", "reporting")
"""The validation images cut in two: settings are chosen on the selection half and reported on the other."""


def split_val_halves(val_ids: list[str], seed: int) -> dict[str, list[str]]:
    """Seeded halves of the validation ids (`VAL_HALVES`; the first has the odd one), each in sorted order; the
    same ids and seed give the same halves."""
    order = sorted(val_ids)
    random.Random(f"halves:{seed}").shuffle(order)
    middle = (len(order) + 1) // 2
    return {"selection": sorted(order[:middle]), "reporting": sorted(order[middle:])}


def read_split_val_ids(path: Path, half: str | None = None) -> list[str]:
    """The validation ids of a `model.split.json`, or one of their halves (recomputed from the ids and the seed,
    so split files written before the halves existed work too)."""
    split = read_bounded_json_file(path)
    try:
        val = [str(image_id) for image_id in split["val"]]
        seed = int(split.get("seed", 0))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UserError(f"{path}: expected a split file with a 'val' list") from exc
    return split_val_halves(val, seed)[half] if half else val
