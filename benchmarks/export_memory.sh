#!/usr/bin/env bash
# Time and peak memory of each long export step (dermseg-export prints both per step), at 512 and 1024 px, with the
# default memory budget and a lower one; the whole process's peak from /usr/bin/time -v. One run at a time, on a
# quiet machine.
#
#   benchmarks/export_memory.sh CHECKPOINT CALIB_DIR OUT_DIR [NAME ARGS...]   (default: the runs below)
#
# CALIB_DIR: real images (the 2000 ISIC 2018 training inputs: ../shared/data/isic2018-task1-512/ISIC2018_Task1-2_Training_Input).
set -euo pipefail
checkpoint=$1 calib=$2 out=$3
export=${DERMSEG_EXPORT:-$(dirname "$0")/../.venv/bin/dermseg-export}
mkdir -p "$out"
run() {  # run NAME ARGS...
    local name=$1; shift
    echo "=== $name: dermseg-export $(basename "$checkpoint") $*" | tee "$out/$name.txt"
    /usr/bin/time -v "$export" "$checkpoint" -o "$out/$name" --calib "$calib" "$@" \
        >> "$out/$name.txt" 2>&1 || echo "exit code $?" >> "$out/$name.txt"
    grep -E "^plan:|check passed|CHECK FAILED|Maximum resident|Elapsed \(wall" "$out/$name.txt"
    rm -rf "$out/$name"  # the models: hundreds of MB each, not needed for the figures
}
case "${4:-all}" in
    all) run 1024-fp16-1 --size 1024 --formats fp16 --calib-count 1 --max-memory-gb 20
         run 1024-fp16-2 --size 1024 --formats fp16 --calib-count 2 --max-memory-gb 20
         run 512-default --size 512 --formats onnx,openvino,int8
         run 512-budget-4gb --size 512 --formats onnx,openvino,int8 --max-memory-gb 4
         run 1024-budget-9gb --size 1024 --formats onnx,openvino,int8 --max-memory-gb 9 --int8-calib-count 64 \
             --int8-check-count 30 ;;
    *) run "$4" "${@:5}" ;;  # one run: NAME ARGS...
esac
