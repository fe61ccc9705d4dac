"""Simulated annotation loop: which clips should a person label next?

What it measures. A user starts with one labelled clip per class and a pool of clips nobody has
labelled (here: the UTD-MHAD cross-subject train split, its other labels hidden as label -1, exactly
as a user's own file would hold them). Each round trains a method on the labels so far
(``data.labelled_ratio=1``: every known label, the rest unlabelled), asks ``ssmar suggest`` for
``--budget`` clips (default: one per class, 27) with a strategy, and an oracle (the hidden UTD-MHAD
label) labels them, as ``ssmar label`` would. After ``--rounds`` rounds the label count is
1 + rounds labels per class's worth. Every strategy is compared with random at equal label counts,
seed by seed (a seed fixes the starting labels and the training randomness, shared by all
strategies), as paired differences in test top-1 with Student-t 95 % intervals. Round 0 (the
starting labels) is trained once per method and seed and shared by every strategy.

Resumable: each (method, strategy, seed, round) cell writes ``cell.json`` when done and is skipped on
a rerun; an interrupted training resumes from its ``latest.pt``.

    python benchmarks/annotation_loop.py --data data/utd_mhad.pkl -c configs/utd_mhad.yaml \\
        --methods aplt,fixmatch --strategies random,uncertainty,diversity,typiclust --seeds 0,1,2,3,4 \\
        --rounds 3 --work-dir work_dirs/annotation_loop [--jobs N] [key=value ...]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ssmar.config import load_config
from ssmar.data.labels import apply_labels
from ssmar.data.skeleton_format import load_skeleton_pickle, save_skeleton_pickle
from ssmar.data.splits import stratified_pick
from ssmar.engine.runs import run_training
from ssmar.engine.suggest import suggest
from ssmar.errors import SsmarError
from ssmar.runtime.io import save_csv, save_json, save_text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from paired import format_difference  # noqa: E402  (a sibling script)

CELL_FILE = "cell.json"


def starting_labels(data: dict[str, Any], seed: int) -> list[str]:
    """One labelled training clip per class, drawn by ``seed``: every strategy's round 0."""
    train = data["split"]["train"]
    labels = {ann["frame_dir"]: ann["label"] for ann in data["annotations"]}
    picked = stratified_pick(np.array([labels[name] for name in train]), seed, per_class=1)
    return [train[i] for i in picked]


def round_data(truth: dict[str, Any], labelled: list[str], path: Path) -> None:
    """``truth`` with every training label outside ``labelled`` hidden (-1), written to ``path`` (kept on a
    rerun); the oracle's labels of ``labelled`` go in through the same code as ``ssmar label``."""
    if path.is_file():
        return
    data = {**truth, "annotations": [dict(ann) for ann in truth["annotations"]]}
    train = set(truth["split"]["train"])
    for ann in data["annotations"]:
        if ann["frame_dir"] in train:
            ann["label"] = -1
    oracle = {ann["frame_dir"]: ann["label"] for ann in truth["annotations"]}
    apply_labels(data, {name: (oracle[name], line) for line, name in enumerate(labelled, 1)}, str(path), "oracle")
    save_skeleton_pickle(data, path)


def run_cell(args: argparse.Namespace, truth: dict[str, Any], method: str, strategy: str, seed: int, round_: int,
             labelled: list[str]) -> dict[str, Any] | None:
    """Train one round on ``labelled`` and ask ``strategy`` for the next clips; cached in cell.json.
    With ``--tables-only``, a cell not cached yet is None (nothing is trained)."""
    cell = args.work_dir / method / (strategy if round_ else "start") / f"seed{seed}" / f"round{round_}"
    done = cell / CELL_FILE
    if done.is_file():
        record = json.loads(done.read_text())
        if record.get("overrides", []) != args.overrides or record.get("budget") != args.budget:
            raise SsmarError(f"{done} was made with overrides {record.get('overrides', [])} and budget "
                             f"{record.get('budget')}, this run has {args.overrides} and {args.budget}; "
                             "use another --work-dir")
        return record
    if args.tables_only:
        return None
    cell.mkdir(parents=True, exist_ok=True)
    round_data(truth, labelled, cell / "data.pkl")
    cfg = load_config(args.config, [*args.overrides, f"data.file={cell / 'data.pkl'}", "data.labelled_ratio=1.0",
                                    "data.labels_per_class=null", f"algorithm.name={method}", f"seed={seed}",
                                    f"work_dir={cell / 'run'}", "train.progress=false"])
    final = run_training(cfg, resume="auto")
    picks: dict[str, list[str]] = {}
    if round_ < args.rounds:
        for name in ([strategy] if round_ else args.strategies):  # round 0 is shared: ask every strategy
            result = suggest(cell / "run", name, args.budget, seed=seed, output=cell / f"suggestions_{name}.csv",
                             previews=False)
            picks[name] = [row["clip"] for row in result.rows]
    record = {"method": method, "strategy": strategy, "seed": seed, "round": round_, "labelled": len(labelled),
              "labels_per_class": len(labelled) / len(truth["class_names"]), "top1": final["top1"],
              "picks": picks, "labelled_clips": labelled, "overrides": args.overrides, "budget": args.budget}
    save_json(record, done)
    return record


