"""Does the strong augmentation preserve labels? A trained model scored on augmented clips.

SSL methods train the strong view to predict the weak view's label; a transform that erases a
class's cue teaches the model to ignore that cue. Here a (fully supervised) checkpoint scores
the clips of a split clean, under the whole weak and strong recipes of its config, and under
each strong op alone at full probability; per op: top-1, and the classes that lose the most.
Decide changes on a validation carve-out; the test split is only reported.

    python benchmarks/augmentation_check.py work_dirs/full/latest.pt --split test --out benchmarks/results/aug_synth
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ssmar.data.augment import (STRONG_DEFAULTS, RandomAxisMask, RandomJitter, RandomJointMask, RandomRotation,
                                RandomScale, RandomShear, RandomTemporalCrop, RandomTemporalMask, resolve_options,
                                strong_augment, weak_augment)
from ssmar.engine.inference import EncodedSet, load_recognizer
from ssmar.engine.inputs import prepare_data
from ssmar.runtime.io import save_json, save_text


def strong_ops(cfg: dict[str, Any]) -> dict[str, Callable]:
    """Each op of the config's strong recipe on its own, applied to every clip (p = 1)."""
    options = resolve_options(cfg, STRONG_DEFAULTS, "strong")
    return {
        f"temporal crop {options['crop_min_ratio']}": RandomTemporalCrop(options["crop_min_ratio"]),
        f"rotation ±{options['rotate_degrees']:g}°": RandomRotation(options["rotate_degrees"]),
        f"scale ±{options['scale']:g}": RandomScale(options["scale"]),
        f"shear {options['shear']:g}": RandomShear(options["shear"], p=1.0),
        f"jitter {options['jitter_sigma']:g}": RandomJitter(options["jitter_sigma"], p=1.0),
        f"joint mask {options['joint_mask_ratio']:g}": RandomJointMask(options["joint_mask_ratio"], p=1.0),
        f"temporal mask {options['temporal_mask_ratio']:g}": RandomTemporalMask(options["temporal_mask_ratio"], p=1.0),
        "axis mask": RandomAxisMask(p=1.0),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--split", help="split of the checkpoint's data (default: its test split); 'val': the "
                                        "validation carve-out the run evaluated on")
    parser.add_argument("--draws", type=int, default=3, help="augmented copies of each clip per view")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    recognizer = load_recognizer(args.checkpoint)
    if args.split == "val":  # the run's own carve-out, rebuilt from its config
        with tempfile.TemporaryDirectory() as scratch:
            evaluation = prepare_data(recognizer.config, Path(scratch), seed=int(recognizer.config["seed"])).evaluation
        encoded = EncodedSet(evaluation.clips, evaluation.labels.numpy(), evaluation.names,
                             str(recognizer.config["data"]["file"]), "val")
    else:
        encoded = recognizer.encode_source(split=args.split)
    names = recognizer.meta["class_names"]
    augment_cfg = recognizer.config["augment"]
    views: dict[str, Callable | None] = {"clean": None, "weak recipe": weak_augment(augment_cfg["weak"]),
                                         "strong recipe": strong_augment(augment_cfg["strong"]),
                                         **strong_ops(augment_cfg["strong"])}
    generator = torch.Generator().manual_seed(0)
    rows = []
    clean_per_class = None
    for view, transform in views.items():
        print(f"scoring: {view}", file=sys.stderr)
        draws = 1 if transform is None else args.draws
        correct = np.zeros(len(encoded.labels))
        for _ in range(draws):
            clips = encoded.clips if transform is None else transform(encoded.clips, generator)
            correct += recognizer.scores(clips).argmax(1) == encoded.labels
        correct /= draws
        per_class = np.array([correct[encoded.labels == k].mean() for k in range(len(names))]) * 100
        if clean_per_class is None:
            clean_per_class = per_class
        drop = clean_per_class - per_class
        worst = np.argsort(-drop)[:3]
        rows.append({"view": view, "top1": float(correct.mean() * 100), "per_class": per_class.tolist(),
                     "worst": [(names[k], float(drop[k])) for k in worst if drop[k] > 0]})
    lines = [f"# Label preservation: `{args.checkpoint}` on split `{encoded.split}` ({len(encoded.labels)} clips, "
             f"{args.draws} draws per augmented view)\n", "| view | top-1 | Δ vs clean | classes that lose most (points) |",
             "|---|---:|---:|---|"]
    for row in rows:
        worst = ", ".join(f"{name} −{drop:.0f}" for name, drop in row["worst"]) or "—"
        lines.append(f"| {row['view']} | {row['top1']:.2f} | {row['top1'] - rows[0]['top1']:+.2f} | {worst} |")
    table = "\n".join(lines) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    save_text(table, args.out / "augmentation_check.md")
    save_json({"checkpoint": str(args.checkpoint), "split": encoded.split, "class_names": names, "rows": rows},
              args.out / "augmentation_check.json")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
