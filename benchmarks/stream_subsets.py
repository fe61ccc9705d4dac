"""What each added stream buys, and costs, in a late-fusion grid (``ssmar bench --late-fusion``).

A late-fusion cell trains one model per stream, so its training time grows with the number of streams. This
re-fuses every cell's stream models one stream at a time, in the order given (``--chain``, default the
cells' own order): the first stream alone, the first two, ... all of them. Each model is scored once on its
evaluation split; the fusion is the equal-weight mean softmax of ``ssmar eval --fuse``, so the last row
reproduces the cells' own top-1. Per method and prefix: top-1 mean ± std over seeds, the difference from the
first stream alone paired by seed (Student-t 95 % interval), and the training minutes per cell (the stream
runs' summed wall time, as they ran, e.g. two side by side). Nothing is trained or chosen here: the order is
an input, to be picked on validation (BENCHMARKS.md picks it by subject cross-validation).

    python benchmarks/stream_subsets.py work_dirs/suites/utd_ssl10_4s --chain joint bone joint_motion bone_motion \
        --out benchmarks/results/utd_ssl10_4s_streams.md --plot benchmarks/results/utd_ssl10_4s_streams.png
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from ssmar.bench.report import format_interval, format_mean_std, method_rank
from ssmar.engine.fusion import ScoredClips, late_fusion, score_checkpoint
from ssmar.engine.metrics import classification_metrics
from ssmar.errors import SsmarError
from ssmar.runtime.io import pyplot, save_figure, write_table


def late_fusion_cells(root: Path) -> list[dict[str, Any]]:
    """Every finished late-fusion cell under ``root`` (``<method>/ratio<r>/seed<s>/result.json``)."""
    cells = []
    for path in sorted(root.glob("*/ratio*/seed*/result.json")):
        result = json.loads(path.read_text())
        if result.get("late_fusion"):
            cells.append({**result, "dir": path.parent})
    if not cells:
        raise SsmarError(f"{root}: no finished late-fusion cells (*/ratio*/seed*/result.json with late_fusion); "
                         "run `ssmar bench --late-fusion ...` or a suite with late_fusion first")
    return cells


def fused_top1(models: list[ScoredClips]) -> float:
    """Top-1 of the equal-weight fusion of ``models`` (one model: its own), by the metrics every run reports."""
    fused = models[0] if len(models) == 1 else late_fusion(models, [1.0] * len(models))[0]
    return classification_metrics(fused.probs, fused.labels, fused.class_names)["top1"]


def prefix_rows(cell: dict[str, Any], chain: list[str]) -> list[dict[str, Any]]:
    """The cell's top-1 and training seconds for each prefix of ``chain``."""
    missing = [stream for stream in chain if stream not in cell["late_fusion"]]
    if missing:
        raise SsmarError(f"{cell['dir']}: has no run for stream(s) {', '.join(missing)}; its streams are "
                         f"{', '.join(cell['late_fusion'])}; give --chain with those")
    models = [score_checkpoint(cell["dir"] / stream / "latest.pt") for stream in chain]
    seconds = [json.loads((cell["dir"] / stream / "metrics.json").read_text())["elapsed_s"] for stream in chain]
    return [{"method": cell["method"], "ratio": cell["ratio"], "seed": cell["seed"], "streams": k,
             "top1": fused_top1(models[:k]), "seconds": sum(seconds[:k])} for k in range(1, len(chain) + 1)]


def table(rows: list[dict[str, Any]], chain: list[str]) -> str:
    lines = ["| method | labelled | streams | top-1 (%) | − first stream alone, paired by seed | training min per cell |",
             "|---|---:|---|---:|---:|---:|"]
    for method, ratio in sorted({(r["method"], r["ratio"]) for r in rows}, key=lambda m: (method_rank(m[0]), m[1])):
        group = [r for r in rows if (r["method"], r["ratio"]) == (method, ratio)]
        alone = {r["seed"]: r["top1"] for r in group if r["streams"] == 1}
        for k in range(1, len(chain) + 1):
            prefix = [r for r in group if r["streams"] == k]
            diff = format_interval([r["top1"] - alone[r["seed"]] for r in prefix]) if k > 1 else "—"
            minutes = statistics.fmean(r["seconds"] for r in prefix) / 60
            lines.append(f"| {method} | {100 * ratio:g}% | {' + '.join(chain[:k])} | "
                         f"{format_mean_std([r['top1'] for r in prefix])} | {diff} | {minutes:.1f} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict[str, Any]], chain: list[str], path: Path) -> None:
    """Top-1 against training minutes per cell, one line per method, one point per prefix of the chain."""
    fig, axis = pyplot().subplots(figsize=(6, 4))
    for method in sorted({r["method"] for r in rows}, key=method_rank):
        points = [([r for r in rows if r["method"] == method and r["streams"] == k]) for k in range(1, len(chain) + 1)]
        x = [statistics.fmean(r["seconds"] for r in p) / 60 for p in points]
        y = [statistics.fmean(r["top1"] for r in p) for p in points]
        axis.plot(x, y, marker="o", label=method)
    axis.set_xlabel("training minutes per cell (streams added in order: " + ", ".join(chain) + ")")
    axis.set_ylabel("top-1 (%), mean over seeds")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="a late-fusion grid's work dir")
    parser.add_argument("--chain", nargs="+", help="the order in which streams are added (default: the cells')")
    parser.add_argument("--out", type=Path, help="also write the table (markdown) here")
    parser.add_argument("--plot", type=Path, help="write top-1 against training minutes here (PNG)")
    args = parser.parse_args(argv)
    cells = late_fusion_cells(args.root)
    chain = args.chain or list(cells[0]["late_fusion"])
    rows = [row for cell in cells for row in prefix_rows(cell, chain)]
    write_table(table(rows, chain), args.out)
    if args.plot:
        plot(rows, chain, args.plot)
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except SsmarError as error:
        raise SystemExit(f"error: {error}") from None
