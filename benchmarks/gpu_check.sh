#!/usr/bin/env bash
# What one short run on a fresh GPU machine (an H200) can tell about this code, most important first.
#
#     benchmarks/gpu_check.sh OUTDIR --quick    # under 3 minutes, compiles included
#     benchmarks/gpu_check.sh OUTDIR            # under 8 minutes: the quick parts, then the rest
#
# Runs from this checkout with PYTHONPATH (no installs, no network), with the Python in $PYTHON
# (default python3). Before the parts: where numba-cuda finds no NVVM or libdevice, or CuPy no
# NVRTC, CUDA_HOME (and CUDA_PATH) are pointed at the toolkit of the nvcc on PATH, else
# /usr/local/cuda (python -m benchmarks.gpu_quick toolchain); the environment part reports the
# paths in use. The parts, in order:
#   environment  nvidia-smi; every module the parts import (a missing one named); the toolchain paths
#   promoted     every promoted kernel of both faces, once at a small shape and once at its largest
#                AlexNet shape at batch 128, against the NumPy reference: one line each
#   curves       30 training steps of alexnet-mini per face against the CPU reference of the same seed
#   step         alexnet-cuda bench step --arch alexnet-owt: images/s of both faces against PyTorch
#   tune         alexnet-cuda tune for alexnet2012 and alexnet-owt at batch 128, each face: every
#                candidate kernel timed at every GEMM-shaped call, the choice and its gain over the
#                promoted version (kernels/choice.py), one line per shape in quick.jsonl
# and without --quick:
#   gpu-tests    pytest -m gpu tests: promoted versions first, then the trainer, the benchmarks'
#                machinery, the other versions last (4 pytest-xdist workers where it imports)
#   kernels      alexnet-cuda bench kernels: every op at batch 128, both faces, roofline and vendor
#   train        alexnet-owt, batch 128, 50 steps (two epochs of 25) on synthetic images
# Each part has a time limit, and no part starts once the run's budget is spent (160 s quick,
# 440 s in all), so one slow part cannot eat the others' time. A part at its limit gets SIGINT
# (SIGKILL 15 s later) and keeps what it wrote: every part writes its results as it goes. Then
# the summary, which says what ran, what failed and what was cut off.
#
# OUTDIR receives eight files at most:
#   summary.md           what ran, failed and was cut off, and every result as tables
#   results.json         the same, parsed
#   log.txt              every part's output, in order
#   quick.jsonl          environment, promoted, curves and tune results, one JSON object a line
#   step.png             where a step's time goes per layer, per face, against PyTorch (alexnet-cuda plot step)
#   gpu-tests.xml        pytest's JUnit report (full run)
#   roofline.png         every timed kernel under the measured roofline (full run; alexnet-cuda plot roofline)
#   train-metrics.jsonl  the training run's --metrics-file (full run)
# The step and kernels parts write step.json and kernels.json; once the summary has put them whole
# into results.json (its "step" and "kernels" keys), it removes them and draws the two pictures
# (`alexnet-cuda plot step|roofline OUTDIR/results.json` draws them again).
# Scratch (synthetic images, checkpoints) goes to a temporary folder that is removed at the end.
#
# Exit status: 0 when every part passed, 1 when a part failed or was cut off or not started, 2 for
# a usage error, 3 when there is no CUDA GPU (nothing is run).

set -u -o pipefail

