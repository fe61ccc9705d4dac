"""Top-1 on a validation carve-out against the training budget, fully supervised and FixMatch (issue 23).

Trains every (method, steps per epoch) run that has not finished under ROOT (``ssmar train --resume auto``,
``--jobs`` at a time, one thread each), then writes the table (markdown) and the curve (PNG) from the runs'
``metrics.json``. Budgets are given as steps per epoch; the epochs are the config's.

    python benchmarks/budget_curve.py configs/synth.yaml work_dirs/budget_synth --steps 10 20 40 \
        --set data.val_fraction=0.2 --out benchmarks/results/budget_synth.md --plot benchmarks/results/budget_synth.png
"""

from __future__ import annotations

import argparse
import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ssmar.engine.runs import recorded_final
from ssmar.runtime.io import pyplot, save_figure, write_table

METHODS = ("fullysupervised", "fixmatch")


def run_dir(root: Path, method: str, steps: int) -> Path:
    return root / f"{method}_spe{steps}"


def final_top1(directory: Path) -> float | None:
    """The final top-1 of a finished run, else None."""
    final = recorded_final(directory)
    return final["top1"] if final else None


def train(config: Path, root: Path, method: str, steps: int, seed: int, overrides: list[str]) -> None:
    if final_top1(run_dir(root, method, steps)) is None:
        subprocess.run(["ssmar", "train", "-c", str(config), "--seed", str(seed), "--work-dir",
                        str(run_dir(root, method, steps)), "--resume", "auto", f"algorithm.name={method}",
                        f"train.steps_per_epoch={steps}", "data.eval_on=val", "threads=1", "train.progress=false",
                        *overrides], check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", type=Path)
    parser.add_argument("root", type=Path)
    parser.add_argument("--steps", type=int, nargs="+", required=True, help="steps per epoch, one run each")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="overrides (the carve-out)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args(argv)
    cells = [(method, steps) for method in METHODS for steps in args.steps]
    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(lambda cell: train(args.config, args.root, *cell, args.seed, args.set), cells))
    top1 = {cell: final_top1(run_dir(args.root, *cell)) for cell in cells}
    epochs = json.loads((run_dir(args.root, *cells[0]) / "metrics.json").read_text())["config"]["train"]["epochs"]
    lines = ["| steps per epoch | total steps | " + " | ".join(METHODS) + " |", "|---:|---:|" + "---:|" * len(METHODS)]
    for steps in args.steps:
        row = [f"{top1[method, steps]:.2f}" for method in METHODS]
        lines.append(f"| {steps} | {steps * epochs} | " + " | ".join(row) + " |")
    table = "\n".join(lines) + "\n"
    write_table(table, args.out)
    if args.plot:
        plt = pyplot()

        fig, axis = plt.subplots(figsize=(5, 3.5))
        budgets = [s * epochs for s in args.steps]
        for method in METHODS:
            axis.plot(budgets, [top1[method, steps] for steps in args.steps], marker="o", label=method)
        axis.set_xscale("log")
        axis.set_xticks(budgets, [str(b) for b in budgets])
        axis.minorticks_off()
        axis.set_xlabel("training steps")
        axis.set_ylabel("validation top-1 (%)")
        axis.set_title(f"{args.config.stem}, seed {args.seed}")
        axis.legend()
        save_figure(fig, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
