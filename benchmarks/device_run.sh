#!/usr/bin/env bash
# One prepared run for a lent GPU machine (see BENCHMARKS.md): the UTD-MHAD method x ratio x seed
# grid, the APLT ablations, and the TSM-R50 throughput check. Every cell is an ordinary
# `ssmar bench` cell, so the same commands reproduce it on CPU (--device cpu).
#   DEVICE=cuda JOBS=12 OUT=/some/dir benchmarks/device_run.sh
# Needs .bench_data/utd.pkl (ssmar import utd-mhad ../shared/data/utd_mhad_skeleton -o .bench_data/utd.pkl).
set -u
DEVICE=${DEVICE:-cuda}
JOBS=${JOBS:-12}
OUT=${OUT:-/tmp/device_out}
EXTRA=${EXTRA:-}            # extra key=value overrides (a tiny budget for a dry run on CPU)
RATIOS=${RATIOS:-0.1,0.2,0.5}
SEEDS=${SEEDS:-0,1,2}
ABLATION_RATIOS=${ABLATION_RATIOS:-0.2}
VIDEO=${VIDEO:-1}
ABLATION_JOBS=${ABLATION_JOBS:-2}   # per variant; the nine variants run side by side
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
mkdir -p "$OUT"
W=/tmp/ssmar_bench
PYTHON=${PYTHON:-python3}
SSMAR="$PYTHON -m ssmar.cli.main"
start=$(date +%s)
BUDGET=${BUDGET:-100000}     # seconds; a stage that would start later than this is skipped
stamp() { echo "[$(( $(date +%s) - start ))s] $*" | tee -a "$OUT/device.log"; }
pack() {
  (cd "$W" 2>/dev/null && find . \( -name 'result.json' -o -name 'metrics.json' -o -name 'aplt_rounds.json' \
    -o -name 'results.*' -o -name 'timing.md' -o -name '*.png' -o -name 'log.txt' \) -print0 \
    | tar --null -czf "$OUT/bench.tgz.tmp" -T - && mv "$OUT/bench.tgz.tmp" "$OUT/bench.tgz")
}
in_budget() { [ $(( $(date +%s) - start )) -lt "$1" ]; }

( while sleep 30; do pack; done ) &   # a timeout still returns every finished cell
PACKER=$!
stamp "grid: all methods"
$SSMAR bench --data .bench_data/utd.pkl -c configs/utd_mhad.yaml \
  --methods supervised,pseudolabel,fixmatch,flexmatch,freematch,softmatch,aplt,fullysupervised \
  --ratios "$RATIOS" --seeds "$SEEDS" --jobs "$JOBS" --device "$DEVICE" --work-dir "$W/utd" \
  threads=1 $EXTRA >> "$OUT/device.log" 2>&1
stamp "grid done"
pack

ablate() {  # name, overrides...
  local name=$1; shift
  $SSMAR bench --data .bench_data/utd.pkl -c configs/utd_mhad.yaml --methods aplt --ratios "$ABLATION_RATIOS" \
    --seeds "$SEEDS" --jobs "$ABLATION_JOBS" --device "$DEVICE" --work-dir "$W/ablation/$name" threads=1 $EXTRA "$@" \
    >> "$OUT/device.log" 2>&1 &
  ABLATION_PIDS+=($!)
}
ABLATION_PIDS=()
in_budget $(( BUDGET / 2 )) && {
stamp "ablations"
ablate paper algorithm.params.preset=paper
ablate no_label_aug algorithm.params.num_aug=0
for labeller in kmeans multiproto labelprop; do
  ablate "labeller_$labeller" algorithm.params.labeller=$labeller
done
ablate screen_precision algorithm.params.screen=precision
ablate screen_paper algorithm.params.screen=paper
ablate same_space algorithm.params.same_space=true
ablate no_margin algorithm.params.lambda_m=0
ablate sync algorithm.params.mode=sync
wait "${ABLATION_PIDS[@]}"   # not a bare wait: the packer loop never ends
stamp "ablations done"
pack
}

if [ "$VIDEO" = 1 ] && [ -f benchmarks/video_gpu.py ] && in_budget $(( BUDGET * 4 / 5 )); then
  stamp "video"
  $PYTHON benchmarks/video_gpu.py --device "$DEVICE" --modes "${VIDEO_MODES:-fp32,bf16}" --out "$OUT/video_gpu.json" >> "$OUT/device.log" 2>&1
  stamp "video done"
fi
# Validation carve-out (25 % of the train split, never the test split): candidates for APLT's defaults.
sweep() {  # name, methods, overrides...
  local name=$1 methods=$2; shift 2
  $SSMAR bench --data .bench_data/utd.pkl -c configs/utd_mhad.yaml --methods "$methods" --ratios 0.1,0.2 \
    --seeds 0,1 --jobs 2 --device "$DEVICE" --work-dir "$W/val/$name" threads=1 data.val_fraction=0.25 \
    data.eval_on=val $EXTRA "$@" >> "$OUT/device.log" 2>&1 &
  SWEEP_PIDS+=($!)
}
SWEEP_PIDS=()
if in_budget $(( BUDGET * 4 / 5 )); then
  stamp "validation sweep"
  sweep base supervised,fixmatch,aplt
  sweep period2 aplt algorithm.params.period=2
  sweep lambda_m03 aplt algorithm.params.lambda_m=0.3
  sweep screen_none aplt algorithm.params.screen=none
  sweep warmup10 aplt algorithm.params.warmup_epochs=10
  wait "${SWEEP_PIDS[@]}"
  stamp "validation sweep done"
  pack
fi
nvidia-smi --query-gpu=name,memory.total --format=csv >> "$OUT/device.log" 2>&1
kill $PACKER
pack
stamp "packed"
