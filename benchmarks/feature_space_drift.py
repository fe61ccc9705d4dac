"""Feature-space drift of APLT's margin loss, with and without ``same_space``, on saved checkpoints.

For each checkpoint the run's data and split are rebuilt, an APLT offline round runs on the
checkpoint's weights (model and EMA), and the next training steps record how far the online
features the margin loss sees (weak and strong views, train mode) are from the clips'
features in the prototypes' space (``space_drift_weak`` / ``space_drift_strong``, cosine
distance, docs/aplt.md). Both settings start from the same weights and draw the same
batches, so the difference is the drift that ``same_space`` removes.

    python benchmarks/feature_space_drift.py work_dirs/aplt_val/fixmatch/seed*/epoch_*.pt --out benchmarks/results/drift.md
"""

from __future__ import annotations

import argparse
import copy
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import torch

from ssmar.engine.checkpoint import load_checkpoint
from ssmar.engine.trainer import Trainer
from ssmar.runtime.io import write_table


def drift_after_round(path: Path, same_space: bool, steps: int) -> list[tuple[float, float]]:
    """(weak, strong) drift at each of ``steps`` first steps after one offline round (mean over them)."""
    state = load_checkpoint(path)
    cfg = copy.deepcopy(state["config"])
    cfg["algorithm"] = {"name": "aplt", "params": {"same_space": same_space, "warmup_epochs": 0}}
    cfg["train"]["progress"] = False
    with tempfile.TemporaryDirectory() as scratch:
        split = path.parent / "split.json"
        if split.is_file():
            shutil.copy(split, Path(scratch) / "split.json")
        trainer = Trainer(cfg, Path(scratch))
        trainer.model.load_state_dict(state["model"])
        trainer.ema.module.load_state_dict(state["ema"])
        algorithm = trainer.algorithm
        algorithm.offline_phase(int(state["epoch"]))
        trainer.model.train()
        drifts = []
        for _ in range(steps):  # each step re-measures against the round's table
            table = algorithm.space_features.clone()
            algorithm.train_step(trainer._make_batch())
            drifts.append((algorithm.rounds[-1].pop("space_drift_weak"), algorithm.rounds[-1].pop("space_drift_strong")))
            algorithm.space_features = table
    return drifts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--steps", type=int, default=5, help="batches measured after each round")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    lines = ["| checkpoint | drift weak view: bank space → same space | drift strong view: bank space → same space |",
             "|---|---|---|"]
    totals: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for path in args.checkpoints:
        print(f"{path}", file=sys.stderr)
        result = {flag: drift_after_round(path, flag, args.steps) for flag in (False, True)}
        means = {flag: [statistics.fmean(d[i] for d in drifts) for i in (0, 1)] for flag, drifts in result.items()}
        for flag in totals:
            totals[flag].append(tuple(means[flag]))
        lines.append(f"| {path} | {means[False][0]:.4f} → {means[True][0]:.4f} | {means[False][1]:.4f} → "
                     f"{means[True][1]:.4f} |")
    mean = {flag: [statistics.fmean(v[i] for v in values) for i in (0, 1)] for flag, values in totals.items()}
    lines.append(f"| **mean** | **{mean[False][0]:.4f} → {mean[True][0]:.4f}** | **{mean[False][1]:.4f} → "
                 f"{mean[True][1]:.4f}** |")
    table = "\n".join(lines) + "\n"
    write_table(table, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
