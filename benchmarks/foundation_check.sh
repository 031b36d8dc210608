#!/usr/bin/env bash
# The foundation's acceptance figures on the CPU, for a trained checkpoint:
#   1. dermseg-export at 1024: ONNX Runtime vs PyTorch parity on real images;
#   2. dermseg-run with an ONNX exported at 512 vs the .pt at --size 512 on the 24 full-resolution
#      ISIC 2017 images: every mask the image's size, 0/255, and per-image IoU between the two.
# usage: benchmarks/foundation_check.sh CHECKPOINT OUTDIR   (needs ../shared/data)
set -euo pipefail
cd "$(dirname "$0")/.."
checkpoint=$1
out=$2
images=../shared/data/isic2017-fullres/ISIC-2017_Validation_Data
work=$(mktemp -d)
mkdir -p "$out"
cp "$checkpoint" "$work/model.pt"
{
    echo "\$ dermseg-export model.pt --size 1024 --parity-images $images --parity-count 2"
    .venv/bin/dermseg-export "$work/model.pt" --size 1024 --parity-images "$images" --parity-count 2
    echo "\$ dermseg-export model.pt --size 512 -o export512"
    .venv/bin/dermseg-export "$work/model.pt" --size 512 -o "$work/export512"
    echo "\$ dermseg-run --engine export512/model.onnx $images -o masks-onnx --device cpu -q"
    .venv/bin/dermseg-run --engine "$work/export512/model.onnx" "$images" -o "$work/masks-onnx" --device cpu -q
    echo "\$ dermseg-run --engine model.pt --size 512 $images -o masks-pt --device cpu -q"
    .venv/bin/dermseg-run --engine "$work/model.pt" --size 512 "$images" -o "$work/masks-pt" --device cpu -q
    .venv/bin/python benchmarks/compare_masks.py "$images" "$work/masks-onnx" "$work/masks-pt"
} 2>&1 | tee "$out/foundation_check.txt"
rm -rf "$work"
