"""Scores of one model file under every test-time augmentation x post-processing setting, on the same images.

    python benchmarks/accuracy_table.py --engine runs/scratch/model.onnx --data ../shared/data/isic2018-task1-512 \
        --size 64 --ids runs/scratch/model.split.json --half reporting --out benchmarks/results/accuracy-DATE/reporting

Each setting runs the per-image core that `dermseg-eval --engine MODEL --tta T --postprocess P` runs (so every
row is what that command prints), and writes `table.md`, `table.json` and one per-image CSV per setting.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from dermseg_deploy.core.mask_options import TTA_VIEWS, MaskOptions
from dermseg_deploy.evaluation.pairs import discover_pairs
from dermseg_deploy.evaluation.scoring import evaluate_segmenter, summarize, write_per_image_csv
from dermseg_deploy.evaluation.val_split import read_split_val_ids
from dermseg_deploy.segment.segmenter import Segmenter

POSTPROCESS_SETTINGS = ("none", "largest", "fill-holes", "largest,fill-holes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--ids", type=Path, required=True, help="model.split.json")
    parser.add_argument("--half", choices=("selection", "reporting"), default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=None, help="network input side (a .pt's training size)")
    parser.add_argument("--tta", default=",".join(TTA_VIEWS))
    parser.add_argument("--postprocess", default=";".join(POSTPROCESS_SETTINGS), help="settings separated by ;")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    wanted = set(read_split_val_ids(args.ids, args.half))
    pairs = [p for p in discover_pairs(args.data) if p.image_id in wanted]
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for tta in args.tta.split(","):
        for steps in args.postprocess.split(";"):
            options = MaskOptions.parse(tta, steps)
            start = time.perf_counter()
            with Segmenter.open(args.engine, args.device, args.size, tta=options.tta,
                                postprocess=options.postprocess) as segmenter:
                evaluations = evaluate_segmenter(segmenter, pairs, batch_size=4)
            seconds = time.perf_counter() - start
            summary = summarize(evaluations)
            name = f"{options.tta}-{'+'.join(options.postprocess) or 'none'}"
            write_per_image_csv(args.out / f"{name}.csv", evaluations)
            per_image = {e.image_id: (e.score.jaccard if e.score else 0.0) for e in evaluations}
            rows.append({"tta": options.tta, "postprocess": "+".join(options.postprocess) or "none",
                         "all": summary["all"], "large_lesions": summary["large_lesions"],
                         "failed": summary["failed"], "seconds": seconds, "per_image_jaccard": per_image})
            print(f"{name}: jaccard {summary['all']['jaccard']:.4f}, thresholded "
                  f"{summary['all']['thresholded_jaccard']:.4f} ({seconds:.0f} s)", flush=True)
    document = {"engine": str(args.engine), "size_px": args.size, "data": str(args.data), "ids": str(args.ids),
                "half": args.half, "images": len(pairs), "device": args.device, "rows": rows}
    (args.out / "table.json").write_text(json.dumps(document, indent=2) + "\n")
    (args.out / "table.md").write_text(markdown(rows, len(pairs)))
    print(markdown(rows, len(pairs)))


def markdown(rows: list[dict], images: int) -> str:
    """The table: scores, their change from the plain model, and how many images the setting changed at all."""
    plain = next(r for r in rows if r["tta"] == "none" and r["postprocess"] == "none")
    base = plain["per_image_jaccard"]
    lines = [f"{images} images. Δ: change from the plain model (no TTA, no post-processing). Changed: images whose "
             "Jaccard moved by more than 0.001; up/down across 0.65: images that the thresholded score gains or loses.",
             "", "| tta | postprocess | jaccard | Δ | thresholded jaccard | Δ | dice | jaccard, lesions > 70% (n) | "
             "changed | up/down across 0.65 |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        a, large, scores = r["all"], r["large_lesions"], r["per_image_jaccard"]
        changed = sum(abs(scores[k] - base[k]) > 0.001 for k in base)
        up = sum(scores[k] >= 0.65 > base[k] for k in base)
        down = sum(base[k] >= 0.65 > scores[k] for k in base)
        lines.append(
            f"| {r['tta']} | {r['postprocess']} | {a['jaccard']:.4f} | {a['jaccard'] - plain['all']['jaccard']:+.4f} | "
            f"{a['thresholded_jaccard']:.4f} | {a['thresholded_jaccard'] - plain['all']['thresholded_jaccard']:+.4f} | "
            f"{a['dice']:.4f} | {large['jaccard']:.4f} ({large['images']}) | {changed} | {up}/{down} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
