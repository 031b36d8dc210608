# Sourced by gpu_check.sh and gpu_speed.sh: their shared command line, data folders, and install step.
# After `gpu_parse_args DEFAULT_OUT "$@"`: dry_run, images, out (created), train_data, python, status=0.

gpu_parse_args() {
    local default_out=$1
    shift
    dry_run=0
    images=gpu_data/isic2017-fullres/ISIC-2017_Validation_Data
    out=""
    while [ $# -gt 0 ]; do
        case "$1" in
            --dry-run) dry_run=1 ;;
            --images) images=$2; shift ;;
            *) out=$1 ;;
        esac
        shift
    done
    out=${out:-${OUT:-$default_out}}
    mkdir -p "$out"
    export PYTHONUNBUFFERED=1
    status=0
    [ -d "$images" ] || images=dermseg_deploy/samples/images
    train_data=gpu_data/isic512
    [ -d "$train_data" ] || train_data=dermseg_deploy/samples
    python=${PYTHON:-python3}
}

# On the GPU machine: the wheels it lacks (prepare_gpu_data.sh downloads them), then dermseg itself, without the
# network; PYTHONPATH where the editable install fails.
gpu_install() {
    for wheel in gpu_data/wheels/*.whl; do
        [ -f "$wheel" ] && "$python" -m pip install -q --no-index --no-deps "$wheel" >>"$out/install.log" 2>&1
    done
    "$python" -m pip install -q --no-deps --no-build-isolation -e . >>"$out/install.log" 2>&1 || {
        echo "editable install failed, using PYTHONPATH" | tee -a "$out/install.log"; export PYTHONPATH=$PWD; }
}

# run MODULE PROG ARGS...: a dermseg command's main() under its own name.
run() { "$python" -c "import sys; from $1 import main; sys.argv[0] = '$2'; main()" "${@:3}"; }