def run_chain(args: argparse.Namespace, method: str, seed: int) -> list[dict[str, Any]]:
    """Every round of every strategy for one method and seed (they share round 0), round by round, so
    that a run cut short still holds every strategy at the same label counts."""
    truth = load_skeleton_pickle(args.data)
    start = starting_labels(truth, seed)
    first = run_cell(args, truth, method, "start", seed, 0, start)
    if first is None:
        return []
    records = [{**first, "strategy": strategy} for strategy in args.strategies]
    labelled = {strategy: start + first["picks"][strategy] for strategy in args.strategies}
    for round_ in range(1, args.rounds + 1):
        for strategy in list(labelled):
            record = run_cell(args, truth, method, strategy, seed, round_, labelled[strategy])
            if record is None:  # --tables-only: this strategy's later rounds cannot exist either
                del labelled[strategy]
                continue
            records.append(record)
            labelled[strategy] = labelled[strategy] + record["picks"].get(strategy, [])
    return records


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """All (method, seed) chains, ``--jobs`` of them side by side (each a process of its own)."""
    chains = [(method, seed) for seed in args.seeds for method in args.methods]
    if args.jobs <= 1:
        return [record for method, seed in chains for record in run_chain(args, method, seed)]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(run_chain, args, method, seed) for method, seed in chains]
        return [record for future in futures for record in future.result()]


def tables(records: list[dict[str, Any]]) -> str:
    """Top-1 per strategy and label count (mean over seeds), then each strategy minus random, paired by seed."""
    out = io.StringIO()
    for method in sorted({r["method"] for r in records}):
        rows = [r for r in records if r["method"] == method]
        counts = sorted({r["labels_per_class"] for r in rows})
        strategies = sorted({r["strategy"] for r in rows}, key=lambda s: (s != "random", s))
        header = " | ".join(f"{c:g} / class" for c in counts)
        out.write(f"### {method}: test top-1 (%), mean over seeds (n)\n\n| strategy | {header} |\n"
                  f"| --- |{' ---: |' * len(counts)}\n")
        value = {(r["strategy"], r["labels_per_class"], r["seed"]): r["top1"] for r in rows}
        for strategy in strategies:
            cells = []
            for count in counts:
                values = [v for (s, c, _), v in value.items() if s == strategy and c == count]
                cells.append(f"{np.mean(values):.2f} ({len(values)})" if values else "")
            out.write(f"| {strategy} | " + " | ".join(cells) + " |\n")
        later = counts[1:]  # the starting labels are every strategy's: no difference to measure there
        out.write(f"\n### {method}: strategy − random, paired by seed: mean [95 % CI] (n)\n\n"
                  f"| strategy | {' | '.join(f'{c:g} / class' for c in later)} |\n| --- |{' ---: |' * len(later)}\n")
        for strategy in strategies[1:]:
            cells = []
            for count in later:
                seeds = sorted(seed for (s, c, seed) in value if s == strategy and c == count
                               and ("random", c, seed) in value)
                cells.append(format_difference([value[(strategy, count, s)] - value[("random", count, s)]
                                                for s in seeds]))
            out.write(f"| {strategy} | " + " | ".join(cells) + " |\n")
        out.write("\n")
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, type=Path, help="UTD-MHAD skeleton pickle (ssmar import utd-mhad)")
    parser.add_argument("-c", "--config", default="configs/utd_mhad.yaml")
    parser.add_argument("--methods", default="aplt,fixmatch", type=lambda s: s.split(","))
    parser.add_argument("--strategies", default="random,uncertainty,diversity,typiclust", type=lambda s: s.split(","))
    parser.add_argument("--seeds", default="0,1,2,3,4", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--budget", type=int, help="clips per round (default: one per class)")
    parser.add_argument("--work-dir", type=Path, default=Path("work_dirs/annotation_loop"))
    parser.add_argument("--tables-only", action="store_true",
                        help="train nothing: tables from the cells already cached (e.g. while a run goes on)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="(method, seed) chains trained side by side, one process each (use threads=1)")
    parser.add_argument("overrides", nargs="*", help="config key=value overrides (e.g. a smaller budget)")
    args = parser.parse_args(argv)
    if "random" not in args.strategies:
        parser.error("--strategies must include random: every strategy is compared with it")
    try:
        records = run(args)
    except SsmarError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    save_csv(records, ["method", "strategy", "seed", "round", "labels_per_class", "labelled", "top1"],
             args.work_dir / "results.csv")
    table = tables(records)
    save_text(table, args.work_dir / "results.md")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
