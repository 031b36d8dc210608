#!/usr/bin/env bash
# The one prepared check for a CUDA machine (see ../shared/DESIGN.md: no network, no TensorRT).
# usage: benchmarks/gpu_check.sh [OUTDIR]      (default: $OUT, else benchmarks/results/gpu-latest)
# Images: full-resolution JPEGs in gpu_data/images/ (ignored by git; copy some from
# ../shared/data/isic2017-fullres and carry the folder), else the shipped samples.
# Runs the gpu-marked tests, trains a small model on the GPU for a few steps (weights from scratch:
# timings only, not accuracy), and times dermseg-run with it on CUDA at 1024 px. Under 4 minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-benchmarks/results/gpu-latest}}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
status=0

python3 -m pip install -q --no-deps --no-build-isolation -e . >"$out/install.log" 2>&1 || {
    echo "editable install failed, using PYTHONPATH" | tee -a "$out/install.log"; export PYTHONPATH=$PWD; }
run() { python3 -c "import sys; from $1 import main; sys.argv[0] = '$2'; main()" "${@:3}"; }

{
    date -u +"date: %Y-%m-%dT%H:%M:%SZ"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | sed 's/^/gpu: /'
    python3 -c "import torch, onnxruntime; print('torch:', torch.__version__, 'cuda:', torch.version.cuda); print('onnxruntime:', onnxruntime.__version__, onnxruntime.get_available_providers())"
    nproc | sed 's/^/cpu count: /'
} >"$out/environment.txt" 2>&1

python3 -m pytest -q -m gpu tests/test_gpu.py 2>&1 | tee "$out/gpu-tests.txt" || status=1

images=gpu_data/images
[ -d "$images" ] || images=dermseg_deploy/samples/images
work=$(mktemp -d)
{
    echo "== dermseg-train on the GPU (shipped samples, 256 px, 40 steps, random init)"
    run dermseg_train.cli dermseg-train --data dermseg_deploy/samples --out "$work/model.pt" --size 256 --steps 40 \
        --batch-size 4 --val-count 2 --encoder-weights none --workers 2 --device cuda 2>&1 | grep -v 'step/s' || status=1
    for batch in 1 4; do
        echo "== dermseg-run --device cuda --size 1024 --batch-size $batch on $(ls "$images" | wc -l) images in $images"
        run dermseg_deploy.cli_run dermseg-run --engine "$work/model.pt" "$images" -o "$work/masks-$batch" \
            --size 1024 --batch-size $batch --device cuda --overwrite -q 2>&1 || status=1
    done
} >"$out/pipeline.txt" 2>&1
cat "$out/pipeline.txt"
rm -rf "$work"
echo "gpu_check status: $status" | tee -a "$out/pipeline.txt"
exit $status
