"""``ssmar report``: one self-contained HTML page of what a run (or a benchmark grid) learned.

Everything a user looks at after training, in one file that opens anywhere (figures are embedded
as data URIs; the page loads nothing from the network): the result table, accuracy against the
labelled ratio, the confusion matrix, per-class accuracy, pseudo-label coverage and accuracy per
round (or per epoch), and the clips ``ssmar suggest`` proposed to label next, with their previews.
Pseudo-label accuracy can only be measured on clips whose labels are known: where none are, the
page says n/a rather than print a figure.
"""

from __future__ import annotations

import base64
import html
import json
import math
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

from ssmar.aplt.rounds import ROUNDS_PLOT, read_rounds
from ssmar.bench.report import TABLES, budget_line, code_line, collect_results, markdown_table, plot_top1
from ssmar.bench.runner import RESULT_FILE, read_json
from ssmar.config import PROVENANCE_KEY
from ssmar.engine.provenance import short_version
from ssmar.engine.suggest import SUGGESTIONS_FILE, suggestion_rows
from ssmar.errors import SsmarError
from ssmar.runtime.io import pyplot, save_figure, save_text

REPORT_FILE = "report.html"
FINAL_COLUMNS = (("top1", "top-1 (%)"), ("top5", "top-5 (%)"), ("mean_class_acc", "mean class acc. (%)"),
                 ("f1_macro", "F1-macro (%)"), ("f1_mean", "F1-mean (%)"))
STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:70em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}img{max-width:100%}
.na{color:#999}details{margin:.5em 0}summary{cursor:pointer;font-weight:600}"""


def write_report(directory: str | Path, output: str | Path | None = None) -> Path:
    """Write the page for a run dir (``metrics.json``) or a benchmark dir (``*/ratio*/seed*/result.json``)."""
    directory = Path(directory)
    output = Path(output) if output is not None else directory / REPORT_FILE
    if (directory / "metrics.json").is_file():
        title, body = run_title(read_json(directory / "metrics.json", fix="rerun the command that wrote it")), \
            run_sections(directory)
    elif list(directory.glob(f"*/ratio*/seed*/{RESULT_FILE}")):
        title, body = f"ssmar benchmark {directory.name}", bench_sections(directory)
    else:
        raise SsmarError(f"{directory}: neither a finished run (no metrics.json) nor a benchmark grid (no "
                         f"*/ratio*/seed*/{RESULT_FILE}); pass the --work-dir of `ssmar train` or `ssmar bench`")
    page = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{_e(title)}</title>"
            f"<style>{STYLE}</style></head>\n<body><h1>{_e(title)}</h1>\n{body}\n</body></html>\n")
    save_text(page, output)
    return output


def run_title(metrics: dict[str, Any]) -> str:
    """What a run is: method, data, labelled share, seed and code version (from its metrics.json)."""
    config, info = metrics.get("config", {}), metrics.get("data", {})
    data = Path(str(config.get("data", {}).get("file") or config.get("data", {}).get("train_list") or "?")).name
    labelled, unlabelled = info.get("labelled"), info.get("unlabelled")
    share = (f"{100 * labelled / max(labelled + unlabelled, 1):.1f} % labelled"
             if labelled is not None and unlabelled is not None else "labelled share unknown")
    code = short_version(metrics.get(PROVENANCE_KEY, {}).get("code"))
    return (f"ssmar run: {config.get('algorithm', {}).get('name', '?')} on {data}, {share}, "
            f"seed {config.get('seed', '?')}, code {code}")


