#!/usr/bin/env bash
# Issue 24: APLT's weighting of the clips below its screen and the margin losses' weight, chosen on the
# validation carve-out of the UTD-MHAD training split (training subject 7 held out, never the test
# split) at three labelled shares: 2, 3 and 6 labels per class of the carve-out's ~12 (shares 0.17,
# 0.25 and 0.50 of its 323 training clips), FixMatch beside each. Runs are named
# VARIANT_l<labels per class>_s<seed>; benchmarks/aplt_share_val_table.py ROOT makes the table.
# Usage: benchmarks/aplt_share_val.sh [ROOT] [SEEDS] [SHARES] [VARIANTS]
#   (resumable: finished runs are skipped, interrupted ones resumed)
# Penn Action instead (a stratified 20 % of its train split held out; ~67 training clips per class):
#   SET=penn_action benchmarks/aplt_share_val.sh work_dirs/aplt_share_val_penn 0 "7 30" "fm aplt"
#   (7 and 30 labels per class: shares 0.10 and 0.45 of its 1,005 training clips; its smallest class has 32)
set -euo pipefail
ROOT=${1:-work_dirs/aplt_share_val}
SEEDS=${2:-0}
SHARES=${3:-2 3 6}
VARIANTS=${4:-fm aplt hard soft softm0}
case ${SET:-utd_mhad} in
  utd_mhad) DATA=data/utd_mhad.pkl; CONFIG=configs/utd_mhad.yaml; CARVE_OUT='data.val_subjects=[7]'
            [ -f "$DATA" ] || ssmar import utd-mhad ../shared/data/utd_mhad_skeleton -o "$DATA" ;;
  penn_action) DATA=data/penn_action.pkl; CONFIG=configs/penn_action.yaml; CARVE_OUT=data.val_fraction=0.2
            [ -f "$DATA" ] || ssmar import penn-action ../shared/data/penn_action/labels -o "$DATA" ;;
  *) echo "aplt_share_val.sh: SET=$SET is not a development set; use utd_mhad or penn_action" >&2; exit 2 ;;
esac
run() {  # name, method, overrides...
  local name=$1 method=$2; shift 2
  [[ " $VARIANTS " == *" $name "* ]] || return 0
  local dir="$ROOT/${name}_l${labels}_s$seed"
  [ -f "$dir/confusion.npy" ] && return 0
  ssmar train -c "$CONFIG" --seed "$seed" --work-dir "$dir" --resume auto "data.file=$DATA" \
    algorithm.name="$method" "$CARVE_OUT" data.eval_on=val "data.labels_per_class=$labels" threads=1 \
    train.progress=false "$@"
}
for seed in ${SEEDS//,/ }; do
  for labels in $SHARES; do
    run fm fixmatch
    run aplt aplt  # the defaults of the code that runs
    # the defaults before issue 24: the hard 0.9 screen, margin losses at weight 1 at every share
    run hard aplt 'algorithm.params.screen_params={threshold: 0.9, below: 0.0}' algorithm.params.lambda_m=1.0
    # every clip, weighted: the clips below the screen at their label's clean fraction
    run soft aplt 'algorithm.params.screen_params={threshold: 0.9, below: 1.0}' algorithm.params.lambda_m=1.0
    run softm0 aplt 'algorithm.params.screen_params={threshold: 0.9, below: 1.0}' algorithm.params.lambda_m=0.0
  done
done
