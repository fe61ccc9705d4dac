"""The benchmark grid: every (method, labelled ratio, seed) cell is one ordinary training run.

A cell lives in ``ROOT/<method>/ratio<r>/seed<s>/``. When it finishes, ``result.json``
(metrics, wall time, the config it ran with) is written atomically; a cell with that
file is never run again, and an interrupted cell continues from its ``latest.pt``. So
re-running the same command after a crash, a Ctrl-C or a failed cell finishes the grid
without recomputing anything. The tables and the plot are rebuilt after every cell.
"""

from __future__ import annotations

import concurrent.futures as futures
import copy
import json
import multiprocessing
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from tqdm import tqdm

from ssmar.algorithms import ALGORITHMS, algorithm_class
from ssmar.engine.runs import rescore_run, run_training
from ssmar.errors import SsmarError
from ssmar.runtime.io import save_json

UPPER_BOUND = "fullysupervised"  # trains on every label, so it is run once per seed, at ratio 1.0
RESULT_FILE = "result.json"
METRICS_FILE = "metrics.json"  # the training run's per-epoch history and final metrics
# Set per cell by the grid; an override of them would silently be replaced.
GRID_KEYS = {"algorithm.name": "--methods", "data.labelled_ratio": "--ratios", "seed": "--seeds",
             "work_dir": "--work-dir", "data.file": "--data"}
# Settings that change how fast a run goes, not what it computes: a finished cell stays valid across them.
RUNTIME_KEYS = ("work_dir", "device", "threads", "train.progress", "train.eval_batch_size")


@dataclass(frozen=True)
class Cell:
    method: str
    ratio: float
    seed: int

    def work_dir(self, root: Path) -> Path:
        return root / self.method / f"ratio{self.ratio:g}" / f"seed{self.seed}"

    def __str__(self) -> str:
        return f"{self.method} ratio {self.ratio:g} seed {self.seed}"


def plan_grid(methods: Sequence[str], ratios: Sequence[float], seeds: Sequence[int]) -> list[Cell]:
    """Validate the grid and list its cells (duplicates dropped, order kept)."""
    methods, ratios, seeds = (list(dict.fromkeys(items)) for items in (methods, ratios, seeds))
    for name, items, flag in (("methods", methods, "--methods supervised,fixmatch"),
                              ("ratios", ratios, "--ratios 0.1,0.2"), ("seeds", seeds, "--seeds 0,1,2")):
        if not items:
            raise SsmarError(f"bench: the list of {name} is empty; give at least one, e.g. {flag}")
    for method in methods:
        check_method(method)
    for ratio in ratios:
        if not 0.0 < ratio <= 1.0:
            raise SsmarError(f"bench: labelled ratio {ratio:g} is outside (0, 1]; use fractions like --ratios 0.1,0.5")
    cells = []
    for method in methods:
        for ratio in ([1.0] if method == UPPER_BOUND else ratios):
            cells.extend(Cell(method, ratio, seed) for seed in seeds)
    return cells


def check_method(method: str) -> None:
    """Fail now, not hours into the grid, on a method that is unknown or not installed."""
    if method not in ALGORITHMS:
        raise SsmarError(f"bench: unknown method '{method}'; choose from: {', '.join(ALGORITHMS)}")
    try:
        algorithm_class(method)
    except ImportError as exc:
        raise SsmarError(f"bench: method '{method}' is not available in this installation ({exc}); "
                         "drop it from --methods") from exc


def check_base_config(cfg: dict[str, Any], overrides: Sequence[str]) -> None:
    """Reject settings the grid would override or that would defeat the ratio axis."""
    for item in overrides:
        key = item.partition("=")[0].strip()
        if key in GRID_KEYS:
            raise SsmarError(f"bench: override '{item}' is set per cell by the grid; use {GRID_KEYS[key]} instead")
    if cfg["data"]["labels_per_class"] is not None:
        raise SsmarError(f"bench: data.labels_per_class={cfg['data']['labels_per_class']} would replace every "
                         "labelled ratio of the grid; remove it from the config (data.labels_per_class=null)")


def cell_config(base: dict[str, Any], cell: Cell, root: Path, data_file: Path) -> dict[str, Any]:
    """The base config with this cell's method, ratio, seed, work dir and data file."""
    cfg = copy.deepcopy(base)
    cfg["algorithm"]["name"] = cell.method
    cfg["data"]["labelled_ratio"] = cell.ratio
    cfg["data"]["file"] = str(data_file.resolve())
    cfg["seed"] = cell.seed
    cfg["work_dir"] = str(cell.work_dir(root))
    return cfg


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _comparable(cfg: dict[str, Any]) -> dict[str, Any]:
    cfg = copy.deepcopy(cfg)
    for dotted in RUNTIME_KEYS:
        *parents, leaf = dotted.split(".")
        node = cfg
        for part in parents:
            node = node.get(part, {})
        node.pop(leaf, None)
    return cfg


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        return [diff for key in dict.fromkeys([*old, *new])
                for diff in _differences(old.get(key), new.get(key), f"{prefix}{key}.")]
    return [] if old == new else [f"{prefix.rstrip('.')}: {old!r} -> {new!r}"]


def read_json(path: Path, fix: str = "delete it to recompute that cell") -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SsmarError(f"{path} is unreadable ({exc}); {fix}") from exc


