"""Paired per-image differences between training runs scored on the same validation images, per half of the split.

usage: python benchmarks/paired_runs.py --split model.split.json BASE.csv OTHER.csv [OTHER.csv ...]
Each CSV is `dermseg-eval --ids model.split.json --csv` output (one row per image). For every OTHER run and each half
(selection, reporting) it prints the mean difference from BASE in Jaccard and thresholded Jaccard, with a seeded
bootstrap 95% interval over the images: a difference whose interval holds 0 is within the noise of the half.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
from pathlib import Path

MEASURES = ("jaccard", "thresholded_jaccard")


def per_image(path: Path) -> dict[str, dict[str, float]]:
    with path.open(newline="") as handle:
        return {row["image_id"]: {m: float(row[m]) for m in MEASURES} for row in csv.DictReader(handle)}


def bootstrap_interval(values: list[float], draws: int = 2000, seed: int = 0) -> tuple[float, float]:
    """The 2.5th and 97.5th percentiles of the mean over `draws` resamples of `values`."""
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(values, k=len(values))) / len(values) for _ in range(draws))
    return means[int(0.025 * draws)], means[int(0.975 * draws) - 1]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", type=Path, required=True, help="A model.split.json with the two halves.")
    parser.add_argument("base", type=Path)
    parser.add_argument("others", type=Path, nargs="+")
    args = parser.parse_args(argv)
    split = json.loads(args.split.read_text())
    base = per_image(args.base)
    for other_path in args.others:
        other = per_image(other_path)
        for half in ("selection", "reporting"):
            ids = sorted(split[half])
            for measure in MEASURES:
                diffs = [other[i][measure] - base[i][measure] for i in ids]
                low, high = bootstrap_interval(diffs)
                print(f"{other_path.stem} {half} {measure}: {sum(diffs) / len(diffs):+.4f} [{low:+.4f}, {high:+.4f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
