"""Leave-one-subject-out cross-validation of recipe variants on the training split (never the test split).

One held-out subject is a small, noisy validation set (UTD-MHAD: 108 clips, one clip = 0.93 points, and
the subject itself moves top-1 by several points). Here every training subject is held out in turn, so a
variant is scored on every training clip once per seed: the pooled top-1 (correct / clips over the folds),
and each variant minus the first one fold by fold (same subject, same seed), with a Student-t 95 %
interval over those folds.

Trains every (variant, seed, subject) run that has not finished under ROOT (``ssmar train --resume auto``,
``--jobs`` at a time, one thread each), then writes the table (markdown) and a plot (PNG) from the runs'
``metrics.json``. A variant is a name and its overrides; ``--fuse NAME A B ...`` adds a row for the late
fusion of variants' runs (mean softmax, equal weights, as ``ssmar eval --fuse``) fold by fold:

    python benchmarks/subject_cv.py configs/utd_mhad_full.yaml work_dirs/cv_utd --subjects 1 3 5 7 --seeds 0 \
        --variant base --variant smooth train.label_smoothing=0.1 \
        --variant bone "model.streams=[bone]" --fuse joint+bone base bone --set data.file=data/utd_mhad.pkl --out benchmarks/results/cv_utd.md --plot benchmarks/results/cv_utd.png
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ssmar.bench.report import format_interval
from ssmar.engine.fusion import evaluate_fusion
from ssmar.engine.runs import recorded_final
from ssmar.runtime.io import pyplot, save_figure, save_json, write_table


def run_dir(root: Path, variant: str, seed: int, subject: int) -> Path:
    return root / variant / f"seed{seed}_val{subject}"


def train(config: Path, directory: Path, seed: int, subject: int, overrides: list[str]) -> None:
    if recorded_final(directory) is None:
        subprocess.run(["ssmar", "train", "-c", str(config), "--seed", str(seed), "--work-dir", str(directory),
                        "--resume", "auto", f"data.val_subjects=[{subject}]", "data.eval_on=val", "threads=1",
                        "train.progress=false", *overrides], check=True)


def fused_final(root: Path, members: list[str], seed: int, subject: int) -> dict[str, float]:
    """Top-1 of the late fusion of ``members``' runs on their held-out clips (cached beside the runs)."""
    cache = root / "fused" / "+".join(members) / f"seed{seed}_val{subject}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    result, fused = evaluate_fusion([run_dir(root, member, seed, subject) / "latest.pt" for member in members],
                                    [None] * len(members), [1.0] * len(members))
    final = {"top1": result["fused"]["top1"], "num_samples": len(fused.labels)}
    save_json(final, cache)
    return final


def interval(diffs: list[float]) -> str:
    """Mean [95 % t-interval] of paired differences."""
    return format_interval(diffs) + (" (n=1)" if len(diffs) < 2 else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", type=Path)
    parser.add_argument("root", type=Path)
    parser.add_argument("--subjects", type=int, nargs="+", required=True, help="training subjects, one fold each")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--variant", nargs="+", action="append", required=True, metavar=("NAME", "KEY=VALUE"),
                        help="a name and its overrides; the first variant is the reference")
    parser.add_argument("--fuse", nargs="+", action="append", default=[], metavar=("NAME", "VARIANT"),
                        help="a name and the variants whose runs are fused (late fusion)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="overrides of every run")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args(argv)
    variants = {name: overrides for name, *overrides in args.variant}
    folds = [(seed, subject) for seed in args.seeds for subject in args.subjects]
    cells = [(name, seed, subject) for name in variants for seed, subject in folds]
    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(lambda cell: train(args.config, run_dir(args.root, *cell), cell[1], cell[2],
                                         [*args.set, *variants[cell[0]]]), cells))
    final = {cell: recorded_final(run_dir(args.root, *cell)) for cell in cells}
    for name, *members in args.fuse:
        variants[name] = [f"late fusion: {' + '.join(members)}"]
        final |= {(name, *fold): fused_final(args.root, members, *fold) for fold in folds}
    top1 = {cell: metrics["top1"] for cell, metrics in final.items()}
    reference = next(iter(variants))
    lines = ["| variant | overrides | " + " | ".join(f"s{seed} val{subject}" for seed, subject in folds)
             + " | pooled top-1 | − " + reference + " by fold, 95 % CI |",
             "|---|---|" + "---:|" * (len(folds) + 2)]
    for name, overrides in variants.items():
        correct = sum(top1[name, *fold] * final[name, *fold]["num_samples"] / 100 for fold in folds)
        clips = sum(final[name, *fold]["num_samples"] for fold in folds)
        diff = "—" if name == reference else interval([top1[name, *fold] - top1[reference, *fold] for fold in folds])
        lines.append(f"| {name} | {' '.join(f'`{o}`' for o in overrides) or '—'} | "
                     + " | ".join(f"{top1[name, *fold]:.2f}" for fold in folds)
                     + f" | {100 * correct / clips:.2f} ({round(correct)}/{clips}) | {diff} |")
    table = "\n".join(lines) + "\n"
    write_table(table, args.out)
    if args.plot:
        plt = pyplot()

        fig, axis = plt.subplots(figsize=(1.2 + 0.9 * len(variants), 3.5))
        for x, name in enumerate(variants):
            diffs = [top1[name, *fold] - top1[reference, *fold] for fold in folds]
            axis.scatter([x] * len(diffs), diffs, color="tab:blue", alpha=0.6, s=18)
            axis.errorbar(x, statistics.fmean(diffs), fmt="_", color="black", markersize=16)
        axis.axhline(0, color="grey", linewidth=0.8)
        axis.set_xticks(range(len(variants)), list(variants), rotation=30, ha="right")
        axis.set_ylabel(f"top-1 − {reference} (points)")
        axis.set_title(f"{args.config.stem}: leave-one-subject-out, each fold a dot")
        save_figure(fig, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
