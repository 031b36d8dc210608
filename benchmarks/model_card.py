"""Print the README's model-card table from a training run: its best checkpoint and its log.

usage: python benchmarks/model_card.py runs/recipe/model.pt
"""

from __future__ import annotations

import sys
from pathlib import Path

from dermseg_deploy.model.checkpoint import load_checkpoint
from dermseg_train.runlog import read_epochs
from dermseg_train.train import log_path


def main(path: Path) -> None:
    checkpoint = load_checkpoint(path)
    log = read_epochs(log_path(path))
    config = checkpoint.provenance["config"]
    stages = ", ".join(f"{s['size_px']} px x {s['epochs']} epoch(s)" for s in config["stages"])
    best = checkpoint.metrics["validation"]
    baselines = checkpoint.metrics.get("baselines", {})
    print(f"Run: {stages}; encoder weights `{config['encoder_weights']}`; seed {config['seed']}; "
          f"{len(checkpoint.provenance['val_ids'])} validation images; data {checkpoint.metadata.train_data}; "
          f"best epoch {checkpoint.metrics['epoch']['epoch']} of {len([r for r in log if 'epoch' in r])}.\n")
    print("| predictor | images | jaccard | thresholded jaccard | dice | jaccard, lesions > 70% (n) |")
    print("|---|---|---|---|---|---|")
    rows = [("this model", best["all"], best["large_lesions"])]
    rows += [(name.replace("_", " "), b["all"], b["large_lesions"]) for name, b in baselines.items()]
    def number(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.4f}"

    for name, all_images, large in rows:
        print(f"| {name} | {all_images['images']} | {number(all_images['jaccard'])} | "
              f"{number(all_images['thresholded_jaccard'])} | {number(all_images['dice'])} | "
              f"{number(large['jaccard'])} ({large['images']}) |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
