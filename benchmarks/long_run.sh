#!/usr/bin/env bash
# The long recipe (dermseg-train --preset long) in the background, across working sessions:
#
#   benchmarks/long_run.sh start [--hours H] [TRAIN FLAGS...]   a new run (refuses if one is there: resume it or stop it)
#   benchmarks/long_run.sh resume [--hours H]                   continue it from model.last.pt (or start again, saying
#                                                               so, where the run folder is gone)
#   benchmarks/long_run.sh status                               epoch, CPU-hours, last selection-half score, ETA
#   benchmarks/long_run.sh stop                                 SIGTERM: saves model.last.pt at the current step
#
# It runs under `nice` in a run folder outside the work tree ($DERMSEG_LONG_RUN_DIR, default
# ${XDG_CACHE_HOME:-~/.cache}/dermseg/long-run), logs to train.log there, and stops itself (SIGTERM, so model.last.pt
# holds the step it reached) after --hours of wall time this session (default 6), so nothing is left contending for
# the cores when the session ends. The data: $DERMSEG_DATA (default ../shared/data beside the checkout): its
# isic2018-task1-512 trains, its isic2017-fullres is scored for the learning curve only.
# The recipe's own budget (8 wall-hours over all sessions) ends the run for good; --hours only pauses it.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
run_dir=${DERMSEG_LONG_RUN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/dermseg/long-run}
data=${DERMSEG_DATA:-$repo/../shared/data}
train=${DERMSEG_TRAIN:-$repo/.venv/bin/dermseg-train}
python=${DERMSEG_PYTHON:-$repo/.venv/bin/python}
hours=6

say() { echo "long_run: $*"; }
running() { [ -f "$run_dir/pid" ] && kill -0 "$(cat "$run_dir/pid")" 2>/dev/null; }

parse_hours() {
    extra=()
    while [ $# -gt 0 ]; do
        case "$1" in
            --hours) hours=$2; shift 2 ;;
            --hours=*) hours=${1#--hours=}; shift ;;
            *) extra+=("$1"); shift ;;
        esac
    done
    if ! [[ $hours =~ ^[0-9]+([.][0-9]+)?$ ]]; then say "--hours $hours: expected a number of hours"; exit 2; fi
}

launch() {  # launch ARGS...: dermseg-train ARGS in the background, under nice, stopped after $hours
    local deadline
    deadline=$(( $(date +%s) + $(awk -v h="$hours" 'BEGIN { printf "%d", h * 3600 }') ))
    echo "$deadline" > "$run_dir/deadline"
    rm -f "$run_dir/exit_code"
    {
        echo "=== $(date -u +%FT%TZ) $*"
        echo "=== stops itself after ${hours} h of wall time (at $(date -u -d "@$deadline" +%FT%TZ))"
    } >> "$run_dir/train.log"
    # At the deadline timeout sends SIGTERM to dermseg-train alone (--foreground: not to its loader processes), which
    # saves model.last.pt at the step it is on and exits 143.
    nohup nice -n 19 bash -c 'timeout --foreground --signal=TERM --kill-after=900 "$1" "${@:2}"; echo $? > "$0/exit_code"' \
        "$run_dir" "${hours}h" "$train" "$@" >> "$run_dir/train.log" 2>&1 < /dev/null &
    echo $! > "$run_dir/pid"
    say "started (pid $!) in $run_dir; log: $run_dir/train.log; it stops itself after ${hours} h"
}

start() {
    parse_hours "$@"
    if running; then say "a run is going on in $run_dir (pid $(cat "$run_dir/pid")): status, or stop it first"; exit 2; fi
    if [ -f "$run_dir/model.last.pt" ]; then
        say "$run_dir already holds a run: resume it, or move the folder away to start a new one"; exit 2
    fi
    for folder in "$data/isic2018-task1-512" "$data/isic2017-fullres"; do
        if [ ! -d "$folder" ]; then say "$folder: not found (set DERMSEG_DATA to the folder holding it)"; exit 2; fi
    done
    if [ ! -x "$train" ]; then say "$train: not found (run scripts/setup.sh, or set DERMSEG_TRAIN)"; exit 2; fi
    mkdir -p "$run_dir"
    local args=(--preset long --data "$data/isic2018-task1-512" --log-scores-on "$data/isic2017-fullres"
                --out "$run_dir/model.pt" --cache-dir "$run_dir/cache" --workers 1 --device cpu --quiet ${extra[@]+"${extra[@]}"})
    printf '%s\n' "${args[@]}" > "$run_dir/args"
    launch "${args[@]}"
}

resume() {
    parse_hours "$@"
    if running; then say "the run in $run_dir is going on (pid $(cat "$run_dir/pid"))"; exit 0; fi
    if [ ! -f "$run_dir/model.last.pt" ] || [ ! -f "$run_dir/args" ]; then
        say "no run to resume in $run_dir (the folder is gone with the machine, or the run never saved): starting again"
        start --hours "$hours" ${extra[@]+"${extra[@]}"}
        return
    fi
    if [ "$(cat "$run_dir/exit_code" 2>/dev/null)" = 0 ]; then
        say "the run in $run_dir has finished (model.pt is its best epoch): nothing to resume"; exit 0
    fi
    mapfile -t args < "$run_dir/args"
    launch "${args[@]}" --resume "$run_dir/model.last.pt" ${extra[@]+"${extra[@]}"}
}

stop() {
    if ! running; then say "no run is going on in $run_dir"; exit 0; fi
    local pid
    pid=$(cat "$run_dir/pid")
    pkill -TERM -P "$pid" timeout 2>/dev/null || kill -TERM "$pid"
    say "asked the run to stop (it saves model.last.pt after the current step or validation) ..."
    for _ in $(seq 900); do
        running || { say "stopped: $(tail -n 1 "$run_dir/train.log")"; return; }
        sleep 1
    done
    say "still running after 15 minutes: kill it with kill -KILL -- -$pid (the last saved epoch stays)"; exit 1
}

case "${1:-}" in
    start) shift; start "$@" ;;
    resume) shift; resume "$@" ;;
    stop) stop ;;
    status)
        state=stopped
        if running; then state="running (pid $(cat "$run_dir/pid"), stops itself at $(date -u -d "@$(cat "$run_dir/deadline")" +%FT%TZ))"
        elif [ -f "$run_dir/exit_code" ]; then state="not running (last exit code $(cat "$run_dir/exit_code"))"; fi
        exec "$python" "$repo/benchmarks/long_run_status.py" "$run_dir" --state "$state" ;;
    *) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
