#!/usr/bin/env bash
# The main job on the embedded default, from nothing: set up, then segment the sample images with the model shipped
# with dermseg (an INT8 ONNX that ONNX Runtime runs on the CPU's INT8 units), score the masks against the samples'
# ground truth, and say where everything is. The samples were left out of that model's training.
# DERMSEG_DEMO_DIR puts the masks elsewhere (default: demo/ in this checkout).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
scripts/setup.sh
bin=.venv/bin
masks=${DERMSEG_DEMO_DIR:+$DERMSEG_DEMO_DIR/}demo/masks
demo_start=$SECONDS
echo "demo 1/2: segmenting the 8 sample images with the model shipped with dermseg (a few seconds) ..."
$bin/dermseg-run dermseg_deploy/samples/images -o "$masks" --overlay --overwrite --device cpu
echo "demo 2/2: scoring the masks against the samples' ground truth, as the ISIC challenge scores them ..."
scores=$($bin/dermseg-eval dermseg_deploy/samples --masks "$masks")
echo "$scores"
echo
echo "demo done in $((SECONDS - demo_start)) s (set-up took $((demo_start - started)) s):"
echo "  masks:    $masks/<name>_segmentation.png, with $masks/manifest.csv"
echo "  overlays: $masks/<name>_overlay.jpg (the predicted border in green over the image)"
echo "  model:    dermseg_deploy/models/ (the INT8 ONNX, its MODEL_CARD.md and LICENSE: CC BY-NC 4.0, research only)"
echo "  $(echo "$scores" | grep '^all' | sed 's/^all (\([0-9]*\) images): jaccard \([0-9.]*\),.*/mean Jaccard \2 on the \1 samples (unseen in training)/')"
echo "next:"
echo "  segment your own images:  $bin/dermseg-run YOUR_IMAGES/ -o masks --overlay"
echo "  a report with pictures:   $bin/dermseg-eval ISIC_FOLDER --report report/   (then open report/index.html)"
echo "  try it in a browser:      $bin/dermseg-serve   (then open http://127.0.0.1:8000/)"
echo "  train a model:            $bin/dermseg-train --preset scratch --data ISIC_FOLDER --out engines/model.pt"
echo "                            (docs/guides/train.md; then dermseg-export engines/model.pt --formats onnx-int8 --calib DIR)"
