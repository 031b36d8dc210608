#!/usr/bin/env bash
# Disk the CI run needs: runs `.ci/run` from a clean clone of HEAD (with ../shared beside it) with its
# temporary folder in a fresh directory, which is sized every 5 s; prints the peak and what is left after.
# usage: benchmarks/test_disk_use.sh OUTDIR   (about 16 minutes on 2 CPU cores)
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mkdir -p "$1" && cd "$1" && pwd)
shared=$(cd ../shared && pwd)
work=$(mktemp -d)
trap 'kill "$poller" 2>/dev/null || true; rm -rf "$work"' EXIT
git clone -q . "$work/proj"
ln -s "$shared" "$work/shared"
mkdir "$work/tmp"
while true; do du -sm "$work/tmp" 2>/dev/null | cut -f1 >> "$work/sizes"; sleep 5; done &
poller=$!
start=$SECONDS
status=0
(cd "$work/proj" && CI=true TMPDIR="$work/tmp" bash .ci/run) > "$out/ci-output.txt" 2>&1 || status=$?
kill "$poller"
{
    echo "commit: $(git rev-parse --short HEAD)  date: $(date -I)  exit: $status  wall: $((SECONDS - start)) s"
    echo "$(tail -1 "$out/ci-output.txt" | tr -d '=')"
    echo "temporary folder, peak: $(sort -n "$work/sizes" | tail -1) MB (sized every 5 s)"
    echo "temporary folder, after the run: $(du -sm "$work/tmp" | cut -f1) MB: $(ls "$work/tmp" | tr '\n' ' ')"
    echo "clone with its .venv: $(du -sm "$work/proj" | cut -f1) MB"
} | tee "$out/disk-use.txt"
exit "$status"
