"""benchmarks/paired.py on generated result files: methods paired by seed, and a method against itself."""

from __future__ import annotations

import csv
from pathlib import Path

from conftest import load_benchmark


def write_results(path: Path, rows: list[tuple[str, float, int, float]]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["method", "ratio", "seed", "top1"])
        writer.writerows(rows)
    return path


def test_methods_are_paired_on_the_seeds_both_ran(tmp_path: Path) -> None:
    paired = load_benchmark("paired")
    results = write_results(tmp_path / "results.csv", [
        ("aplt", 0.1, 0, 80.0), ("aplt", 0.1, 1, 70.0), ("aplt", 0.1, 2, 90.0),
        ("fixmatch", 0.1, 0, 78.0), ("fixmatch", 0.1, 1, 66.0)])  # seed 2 missing: not paired
    out = tmp_path / "table.md"
    assert paired.main([str(results), "--method", "aplt", "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0].startswith("| aplt − other (top1) | 10 %")
    assert lines[2].startswith("| fixmatch | +3.00 [") and lines[2].endswith("(2) |")


def test_before_pairs_each_method_with_itself(tmp_path: Path) -> None:
    paired = load_benchmark("paired")
    after = write_results(tmp_path / "after.csv", [("fixmatch", 0.1, 0, 90.0), ("fixmatch", 0.1, 1, 92.0),
                                                   ("aplt", 0.1, 0, 91.0), ("supervised", 0.1, 0, 70.0)])
    before = write_results(tmp_path / "before.csv", [("fixmatch", 0.1, 0, 85.0), ("fixmatch", 0.1, 1, 89.0),
                                                     ("aplt", 0.1, 0, 93.0)])
    diffs = paired.self_differences(paired.read_rows([after], "top1"), paired.read_rows([before], "top1"))
    assert diffs == {("aplt", 0.1): [-2.0], ("fixmatch", 0.1): [5.0, 3.0]}  # supervised ran only after
    out = tmp_path / "table.md"
    paired.main([str(after), "--before", str(before), "--out", str(out)])
    text = out.read_text()
    assert "| new − before (top1) |" in text and "| aplt | -2.00 (1) |" in text and "supervised" not in text
    assert "| fixmatch | +4.00 [" in text
