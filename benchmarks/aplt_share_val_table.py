"""Table of the runs ``aplt_share_val.sh`` made: final top-1 on the carve-out per variant, labelled share
and seed, and each variant minus FixMatch paired by seed (same labelled split), from the runs'
``metrics.json``.

    python benchmarks/aplt_share_val_table.py ROOT [ROOT ...] [--reference fm] [--out table.md]
"""

from __future__ import annotations

import argparse
import re
import statistics
from collections import defaultdict
from pathlib import Path

from ssmar.engine.runs import recorded_final
from ssmar.runtime.io import write_table

RUN_NAME = re.compile(r"^(?P<variant>\w+?)_l(?P<labels>\d+)_s(?P<seed>\d+)$")


def collect(roots: list[Path]) -> dict[tuple[str, int], dict[int, float]]:
    """(variant, labels per class) -> {seed: final top-1} over every finished run under ``roots``."""
    cells: dict[tuple[str, int], dict[int, float]] = defaultdict(dict)
    for root in roots:
        for metrics in sorted(root.glob("*/metrics.json")):
            match = RUN_NAME.match(metrics.parent.name)
            final = recorded_final(metrics.parent)
            if match and final:
                cells[match["variant"], int(match["labels"])][int(match["seed"])] = final["top1"]
    return cells


def table(cells: dict[tuple[str, int], dict[int, float]], reference: str = "fm") -> str:
    labels = sorted({lab for _, lab in cells})
    columns = sorted({(lab, seed) for (_, lab), runs in cells.items() for seed in runs})  # those that ran
    variants = sorted({variant for variant, _ in cells}, key=lambda v: (v != reference, v))
    lines = ["| variant | " + " | ".join(f"{lab}/class s{seed}" for lab, seed in columns)
             + " | " + " | ".join(f"− {reference} at {lab}/class (n)" for lab in labels) + " |",
             "|---|" + "---:|" * (len(columns) + len(labels))]
    for variant in variants:
        row = [f"{cells[variant, lab][seed]:.2f}" if seed in cells.get((variant, lab), {}) else "—"
               for lab, seed in columns]
        for lab in labels:
            mine, ref = cells.get((variant, lab), {}), cells.get((reference, lab), {})
            paired = [mine[s] - ref[s] for s in sorted(mine) if s in ref]
            row.append(f"{statistics.mean(paired):+.2f} ({len(paired)})" if paired and variant != reference else "")
        lines.append(f"| {variant} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", nargs="+", type=Path)
    parser.add_argument("--reference", default="fm", help="the variant every other is paired against")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    text = table(collect(args.roots), args.reference)
    write_table(text, args.out)


if __name__ == "__main__":
    main()
