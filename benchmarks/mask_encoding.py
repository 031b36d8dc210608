"""Mask PNG encoding, before and after: milliseconds and bytes per full-resolution mask, pixels checked.

    python benchmarks/mask_encoding.py \
        --masks ../shared/data/isic2017-fullres/ISIC-2017_Validation_Part1_GroundTruth \
        --json benchmarks/results/mask-encoding-cpu-<date>/result.json

Before: Pillow's PNG encoder at compress_level 1 (what dermseg wrote until now). After: `encode_grey_png`
(Up filter, zlib-ng run-length deflate). Each mask is the ground truth of a full-resolution ISIC 2017 image,
binarised to 0/255; every encoding is decoded again and compared pixel for pixel.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from dermseg_deploy.bench.environment import cpu_model
from dermseg_deploy.files.png_encode import encode_grey_png


def pillow_level1(mask: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(mask).save(buffer, format="PNG", optimize=False, compress_level=1)
    return buffer.getvalue()


def measure(encode: Callable[[np.ndarray], bytes], masks: list[np.ndarray], repeats: int) -> dict[str, float]:
    times, sizes = [], []
    for mask in masks:
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            data = encode(mask)
            best = min(best, time.perf_counter() - start)
        with Image.open(io.BytesIO(data)) as decoded:
            if decoded.mode != "L" or not np.array_equal(np.asarray(decoded), mask):
                raise SystemExit(f"{encode.__name__}: a mask did not decode to the same pixels")
        times.append(best * 1000.0)
        sizes.append(len(data))
    return {"ms_mean": statistics.mean(times), "ms_median": statistics.median(times), "bytes_mean": statistics.mean(sizes),
            "bytes_max": max(sizes)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--masks", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=5, help="Runs per mask; the fastest counts.")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    paths = sorted(args.masks.glob("*.png"))
    masks = []
    for path in paths:
        with Image.open(path) as image:
            masks.append(np.where(np.asarray(image.convert("L")) > 127, 255, 0).astype(np.uint8))
    before = measure(pillow_level1, masks, args.repeats)
    after = measure(encode_grey_png, masks, args.repeats)
    result = {"masks": len(masks), "megapixels_mean": statistics.mean(m.size for m in masks) / 1e6, "cpu": cpu_model(),
              "before_pillow_level1": before, "after_zlib_ng_rle": after,
              "speedup": before["ms_mean"] / after["ms_mean"], "size_ratio": after["bytes_mean"] / before["bytes_mean"]}
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
