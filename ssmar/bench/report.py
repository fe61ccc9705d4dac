"""Tables and the plot of a benchmark grid, rebuilt from the cells' ``result.json`` files.

Everything is derived from the files on disk, so a partial grid gives usable (partial)
tables and ``ssmar bench-report`` reproduces exactly what ``ssmar bench`` wrote.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any, Sequence

from ssmar.algorithms import ALGORITHMS
from ssmar.bench.runner import METRICS_FILE, RESULT_FILE, UPPER_BOUND, method_name, read_json
from ssmar.config import PROVENANCE_KEY
from ssmar.engine.provenance import short_version
from ssmar.errors import SsmarError
from ssmar.runtime.io import pyplot, save_csv, save_figure, save_text

CSV_COLUMNS = ("method", "ratio", "seed", "top1", "top5", "mean_class_acc", "f1_micro", "f1_macro", "f1_mean",
               "pl_coverage", "pl_acc", "wall_seconds", "work_dir")
TABLES = (("top1", "Top-1 accuracy (%)"), ("mean_class_acc", "Mean class accuracy (%)"),
          ("f1_macro", "F1-macro (%)"), ("f1_mean", "F1-mean (%), the MA-52 challenge score"),
          ("pl_coverage", "Pseudo-label coverage in the last epoch (%): mean mask weight on unlabelled clips"),
          ("pl_acc", "Pseudo-label accuracy in the last epoch (%): mask-weighted, against the hidden labels"))
ALL_LABELS = "all labels"


def collect_results(root: Path) -> list[dict[str, Any]]:
    """Every finished cell under ``root``, ordered by method (registry order), ratio, seed."""
    results = []
    for path in root.glob(f"*/ratio*/seed*/{RESULT_FILE}"):
        results.append({**read_json(path), **last_epoch_pseudo_labels(path.parent / METRICS_FILE)})
    return sorted(results, key=lambda r: (method_rank(r["method"]), r["ratio"], r["seed"]))


def last_epoch_pseudo_labels(metrics_path: Path) -> dict[str, float]:
    """Coverage and accuracy (%) of the last epoch's pseudo-labels, which explain most SSL wins
    and losses; empty for methods without pseudo-labels or without a history file."""
    history = read_json(metrics_path).get("history", []) if metrics_path.is_file() else []
    last = next((record for record in reversed(history) if record.get("pl_coverage") is not None), {})
    return {key: 100 * float(last[key]) for key in ("pl_coverage", "pl_acc") if last.get(key) is not None}


def method_rank(method: str) -> tuple[int, str]:
    """Registry order with the upper bound last, so tables read from baseline to bound; a variant
    (``aplt@preset=paper``) right after its algorithm."""
    order = [name for name in ALGORITHMS if name != UPPER_BOUND] + [UPPER_BOUND]
    name = method_name(method)
    return (order.index(name) if name in order else len(order), method)


def format_mean_std(values: Sequence[float]) -> str:
    """``mean ± std (n)`` with the sample std over seeds; one seed has no spread, so just ``mean (1)``."""
    if not values:
        return ""
    mean = statistics.fmean(values)
    if len(values) == 1:
        return f"{mean:.2f} (1)"
    return f"{mean:.2f} ± {statistics.stdev(values):.2f} ({len(values)})"


def mean_interval(values: Sequence[float]) -> tuple[float, float]:
    """The mean of paired differences and the half-width of its Student-t 95 % interval (0 for one value)."""
    from scipy import stats

    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / len(values) ** 0.5


def format_interval(values: Sequence[float]) -> str:
    """``+mean [+low, +high]``: a paired difference and its 95 % t-interval (``+mean`` alone for one value)."""
    mean, half = mean_interval(values)
    return f"{mean:+.2f} [{mean - half:+.2f}, {mean + half:+.2f}]" if len(values) > 1 else f"{mean:+.2f}"


def _ratio_label(ratio: float) -> str:
    return f"{100 * ratio:g}%"


def _row_name(result: dict[str, Any]) -> str:
    """A table row: the method, or ``method (stream)`` for one stream's model of a late-fusion cell."""
    return f"{result['method']} ({result['stream']})" if result.get("stream") else result["method"]