usage() {
    echo "usage: benchmarks/gpu_check.sh OUTDIR [--quick]" >&2
    exit 2
}
[ $# -ge 1 ] && [ $# -le 2 ] || usage
[ "${1#-}" = "$1" ] || usage
quick=0
if [ $# -eq 2 ]; then
    [ "$2" = "--quick" ] || usage
    quick=1
fi

checkout=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mkdir -p "$1" || { echo "gpu_check: cannot create $1" >&2; exit 2; }
outdir=$(cd "$1" && pwd)
python=${PYTHON:-python3}
export PYTHONPATH="$checkout${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
export CUPY_TF32=0  # cuBLAS float32 stays float32: the baselines and ceilings are float32
cd "$checkout" || exit 2

# GPU_CHECK_ALLOW_CPU=1 runs the parts without a GPU, only to test this script's own plumbing
# (tests/bench/test_gpu_check.py, with GPU_CHECK_FACES=reference and a short GPU_CHECK_LIMIT_S).
if [ "${GPU_CHECK_ALLOW_CPU:-0}" != 1 ] \
    && ! "$python" -c "import sys; from kernels.gpu_probe import has_gpu; sys.exit(0 if has_gpu() else 1)"; then
    echo "gpu_check: no CUDA GPU found (kernels.gpu_probe.has_gpu() is false): nothing was run." >&2
    echo "gpu_check: run this on a machine with a CUDA GPU; CPU-only numbers come from 'alexnet-cuda bench'." >&2
    exit 3
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
parts="$scratch/parts.tsv"
log="$outdir/log.txt"
: > "$log"
: > "$parts"
rm -f "$outdir"/{summary.md,results.json,quick.jsonl,step.json,gpu-tests.xml,kernels.json,train-metrics.jsonl} \
    "$outdir"/{roofline.png,step.png}

if [ "$quick" = 1 ]; then budget=${GPU_CHECK_BUDGET_S:-160}; else budget=${GPU_CHECK_BUDGET_S:-440}; fi
limit_cap=${GPU_CHECK_LIMIT_S:-600}
faces=${GPU_CHECK_FACES:-cuda numba}
face_args=()
for face in $faces; do face_args+=(--face "$face"); done
started=$SECONDS

# Toolchain paths first: every later part's numba-cuda and CuPy must see them.
exports=$(timeout 60 "$python" -m benchmarks.gpu_quick toolchain 2>> "$log")
if [ -n "$exports" ]; then
    echo "== toolchain: $exports" | tee -a "$log"
    eval "$exports"
fi

# run_part NAME LIMIT_SECONDS COMMAND...: run with a time limit (never beyond the budget), output to
# the log, one line to parts.tsv: name, status, seconds, limit. Status: ok, failed (exit status),
# cut off (time limit), or not started (budget spent).
run_part() {
    local name=$1 limit=$2
    shift 2
    local left=$((budget - (SECONDS - started)))
    [ "$limit" -gt "$limit_cap" ] && limit=$limit_cap
    if [ "$left" -lt 10 ]; then
        printf '%s\tnot started (budget spent)\t0\t%s\n' "$name" "$limit" >> "$parts"
        echo "== $name: not started, the ${budget}s budget is spent" | tee -a "$log"
        return
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    echo "== $name (limit ${limit}s): $*" | tee -a "$log"
    local began=$SECONDS rc
    # SIGINT first, to the part's whole process group: pytest writes its report, the Python parts
    # write a last line, the benchmarks keep the rows they wrote so far.
    timeout --signal=INT --kill-after=15 "$limit" "$@" >> "$log" 2>&1
    rc=$?
    local status="ok"
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then status="cut off (time limit)"; elif [ "$rc" -ne 0 ]; then status="failed ($rc)"; fi
    printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$((SECONDS - began))" "$limit" >> "$parts"
    echo "== $name: $status after $((SECONDS - began))s" | tee -a "$log"
}

environment() {
    nvidia-smi || echo "nvidia-smi: not available"
    "$python" -m benchmarks.summary --environment
    "$python" -m benchmarks.gpu_quick environment "$outdir/quick.jsonl"
}

gpu_tests() {
    local workers=()
    # Four processes share the 16 cores' host work (the references at batch 128) and the GPU.
    if "$python" -c "import xdist" 2> /dev/null; then workers=(-n 4); fi
    ALEXNET_CUDA_GPU_TEST_ORDER=promoted-first OPENBLAS_NUM_THREADS=4 OMP_NUM_THREADS=4 \
        "$python" -m pytest -m gpu tests -q -p no:cacheprovider "${workers[@]}" --junitxml="$outdir/gpu-tests.xml"
}

# 3,200 synthetic training images at 256 pixels (the resize size): two epochs of 25 steps of 128,
# so the metrics file gets a record at step 25 even when the run is cut off before step 50.
train_short() {
    "$python" -m alexnet_cuda synth "$scratch/synthetic" --train-per-class 320 --val-per-class 20 --size 256 \
        --quiet || return
    "$python" -m alexnet_cuda train --data "$scratch/synthetic" --arch alexnet-owt --batch-size 128 \
        --max-steps 50 --device gpu --kernels cuda --workers 8 --checkpoint-dir "$scratch/checkpoints" \
        --metrics-file "$outdir/train-metrics.jsonl" --no-progress
}
# The measured kernel choice for both networks and faces; its cache goes to the scratch folder, so a
# run leaves no state behind for the next one.
tune_both() {
    local arch face
    for arch in alexnet2012 alexnet-owt; do
        for face in $faces; do
            [ "$face" = reference ] && continue
            "$python" -m alexnet_cuda tune --arch "$arch" --batch 128 --device gpu --kernels "$face" \
                --cache "$scratch/choices.json" --jsonl "$outdir/quick.jsonl" || return
        done
    done
}
export -f environment gpu_tests train_short tune_both
export python scratch outdir faces

run_part environment 20 bash -c environment
run_part promoted 75 "$python" -m benchmarks.gpu_quick kernels "$outdir/quick.jsonl" "${face_args[@]}"
run_part curves 45 "$python" -m benchmarks.gpu_quick curves "$outdir/quick.jsonl" "${face_args[@]}"
run_part step 45 "$python" -m alexnet_cuda bench step --arch alexnet-owt --steps 3 --warmup 1 "${face_args[@]}" \
    --json "$outdir/step.json"
if [ "$quick" = 0 ]; then
    run_part tune 60 bash -c tune_both
    run_part gpu-tests 130 bash -c gpu_tests
    run_part kernels 80 "$python" -m alexnet_cuda bench kernels --json "$outdir/kernels.json"
    run_part train 75 bash -c train_short
fi

mode=full
[ "$quick" = 1 ] && mode=quick
"$python" -m benchmarks.summary "$outdir" --parts "$parts" --mode "$mode" >> "$log" 2>&1 \
    || echo "gpu_check: the summary could not be written; see $log" >&2
echo "gpu_check: results in $outdir (summary.md, results.json, log.txt; roofline.png and step.png where drawn)"
awk -F'\t' '{ printf "  %-12s %-28s %5ss\n", $1, $2, $3 }' "$parts"
if grep -qv $'\tok\t' "$parts"; then
    exit 1
fi
exit 0
