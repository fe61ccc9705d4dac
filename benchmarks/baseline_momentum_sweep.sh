#!/usr/bin/env bash
# The SSL baselines at their best: the half-life of FreeMatch's and SoftMatch's running statistics
# as a share of the run (algorithm.params.ema_halflife; null = USB's momentum 0.999), chosen on a
# validation carve-out of the UTD-MHAD training split (training subject 7 held out; the test split
# is never touched). Two labels per class, as 10 % labels give on the full training split (the
# carve-out's 12 clips per class would give one), the grid budget. FixMatch runs beside them as the reference and
# keeps its round-epoch checkpoints for benchmarks/offline_labellers.py.
# Usage: benchmarks/baseline_momentum_sweep.sh [WORK_ROOT] [SEEDS]   (resumable)
set -euo pipefail
ROOT=${1:-work_dirs/momentum_val}
SEEDS=${2:-0}
DATA=.bench_data/utd.pkl
[ -f "$DATA" ] || ssmar import utd-mhad ../shared/data/utd_mhad_skeleton -o "$DATA"
run() {  # name, method, overrides... (a finished run is skipped, an interrupted one resumed)
  local name=$1 method=$2; shift 2
  local dir="$ROOT/$name/seed$seed"
  [ -f "$dir/confusion.npy" ] && return 0
  ssmar train -c configs/utd_mhad.yaml --seed "$seed" --work-dir "$dir" --resume auto "data.file=$DATA" \
    algorithm.name="$method" 'data.val_subjects=[7]' data.eval_on=val data.labels_per_class=2 threads=1 \
    train.progress=false "$@"
}
for seed in ${SEEDS//,/ }; do
  run fixmatch fixmatch 'train.checkpoint_epochs=[5,10,15]'
  for method in freematch softmatch; do
    for share in null 0.05 0.2; do
      run "${method}_h$share" "$method" "algorithm.params.ema_halflife=$share"
    done
  done
done
