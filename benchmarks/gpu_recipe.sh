#!/usr/bin/env bash
# The GPU targets of the mask-quality work, for a CUDA machine (see ../shared/DESIGN.md: no network there).
# usage: benchmarks/gpu_recipe.sh [--dry-run] [--images DIR] [OUTDIR]   (OUTDIR default: $OUT, else benchmarks/results/gpu-recipe-latest)
#
# 1. trains the from-scratch GPU recipe (benchmarks/gpu_scratch.json: BCE + Dice, 256 then 512 px) for at most
#    4 minutes on gpu_data/isic512 (`benchmarks/prepare_gpu_data.sh 2 600` copies 600 ISIC 2018 pairs there:
#    450 train, 150 held out; more do not fit beside the shipped model in the 64 MiB that travel);
# 2. scores it on the 150 held-out images plain, with flips, and with dihedral TTA plus largest,fill-holes
#    post-processing (CuPy on the GPU where installed), with dermseg-eval;
# 3. dermseg-bench at 1024 px on the full-resolution images: the TTA and post-processing rows, so their GPU cost
#    shows.
# --dry-run runs the same steps on the CPU at 64 px in seconds (the test suite runs it).
set -uo pipefail
cd "$(dirname "$0")/.."
source benchmarks/gpu_common.sh
gpu_parse_args benchmarks/results/gpu-recipe-latest "$@"
if [ "$dry_run" = 1 ]; then
    device=cpu size=64 train_limit=120 bench_time=(--min-seconds 0.1 --min-iterations 1 --warmup 0) engine=""
    data=dermseg_deploy/samples
    train=(--stage 64:1 --batch-size 4 --val-count 2 --encoder-weights none --workers 0 --dice-weight 1)
else
    device=cuda size=1024 train_limit=240 bench_time=(--min-seconds 2 --min-iterations 20 --max-seconds 10 --warmup 2)
    engine=fp16:  # the PyTorch FP16 fast path (half precision is very slow on a CPU: the dry run stays FP32)
    data=$train_data
    train=(--config benchmarks/gpu_scratch.json)
    gpu_install
fi
work=$(mktemp -d)
model="$work/model.pt"
{
    date -u +"date: %Y-%m-%dT%H:%M:%SZ"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/gpu: /'
    "$python" -c "import importlib.util as u; print('cupy:', u.find_spec('cupy') is not None, 'scipy:', u.find_spec('scipy') is not None)"
    echo "== dermseg-train ${train[*]} (random encoder weights, at most ${train_limit} s)"
    start=$(date +%s)
    timeout "$train_limit" "$python" -m dermseg_train.cli "${train[@]}" --data "$data" --out "$model" --cache-dir "$work/cache" \
        --device "$device" -q 2>&1 | tail -3 || { echo "training ended with status $?"; status=1; }
    echo "training wall time: $(( $(date +%s) - start )) s"
    cp "$work/model.log.jsonl" "$work/model.split.json" "$out/" 2>/dev/null
    for setting in "none none" "flips none" "dihedral largest,fill-holes"; do
        set -- $setting
        echo "== dermseg-eval on the held-out images: --tta $1 --postprocess $2"
        run dermseg_deploy.cli.eval dermseg-eval "$data" --engine "$model" --ids "$work/model.split.json" \
            --device "$device" --tta "$1" --postprocess "$2" --json "$out/eval-$1-${2//,/+}.json" 2>&1 || status=1
    done
    echo "== dermseg-bench at ${size} px on $(ls "$images" | wc -l) images: TTA and post-processing rows"
    run dermseg_deploy.cli.bench dermseg-bench --engine "$engine$model" --images "$images" --size "$size" \
        --device "$device" --batch-sizes 4 --tta none --tta flips --tta dihedral --postprocess none \
        --postprocess largest,fill-holes "${bench_time[@]}" --json "$out/bench-tta.json" -q 2>&1 || status=1
} 2>&1 | tee "$out/recipe.txt"
rm -rf "$work"
echo "gpu_recipe status: $status" | tee -a "$out/recipe.txt"
exit $status
