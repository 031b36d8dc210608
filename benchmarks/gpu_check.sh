#!/usr/bin/env bash
# The one prepared check for a CUDA machine (see ../shared/DESIGN.md: no network, no TensorRT there).
# usage: benchmarks/gpu_check.sh [--dry-run] [--images DIR] [OUTDIR]   (OUTDIR default: $OUT, else benchmarks/results/gpu-latest)
#
# 1. the gpu- and tensorrt-marked tests (the CUDA entry points' masks, CPU-vs-GPU masks of the test model);
# 2. trains a small model for about a minute (benchmarks/gpu_train_short.json on gpu_data/isic512, ISIC 2018
#    pairs at 512 px copied there by benchmarks/prepare_gpu_data.sh and ignored by git; else the shipped
#    samples), from random weights;
# 3. the mask IoU between CPU decoding (libjpeg, reduced DCT scale) and GPU decoding (nvJPEG) with that model
#    at 1024 px on the full-resolution images (cpu-vs-gpu-masks.json);
# 4. dermseg-bench at 1024 px on the full-resolution images in --images (default
#    gpu_data/isic2017-fullres/ISIC-2017_Validation_Data, else the shipped samples): the naive baseline,
#    PyTorch FP32 eager with TF32 off (the reference) and on, the PyTorch FP16 fast path, and the TensorRT
#    plan where TensorRT exists; JSON, table and plot in OUTDIR.
# --dry-run runs the same steps on the CPU at 64 px in seconds (the test suite runs it).
# Installs nothing from the network (wheels in gpu_data/wheels, if any). Under 4 minutes on an H100; the GPU
# inference targets are in the second script, benchmarks/gpu_speed.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
source benchmarks/gpu_common.sh
gpu_parse_args benchmarks/results/gpu-latest "$@"
if [ "$dry_run" = 1 ]; then
    device=cpu size=64 batches=1,2 bench_time=(--min-seconds 0.2 --min-iterations 1 --warmup 1) agreement=(--a cpu --b cpu-full)
    train=(--data dermseg_deploy/samples --size 64 --epochs 1 --batch-size 4 --val-count 2 --encoder-weights none --workers 0)
else
    device=cuda size=1024 batches=1,8 bench_time=(--min-seconds 2 --min-iterations 20 --max-seconds 15 --warmup 2)
    agreement=(--a cpu --b cuda)
    train=(--config benchmarks/gpu_train_short.json --data "$train_data")
    gpu_install
fi

{
    date -u +"date: %Y-%m-%dT%H:%M:%SZ"
    [ "$dry_run" = 1 ] && echo "dry run: CPU, ${size} px"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/gpu: /'
    "$python" -c "import torch, onnxruntime; print('torch:', torch.__version__, 'cuda:', torch.version.cuda); print('onnxruntime:', onnxruntime.__version__, onnxruntime.get_available_providers())"
    nproc | sed 's/^/cpu count: /'
} >"$out/environment.txt" 2>&1

DERMSEG_RESULTS=$out "$python" -m pytest -q -s -p no:cacheprovider -m "gpu or tensorrt" tests/test_gpu.py \
    tests/test_gpu_pipeline.py tests/test_gpu_core.py tests/test_tensorrt_engine.py >"$out/gpu-tests.txt" 2>&1 || status=1
tail -15 "$out/gpu-tests.txt"

work=$(mktemp -d)
{
    echo "== dermseg-train ${train[*]} (random weights, about a minute)"
    timeout 150 "$python" -m dermseg_train.cli "${train[@]}" --out "$work/model.pt" --cache-dir "$work/cache" \
        --device "$device" -q 2>&1 | tail -3 || { echo "training ended with status $?"; status=1; }
    model="$work/model.pt"
    echo "== masks from CPU and GPU decoding (${agreement[*]}) at ${size} px on $(ls "$images" | wc -l) images"
    "$python" benchmarks/decode_agreement.py --engine "$model" --images "$images" --size "$size" "${agreement[@]}" \
        --json "$out/cpu-vs-gpu-masks.json" 2>&1 || status=1
    engines=(--engine "$model" --engine "naive:$model" --engine "tf32:$model" --engine "fp16:$model")
    if "$python" -c "from dermseg_deploy.tensorrt.availability import tensorrt_installed as t; raise SystemExit(not t())"; then
        echo "== dermseg-export (TensorRT is installed)"
        run dermseg_deploy.cli.export dermseg-export "$model" --size "$size" -o "$work" 2>&1 && engines+=(--engine "$work/model.plan")
    else
        echo "== TensorRT is not installed here: no plan in the benchmark"
    fi
    echo "== dermseg-bench at ${size} px on $(ls "$images" | wc -l) images in $images"
    run dermseg_deploy.cli.bench dermseg-bench "${engines[@]}" --images "$images" --size "$size" --device "$device" \
        --batch-sizes "$batches" --io-threads 8 "${bench_time[@]}" --json "$out/bench.json" --plot "$out/bench.png" \
        2>&1 || status=1
} 2>&1 | tee "$out/bench.txt"
[ -f "$out/bench.json" ] || status=1
rm -rf "$work"
echo "gpu_check status: $status" | tee -a "$out/bench.txt"
exit $status
