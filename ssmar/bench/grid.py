"""A whole grid from a config: its base config, running the missing cells with the reports rebuilt
after each, and re-scoring finished cells. ``ssmar bench`` and ``ssmar demo`` call these."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ssmar.bench.report import write_reports
from ssmar.bench.runner import Cell, cell_config, check_base_config, rescore_cell, run_grid
from ssmar.config import load_config


def base_config(config: str | None, overrides: list[str], device: str | None) -> dict[str, Any]:
    """The config every cell of a grid starts from."""
    base = load_config(config, overrides)
    if device:
        base["device"] = device
    check_base_config(base, overrides)
    return base


def run_and_report(base: dict[str, Any], cells: Sequence[Cell], root: Path, data_file: Path, jobs: int,
                   rerun_stale: bool = False, late_fusion: Sequence[str] = ()) -> None:
    """Run the missing cells (and, with ``rerun_stale``, those that ran under other settings), rewriting
    the tables after each, and once more at the end; ``late_fusion`` as in :func:`run_grid`."""
    run_grid(base, cells, root, data_file, jobs=jobs, on_result=lambda _: write_reports(root), rerun_stale=rerun_stale,
             late_fusion=late_fusion)
    write_reports(root)  # also when every cell was already finished


def rescore_grid(base: dict[str, Any], cells: Sequence[Cell], root: Path,
                 data_file: Path) -> list[tuple[Cell, dict[str, Any] | None]]:
    """Re-evaluate every finished cell with the current code (None: not finished), then rebuild the tables."""
    results = [(cell, rescore_cell(cell_config(base, cell, root, data_file), cell)) for cell in cells]
    write_reports(root)
    return results
