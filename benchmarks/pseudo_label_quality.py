"""APLT's offline pseudo-labels against FixMatch's confident pseudo-labels at equal coverage.

For every (ratio, seed) of a bench grid that holds both an ``aplt`` and a ``fixmatch`` run,
and every APLT offline round after warm-up: FixMatch's coverage and accuracy in the epoch
that follows the round (its per-epoch mask ratio and pseudo-label accuracy against the
hidden labels), and APLT's accuracy at that same coverage, read off the round's
accuracy-coverage curve (linear interpolation between coverage 0.1, 0.2, ... 1.0).

    python benchmarks/pseudo_label_quality.py work_dirs/bench_utd [--out FILE.md]
    python benchmarks/pseudo_label_quality.py work_dirs/suites/utd_aplt_paper --method 'aplt@preset="paper"' \
        --fixmatch-root work_dirs/suites/utd_aplt   # a variant's cells, FixMatch's in another suite
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ssmar.aplt.rounds import ROUNDS_FILE, read_rounds
from ssmar.runtime.io import write_table


def compare(root: Path, method: str = "aplt", fixmatch_root: Path | None = None) -> list[dict]:
    """Rows for every round of ``root/method``'s cells that has a FixMatch cell on the same ratio and seed
    (under ``fixmatch_root``, by default ``root``)."""
    rows = []
    for rounds_file in sorted((root / method).glob(f"ratio*/seed*/{ROUNDS_FILE}")):
        cell = rounds_file.parent
        fixmatch = (fixmatch_root or root) / "fixmatch" / cell.parent.name / cell.name / "metrics.json"
        if not fixmatch.is_file():
            continue
        history = {record["epoch"]: record for record in json.loads(fixmatch.read_text())["history"]}
        for record in read_rounds(cell):
            epoch = record["epoch"] + 1  # the round runs before 0-based epoch e: FixMatch's record e + 1
            fix = history.get(epoch)
            if fix is None or not fix.get("pl_coverage") or "aplt_accuracy_curve" not in record:
                continue
            levels, curve = record["coverage_levels"], record["aplt_accuracy_curve"]
            rows.append({
                "ratio": cell.parent.name.removeprefix("ratio"), "seed": cell.name.removeprefix("seed"),
                "round": record["round"], "epoch": epoch,
                "fixmatch_coverage": fix["pl_coverage"], "fixmatch_accuracy": fix["pl_acc"],
                "aplt_accuracy_at_fixmatch_coverage": float(np.interp(fix["pl_coverage"], levels, curve)),
                "aplt_coverage": record["coverage"], "aplt_accuracy": record["accuracy"],
                "classifier_accuracy_at_aplt_coverage": record["classifier_accuracy_at_equal_coverage"],
            })
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| ratio | seed | round | epoch | FixMatch coverage | FixMatch acc | APLT acc at that coverage | "
             "APLT kept coverage | APLT kept acc | APLT model's classifier at APLT coverage |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['ratio']} | {r['seed']} | {r['round']} | {r['epoch']} | {100 * r['fixmatch_coverage']:.1f} | "
                     f"{100 * r['fixmatch_accuracy']:.1f} | {100 * r['aplt_accuracy_at_fixmatch_coverage']:.1f} | "
                     f"{100 * r['aplt_coverage']:.1f} | {100 * r['aplt_accuracy']:.1f} | "
                     f"{100 * (r['classifier_accuracy_at_aplt_coverage'] or 0):.1f} |")
    later = [r for r in rows if r["round"] > 1]
    wins = sum(r["aplt_accuracy_at_fixmatch_coverage"] > r["fixmatch_accuracy"] for r in later)
    lines.append("")
    lines.append(f"Rounds after the first where APLT's offline labels beat FixMatch's at equal coverage: "
                 f"{wins} of {len(later)}.")
    lines.append("")
    lines.append("Rounds after the first where APLT's kept labels beat its own frozen classifier at equal coverage "
                 "(won / tied / lost, ties within 0.1 point):")
    for ratio in sorted({r["ratio"] for r in later}, key=float):
        gaps = [r["aplt_accuracy"] - (r["classifier_accuracy_at_aplt_coverage"] or 0) for r in later
                if r["ratio"] == ratio]
        won, lost = sum(g > 1e-3 for g in gaps), sum(g < -1e-3 for g in gaps)
        lines.append(f"- ratio {ratio}: {won} / {len(gaps) - won - lost} / {lost} of {len(gaps)}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="a bench work dir with aplt/ and fixmatch/ cells")
    parser.add_argument("--method", default="aplt", help="the APLT cells' directory name (a variant's, e.g.)")
    parser.add_argument("--fixmatch-root", type=Path, help="the work dir holding fixmatch/ (default: root)")
    parser.add_argument("--out", type=Path, help="also write the table here")
    args = parser.parse_args()
    text = markdown(compare(args.root, args.method, args.fixmatch_root))
    write_table(text, args.out)


if __name__ == "__main__":
    main()
