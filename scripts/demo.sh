#!/usr/bin/env bash
# The main job on the embedded default (ONNX Runtime on the CPU), from nothing: set up, make a model,
# export it to ONNX (with the parity check), segment the sample images, and say where the results are.
# The demonstration model is trained for 10 short epochs on the 8 shipped sample images from random weights
# (no download needed): it shows the pipeline, not a useful segmentation. See README for real training.
# DERMSEG_DEMO_DIR puts the model and the masks elsewhere (default: engines/ and demo/ in this checkout).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
scripts/setup.sh
bin=.venv/bin
models=${DERMSEG_DEMO_DIR:+$DERMSEG_DEMO_DIR/}engines
masks=${DERMSEG_DEMO_DIR:+$DERMSEG_DEMO_DIR/}demo/masks
mkdir -p "$models"
demo_start=$SECONDS
echo "demo 1/3: training a demonstration model on the 8 sample images (96 px, 10 short epochs; about 30 s) ..."
$bin/dermseg-train --data dermseg_deploy/samples --out "$models/demo.pt" --size 96 --epochs 10 --batch-size 2 \
    --val-count 2 --val-every 5 --lrs 1e-3,1e-3,1e-3 --encoder-weights none --workers 0 --device cpu
echo "demo 2/3: exporting it to ONNX for 256 px input, checked against PyTorch (about 15 s) ..."
# --formats onnx: the CPU default runs the FP32 ONNX; the FP16 ONNX and the TensorRT plan are for GPUs.
$bin/dermseg-export "$models/demo.pt" --size 256 --formats onnx
echo "demo 3/3: segmenting the sample images with ONNX Runtime on the CPU (about 10 s) ..."
$bin/dermseg-run --engine "$models/demo.onnx" dermseg_deploy/samples/images -o "$masks" --overlay --overwrite \
    --device cpu
echo
echo "demo done in $((SECONDS - demo_start)) s (set-up took $((demo_start - started)) s):"
echo "  model:    $models/demo.pt (checkpoint) and $models/demo.onnx (FP32 ONNX, what dermseg-run ran)"
echo "  masks:    $masks/<name>_segmentation.png, with $masks/manifest.csv"
echo "  overlays: $masks/<name>_overlay.jpg (the mask outline over the image)"
echo "next:"
echo "  segment your own images:   $bin/dermseg-run --engine $models/demo.onnx YOUR_IMAGES/ -o masks"
echo "  train a real model:        $bin/dermseg-train --data ISIC_FOLDER --out engines/model.pt (README: Training)"
echo "  FP16 ONNX and a TensorRT plan (GPU): $bin/dermseg-export $models/demo.pt --size 256 --formats plan"
echo "  measure speed:             $bin/dermseg-bench --engine $models/demo.onnx --batch-sizes 1,4 --size 256"
