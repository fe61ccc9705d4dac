"""Offline labeller study: every labeller × screen on saved checkpoints, no training.

For each checkpoint (e.g. the ``epoch_<n>.pt`` files that ``train.checkpoint_epochs`` keeps at
APLT's round epochs) the run's own data and labelled/unlabelled split are rebuilt, the EMA
model embeds the feature bank exactly as APLT's offline phase does (``ssmar.aplt.embedding.embed_bank``
with the first round's augmentation stream, 1 and ``--views`` passes per row), and every labeller
and screen of ``ssmar/aplt`` labels the unlabelled clips. Each is scored against the hidden labels beside the same checkpoint's
classifier confidence at equal coverage, and its accuracy-coverage curve (ranked by its own
score) is drawn next to the classifier's. Run it on checkpoints of runs that evaluated on a
validation carve-out (``data.eval_on=val``): defaults are chosen here, never on the test split.

    python benchmarks/offline_labellers.py work_dirs/momentum_val/fixmatch/fixmatch/ratio0.1/seed0/epoch_*.pt \
        --out benchmarks/results/offline_labellers
"""

from __future__ import annotations

import argparse
import copy
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ssmar.aplt.diagnostics import COVERAGE_LEVELS, accuracy_curve, compare_with_classifier
from ssmar.aplt.embedding import bank_generator, embed_bank
from ssmar.aplt.labellers import make_labeller
from ssmar.aplt.offline import offline_round
from ssmar.aplt.screens import make_screen
from ssmar.engine.checkpoint import load_checkpoint
from ssmar.engine.trainer import Trainer
from ssmar.runtime.io import save_json, save_text

LABELLERS: dict[str, tuple[str, dict[str, Any]]] = {
    "kmeans (paper)": ("kmeans", {}),
    "kmeans margin": ("kmeans", {"score": "margin"}),
    "multiproto": ("multiproto", {}),
    "labelprop": ("labelprop", {}),
    "labelprop balanced": ("labelprop", {"balance": "labelled"}),
    "posterior": ("posterior", {}),
    "posterior balanced (default)": ("posterior", {"balance": "labelled"}),
}
SCREENS: dict[str, tuple[str, dict[str, Any]]] = {
    "confidence 0.9 (default)": ("confidence", {"threshold": 0.9}),
    "confidence 0.8": ("confidence", {"threshold": 0.8}),
    "paper mean": ("paper", {"policy": "mean"}),
    "precision 0.9": ("precision", {"target": 0.9}),
    "precision 0.8": ("precision", {"target": 0.8}),
    "none": ("none", {}),
}


def study_checkpoint(path: Path, views: list[int], p_cutoff: float) -> list[dict[str, Any]]:
    state = load_checkpoint(path)
    cfg = copy.deepcopy(state["config"])
    cfg["algorithm"] = {"name": "aplt", "params": {}}
    cfg["train"]["progress"] = False
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        split = path.parent / "split.json"
        if split.is_file():  # the run's own labelled/unlabelled partition
            shutil.copy(split, Path(scratch) / "split.json")
        trainer = Trainer(cfg, Path(scratch))
        trainer.ema.module.load_state_dict(state["ema"])
        params, data, ctx = trainer.algorithm.params, trainer.data, trainer.context
        true_all = data.train.labels
        for passes in views:
            bank = embed_bank(trainer.ema.module, data, ctx.clips, ctx.weak_augment, bank_generator(ctx.seed, 0),
                              num_aug=int(params["num_aug"]), views=passes, batch_norm="eval",
                              batch_size=int(params["bank_batch_size"]), device=ctx.device, dist=ctx.dist)
            unlabelled = bank.is_unlabelled
            true = true_all[bank.dataset_index[unlabelled].cpu()]
            logits = bank.logits[unlabelled].cpu()
            confidence, predicted = logits.softmax(dim=1).max(dim=1)
            rows.append({"checkpoint": str(path), "epoch": state["epoch"], "views": passes, "labeller": "classifier",
                         "screen": f"confidence >= {p_cutoff}",
                         "curve": accuracy_curve(confidence, predicted, true)})
            for label_name, (labeller_name, labeller_params) in LABELLERS.items():
                labeller = make_labeller(labeller_name, **labeller_params)
                for screen_name, (screen_kind, screen_params) in SCREENS.items():
                    if screen_kind == "confidence" and labeller_name == "kmeans" and "balance" not in labeller_params:
                        continue  # unbalanced k-means has no posterior to be confident about
                    result = offline_round(bank.features, bank.labels, data.num_classes, labeller,
                                           make_screen(screen_kind, **screen_params), groups=bank.dataset_index,
                                           logits=bank.logits)
                    report = compare_with_classifier(result.assign[unlabelled].cpu(), result.keep[unlabelled].cpu(),
                                                     result.score[unlabelled].cpu(), true, logits, p_cutoff,
                                                     data.num_classes)
                    rows.append({"checkpoint": str(path), "epoch": state["epoch"], "views": passes,
                                 "labeller": label_name, "screen": screen_name,
                                 **{key: report[key] for key in ("coverage", "accuracy", "accuracy_unscreened",
                                                                 "classifier_accuracy_at_equal_coverage",
                                                                 "classifier_accuracy_unscreened")},
                                 "curve": report["aplt_accuracy_curve"]})
    return rows


