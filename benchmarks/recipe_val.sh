#!/usr/bin/env bash
# Recipe selection on validation carve-outs (never a test split): input streams, budget, late fusion.
#   UTD-MHAD: training subject 7 held out (data.val_subjects=[7], 108 clips);
#   Penn Action: a stratified 20 % of the train split (data.val_fraction=0.2, 252 clips).
# Usage: benchmarks/recipe_val.sh WORK_DIR [JOBS]   (needs data/utd_mhad.pkl and data/penn_action.pkl)
# Resumable: a finished run (final metrics in metrics.json) is skipped. Prints one table.
set -euo pipefail
work=${1:?work dir}; jobs=${2:-2}
mkdir -p "$work"
U="-c configs/utd_mhad_full.yaml data.val_subjects=[7] data.eval_on=val train.epochs=40"
P="-c configs/penn_action_full.yaml data.val_fraction=0.2 data.eval_on=val train.epochs=40"
F="-c configs/utd_mhad.yaml data.val_subjects=[7] data.eval_on=val train.epochs=20 algorithm.name=fixmatch"
ALL="model.streams=[joint,bone,joint_motion,bone_motion]"
runs=(
  "utd_s0_joint_1200|$U --seed 0 train.steps_per_epoch=30 model.streams=[joint]"
  "utd_s0_jm_1200|$U --seed 0 train.steps_per_epoch=30 model.streams=[joint,joint_motion]"
  "utd_s0_jb_1200|$U --seed 0 train.steps_per_epoch=30 model.streams=[joint,bone]"
  "utd_s0_all_1200|$U --seed 0 train.steps_per_epoch=30 $ALL"
  "utd_s0_bone_1200|$U --seed 0 train.steps_per_epoch=30 model.streams=[bone]"
  "utd_s1_joint_1200|$U --seed 1 train.steps_per_epoch=30 model.streams=[joint]"
  "utd_s1_all_1200|$U --seed 1 train.steps_per_epoch=30 $ALL"
  "utd_s1_bone_1200|$U --seed 1 train.steps_per_epoch=30 model.streams=[bone]"
  "utd_s0_joint_2400|$U --seed 0 train.steps_per_epoch=60 model.streams=[joint]"
  "utd_s0_all_2400|$U --seed 0 train.steps_per_epoch=60 $ALL"
  "penn_s0_joint_600|$P --seed 0 train.steps_per_epoch=15 model.streams=[joint]"
  "penn_s0_all_600|$P --seed 0 train.steps_per_epoch=15 $ALL"
  "penn_s0_joint_1200|$P --seed 0 train.steps_per_epoch=30 model.streams=[joint]"
  "penn_s0_all_1200|$P --seed 0 train.steps_per_epoch=30 $ALL"
  "utd_fm10_s0_joint_600|$F --seed 0 train.steps_per_epoch=30"
  "utd_fm10_s0_joint_1200|$F --seed 0 train.steps_per_epoch=60"
)
run_one() {
  local name=${1%%|*} args=${1#*|}
  grep -qs '"final"' "$work/$name/metrics.json" && return 0
  # shellcheck disable=SC2086
  ssmar train $args threads=1 train.progress=false --work-dir "$work/$name" > "$work/$name.log" 2>&1
}
export -f run_one; export work
printf '%s\n' "${runs[@]}" | xargs -d '\n' -P "$jobs" -I{} bash -c 'run_one "{}"'
# late fusion (joint + bone) on the UTD-MHAD carve-out: the subject-7 clips as their own split
python - "$work" <<'PY'
import sys
from ssmar.data.skeleton_format import load_skeleton_pickle, save_skeleton_pickle
data = load_skeleton_pickle("data/utd_mhad.pkl")
train = set(data["split"]["train"])
data["split"]["val7"] = [a["frame_dir"] for a in data["annotations"] if a["frame_dir"] in train and a["subject"] == 7]
save_skeleton_pickle(data, f"{sys.argv[1]}/utd_val7.pkl")
PY
for seed in 0 1; do
  ssmar eval --fuse "$work/utd_s${seed}_joint_1200/latest.pt" "$work/utd_s${seed}_bone_1200/latest.pt" \
    --data-a "$work/utd_val7.pkl" --data-b "$work/utd_val7.pkl" --split val7 --out "$work/fuse_jb_s$seed" > /dev/null
done
python - "$work" <<'PY'
import json, sys
from pathlib import Path
work = Path(sys.argv[1])
print("| run | val top-1 |\n|---|---:|")
for metrics in sorted(work.glob("*/metrics.json")):
    print(f"| {metrics.parent.name} | {json.loads(metrics.read_text())['final']['top1']:.2f} |")
for fused in sorted(work.glob("fuse_jb_s*/metrics.json")):
    print(f"| utd_{fused.parent.name[-2:]}_joint+bone late fusion | {json.loads(fused.read_text())['fused']['top1']:.2f} |")
PY
