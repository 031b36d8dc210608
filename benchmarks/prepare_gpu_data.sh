#!/usr/bin/env bash
# Copy the real images a GPU check needs into gpu_data/ (ignored by git; name it in the device tool's `carry`),
# since ../shared does not travel to the GPU machine. At most 64 MiB travel per run, repository included.
# usage: benchmarks/prepare_gpu_data.sh [FULLRES_COUNT] [PAIRS_COUNT]   (default 8 full-resolution images, 300 pairs;
# gpu_recipe.sh wants 1000 pairs: `... 8 1000`, 44 MB, 46 MB with the repository)
# All 24 full-resolution images (62 MB) fit beside the repository only without training pairs: `... 24 0`.
set -euo pipefail
cd "$(dirname "$0")/.."
fullres_count=${1:-8}
pairs_count=${2:-300}
shared=../shared/data
rm -rf gpu_data
src=$shared/isic2017-fullres
dst=gpu_data/isic2017-fullres
mkdir -p "$dst/ISIC-2017_Validation_Data" "$dst/ISIC-2017_Validation_Part1_GroundTruth"
for image in $(ls "$src/ISIC-2017_Validation_Data" | sort | head -n "$fullres_count"); do
    cp "$src/ISIC-2017_Validation_Data/$image" "$dst/ISIC-2017_Validation_Data/"
    cp "$src/ISIC-2017_Validation_Part1_GroundTruth/${image%.jpg}_segmentation.png" "$dst/ISIC-2017_Validation_Part1_GroundTruth/"
done
src=$shared/isic2018-task1-512
dst=gpu_data/isic512
mkdir -p "$dst/ISIC2018_Task1-2_Training_Input" "$dst/ISIC2018_Task1_Training_GroundTruth"
for image in $(ls "$src/ISIC2018_Task1-2_Training_Input" | sort | head -n "$pairs_count"); do
    cp "$src/ISIC2018_Task1-2_Training_Input/$image" "$dst/ISIC2018_Task1-2_Training_Input/"
    cp "$src/ISIC2018_Task1_Training_GroundTruth/${image%.jpg}_segmentation.png" "$dst/ISIC2018_Task1_Training_GroundTruth/"
done
# Wheels of the packages dermseg needs that the GPU machine lacks (Python 3.12, manylinux x86_64); gpu_check.sh and
# gpu_speed.sh install them from here, without the network.
python=${PYTHON:-.venv/bin/python}
"$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 \
    -d gpu_data/wheels "zlib-ng>=0.4"
du -sh gpu_data
