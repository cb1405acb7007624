#!/usr/bin/env bash
# One-shot GPU check for whoever is lent a CUDA GPU (an H200) for a few minutes.
#
#     benchmarks/gpu_check.sh OUTDIR
#
# Runs from this checkout with PYTHONPATH (no installs, no network), with the Python in $PYTHON
# (default: python3, which must import numpy, cupy, numba, numba-cuda, pillow, pytest and
# pytest-benchmark; PyTorch is used for the cuDNN baselines where it imports). In order:
#   1. environment   nvidia-smi and library versions (read only: no clock, power or mode changes)
#   2. gpu tests     pytest -m gpu tests/: every `gpu`-marked test, against the NumPy reference
#   3. kernels       alexnet-cuda bench kernels: every op at batch 128, both faces, vs roofline and vendor
#   4. step          alexnet-cuda bench step: images/s of a training step, per layer, vs PyTorch
#   5. train         alexnet-cuda synth, then train: alexnet-owt, batch 128, 50 steps, synthetic data
# Each part has its own time limit, and the whole run stops starting parts once its 440-second
# budget is spent, so one slow part cannot eat the others' time; a part that fails or runs out of
# time is recorded as such and the next part still runs. Then the summary.
#
# OUTDIR receives at most 8 files (what the lending tool brings back):
#   summary.md           the tables, for benchmarks/RESULTS.md
#   results.json         every part's status and time, the environment, and the parsed results
#   kernels.json         alexnet-cuda bench kernels --json
#   step.json            alexnet-cuda bench step --json
#   gpu-tests.xml        pytest's JUnit report of the gpu tests
#   train-metrics.jsonl  the training run's --metrics-file
#   log.txt              every part's output, in order
# Scratch (synthetic images, checkpoints) goes to a temporary folder that is removed at the end.
#
# Exit status: 0 when every part passed, 1 when some part failed or ran out of time, 2 for a usage
# error, 3 when there is no CUDA GPU (nothing is run).

set -u -o pipefail

if [ $# -ne 1 ] || [ "${1#-}" != "$1" ]; then
    echo "usage: benchmarks/gpu_check.sh OUTDIR" >&2
    exit 2
fi

checkout=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mkdir -p "$1" || { echo "gpu_check: cannot create $1" >&2; exit 2; }
outdir=$(cd "$1" && pwd)
python=${PYTHON:-python3}
export PYTHONPATH="$checkout${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
export CUPY_TF32=0  # cuBLAS float32 stays float32: the baselines and ceilings are float32
cd "$checkout" || exit 2

# GPU_CHECK_ALLOW_CPU=1 runs the parts without a GPU, only to test this script's own plumbing.
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
rm -f "$outdir"/{summary.md,results.json,kernels.json,step.json,gpu-tests.xml,train-metrics.jsonl}

budget=${GPU_CHECK_BUDGET_S:-440}  # the parts; with the summary and the last part's grace, under 8 minutes
started=$SECONDS

# run_part NAME LIMIT_SECONDS COMMAND...: run with a time limit (never beyond the budget), output to
# the log, one line of status to parts.tsv: name, status (ok / failed (rc) / timed out / skipped), seconds.
run_part() {
    local name=$1 limit=$2
    shift 2
    local left=$((budget - (SECONDS - started)))
    if [ "$left" -lt 20 ]; then
        printf '%s\tskipped (budget spent)\t0\t%s\n' "$name" "$limit" >> "$parts"
        echo "== $name: skipped, the ${budget}s budget is spent" | tee -a "$log"
        return
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    echo "== $name (limit ${limit}s): $*" | tee -a "$log"
    local began=$SECONDS rc
    # SIGINT first: pytest still writes its report, the benchmarks keep the rows they wrote so far.
    timeout --signal=INT --kill-after=15 "$limit" "$@" >> "$log" 2>&1
    rc=$?
    local status="ok"
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then status="timed out"; elif [ "$rc" -ne 0 ]; then status="failed ($rc)"; fi
    printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$((SECONDS - began))" "$limit" >> "$parts"
    echo "== $name: $status after $((SECONDS - began))s" | tee -a "$log"
}

run_part environment 15 bash -c "nvidia-smi; \"$python\" -m benchmarks.summary --environment"
run_part gpu-tests 140 "$python" -m pytest -m gpu tests -q -p no:cacheprovider --junitxml="$outdir/gpu-tests.xml"
run_part kernels 150 "$python" -m alexnet_cuda bench kernels --json "$outdir/kernels.json"
run_part step 60 "$python" -m alexnet_cuda bench step --json "$outdir/step.json"
# 7,000 synthetic training images at 256 pixels (the resize size) cover 50 steps of 128 in one epoch.
train_short() {
    "$python" -m alexnet_cuda synth "$scratch/synthetic" --train-per-class 700 --val-per-class 20 --size 256 \
        --quiet || return
    "$python" -m alexnet_cuda train --data "$scratch/synthetic" --arch alexnet-owt --batch-size 128 \
        --max-steps 50 --device gpu --kernels cuda --workers 8 --checkpoint-dir "$scratch/checkpoints" \
        --metrics-file "$outdir/train-metrics.jsonl" --no-progress
}
export -f train_short
export python scratch outdir
run_part train 75 bash -c train_short

"$python" -m benchmarks.summary "$outdir" --parts "$parts" >> "$log" 2>&1 \
    || echo "gpu_check: the summary could not be written; see $log" >&2
echo "gpu_check: results in $outdir (summary.md, results.json, log.txt)"
awk -F'\t' '{ printf "  %-12s %-24s %5ss\n", $1, $2, $3 }' "$parts"
if grep -qv $'\tok\t' "$parts"; then
    exit 1
fi
exit 0