def summarise(rows: list[dict[str, Any]]) -> str:
    """Mean over checkpoints per (views, labeller, screen): coverage, accuracy, classifier at equal coverage."""
    groups: dict[tuple[int, str, str], list[dict[str, Any]]] = {}
    for row in rows:
        if row["labeller"] != "classifier":
            groups.setdefault((row["views"], row["labeller"], row["screen"]), []).append(row)
    lines = ["| views | labeller | screen | coverage | accuracy | classifier at equal coverage | gain | wins |",
             "|---:|---|---|---:|---:|---:|---:|---:|"]
    for (views, labeller, screen), members in sorted(groups.items()):
        def mean(key: str) -> float:
            values = [m[key] for m in members if m[key] is not None and not np.isnan(m[key])]
            return float(np.mean(values)) * 100 if values else float("nan")

        paired = [(m["accuracy"], m["classifier_accuracy_at_equal_coverage"]) for m in members
                  if m["coverage"] > 0 and m["classifier_accuracy_at_equal_coverage"] is not None]
        wins = sum(a > c for a, c in paired)
        gain = float(np.mean([a - c for a, c in paired])) * 100 if paired else float("nan")
        lines.append(f"| {views} | {labeller} | {screen} | {mean('coverage'):.1f} | {mean('accuracy'):.1f} | "
                     f"{mean('classifier_accuracy_at_equal_coverage'):.1f} | {gain:+.1f} | {wins}/{len(paired)} |")
    return "\n".join(lines)


def plot_curves(rows: list[dict[str, Any]], path: Path) -> None:
    from ssmar.runtime.io import pyplot, save_figure

    plt = pyplot()

    views = sorted({row["views"] for row in rows})
    fig, axes = plt.subplots(1, len(views), figsize=(6 * len(views), 4.2), squeeze=False)
    for ax, passes in zip(axes[0], views):
        curves: dict[str, list[list[float]]] = {}
        for row in rows:
            if row["views"] == passes and (row["labeller"] == "classifier" or row["screen"] == "none"):
                curves.setdefault(row["labeller"], []).append(row["curve"])
        for name, members in sorted(curves.items()):
            style = "k--" if name == "classifier" else "-"
            ax.plot([100 * c for c in COVERAGE_LEVELS], 100 * np.nanmean(np.array(members, float), axis=0), style,
                    label=name, linewidth=2 if name == "classifier" else 1.2)
        ax.set_title(f"bank rows averaged over {passes} pass(es)")
        ax.set_xlabel("coverage of unlabelled clips (%)")
        ax.set_ylabel("pseudo-label accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/offline_labellers"))
    parser.add_argument("--views", default="1,4", help="passes averaged per bank row, comma-separated")
    parser.add_argument("--p-cutoff", type=float, default=0.95, help="the classifier's FixMatch threshold")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    views = [int(v) for v in args.views.split(",")]
    rows = []
    for index, path in enumerate(args.checkpoints, 1):
        print(f"[{index}/{len(args.checkpoints)}] {path}", file=sys.stderr)
        rows.extend(study_checkpoint(path, views, args.p_cutoff))
    args.out.mkdir(parents=True, exist_ok=True)
    save_json({"rows": rows, "coverage_levels": COVERAGE_LEVELS}, args.out / "rows.json")
    table = summarise(rows)
    save_text(f"# Offline labeller study\n\n{len(args.checkpoints)} checkpoints: "
              f"{', '.join(str(p) for p in args.checkpoints)}\n\n{table}\n", args.out / "summary.md")
    plot_curves(rows, args.out / "curves.png")
    print(table)
    print(f"wrote {args.out / 'summary.md'}, {args.out / 'rows.json'}, {args.out / 'curves.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
