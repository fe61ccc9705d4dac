#!/usr/bin/env bash
# APLT design choices and ablations on a validation carve-out of the UTD-MHAD training split
# (training subject 7 held out; the test split is never touched). 10 % labels, the grid budget.
# Usage: benchmarks/aplt_val_sweep.sh [WORK_ROOT] [JOBS] [VARIANTS]   (resumable: finished cells are skipped)
# VARIANTS: space-separated names to run (default: all), e.g. to split the sweep over two processes.
set -euo pipefail
ROOT=${1:-work_dirs/aplt_val}
JOBS=${2:-1}
VARIANTS=${3:-}
DATA=.bench_data/utd.pkl
[ -f "$DATA" ] || ssmar import utd-mhad ../shared/data/utd_mhad_skeleton -o "$DATA"
variant() {  # name, methods, seeds, overrides...
  local name=$1 methods=$2 seeds=$3; shift 3
  [[ -z "$VARIANTS" || " $VARIANTS " == *" $name "* ]] || return 0
  ssmar bench --data "$DATA" -c configs/utd_mhad.yaml --methods "$methods" --ratios "${RATIOS:-0.1}" --seeds "$seeds" \
    --jobs "$JOBS" --work-dir "$ROOT/$name" 'data.val_subjects=[7]' data.eval_on=val threads=1 "$@"
}
# design choices APLT.md leaves open (2 seeds each)
variant base fixmatch,aplt 0,1
variant agreement aplt 0,1 algorithm.params.agreement=true
variant period2 aplt 0,1 algorithm.params.period=2
# inference head (linear / prototype / fused) at a second label ratio
RATIOS=0.2 variant base_r20 aplt 0,1
# ablations (seed 0; the synchronous mode, the paper's central claim, on both seeds)
variant no_label_aug aplt 0 algorithm.params.num_aug=0
variant no_margin aplt 0 algorithm.params.lambda_m=0
variant sync aplt 0,1 algorithm.params.mode=sync
for policy in quantile ema labelled none; do
  variant "thr_$policy" aplt 0 algorithm.params.threshold_policy=$policy
done
variant thr_fixed aplt 0 algorithm.params.threshold_policy=fixed 'algorithm.params.threshold_params={value: 0.05}'
