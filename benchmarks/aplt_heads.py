"""Top-1 of finished APLT runs under each inference rule: linear head, prototype head, fused.

The inference rule does not change training (it only scores the evaluation clips), so a
finished run's ``latest.pt`` (final EMA weights and prototypes) answers all three without
retraining (``ssmar.engine.runs.rescore_run``: nothing in the run directory changes). Runs are
grouped by the directory above ``ratio*/seed*``.

    python benchmarks/aplt_heads.py work_dirs/bench_utd/aplt work_dirs/aplt_val/base/aplt --out FILE.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ssmar.engine.runs import rescore_run
from ssmar.runtime.io import write_table

HEADS = (("linear", "top1"), ("prototype", "prototype_top1"), ("fused", "fused_top1"))


def score_run(run_dir: Path) -> dict[str, float]:
    metrics = rescore_run(run_dir, ["algorithm.params.fusion=0.0"])  # top1 = linear head; fused as diagnostic
    return {head: float(metrics[key]) for head, key in HEADS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", nargs="+", type=Path, help="directories holding ratio*/seed* APLT runs")
    parser.add_argument("--out", type=Path, help="also write the Markdown table here")
    args = parser.parse_args()
    lines = ["| runs | ratio | n | linear head | prototype head | fused (fusion 1) | per seed (linear / prototype / fused) |",
             "|---|---|---:|---:|---:|---:|---|"]
    for root in args.roots:
        for ratio_dir in sorted(root.glob("ratio*")):
            runs = [s for s in sorted(ratio_dir.glob("seed*")) if (s / "result.json").is_file()]
            if not runs:
                continue
            scores = [score_run(run) for run in runs]
            means = {head: np.mean([s[head] for s in scores]) for head, _ in HEADS}
            per_seed = "; ".join(f"{run.name}: " + " / ".join(f"{s[h]:.2f}" for h, _ in HEADS)
                                 for run, s in zip(runs, scores))
            lines.append(f"| {root} | {ratio_dir.name.removeprefix('ratio')} | {len(runs)} | {means['linear']:.2f} | "
                         f"{means['prototype']:.2f} | {means['fused']:.2f} | {per_seed} |")
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    write_table(text, args.out)
    print(json.dumps({"rows": len(lines) - 2}))


if __name__ == "__main__":
    main()
