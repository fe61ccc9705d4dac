#!/usr/bin/env bash
# The SSL baselines at their best: the half-life of FreeMatch's and SoftMatch's running statistics
# as a share of the run (algorithm.params.ema_halflife; null = USB's momentum 0.999), chosen on a
# validation carve-out of the UTD-MHAD training split (training subject 7 held out; the test split
# is never touched). 10 % labels, the grid budget. FixMatch runs beside them as the reference and
# keeps its round-epoch checkpoints for benchmarks/offline_labellers.py.
# Usage: benchmarks/baseline_momentum_sweep.sh [WORK_ROOT] [SEEDS]   (resumable)
set -euo pipefail
ROOT=${1:-work_dirs/momentum_val}
SEEDS=${2:-0}
DATA=.bench_data/utd.pkl
[ -f "$DATA" ] || ssmar import utd-mhad ../shared/data/utd_mhad_skeleton -o "$DATA"
run() {  # name, method, overrides...
  local name=$1 method=$2; shift 2
  ssmar bench --data "$DATA" -c configs/utd_mhad.yaml --methods "$method" --ratios 0.1 --seeds "$SEEDS" \
    --jobs 1 --work-dir "$ROOT/$name" 'data.val_subjects=[7]' data.eval_on=val threads=1 train.progress=false "$@"
}
run fixmatch fixmatch 'train.checkpoint_epochs=[5,10,15]'
for method in freematch softmatch; do
  for share in null 0.05 0.2; do
    run "${method}_h$share" "$method" "algorithm.params.ema_halflife=$share"
  done
done
