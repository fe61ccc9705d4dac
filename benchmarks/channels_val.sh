#!/usr/bin/env bash
# data.channels on a validation carve-out of the synthetic set's train split (never its test split):
# subjects 0-6 of the 28 training subjects held out; MediaPipe-style poses with visibility scores.
# Usage: benchmarks/channels_val.sh WORK_DIR [SEEDS] [CHANNELS]   e.g. work_dirs/channels 0,1 xyz,xyz_score
set -euo pipefail
work=${1:?work dir}; seeds=${2:-0,1}; channels=${3:-xyz,xyz_score,xy,xy_score}
mkdir -p "$work"
[ -f "$work/synth.pkl" ] || ssmar data synth -o "$work/synth.pkl"
for ch in ${channels//,/ }; do
  for seed in ${seeds//,/ }; do
    run="$work/$ch/seed$seed"
    [ -f "$run/metrics.json" ] && grep -q '"final"' "$run/metrics.json" && continue
    ssmar train -c configs/synth.yaml data.file="$work/synth.pkl" data.channels="$ch" \
      data.val_subjects=[0,1,2,3,4,5,6] data.eval_on=val algorithm.name=fixmatch \
      train.epochs=10 train.eval_every=10 train.progress=false threads=1 --seed "$seed" --work-dir "$run" >/dev/null
  done
done
python - "$work" "$channels" "$seeds" <<'PY'
import json, sys
from pathlib import Path
work, channels, seeds = Path(sys.argv[1]), sys.argv[2].split(","), sys.argv[3].split(",")
print("| data.channels | " + " | ".join(f"val top-1 seed {s}" for s in seeds) + " | mean |")
print("|---|" + "---|" * (len(seeds) + 1))
for ch in channels:
    top1 = [json.loads((work / ch / f"seed{s}" / "metrics.json").read_text())["final"]["top1"] for s in seeds]
    print(f"| {ch} | " + " | ".join(f"{t:.2f}" for t in top1) + f" | {sum(top1) / len(top1):.2f} |")
PY
