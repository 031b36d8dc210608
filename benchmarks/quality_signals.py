"""Per-image signals of a mask's quality, computed from the model's own logits, against the mask's real Jaccard.

usage: python benchmarks/quality_signals.py --engine MODEL --data DIR [--data DIR ...] [--ids model.split.json]
       --csv OUT [--flips]

For every image of each labelled folder (with --ids, the split's validation images, each labelled with its half), the
image goes through the runtime's own functions (decode policy, preprocessing, the backend, threshold, nearest
upsampling), and the CSV gets its real Jaccard (ISIC scoring at the ground truth's size) and these signals, all at the
network's input size:

    soft_jaccard     soft Jaccard between the probability map and its thresholded mask (the baseline)
    margin           mean |p - 0.5| over the pixels within 2 of the mask's border (how sharp the edge is)
    area             the mask's share of the image
    border           the share of the image's outermost pixels that the mask covers
    components       connected regions in the mask
    largest_share    the largest region's share of the mask
    centre_distance  the runtime's own (`core.quality`): the mask's centroid from the image centre, in image sides
    log_compactness  the runtime's own: log(perimeter^2 / (4 pi area))
    flips_agreement  (with --flips) mean Jaccard of the masks of the horizontal and vertical flips with the plain one

`benchmarks/quality_choice.py` compares predictors built from these on the selection half.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dermseg_deploy.backends import open_backend  # noqa: E402
from dermseg_deploy.core.decode import read_file_bytes  # noqa: E402
from dermseg_deploy.core.decode_policy import DecodePolicy  # noqa: E402
from dermseg_deploy.core.masks import upsample_mask  # noqa: E402
from dermseg_deploy.core.preprocess import preprocess  # noqa: E402
from dermseg_deploy.core.quality import host_signals  # noqa: E402
from dermseg_deploy.evaluation.metrics import score_image  # noqa: E402
from dermseg_deploy.evaluation.pairs import Pair, discover_pairs, read_mask  # noqa: E402
from dermseg_deploy.evaluation.val_split import read_split_val_ids  # noqa: E402

SIGNALS = ("soft_jaccard", "margin", "area", "border", "components", "largest_share")


def _jaccard(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def signals(logits: np.ndarray, threshold: float) -> dict[str, float]:
    """The signals of one (S, S) logit map."""
    probability = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    mask = logits > threshold
    inter = float((probability * mask).sum())
    union = float(probability.sum() + mask.sum() - inter)
    edge = ndimage.binary_dilation(mask, iterations=2) & ~ndimage.binary_erosion(mask, iterations=2)
    labels, count = ndimage.label(mask)
    sizes = np.bincount(labels.ravel())[1:] if count else np.array([0])
    rim = np.concatenate([mask[0], mask[-1], mask[1:-1, 0], mask[1:-1, -1]])
    return {"soft_jaccard": 1.0 if union == 0 else inter / union,
            "margin": float(np.abs(probability[edge] - 0.5).mean()) if edge.any() else 0.5,
            "area": float(mask.mean()), "border": float(rim.mean()), "components": float(count),
            "largest_share": float(sizes.max() / max(1, mask.sum()))}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", type=Path, required=True)
    parser.add_argument("--data", type=Path, action="append", required=True)
    parser.add_argument("--ids", type=Path, default=None, help="model.split.json: only the validation images of DATA")
    parser.add_argument("--csv", type=Path, required=True)
    parser.add_argument("--flips", action="store_true")
    parser.add_argument("--logits", type=Path, default=None, help="Also keep every logit map (float16) in this .npz")
    args = parser.parse_args(argv)
    backend = open_backend(args.engine, "cpu")
    metadata = backend.metadata
    policy = DecodePolicy(metadata.size_px)
    rows = []
    kept: dict[str, np.ndarray] = {}
    for folder in args.data:
        pairs: list[tuple[Pair, str]] = [(p, folder.name) for p in discover_pairs(folder)]
        if args.ids is not None and folder == args.data[0]:
            halves = {i: half for half in ("selection", "reporting") for i in read_split_val_ids(args.ids, half)}
            pairs = [(p, halves[p.image_id]) for p, _ in pairs if p.image_id in halves]
        for index, (pair, subset) in enumerate(pairs):
            decoded = policy.decode_on_host(read_file_bytes(pair.image), pair.image)
            batch = preprocess(decoded.pixels, metadata)[None]
            views = [batch] + ([batch[..., ::-1].copy(), batch[..., ::-1, :].copy()] if args.flips else [])
            logits = [backend.infer_host(view)[0, 0] for view in views]
            if args.flips:
                logits[1], logits[2] = logits[1][:, ::-1], logits[2][::-1, :]
            mask = logits[0] > metadata.logit_threshold
            truth = read_mask(pair.mask)
            full = upsample_mask(mask.astype(np.uint8), *truth.shape)
            runtime = host_signals(logits[0][None, None], mask[None, None].astype(np.uint8))[0]
            row = {"image_id": pair.image_id, "subset": subset, "jaccard": score_image(full, truth).jaccard,
                   **signals(logits[0], metadata.logit_threshold),
                   "centre_distance": float(runtime[1]), "log_compactness": float(runtime[2])}
            if args.flips:
                row["flips_agreement"] = float(np.mean([_jaccard(mask, view > metadata.logit_threshold)
                                                        for view in logits[1:]]))
            rows.append(row)
            if args.logits is not None:
                kept[pair.image_id] = np.stack(logits).astype(np.float16)
            if index % 100 == 0:
                print(f"{folder.name}: {index}/{len(pairs)}", file=sys.stderr)
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    with args.csv.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    if args.logits is not None:
        np.savez_compressed(args.logits, **kept)
    print(f"{len(rows)} images -> {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
