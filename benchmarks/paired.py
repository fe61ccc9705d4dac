"""Paired comparison of one method against the others, seed by seed, with 95 % intervals.

A seed fixes the labelled split for every method (``ssmar bench``), and which clips are
labelled moves top-1 by several points; so methods are compared on the same seeds, as the
mean of the per-seed differences with a Student-t 95 % interval, not as two means with
their own spreads. Reads ``results.csv`` files of ``ssmar bench`` (several may be given,
e.g. a new APLT grid beside an earlier baseline grid; a later file's row replaces an
earlier one for the same method, ratio and seed).

    python benchmarks/paired.py work_dirs/bench_synth/results.csv --method aplt [--metric top1] [--out table.md]

With ``--before FILE...`` each method is paired with itself in the other results instead (e.g. a new
recipe against the one before it, on the same seeds): rows are methods, cells new − before.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from ssmar.bench.report import format_interval, mean_interval
from ssmar.runtime.io import pyplot, save_figure, write_table


def read_rows(paths: list[Path], metric: str) -> dict[tuple[str, float, int], float]:
    values = {}
    for path in paths:
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                if row.get(metric):
                    values[(row["method"], float(row["ratio"]), int(row["seed"]))] = float(row[metric])
    return values


def paired_differences(values: dict[tuple[str, float, int], float], method: str
                       ) -> dict[tuple[str, float], list[float]]:
    """(other method, ratio) -> ``method`` − other on every seed both ran, in seed order."""
    ratios = sorted({ratio for m, ratio, _ in values if m == method})
    others = sorted({m for m, ratio, _ in values if m != method and ratio in ratios})
    table = {}
    for other in others:
        for ratio in ratios:
            seeds = sorted(s for m, r, s in values if m == method and r == ratio and (other, ratio, s) in values)
            table[(other, ratio)] = [values[(method, ratio, s)] - values[(other, ratio, s)] for s in seeds]
    return table


def self_differences(after: dict[tuple[str, float, int], float], before: dict[tuple[str, float, int], float]
                     ) -> dict[tuple[str, float], list[float]]:
    """(method, ratio) -> its ``after`` − ``before`` value on every seed both ran, in seed order."""
    table: dict[tuple[str, float], list[float]] = {}
    for key in sorted(after.keys() & before.keys()):
        table.setdefault(key[:2], []).append(after[key] - before[key])
    return table


def paired_table(diffs: dict[tuple[str, float], list[float]], heading: str) -> str:
    ratios = sorted({ratio for _, ratio in diffs})
    lines = [f"| {heading} | " + " | ".join(f"{100 * r:g} %" for r in ratios) + " |",
             "| --- |" + " ---: |" * len(ratios)]
    for row in sorted({row for row, _ in diffs}):
        lines.append(f"| {row} | " + " | ".join(format_difference(diffs.get((row, r), [])) for r in ratios) + " |")
    return "\n".join(lines) + "\n"


def paired_plot(diffs: dict[tuple[str, float], list[float]], label: str, path: Path) -> None:
    """One panel per labelled ratio: each seed's difference as a dot, the mean and its 95 % interval."""
    plt = pyplot()

    ratios = sorted({ratio for _, ratio in diffs})
    others = sorted({other for other, _ in diffs})
    fig, axes = plt.subplots(1, len(ratios), figsize=(4.5 * len(ratios), 0.5 * len(others) + 1.5), squeeze=False,
                             sharey=True)
    for axis, ratio in zip(axes[0], ratios):
        for row, other in enumerate(others):
            points = diffs.get((other, ratio), [])
            if not points:
                continue
            axis.scatter(points, [row] * len(points), color="tab:grey", s=14, zorder=2)
            mean, half = mean_interval(points)
            axis.errorbar(mean, row, xerr=half, fmt="o", color="tab:blue", capsize=3, zorder=3)
        axis.axvline(0, color="black", linewidth=0.8)
        axis.set_title(f"{100 * ratio:g} % labels")
        axis.set_xlabel(f"{label} (points)")
        axis.set_yticks(range(len(others)), others)
    save_figure(fig, path)


def format_difference(diffs: list[float]) -> str:
    """``mean [low, high] (n)``: the 95 % t-interval of the mean paired difference."""
    return f"{format_interval(diffs)} ({len(diffs)})" if diffs else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="+", type=Path, help="results.csv files of ssmar bench")
    parser.add_argument("--method", default="aplt")
    parser.add_argument("--metric", default="top1")
    parser.add_argument("--out", type=Path, help="also write the table here")
    parser.add_argument("--before", nargs="+", type=Path, metavar="FILE",
                        help="pair each method with itself in these results.csv files (new − before)")
    parser.add_argument("--plot", type=Path, help="also draw the per-seed differences (PNG)")
    args = parser.parse_args(argv)
    values = read_rows(args.results, args.metric)
    if args.before:
        diffs, label = self_differences(values, read_rows(args.before, args.metric)), "new − before"
    else:
        diffs, label = paired_differences(values, args.method), f"{args.method} − other"
    table = paired_table(diffs, f"{label} ({args.metric})")
    write_table(table, args.out)
    if args.plot:
        paired_plot(diffs, f"{label}, {args.metric}", args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
