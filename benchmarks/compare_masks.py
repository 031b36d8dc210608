"""Compare two folders of dermseg masks for the same images: size, values, and per-image IoU."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps


def main(images: Path, first: Path, second: Path) -> int:
    ious, problems = [], []
    for source in sorted(images.glob("*.jpg")):
        with Image.open(source) as image:
            width, height = ImageOps.exif_transpose(image).size
        masks = []
        for folder in (first, second):
            with Image.open(folder / f"{source.stem}_segmentation.png") as mask:
                if mask.mode != "L" or mask.size != (width, height):
                    problems.append(f"{folder.name}/{source.stem}: mode {mask.mode} size {mask.size} vs {(width, height)}")
                array = np.asarray(mask)
            if not set(np.unique(array).tolist()) <= {0, 255}:
                problems.append(f"{folder.name}/{source.stem}: values other than 0 and 255")
            masks.append(array > 0)
        union = np.logical_or(*masks).sum()
        ious.append(1.0 if union == 0 else float(np.logical_and(*masks).sum() / union))
    print(f"{len(ious)} images; masks single-channel 8-bit of each image's size with values 0/255: "
          f"{'yes' if not problems else 'NO'}")
    print(f"IoU {first.name} vs {second.name}: min {min(ious):.6f}, mean {np.mean(ious):.6f}")
    for problem in problems:
        print("problem:", problem)
    return 0 if not problems and min(ious) >= 0.999 else 3


if __name__ == "__main__":
    sys.exit(main(*(Path(a) for a in sys.argv[1:4])))