def run_sections(run_dir: Path) -> str:
    """The sections of one run's page."""
    metrics = read_json(run_dir / "metrics.json", fix="rerun the command that wrote it")
    config, final, info = metrics.get("config", {}), metrics.get("final", {}), metrics.get("data", {})
    parts = ["<h2>Result</h2>", _run_table(config, final, info)]
    parts.append("<h2>Settings</h2>")
    parts.append(_settings_section(metrics))

    parts.append("<h2>Top-1 over training</h2>")
    labelled, unlabelled = info.get("labelled"), info.get("unlabelled")
    if labelled is not None and unlabelled is not None:
        parts.append(f"<p>{labelled} labelled of {labelled + unlabelled} training clips "
                     f"({100 * labelled / max(labelled + unlabelled, 1):.1f} %); accuracy against the labelled "
                     "ratio comes from <code>ssmar bench --ratios ...</code> and <code>ssmar report</code> on its "
                     "work dir.</p>")
    history = [r for r in metrics.get("history", []) if r.get("eval_top1") is not None]
    if history:
        parts.append(_figure(lambda path: _plot_curve([r["epoch"] for r in history],
                                                      {"top-1": [r["eval_top1"] for r in history]},
                                                      "epoch", "top-1 (%)", path,
                                                      title="Top-1 of the EMA model per evaluated epoch"),
                             "top-1 per evaluated epoch"))

    parts.append("<h2>Confusion matrix</h2>")
    confusion = run_dir / "confusion.png"
    parts.append(_image(confusion.read_bytes(), "confusion matrix") if confusion.is_file()
                 else "<p class=\"na\">n/a (no confusion.png: the run has not finished)</p>")

    parts.append("<h2>Per-class accuracy</h2>")
    per_class = final.get("per_class_acc") or {}
    if per_class:
        parts.append(_figure(lambda path: _plot_per_class(per_class, path), "per-class accuracy"))
    else:
        parts.append("<p class=\"na\">n/a (no final metrics yet)</p>")

    parts.append("<h2>Pseudo-labels</h2>")
    parts.append(_pseudo_label_section(run_dir, metrics.get("history", [])))

    parts.append("<h2>Suggested next labels</h2>")
    parts.append(_suggestions_section(run_dir))
    return "\n".join(parts)


def bench_sections(root: Path) -> str:
    """A benchmark grid: its tables, the accuracy-vs-ratio figure, then each cell's run page folded."""
    results = collect_results(root)
    parts = ["<h2>Result tables</h2>", f"<p>{_e(budget_line(results))}</p>", f"<p>{_e(code_line(results))}</p>"]
    for metric, title in TABLES:
        if any(r.get(metric) is not None for r in results):
            parts.append(f"<h3>{_e(title)}</h3>" + _markdown_table_html(markdown_table(results, metric)))
    parts.append("<h2>Accuracy vs labelled ratio</h2>")
    parts.append(_figure(lambda path: plot_top1(results, path), "top-1 vs labelled ratio"))
    parts.append("<h2>Runs</h2>")
    for result in results:
        cell = Path(result["work_dir"])
        cell = cell if cell.is_dir() else root / result["method"] / f"ratio{result['ratio']}" / f"seed{result['seed']}"
        label = f"{result['method']}, ratio {result['ratio']:g}, seed {result['seed']}: top-1 {result['top1']:.2f} %"
        body = run_sections(cell) if (cell / "metrics.json").is_file() else "<p class=\"na\">no metrics.json</p>"
        parts.append(f"<details><summary>{_e(label)}</summary>\n{body}\n</details>")
    return "\n".join(parts)


def _settings_section(metrics: dict[str, Any]) -> str:
    """The resolved settings the run recorded (algorithm params, budget, code), or why there are none."""
    provenance = metrics.get(PROVENANCE_KEY)
    if not provenance:
        return "<p class=\"na\">n/a: this run predates recorded settings (its params were completed with the defaults of its day)</p>"
    config = metrics.get("config", {})
    code = provenance.get("code", {})
    rows = [["algorithm", config.get("algorithm", {}).get("name")],
            *[[f"algorithm.params.{key}", json.dumps(value)]
              for key, value in (config.get("algorithm", {}).get("params") or {}).items()],
            ["model", json.dumps(config.get("model", {}))],
            ["budget", f"{provenance.get('total_steps')} steps"],
            ["code", f"ssmar {code.get('version')}, commit {code.get('commit') or 'unrecorded'}"
                     + (" (uncommitted changes)" if code.get("dirty") else "")]]
    return _table(["setting", "value"], rows)


def _run_table(config: dict[str, Any], final: dict[str, Any], info: dict[str, Any]) -> str:
    algorithm = config.get("algorithm", {}).get("name", "?")
    data = Path(str(config.get("data", {}).get("file") or "?")).name
    header = ["method", "data", "labelled", "unlabelled"] + [name for key, name in FINAL_COLUMNS if key in final]
    row = [algorithm, data, info.get("labelled"), info.get("unlabelled")] + \
        [final[key] for key, _ in FINAL_COLUMNS if key in final]
    return _table(header, [row])


