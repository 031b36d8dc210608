#!/usr/bin/env bash
# Copy the real images a GPU check needs into gpu_data/ (ignored by git; name it in the device tool's `carry`),
# since ../shared does not travel to the GPU machine. At most 64 MiB travel per run, repository included, and the
# repository holds the shipped model (dermseg_deploy/models/, about 42 MB), which leaves about 20 MB for data:
# usage: benchmarks/prepare_gpu_data.sh [FULLRES_COUNT] [PAIRS_COUNT]   (default 4 full-resolution images, 300 pairs:
# about 17 MB; gpu_recipe.sh: `... 2 600`, 450 pairs to train on and 150 held out, about 20 MB)
# The script sums the repository's tracked files and gpu_data/ and fails where they pass 64 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
fullres_count=${1:-4}
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
data_bytes=$(du -sb gpu_data | cut -f1)
repo_bytes=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
limit=$((64 * 1024 * 1024))
echo "gpu_data: $((data_bytes / 1000000)) MB; with the repository's tracked files: $(((data_bytes + repo_bytes) / 1000000)) MB of the $((limit / 1000000)) MB that travel"
if [ $((data_bytes + repo_bytes)) -gt "$limit" ]; then
    echo "error: gpu_data/ and the repository pass the 64 MiB that travel to the GPU machine; ask for fewer images" >&2
    exit 1
fi
