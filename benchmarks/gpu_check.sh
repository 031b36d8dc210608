#!/usr/bin/env bash
# The one prepared check for a CUDA machine (see ../shared/DESIGN.md: no network, no TensorRT).
# usage: benchmarks/gpu_check.sh [OUTDIR]      (default: $OUT, else benchmarks/results/gpu-latest)
# Images: full-resolution JPEGs in gpu_data/images/ (ignored by git; copy some from
# ../shared/data/isic2017-fullres and carry the folder), else the shipped samples.
# Runs the gpu-marked tests, trains on gpu_data/isic512 (ISIC 2018 pairs at 512 px, ignored by git;
# else the shipped samples) with the default stages and rates (512 then 1024 px) from random weights for at most 200 s,
# and times dermseg-run with that model on CUDA at 1024 px. Under 4 minutes.
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
train_data=gpu_data/isic512
[ -d "$train_data" ] || train_data=dermseg_deploy/samples
work=$(mktemp -d)
{
    echo "== dermseg-train --config benchmarks/gpu_train.json on $train_data ($(ls "$train_data"/images | wc -l) pairs)"
    echo "   (default stages and rates: 512 then 1024 px, from random weights; at most 200 s)"
    timeout 200 python3 -m dermseg_train.cli --config benchmarks/gpu_train.json --data "$train_data" \
        --out "$work/model.pt" --cache-dir "$work/cache" --device cuda -q 2>&1 || { echo "training ended with status $?"; status=1; }
    cp "$work/model.log.jsonl" "$out/train_gpu.log.jsonl" 2>/dev/null
    python3 -c "import json,sys; [print(json.dumps({k: r.get(k) for k in ('epoch','size_px','train_loss','train_images_per_s')} | {'val_jaccard': r.get('validation', {}).get('all', {}).get('jaccard')})) for r in map(json.loads, open(sys.argv[1]))]" "$out/train_gpu.log.jsonl" 2>/dev/null
    model="$work/model.pt"
    if [ ! -f "$model" ]; then
        run dermseg_train.cli dermseg-train --data dermseg_deploy/samples --out "$model" --size 256 --epochs 2 \
            --batch-size 4 --val-count 2 --encoder-weights none --workers 2 --device cuda -q 2>&1 | tail -2
    fi
    for batch in 1 4; do
        echo "== dermseg-run --device cuda --size 1024 --batch-size $batch on $(ls "$images" | wc -l) images in $images"
        run dermseg_deploy.cli_run dermseg-run --engine "$model" "$images" -o "$work/masks-$batch" \
            --size 1024 --batch-size $batch --device cuda --overwrite -q 2>&1 || status=1
    done
} >"$out/pipeline.txt" 2>&1
cat "$out/pipeline.txt"
rm -rf "$work"
echo "gpu_check status: $status" | tee -a "$out/pipeline.txt"
exit $status
