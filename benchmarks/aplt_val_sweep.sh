#!/usr/bin/env bash
# Design choices on a validation carve-out of the UTD-MHAD training split (training subject 7 held
# out; the test split is never touched), at two labels per class (what 10 % labels give on the full
# training split; the carve-out's 12 clips per class would give one) and the grid budget:
# APLT's defaults against the paper-faithful preset and its ablations, FixMatch as the reference
# (its round-epoch checkpoints feed benchmarks/offline_labellers.py), and the half-life of
# FreeMatch's and SoftMatch's running statistics (algorithm.params.ema_halflife; null = USB's 0.999).
# Usage: benchmarks/aplt_val_sweep.sh [WORK_ROOT] [SEEDS] [VARIANTS]
#   (resumable: finished runs are skipped, interrupted ones resumed; VARIANTS: space-separated
#   names to run, default all, e.g. to split the sweep over two processes)
set -euo pipefail
ROOT=${1:-work_dirs/aplt_val}
SEEDS=${2:-0}
VARIANTS=${3:-}
DATA=.bench_data/utd.pkl
[ -f "$DATA" ] || ssmar import utd-mhad ../shared/data/utd_mhad_skeleton -o "$DATA"
run() {  # name, method, overrides...
  local name=$1 method=$2; shift 2
  [[ -z "$VARIANTS" || " $VARIANTS " == *" $name "* ]] || return 0
  local dir="$ROOT/$name/seed$seed"
  [ -f "$dir/confusion.npy" ] && return 0
  ssmar train -c configs/utd_mhad.yaml --seed "$seed" --work-dir "$dir" --resume auto "data.file=$DATA" \
    algorithm.name="$method" 'data.val_subjects=[7]' data.eval_on=val data.labels_per_class=2 threads=1 \
    train.progress=false "$@"
}
for seed in ${SEEDS//,/ }; do
  run fixmatch fixmatch 'train.checkpoint_epochs=[5,10,15]'
  # the strong recipe without the op that erased most of a fully supervised model's accuracy
  # (benchmarks/augmentation_check.py on this carve-out)
  run fixmatch_no_axis_mask fixmatch augment.strong.axis_mask=false
  run aplt aplt
  run aplt_paper aplt algorithm.params.preset=paper
  # ablations of the defaults, one change each
  run aplt_kmeans aplt algorithm.params.labeller=kmeans algorithm.params.screen=paper 'algorithm.params.labeller_params={}'
  run aplt_unbalanced aplt 'algorithm.params.labeller_params={balance: none}'
  run aplt_same_space aplt algorithm.params.same_space=true
  run aplt_views4 aplt algorithm.params.bank_views=4
  run aplt_sync aplt algorithm.params.mode=sync
  run aplt_no_margin aplt algorithm.params.lambda_m=0
  run aplt_offline_targets aplt algorithm.params.logits_targets=offline
  for method in freematch softmatch; do
    for share in null 0.1; do
      run "${method}_h$share" "$method" "algorithm.params.ema_halflife=$share"
    done
  done
done
