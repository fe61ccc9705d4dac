"""``ssmar suggest`` (which clips to label next) and ``ssmar label`` (merge the labels a person gave)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``suggest`` and ``label`` commands (the library, and torch, load only when one runs)."""
    suggest = subparsers.add_parser(
        "suggest", help="rank a trained run's unlabelled clips: which to label next",
        description="Rank the unlabelled clips of a finished run (its split.json) by a strategy and write "
                    "RUN/suggestions.csv (clip, rank, predicted class, each strategy's measure, an empty label "
                    "column to fill in for `ssmar label`), plus a skeleton preview per clip whose video is known.")
    suggest.add_argument("run", metavar="RUN_DIR", help="work dir of a finished `ssmar train` (latest.pt, split.json)")
    suggest.add_argument("--strategy", default="typiclust",
                         help="random; uncertainty (smallest margin between the top two classes); diversity "
                              "(k-centre over the embeddings); typiclust (typical clips of clusters no label "
                              "covers: best for very small budgets; default)")
    suggest.add_argument("--budget", type=int, metavar="N", help="how many clips (default: one per class)")
    suggest.add_argument("--seed", type=int, default=0, help="seed of random and of typiclust's k-means")
    suggest.add_argument("-o", "--output", metavar="CSV", help="default RUN_DIR/suggestions.csv")
    suggest.add_argument("--no-previews", action="store_true", help="do not render video previews")
    suggest.add_argument("--device", default="cpu")
    suggest.set_defaults(func=_run_suggest)

    label = subparsers.add_parser(
        "label", help="merge a CSV of human labels into a skeleton file (atomically)",
        description="Read LABELS.csv (header with 'clip' and 'label'; label = class name or id; blank = skip) "
                    "and set those labels in DATA.pkl. Every row is checked first: an unknown clip or class, a "
                    "clip listed twice or a label that contradicts the file is an error and nothing is written.")
    label.add_argument("data", metavar="DATA.pkl", help="skeleton file to update")
    label.add_argument("labels", metavar="LABELS.csv", help="e.g. the suggestions.csv of `ssmar suggest`, filled in")
    label.add_argument("-o", "--output", metavar="OUT.pkl", help="write here instead of updating DATA.pkl")
    label.add_argument("--relabel", action="store_true", help="allow replacing labels the file already has")
    label.set_defaults(func=_run_label)


def _run_suggest(args: argparse.Namespace) -> int:
    from ssmar.engine.suggest import suggest

    result = suggest(args.run, args.strategy, args.budget, seed=args.seed, output=args.output,
                     previews=not args.no_previews, device=args.device)
    for row in result.rows[:10]:
        print(f"{row['rank']:>4}. {row['clip']:<40} predicted {row['predicted_class']} ({row['confidence']:.0%})")
    if len(result.rows) > 10:
        print(f"      ... {len(result.rows) - 10} more")
    if result.previews_missing:
        print(f"no preview for {len(result.previews_missing)} clip(s) whose video is missing or unreadable, "
              f"e.g. {result.previews_missing[0]}")
    print(f"wrote {result.csv_path}: {len(result.rows)} of {result.pool_size} unlabelled clips ({args.strategy}); "
          f"fill in its 'label' column, then: ssmar label DATA.pkl {result.csv_path}")
    return 0


def _run_label(args: argparse.Namespace) -> int:
    from ssmar.data.labels import label_file

    change = label_file(args.data, args.labels, args.output, relabel=args.relabel)
    print(f"wrote {args.output or args.data}: {change.labelled} clip(s) newly labelled, {change.relabelled} "
          f"relabelled, {change.unchanged} unchanged; {change.still_unlabelled} clip(s) still without a label")
    return 0