def _pseudo_label_section(run_dir: Path, history: list[dict[str, Any]]) -> str:
    """APLT: per offline round; other SSL methods: per epoch. Accuracy only where labels are known."""
    rounds = read_rounds(run_dir)
    if rounds:
        rows = [[r["round"], r["epoch"], _pct(r.get("coverage")), _pct(r.get("accuracy")),
                 _pct(r.get("classifier_accuracy_at_equal_coverage")), _pct(r.get("known_labels", 1.0))]
                for r in rounds]
        table = _table(["round", "epoch", "coverage (%)", "accuracy (%)", "classifier at equal coverage (%)",
                        "clips with known labels (%)"], rows)
        figure = run_dir / ROUNDS_PLOT
        return table + (_image(figure.read_bytes(), "APLT rounds") if figure.is_file() else "")
    epochs = [r for r in history if r.get("pl_coverage") is not None]
    if not epochs:
        return "<p class=\"na\">n/a: this method makes no pseudo-labels</p>"
    rows = [[r["epoch"], _pct(r["pl_coverage"]), _pct(r.get("pl_acc")), _pct(r.get("pl_known_labels", 1.0))]
            for r in epochs]
    return _table(["epoch", "coverage (%)", "accuracy (%)", "clips with known labels (%)"], rows)


def _suggestions_section(run_dir: Path) -> str:
    path = run_dir / SUGGESTIONS_FILE
    if not path.is_file():
        return (f"<p class=\"na\">none yet: <code>ssmar suggest {_e(str(run_dir))} --strategy typiclust</code> "
                "ranks the unlabelled clips</p>")
    rows = suggestion_rows(path)
    header = ["rank", "clip", "strategy", "predicted", "confidence", "margin", "distance to labelled", "preview"]
    cells = []
    for row in rows:
        preview = run_dir / row["preview"] if row.get("preview") else None
        image = _image(preview.read_bytes(), row["clip"], width=360) if preview and preview.is_file() else \
            "<span class=\"na\">no video</span>"
        cells.append([row["rank"], row["clip"], row["strategy"], row["predicted_class"], row["confidence"],
                      row["margin"], row["distance_to_labelled"], _Raw(image)])
    return _table(header, cells)


class _Raw(str):
    """Table cell HTML that must not be escaped (an embedded image)."""


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{_e(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _cell(value: Any) -> str:
    if isinstance(value, _Raw):
        return str(value)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "<span class=\"na\">n/a</span>"
    if isinstance(value, float):
        return f"{value:.2f}"
    return _e(str(value))


def _pct(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else 100 * value


def _markdown_table_html(markdown: str) -> str:
    lines = [line.strip().strip("|").split("|") for line in markdown.strip().splitlines()]
    return _table([c.strip() for c in lines[0]], [[c.strip() for c in line] for line in lines[2:]])


def _figure(draw: Callable[[Path], None], alt: str) -> str:
    """Run ``draw(path)`` (an existing plot function that writes a PNG) and embed what it drew."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "figure.png"
        draw(path)
        return _image(path.read_bytes(), alt)


def _image(png: bytes, alt: str, width: int | None = None) -> str:
    size = f" width=\"{width}\"" if width else ""
    return f"<img alt=\"{_e(alt)}\"{size} src=\"data:image/png;base64,{base64.b64encode(png).decode()}\">"


def _plot_curve(xs: Sequence[float], series: dict[str, Sequence[float]], xlabel: str, ylabel: str, path: Path,
                title: str = "") -> None:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6, 3.2))
    for name, ys in series.items():
        ax.plot(xs, ys, "o-", label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, path)


def _plot_per_class(per_class: dict[str, float | None], path: Path) -> None:
    plt = pyplot()

    names = list(per_class)
    values = [float("nan") if per_class[n] is None else per_class[n] for n in names]
    fig, ax = plt.subplots(figsize=(7, 0.25 * len(names) + 1))
    ax.barh(range(len(names)), values, color="tab:blue")
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("accuracy (%) on the evaluation split")
    ax.set_title("Per-class top-1 of the final model", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    save_figure(fig, path)


def _e(text: str) -> str:
    return html.escape(text, quote=True)
