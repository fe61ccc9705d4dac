"""Table and bar chart of the APLT design choices and ablations run by ``aplt_val_sweep.sh``.

One row per variant directory of ROOT (``ROOT/<variant>/seed*``, the sweep's layout): top-1 of the
linear head (what every other method reports), of the prototype head alone and of the fused
scores (``fusion: 1``, APLT's default), each APLT run rescored from its final checkpoint by
``aplt_heads.py``; the last round's offline pseudo-label coverage and accuracy, and the wall
time. Mean over the seeds a variant ran (n).

    python benchmarks/aplt_ablation_table.py work_dirs/aplt_val --out benchmarks/results/aplt_val
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from aplt_heads import score_run  # this script's directory is on sys.path

from ssmar.aplt.rounds import read_rounds
from ssmar.runtime.io import pyplot, save_figure, save_text


def collect(root: Path) -> list[dict]:
    rows = []
    for variant_dir in sorted(path for path in root.iterdir() if path.is_dir()):
        runs = ((path.parent, json.loads(path.read_text())) for path in sorted(variant_dir.glob("seed*/metrics.json")))
        cells = [(cell, metrics) for cell, metrics in runs if metrics.get("final")]  # finished runs only
        if not cells:
            continue
        heads, rounds, walls = [], [], []
        for cell, metrics in cells:
            walls.append(metrics["elapsed_s"])
            if cell_rounds := read_rounds(cell):
                rounds.append(cell_rounds[-1])
                heads.append(score_run(cell))
            else:
                heads.append({"linear": metrics["final"]["top1"]})

        def mean(values: list) -> float | None:
            values = [v for v in values if v is not None]
            return float(np.mean(values)) if values else None

        rows.append({
            "variant": variant_dir.name, "method": cells[0][1]["config"]["algorithm"]["name"], "seeds": len(cells),
            "top1": mean([h["linear"] for h in heads]),
            "top1_per_seed": [round(h["linear"], 2) for h in heads],
            "prototype_top1": mean([h.get("prototype") for h in heads]),
            "fused_top1": mean([h.get("fused") for h in heads]),
            "coverage": mean([100 * r["coverage"] for r in rounds]),
            "pl_accuracy": mean([100 * r["accuracy"] for r in rounds]),
            "classifier_accuracy": mean([100 * r["classifier_accuracy_at_equal_coverage"] for r in rounds
                                         if r["classifier_accuracy_at_equal_coverage"] is not None]),
            "minutes": mean(walls) / 60,
        })
    return rows


def markdown(rows: list[dict]) -> str:
    def cell(value: float | None) -> str:
        return "—" if value is None else f"{value:.2f}"

    lines = ["| variant | method | n | linear head top-1 (per seed) | prototype head | fused (default) | last round: kept % | "
             "kept acc % | classifier acc at equal coverage % | min/run |",
             "|---|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['method']} | {r['seeds']} | {cell(r['top1'])} "
                     f"({', '.join(map(str, r['top1_per_seed']))}) | {cell(r['prototype_top1'])} | "
                     f"{cell(r['fused_top1'])} | {cell(r['coverage'])} | {cell(r['pl_accuracy'])} | "
                     f"{cell(r['classifier_accuracy'])} | {r['minutes']:.1f} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    names = [f"{r['variant']}/{r['method']} (n={r['seeds']})" for r in rows]
    y = np.arange(len(rows))
    fig, ax = pyplot().subplots(figsize=(8, 0.5 * len(rows) + 1.4))
    linear = [r["top1"] for r in rows]
    fused = [r["fused_top1"] if r["fused_top1"] is not None else np.nan for r in rows]
    ax.barh(y - 0.2, linear, height=0.4, color="tab:gray", label="linear head")
    ax.barh(y + 0.2, fused, height=0.4, color="tab:blue", label="fused (APLT default)")
    for row, (a, b) in enumerate(zip(linear, fused)):
        ax.text(a + 0.3, row - 0.2, f"{a:.1f}", va="center", fontsize=7)
        if not np.isnan(b):
            ax.text(b + 0.3, row + 0.2, f"{b:.1f}", va="center", fontsize=7)
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.legend(loc="lower right", fontsize=8)
    ax.set_xlabel("top-1 (%) on the validation carve-out")
    values = linear + [v for v in fused if not np.isnan(v)]
    ax.set_xlim(max(0, min(values) - 10), min(100, max(values) + 5))
    fig.tight_layout()
    save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--out", type=Path, help="prefix for OUT.md and OUT.png (default: print only)")
    args = parser.parse_args()
    rows = collect(args.root)
    if not rows:
        raise SystemExit(f"error: no finished runs under {args.root}; run benchmarks/aplt_val_sweep.sh first")
    text = markdown(rows)
    print(text)
    if args.out:
        save_text(text, args.out.with_suffix(".md"))
        plot(rows, args.out.with_suffix(".png"))
        print(f"wrote {args.out.with_suffix('.md')} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
