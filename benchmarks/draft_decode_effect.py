"""Effect of libjpeg DCT-domain draft decoding on masks and on decode+resize time, against full decoding.

usage: python benchmarks/draft_decode_effect.py SIZE_PX MODEL.pt IMAGE_FOLDER [COUNT]
Draft decoding keeps both sides >= FACTOR x the input size (FACTOR 1 is what dermseg-run does).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from dermseg_deploy.backends import open_backend
from dermseg_deploy.core.decode import decode_image, displayed_size
from dermseg_deploy.core.masks import logits_to_masks, upsample_mask
from dermseg_deploy.core.preprocess import preprocess

FACTORS = (1, 2)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


def main() -> None:
    size, model, folder = int(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    count = int(sys.argv[4]) if len(sys.argv) > 4 else 12
    backend = open_backend(model, "cpu", size)
    metadata = backend.metadata
    paths = sorted(folder.glob("*.jpg"))[:count]
    ious: dict[int, list[float]] = {f: [] for f in FACTORS}
    seconds = {0: 0.0, **{f: 0.0 for f in FACTORS}}

    def mask(x: np.ndarray, height: int, width: int) -> np.ndarray:
        logits = backend.infer_host(x[None])
        return upsample_mask(logits_to_masks(logits, metadata.logit_threshold)[0], height, width) > 0

    for path in paths:
        data = path.read_bytes()
        height, width = displayed_size(data)
        start = time.perf_counter()
        full = preprocess(decode_image(data), metadata)
        seconds[0] += time.perf_counter() - start
        reference = mask(full, height, width)
        for factor in FACTORS:
            start = time.perf_counter()
            drafted = preprocess(decode_image(data, draft_min_side_px=size * factor), metadata)
            seconds[factor] += time.perf_counter() - start
            ious[factor].append(_iou(reference, mask(drafted, height, width)))
    largest = max(displayed_size(p.read_bytes()) for p in paths)
    print(f"input {size} px, {len(paths)} images from {folder} (largest {largest[1]}x{largest[0]}), model {model}")
    print("decode+resize seconds per image: full " + ", ".join(
        [f"{seconds[0] / len(paths):.3f}"] + [f"draft >= {f}x: {seconds[f] / len(paths):.3f}" for f in FACTORS]))
    for factor in FACTORS:
        print(f"draft >= {factor}x input: mask IoU against full decoding mean {np.mean(ious[factor]):.5f}, "
              f"min {np.min(ious[factor]):.5f}")


if __name__ == "__main__":
    main()
