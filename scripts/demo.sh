#!/usr/bin/env bash
# The main job on the embedded default (ONNX Runtime on the CPU), from nothing: set up, make a model,
# export it to ONNX (with the parity check), segment the sample images, and say where the results are.
# The demonstration model is trained for 10 short epochs on the 8 shipped sample images from random weights
# (no download needed): it shows the pipeline, not a useful segmentation. See README for real training.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
bin=.venv/bin
$bin/dermseg-train --data dermseg_deploy/samples --out engines/demo.pt --size 96 --epochs 10 --batch-size 2 \
    --val-count 2 --val-every 5 --lrs 1e-3,1e-3,1e-3 --encoder-weights none --workers 0 --device cpu
# --no-engine: TensorRT is not part of the CPU default; without it the plan step would exit 4.
$bin/dermseg-export engines/demo.pt --size 256 --no-engine
$bin/dermseg-run --engine engines/demo.onnx dermseg_deploy/samples/images -o demo/masks --overlay --overwrite \
    --device cpu
echo "masks (<name>_segmentation.png) and overlays (<name>_overlay.jpg) are in demo/masks/"
