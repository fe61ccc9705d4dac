"""The benchmark grid: every (method, labelled ratio, seed) cell is one ordinary training run.

A cell lives in ``ROOT/<method>/ratio<r>/seed<s>/``. When it finishes, ``result.json``
(metrics, wall time, the config it ran with) is written atomically; a cell with that
file is never run again, and an interrupted cell continues from its ``latest.pt``. So
re-running the same command after a crash, a Ctrl-C or a failed cell finishes the grid
without recomputing anything. The tables and the plot are rebuilt after every cell.

With ``late_fusion`` (input streams, e.g. joint, bone, joint_motion, bone_motion) a cell is one run
per stream, each in ``<cell>/<stream>/`` and resumed or reused like a cell, and the cell's result is
their late fusion (mean softmax, as ``ssmar eval --fuse``) on the evaluation split.
"""

from __future__ import annotations

import concurrent.futures as futures
import copy
import json
import multiprocessing
import os
import shutil
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Sequence

import yaml
from tqdm import tqdm

from ssmar.algorithms import ALGORITHMS, algorithm_class
from ssmar.config import PROVENANCE_KEY
from ssmar.data.streams import check_streams
from ssmar.engine.provenance import code_version, file_digest
from ssmar.engine.resolve import has_resolved_settings, resolve_run
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


VARIANT_MARK, VARIANT_JOIN = "@", "+"  # aplt@preset=paper+fusion=0: a method with its own params


@dataclass(frozen=True)
class Cell:
    method: str  # an algorithm name, or a variant spec (name@key=value+key=value)
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
        for ratio in ([1.0] if method_name(method) == UPPER_BOUND else ratios):
            cells.extend(Cell(method, ratio, seed) for seed in seeds)
    return cells


def parse_method(spec: str) -> tuple[str, dict[str, Any]]:
    """``name`` or ``name@key=value+key=value`` -> (algorithm name, its params). Values are YAML
    (``null``, ``0.5``, ``paper``); a variant is its own row, folder and paired comparison. ``+``
    joins params because ``,`` separates the methods of ``--methods``."""
    name, mark, rest = spec.partition(VARIANT_MARK)
    params: dict[str, Any] = {}
    for item in rest.split(VARIANT_JOIN) if mark else []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise SsmarError(f"bench: method variant '{spec}' has '{item}', which is not key=value; write e.g. "
                             f"aplt{VARIANT_MARK}preset=paper{VARIANT_JOIN}fusion=0")
        params[key.strip()] = yaml.safe_load(raw) if raw.strip() else None
    if mark and not params:
        raise SsmarError(f"bench: method variant '{spec}' names no params after '{VARIANT_MARK}'; write e.g. "
                         f"aplt{VARIANT_MARK}preset=paper")
    return name.strip(), params


def method_name(spec: str) -> str:
    """The algorithm a method spec (``aplt@preset=paper``) runs."""
    return parse_method(spec)[0]


def check_method(method: str) -> None:
    """Fail now, not hours into the grid, on a method that is unknown or not installed, or a variant
    whose params the algorithm does not take."""
    name, params = parse_method(method)
    if name not in ALGORITHMS:
        raise SsmarError(f"bench: unknown method '{name}'; choose from: {', '.join(ALGORITHMS)}")
    try:
        algorithm = algorithm_class(name)
    except ImportError as exc:
        raise SsmarError(f"bench: method '{name}' is not available in this installation ({exc}); "
                         "drop it from --methods") from exc
    if params:
        algorithm.resolve_params(params)


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
    """The base config with this cell's method (and its variant's params), ratio, seed, work dir and data file."""
    cfg = copy.deepcopy(base)
    name, params = parse_method(cell.method)
    cfg["algorithm"]["name"] = name
    cfg["algorithm"]["params"] = {**(cfg["algorithm"]["params"] or {}), **params}
    cfg["data"]["labelled_ratio"] = cell.ratio
    cfg["data"]["file"] = str(data_file.resolve())
    cfg["seed"] = cell.seed
    cfg["work_dir"] = str(cell.work_dir(root))
    return cfg


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _comparable(cfg: dict[str, Any]) -> dict[str, Any]:
    """The resolved settings without the runtime keys (a copy)."""
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


