#!/usr/bin/env bash
# The second prepared check for a CUDA machine: the GPU inference targets (how close the fastest engine gets to
# the card, and whether the pipeline keeps up with it). Run it after gpu_check.sh, or alone; under 6 minutes on
# an H100.
# usage: benchmarks/gpu_speed.sh [--dry-run] [--images DIR] [OUTDIR]   (OUTDIR default: $OUT, else benchmarks/results/gpu-speed-latest)
#
# 1. trains a small model for about a minute (as gpu_check.sh does), so that masks are a real model's;
# 2. torch.profiler over one FP16 batch of 8 at 1024 px: the top kernels (profile/kernels.md);
# 3. dermseg-bench at batch 8, 1024 px, on the full-resolution images: PyTorch FP32 (the reference), the FP16
#    fast path (fp16:), the compiled path (compiled:, with its compile time), the TensorRT plan where TensorRT
#    exists and ONNX Runtime's CUDA provider where onnxruntime-gpu is installed; each row has GPU compute per
#    batch, achieved TFLOP/s and its share of the card's peak, inference-only and end-to-end images/s, and the
#    mask IoU against FP32 (speed.json, speed.txt);
# 4. mask PNG encoding on the full-resolution ground-truth masks (mask-encoding.json).
# Optional packages that are not there are skipped with a line that says so. --dry-run: CPU, 64 px, no compile.
set -uo pipefail
cd "$(dirname "$0")/.."
source benchmarks/gpu_common.sh
gpu_parse_args benchmarks/results/gpu-speed-latest "$@"
masks=${images%/*}/ISIC-2017_Validation_Part1_GroundTruth
[ -d "$masks" ] || masks=dermseg_deploy/samples/masks
if [ "$dry_run" = 1 ]; then
    device=cpu size=64 batch=2 bench_time=(--min-seconds 0.2 --min-iterations 2 --warmup 1 --max-seconds 5)
    train=(--data dermseg_deploy/samples --size 64 --epochs 1 --batch-size 4 --val-count 2 --encoder-weights none --workers 0)
    profile=(--size 64 --batch 2 --variant fp32 --iterations 2)
else
    device=cuda size=1024 batch=8 bench_time=(--min-seconds 2 --min-iterations 20 --warmup 3 --max-seconds 20)
    train=(--config benchmarks/gpu_train_short.json --data "$train_data")
    profile=(--size 1024 --batch 8 --variant fp16 --iterations 3)
    gpu_install
fi
has() { "$python" -c "$1" >/dev/null 2>&1; }

work=$(mktemp -d)
{
    date -u +"date: %Y-%m-%dT%H:%M:%SZ"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/gpu: /'
    echo "== dermseg-train ${train[*]} (random weights, about a minute)"
    timeout 150 "$python" -m dermseg_train.cli "${train[@]}" --out "$work/model.pt" --cache-dir "$work/cache" \
        --device "$device" -q 2>&1 | tail -2 || { echo "training ended with status $?"; status=1; }
    model="$work/model.pt"
    echo "== torch.profiler: ${profile[*]}"
    timeout 120 "$python" benchmarks/gpu_profile.py "${profile[@]}" --out "$out/profile" 2>&1 | tail -3 || status=1
    engines=(--engine "$model" --engine "fp16:$model")
    if [ "$dry_run" = 1 ]; then
        echo "== compiled: left out of the dry run (torch.compile takes minutes on a CPU)"
    elif has "import triton"; then
        engines+=(--engine "compiled:$model")
    else
        echo "== compiled: skipped, Triton (which torch.compile needs on CUDA) is not installed"
    fi
    if has "import onnxruntime as o; assert 'CUDAExecutionProvider' in o.get_available_providers()"; then
        run dermseg_deploy.cli.export dermseg-export "$model" --size "$size" -o "$work" --formats onnx >/dev/null 2>&1 \
            && engines+=(--engine "ort-cuda:$work/model.onnx")
    else
        echo "== ort-cuda: skipped, onnxruntime-gpu is not installed"
    fi
    if has "from dermseg_deploy.tensorrt.availability import tensorrt_installed as t; assert t()"; then
        run dermseg_deploy.cli.export dermseg-export "$model" --size "$size" -o "$work" 2>&1 | tail -3 \
            && engines+=(--engine "$work/model.plan")
    else
        echo "== TensorRT plan: skipped, TensorRT is not installed"
    fi
    echo "== dermseg-bench at batch $batch, ${size} px, on $(ls "$images" | wc -l) images in $images"
    run dermseg_deploy.cli.bench dermseg-bench "${engines[@]}" --images "$images" --size "$size" --device "$device" \
        --batch-sizes "$batch" --io-threads 8 "${bench_time[@]}" --json "$out/speed.json" -q 2>&1 || status=1
    echo "== mask PNG encoding on $(ls "$masks" | wc -l) ground-truth masks in $masks"
    "$python" benchmarks/mask_encoding.py --masks "$masks" --json "$out/mask-encoding.json" 2>&1 | tail -4 || status=1
} 2>&1 | tee "$out/speed.txt"
[ -f "$out/speed.json" ] || status=1
rm -rf "$work"
echo "gpu_speed status: $status" | tee -a "$out/speed.txt"
exit $status