def _grouped(results: Sequence[dict[str, Any]], metric: str) -> dict[str, dict[float, list[float]]]:
    """metric values per row (method) and ratio; results without the metric are skipped."""
    groups: dict[str, dict[float, list[float]]] = {}
    for r in results:
        if r.get(metric) is not None:
            groups.setdefault(_row_name(r), {}).setdefault(r["ratio"], []).append(float(r[metric]))
    return groups


def markdown_table(results: Sequence[dict[str, Any]], metric: str) -> str:
    """Rows = methods, columns = labelled ratios; the fully supervised bound has its own column."""
    groups = _grouped(results, metric)
    method_of = {_row_name(r): r["method"] for r in results}
    bounds = {row for row, method in method_of.items() if method == UPPER_BOUND}
    ratios = sorted({ratio for method, by_ratio in groups.items() if method not in bounds for ratio in by_ratio})
    columns = [_ratio_label(r) for r in ratios] + ([ALL_LABELS] if bounds & set(groups) else [])
    lines = ["| method | " + " | ".join(columns) + " |", "| --- |" + " ---: |" * len(columns)]
    for method in sorted(groups, key=lambda row: (method_rank(method_of[row]), row)):
        if method in bounds:
            cells = ["—"] * len(ratios) + [format_mean_std(groups[method][1.0])]
        else:
            cells = [format_mean_std(groups[method].get(r, [])) for r in ratios]
            cells += [""] * (len(columns) - len(ratios))
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def budget_line(results: Sequence[dict[str, Any]]) -> str:
    """The shared training budget, or a warning when cells were trained with different ones."""
    budgets = set()
    for r in results:
        cfg = r["config"]
        train, data = cfg["train"], cfg["data"]
        steps = train["steps_per_epoch"]
        if steps == "auto":  # the rule, not its result: cells on the same data get the same steps (plan_budget)
            steps = f"auto ({train['passes']:g} passes over the training clips, {train['min_steps']}-{train['max_steps']})"
        budgets.add(f"{train['epochs']} epochs × {steps} steps, batch {train['batch_size']}, "
                    f"μ = {train['uratio']}, EMA {train['ema']}, {data['frames']} frames, "
                    f"evaluated on the {data['eval_on']} split of `{Path(data['file']).name}`")
    if len(budgets) == 1:
        return f"Every run: {budgets.pop()}."
    return ("**Warning: cells were trained with different budgets or data** "
            f"({len(budgets)} variants; see each cell's result.json); the comparison is not like for like.")


def cell_code_versions(results: Sequence[dict[str, Any]]) -> dict[str, int]:
    """How many cells ran at each code version (``a1b2c3d``, ``+dirty``, or 'unrecorded' for old cells)."""
    versions: dict[str, int] = {}
    for r in results:
        version = short_version(r.get(PROVENANCE_KEY, {}).get("code"))
        versions[version] = versions.get(version, 0) + 1
    return dict(sorted(versions.items()))


def code_line(results: Sequence[dict[str, Any]]) -> str:
    """The code version of the cells, flagged when they ran at several."""
    versions = cell_code_versions(results)
    listed = ", ".join(f"`{version}` ({count} cells)" for version, count in versions.items())
    if len(versions) == 1:
        return f"Code: every cell ran at `{next(iter(versions))}`."
    return f"**Mixed code versions**: cells ran at {listed}; the comparison may mix code changes with methods."


def stream_table(results: Sequence[dict[str, Any]]) -> str:
    """Late-fusion cells: the top-1 of each stream's own model (rows: method (stream)); '' without such cells."""
    per_stream = [{**r, "stream": stream, "top1": top1}
                  for r in results for stream, top1 in (r.get("late_fusion") or {}).items()]
    return markdown_table(per_stream, "top1") if per_stream else ""


STREAM_TITLE = "Each stream's own model, top-1 (%) (the cells above are their late fusion: mean softmax)"


def results_markdown(results: Sequence[dict[str, Any]]) -> str:
    parts = ["# Benchmark results\n", budget_line(results) + "\n", code_line(results) + "\n",
             "Cells: mean ± sample std over seeds (number of seeds). The fully supervised row trains on "
             "every label and is the upper bound.\n"]
    for metric, title in TABLES:
        if any(r.get(metric) is not None for r in results):
            parts.append(f"## {title}\n\n{markdown_table(results, metric)}")
    if streams := stream_table(results):
        parts.append(f"## {STREAM_TITLE}\n\n{streams}")
    return "\n".join(parts)


