"""Folders of links to a split's images, for commands that take a folder: `calib/` (a seeded sample of the training
images: what may calibrate a quantization) and `heldout/` (the validation images: what scores it), each with the
ISIC layout (`images/` + `masks/`) so that `dermseg-eval` reads them too.

usage: python benchmarks/split_folders.py MODEL.split.json DATA OUT [--calib-count 400]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dermseg_deploy.evaluation.pairs import discover_pairs  # noqa: E402


def link_pairs(pairs: list, folder: Path) -> None:
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    for pair in pairs:
        for source, sub in ((pair.image, "images"), (pair.mask, "masks")):
            link = folder / sub / source.name
            if not link.exists():
                link.symlink_to(source.resolve())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("split", type=Path)
    parser.add_argument("data", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--calib-count", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    split = json.loads(args.split.read_text())
    pairs = {pair.image_id: pair for pair in discover_pairs(args.data)}
    train = [pairs[i] for i in split["train"]]
    random.Random(args.seed).shuffle(train)
    link_pairs(train[: args.calib_count], args.out / "calib")
    link_pairs([pairs[i] for i in split["val"]], args.out / "heldout")
    print(f"{args.out / 'calib'}: {min(args.calib_count, len(train))} training images; {args.out / 'heldout'}: "
          f"{len(split['val'])} validation images")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