def finished_result(cfg: dict[str, Any], cell: Cell) -> dict[str, Any] | None:
    """The cell's result if it already finished (with the same settings), else None.

    A run whose ``metrics.json`` has final metrics but that stopped before ``result.json``
    was written counts as finished too. A cell finished with different settings is an
    error: mixing budgets in one table would make the comparison meaningless.
    """
    work_dir = Path(cfg["work_dir"])
    result_path, metrics_path = work_dir / RESULT_FILE, work_dir / METRICS_FILE
    if result_path.is_file():
        result = read_json(result_path)
    elif metrics_path.is_file() and read_json(metrics_path).get("final"):
        saved = read_json(metrics_path)
        result = make_result(cell, saved["config"], saved["final"], float(saved.get("elapsed_s", 0.0)))
        save_json(result, result_path)
    else:
        return None
    changed = _differences(_comparable(result["config"]), _comparable(cfg))
    if changed:
        raise SsmarError(f"bench: {work_dir} was finished with other settings ({'; '.join(changed[:3])}); "
                         "use a new --work-dir for the new settings, or delete that cell to recompute it")
    return result


def make_result(cell: Cell, cfg: dict[str, Any], final: dict[str, Any], wall_seconds: float) -> dict[str, Any]:
    scalars = {k: v for k, v in final.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return {"method": cell.method, "ratio": cell.ratio, "seed": cell.seed, **scalars,
            "wall_seconds": wall_seconds, "work_dir": cfg["work_dir"], "config": cfg}


def run_cell(cfg: dict[str, Any], cell: Cell) -> dict[str, Any]:
    """Train one cell to the end (continuing an interrupted run) and write its result.json.

    The wall time adds the training time an interrupted attempt had already recorded.
    """
    work_dir = Path(cfg["work_dir"])
    metrics_path = work_dir / METRICS_FILE
    earlier = 0.0
    if (work_dir / "latest.pt").is_file() and metrics_path.is_file():
        earlier = float(read_json(metrics_path).get("elapsed_s", 0.0))
    started = time.time()
    final = run_training(copy.deepcopy(cfg), resume="auto")
    if not final:  # resumed a run that had trained to the end: its final metrics are on disk
        final = read_json(metrics_path).get("final") or {}
    if not final:
        raise SsmarError(f"{work_dir}: training ended without final metrics; delete the cell and rerun")
    result = make_result(cell, cfg, final, earlier + time.time() - started)
    save_json(result, work_dir / RESULT_FILE)
    return result


def rescore_cell(cfg: dict[str, Any], cell: Cell) -> dict[str, Any] | None:
    """Re-evaluate a finished cell's final checkpoint with the current code and rewrite its result
    (wall time kept; the first recorded metrics kept under ``rescored_from``). None if unfinished."""
    result = finished_result(cfg, cell)
    if result is None:
        return None
    metrics = rescore_run(Path(cfg["work_dir"]))
    rescored = make_result(cell, result["config"], metrics, result["wall_seconds"])
    rescored["rescored_from"] = result.get("rescored_from") or {
        key: result[key] for key in ("top1", "top5", "mean_class_acc", "f1_macro") if key in result}
    save_json(rescored, Path(cfg["work_dir"]) / RESULT_FILE)
    return rescored


def run_grid(base: dict[str, Any], cells: Sequence[Cell], root: Path, data_file: Path, jobs: int = 1,
             on_result: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Run the missing cells of the grid, ``jobs`` at a time; return every cell's result.

    ``on_result`` is called with each newly finished result (to rewrite the reports).
    Failed cells do not stop the others; they are listed in one error at the end.
    """
    if jobs < 1:
        raise SsmarError(f"bench: --jobs must be >= 1, got {jobs}")
    if not data_file.is_file():
        raise SsmarError(f"bench: data file not found: {data_file}; create one with 'ssmar data' or 'ssmar import'")
    base = copy.deepcopy(base)
    if not base["threads"]:
        base["threads"] = max(1, available_cores() // jobs)
    if jobs > 1:
        base["train"]["progress"] = False  # parallel per-run bars would overwrite each other
    configs = {cell: cell_config(base, cell, root, data_file) for cell in cells}
    results = {cell: result for cell, cfg in configs.items() if (result := finished_result(cfg, cell)) is not None}
    todo = [cell for cell in cells if cell not in results]
    failures: list[str] = []
    bar = tqdm(total=len(cells), initial=len(results), desc="bench", unit="cell", dynamic_ncols=True,
               disable=None)  # no bar when stderr is not a terminal; the per-cell lines remain
    if results:
        bar.write(f"bench: {len(results)} of {len(cells)} cells already finished in {root}; "
                  f"running the other {len(todo)}")

    def finish(cell: Cell, result: dict[str, Any] | None, error: BaseException | None) -> None:
        if error is not None:
            failures.append(f"{cell}: {error}")
            bar.write(f"FAILED {cell}: {error}")
        else:
            results[cell] = result
            bar.write(f"{cell.method:<16} ratio {cell.ratio:<5g} seed {cell.seed:<3} top1 {result['top1']:6.2f}  "
                      f"{result['wall_seconds'] / 60:6.1f} min")
            if on_result is not None:
                on_result(result)
        bar.update(1)

    try:
        if jobs == 1:
            for cell in todo:
                try:
                    finish(cell, run_cell(configs[cell], cell), None)
                except Exception as exc:  # noqa: BLE001 - one failed cell must not cost the rest of the grid
                    finish(cell, None, exc)
        else:
            context = multiprocessing.get_context("spawn")  # fresh interpreters: no forked torch thread pools
            with futures.ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
                pending = {pool.submit(run_cell, configs[cell], cell): cell for cell in todo}
                try:
                    for future in futures.as_completed(pending):
                        error = future.exception()
                        finish(pending[future], None if error else future.result(), error)
                except BaseException:
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
    finally:
        bar.close()
    if failures:
        raise SsmarError(f"bench: {len(failures)} of {len(cells)} cells failed ({'; '.join(failures[:3])}); "
                         "see each cell's log.txt, fix the cause and rerun the same command to run only those")
    return [results[cell] for cell in cells]
