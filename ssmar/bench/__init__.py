"""Benchmark harness: a resumable (method × labelled ratio × seed) grid of training runs.

``runner`` plans and runs the cells (each an ordinary ``ssmar train`` run in its own
work dir); ``report`` turns their ``result.json`` files into tables and a plot.
"""

from ssmar.bench.report import collect_results, format_mean_std, markdown_table, write_reports
from ssmar.bench.runner import Cell, plan_grid, run_grid

__all__ = ["Cell", "collect_results", "format_mean_std", "markdown_table", "plan_grid", "run_grid", "write_reports"]