def stale_settings(saved: dict[str, Any], cfg: dict[str, Any]) -> list[str]:
    """How the resolved settings a cell ran with (``saved``: its result.json or metrics.json) differ from
    what the cell's config resolves to now; empty when it may be reused. Cells from before runs recorded
    their resolved settings are resolved with this version's defaults (what they were compared by then).
    A data file under another path with the same bytes (its recorded digest, or for cells that recorded
    none the digest of the file still at the recorded path) is the same data."""
    try:
        recorded = saved["config"] if has_resolved_settings(saved) else resolve_run(saved["config"])
    except SsmarError as exc:
        return [f"its config no longer resolves ({exc})"]
    changed = _differences(_comparable(recorded), _comparable(resolve_run(cfg)))
    moved = [difference for difference in changed if difference.startswith("data.file:")]
    if not moved:  # same path: nothing to hash
        return changed
    # cells from before runs recorded their data's digest: the bytes still at the recorded path stand in
    digest = saved.get(PROVENANCE_KEY, {}).get("data_sha256") or file_digest(recorded["data"].get("file"))
    if digest is not None and digest == file_digest(cfg["data"].get("file")):  # the same data under another path
        changed = [difference for difference in changed if difference not in moved]
    return changed


def finished_result(cfg: dict[str, Any], cell: Cell, rerun_stale: bool = False) -> dict[str, Any] | None:
    """The cell's result if it already finished with the same resolved settings, else None.

    A run whose ``metrics.json`` has final metrics but that stopped before ``result.json``
    was written counts as finished too. A cell finished (or interrupted) under other resolved
    settings is never reused: one error line names what differs, unless ``rerun_stale``, which
    deletes the cell so that it is trained again.
    """
    work_dir = Path(cfg["work_dir"])
    result_path, metrics_path = work_dir / RESULT_FILE, work_dir / METRICS_FILE
    result = None
    if result_path.is_file():
        saved = result = read_json(result_path)
    elif metrics_path.is_file():
        saved = read_json(metrics_path)
        if saved.get("final"):
            result = make_result(cell, saved, saved["final"], float(saved.get("elapsed_s", 0.0)))
    else:
        return None
    changed = stale_settings(saved, cfg)
    if changed and rerun_stale:
        shutil.rmtree(work_dir)
        return None
    if changed:
        state = "finished" if result is not None else "started"
        raise SsmarError(f"bench: {work_dir} was {state} with other settings ({'; '.join(changed[:3])}); pass "
                         "--rerun-stale to recompute such cells, or use a new --work-dir for the new settings")
    if result is not None and not result_path.is_file():
        save_json(result, result_path)
    return result