SUMMARY_COLUMNS = (("top1", "top-1 (%)"), ("f1_mean", "F1-mean (%)"),
                   ("pl_coverage", "pseudo-label coverage (%)"), ("pl_acc", "pseudo-label accuracy (%)"))


def summary_markdown(results: Sequence[dict[str, Any]], title: str) -> str:
    """One table, a row per method and a titled column per measure (mean over the cells given), for a
    one-ratio comparison such as ``ssmar demo``; '—' where a method has no such measure (no pseudo-labels)."""
    by_method: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        by_method.setdefault(r["method"], []).append(r)
    columns = [(key, name) for key, name in SUMMARY_COLUMNS if any(r.get(key) is not None for r in results)]
    lines = [f"## {title}\n", "| method | " + " | ".join(name for _, name in columns) + " | wall (min) |",
             "| --- |" + " ---: |" * (len(columns) + 1)]
    for method in sorted(by_method, key=method_rank):
        cells = []
        for key, _ in columns:
            values = [float(r[key]) for r in by_method[method] if r.get(key) is not None]
            cells.append(f"{statistics.fmean(values):.2f}" if values else "—")
        minutes = statistics.fmean(float(r["wall_seconds"]) / 60 for r in by_method[method])
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {minutes:.1f} |")
    return "\n".join(lines) + "\n\n" + code_line(results) + "\n"


def timing_markdown(results: Sequence[dict[str, Any]]) -> str:
    lines = ["# Wall time per method\n", "| method | runs | mean min per run | total min |",
             "| --- | ---: | ---: | ---: |"]
    by_method: dict[str, list[float]] = {}
    for r in results:
        by_method.setdefault(r["method"], []).append(float(r["wall_seconds"]) / 60)
    for method in sorted(by_method, key=method_rank):
        minutes = by_method[method]
        lines.append(f"| {method} | {len(minutes)} | {statistics.fmean(minutes):.1f} | {sum(minutes):.1f} |")
    return "\n".join(lines) + "\n"


def write_csv(results: Sequence[dict[str, Any]], path: Path) -> None:
    save_csv(results, [c for c in CSV_COLUMNS if c != "f1_mean" or any("f1_mean" in r for r in results)], path)


def plot_top1(results: Sequence[dict[str, Any]], path: Path) -> None:
    """Top-1 against the labelled ratio, ±std error bars; the fully supervised bound as a dashed line."""
    plt = pyplot()

    groups = _grouped(results, "top1")
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    ratios: set[float] = set()
    for method in sorted(groups, key=method_rank):
        by_ratio = groups[method]
        if method == UPPER_BOUND:
            values = by_ratio[1.0]
            mean = statistics.fmean(values)
            ax.axhline(mean, color="black", linestyle="--", linewidth=1.2, label=f"{method} ({mean:.1f})")
            if len(values) > 1:
                std = statistics.stdev(values)
                ax.axhspan(mean - std, mean + std, color="black", alpha=0.08, linewidth=0)
            continue
        xs = sorted(by_ratio)
        ratios.update(xs)
        means = [statistics.fmean(by_ratio[x]) for x in xs]
        stds = [statistics.stdev(by_ratio[x]) if len(by_ratio[x]) > 1 else 0.0 for x in xs]
        ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=method)
    if ratios:
        ax.set_xticks(sorted(ratios), [_ratio_label(r) for r in sorted(ratios)])
    ax.set_xlabel("labelled ratio")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title("Top-1 vs labelled ratio (mean ± std over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, path)


def write_reports(root: Path) -> list[Path]:
    """Rebuild results.csv, results.md, timing.md and top1_vs_ratio.png from the finished cells."""
    results = collect_results(root)
    if not results:
        raise SsmarError(f"no finished benchmark cells under {root} (no */ratio*/seed*/{RESULT_FILE}); "
                         "run ssmar bench first or pass its --work-dir")
    paths = [root / name for name in ("results.csv", "results.md", "timing.md", "top1_vs_ratio.png")]
    write_csv(results, paths[0])
    save_text(results_markdown(results), paths[1])
    save_text(timing_markdown(results), paths[2])
    plot_top1(results, paths[3])
    return paths
