"""The validation split's two halves: settings are chosen on one and reported on the other (no torch here, so
`dermseg-eval --help` stays fast)."""

from __future__ import annotations

import random

VAL_HALVES = ("selection", "reporting")
"""The validation images cut in two: settings are chosen on the selection half and reported on the other."""


def split_val_halves(val_ids: list[str], seed: int) -> dict[str, list[str]]:
    """Seeded halves of the validation ids (`VAL_HALVES`; the first has the odd one), each in sorted order; the
    same ids and seed give the same halves."""
    order = sorted(val_ids)
    random.Random(f"halves:{seed}").shuffle(order)
    middle = (len(order) + 1) // 2
    return {"selection": sorted(order[:middle]), "reporting": sorted(order[middle:])}