def make_result(cell: Cell, saved: dict[str, Any], final: dict[str, Any], wall_seconds: float) -> dict[str, Any]:
    """A cell's result.json: its final scalars and wall time, with the resolved config and provenance
    (budget in steps, code version) of ``saved`` (the run's metrics.json, or an earlier result)."""
    scalars = {k: v for k, v in final.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    recorded = {PROVENANCE_KEY: saved[PROVENANCE_KEY]} if has_resolved_settings(saved) else {}
    return {"method": cell.method, "ratio": cell.ratio, "seed": cell.seed, **scalars,
            "wall_seconds": wall_seconds, "work_dir": saved["config"]["work_dir"], "config": saved["config"],
            **recorded}


def stream_config(cfg: dict[str, Any], stream: str) -> dict[str, Any]:
    """One stream's run of a late-fusion cell: the cell's config on that stream alone, in ``<cell>/<stream>/``."""
    sub = copy.deepcopy(cfg)
    sub["model"]["streams"] = [stream]
    sub["work_dir"] = str(Path(cfg["work_dir"]) / stream)
    return sub


def finished_fused_result(cfg: dict[str, Any], cell: Cell, streams: Sequence[str],
                          rerun_stale: bool = False) -> dict[str, Any] | None:
    """A late-fusion cell's result if it was fused from the same streams, each run under this cell's
    settings (checked as :func:`finished_result` checks a cell), else None."""
    for stream in streams:  # raises (or, with rerun_stale, deletes the run) where a stream's settings changed
        finished_result(stream_config(cfg, stream), cell, rerun_stale)
    path = Path(cfg["work_dir"]) / RESULT_FILE
    if not path.is_file():
        return None
    result = read_json(path)
    if list(result.get("late_fusion", {})) != list(streams):
        path.unlink()  # fused from other streams: fuse again from the runs at hand
        return None
    return result


def run_fused_cell(cfg: dict[str, Any], cell: Cell, streams: Sequence[str]) -> dict[str, Any]:
    """Train (or reuse) one run per stream, then score their late fusion and write the cell's result.json:
    the fused metrics, the summed wall time, each stream's own top-1 under ``late_fusion``."""
    from ssmar.engine.fusion import evaluate_fusion

    runs = [(stream_config(cfg, stream), stream) for stream in streams]
    results = [finished_result(sub, cell) or run_cell(sub, cell) for sub, _ in runs]
    report, _ = evaluate_fusion([Path(sub["work_dir"]) / "latest.pt" for sub, _ in runs], [None] * len(runs),
                                [1.0] * len(runs))
    result = make_result(cell, read_json(Path(runs[0][0]["work_dir"]) / METRICS_FILE), report["fused"],
                         sum(r["wall_seconds"] for r in results))
    result["work_dir"] = cfg["work_dir"]
    result["late_fusion"] = {stream: r["top1"] for (_, stream), r in zip(runs, results)}
    save_json(result, Path(cfg["work_dir"]) / RESULT_FILE)
    return result


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
    if not final:
        raise SsmarError(f"{work_dir}: training ended without final metrics; delete the cell and rerun")
    result = make_result(cell, read_json(metrics_path), final, earlier + time.time() - started)
    save_json(result, work_dir / RESULT_FILE)
    return result


def rescore_cell(cfg: dict[str, Any], cell: Cell) -> dict[str, Any] | None:
    """Re-evaluate a finished cell's final checkpoint with the current code and rewrite its result
    (wall time kept; the first recorded metrics kept under ``rescored_from``). None if unfinished."""
    result = finished_result(cfg, cell)
    if result is None:
        return None
    metrics = rescore_run(Path(cfg["work_dir"]))
    rescored = make_result(cell, result, metrics, result["wall_seconds"])
    rescored["rescored_with"] = code_version()
    rescored["rescored_from"] = result.get("rescored_from") or {
        key: result[key] for key in ("top1", "top5", "mean_class_acc", "f1_macro") if key in result}
    save_json(rescored, Path(cfg["work_dir"]) / RESULT_FILE)
    return rescored


def run_grid(base: dict[str, Any], cells: Sequence[Cell], root: Path, data_file: Path, jobs: int = 1,
             on_result: Callable[[dict[str, Any]], None] | None = None,
             rerun_stale: bool = False, late_fusion: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Run the missing cells of the grid, ``jobs`` at a time; return every cell's result.

    ``on_result`` is called with each newly finished result (to rewrite the reports); ``rerun_stale``
    recomputes cells that ran under other resolved settings instead of stopping at the first;
    ``late_fusion`` makes every cell the late fusion of one run per stream (the module's docstring).
    Failed cells do not stop the others; they are listed in one error at the end.
    """
    if late_fusion:
        check_streams(late_fusion, option="bench: late fusion", at_least=2,
                      example="--late-fusion joint,bone,joint_motion,bone_motion")
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
    for cfg in configs.values():  # every cell's settings checked before the first one trains
        for checked in [stream_config(cfg, stream) for stream in late_fusion] or [cfg]:
            resolve_run(checked)
    if late_fusion:
        finished = partial(finished_fused_result, streams=late_fusion, rerun_stale=rerun_stale)
        run: Callable[[dict[str, Any], Cell], dict[str, Any]] = partial(run_fused_cell, streams=late_fusion)
    else:
        finished, run = partial(finished_result, rerun_stale=rerun_stale), run_cell
    results = {cell: result for cell, cfg in configs.items() if (result := finished(cfg, cell)) is not None}
    todo = [cell for cell in cells if cell not in results]
    failures: list[str] = []
    bar = tqdm(total=len(cells), initial=len(results), desc="bench", unit="cell", dynamic_ncols=True,
               disable=None)  # no bar when stderr is not a terminal; the per-cell lines remain
    if results:
        bar.write(f"bench: {len(results)} of {len(cells)} cells already finished in {root}; "
                  f"running the other {len(todo)}")
    unrecorded = sum(not has_resolved_settings(result) for result in results.values())
    if unrecorded:
        bar.write(f"warning: {unrecorded} finished cell(s) predate recorded settings: compared under this "
                  "version's defaults, their code version reads 'unrecorded' in the tables")

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
                    finish(cell, run(configs[cell], cell), None)
                except Exception as exc:  # noqa: BLE001 - one failed cell must not cost the rest of the grid
                    finish(cell, None, exc)
        else:
            context = multiprocessing.get_context("spawn")  # fresh interpreters: no forked torch thread pools
            with futures.ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
                pending = {pool.submit(run, configs[cell], cell): cell for cell in todo}
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
