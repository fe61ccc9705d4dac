"""Benchmark suites: one YAML file per published table (``benchmarks/suites/*.yaml``).

A suite names everything its table depends on: the data, the methods and their variants, the
labelled ratios, the seeds, the budget and any other setting. ``ssmar suite FILE`` runs (or
resumes) its grid like ``ssmar bench``, writes the grid's tables and plot, and the suite's own
Markdown block, which ``--update-markdown BENCHMARKS.md`` puts between the file's
``<!-- suite:NAME -->`` and ``<!-- /suite:NAME -->`` markers. The block names the code version
of its cells, so every table in BENCHMARKS.md says which commit made it and regenerates from one
command.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ssmar.bench.grid import base_config, run_and_report
from ssmar.bench.report import (STREAM_TITLE, TABLES, budget_line, code_line, collect_results, markdown_table,
                                stream_table, write_reports)
from ssmar.bench.runner import VARIANT_JOIN, VARIANT_MARK, Cell, plan_grid
from ssmar.errors import SsmarError
from ssmar.runtime.io import save_text

SYNTHETIC = "synthetic"  # data: the embedded synthetic set (ssmar.data.synth, seed 0), generated into the work dir
SUITE_KEYS = ("name", "title", "description", "data", "config", "methods", "ratios", "seeds", "budget",
              "overrides", "late_fusion", "work_dir", "jobs")
BUDGET_KEYS = ("epochs", "steps_per_epoch", "batch_size", "uratio")  # budget: train.<key>


@dataclass
class Suite:
    name: str
    title: str
    data: str  # a skeleton pickle, or 'synthetic'
    methods: list[str]  # algorithm names or variant specs (aplt@preset=paper)
    ratios: list[float]
    seeds: list[int]
    config: str | None = None
    overrides: list[str] = field(default_factory=list)
    late_fusion: list[str] = field(default_factory=list)  # input streams, one model each, scores fused per cell
    work_dir: str = ""
    jobs: int = 1
    description: str = ""
    source: str = ""  # the suite file


def load_suite(path: str | Path) -> Suite:
    """Read and check a suite file; paths in it are relative to the directory the command runs in
    (the repository root for the suites in ``benchmarks/suites``)."""
    path = Path(path)
    if not path.is_file():
        raise SsmarError(f"suite file not found: {path}; see benchmarks/suites/ for examples")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise SsmarError(f"{path}: invalid YAML ({str(exc).splitlines()[0]}); fix the syntax") from exc
    if not isinstance(raw, dict):
        raise SsmarError(f"{path}: a suite is a mapping with keys {', '.join(SUITE_KEYS)}")
    unknown = sorted(set(raw) - set(SUITE_KEYS))
    if unknown:
        raise SsmarError(f"{path}: unknown suite key(s) {unknown}; a suite takes {', '.join(SUITE_KEYS)}")
    for key in ("data", "methods", "ratios", "seeds"):
        if not raw.get(key):
            raise SsmarError(f"{path}: the suite names no {key}; every published table states its {key}")
    if not isinstance(raw.get("late_fusion") or [], list):
        raise SsmarError(f"{path}: late_fusion must be a list of input streams, e.g. [joint, bone, joint_motion, "
                         "bone_motion]")
    budget = raw.get("budget") or {}
    if not isinstance(budget, dict) or set(budget) - set(BUDGET_KEYS):
        raise SsmarError(f"{path}: budget must be a mapping of {', '.join(BUDGET_KEYS)} (each becomes train.<key>)")
    name = str(raw.get("name") or path.stem)
    if not re.fullmatch(r"[\w.-]+", name):
        raise SsmarError(f"{path}: suite name {name!r} must be letters, digits, '_', '-' or '.' (it names the markers)")
    overrides = [f"train.{key}={value}" for key, value in budget.items()] + [str(o) for o in raw.get("overrides") or []]
    return Suite(name=name, title=str(raw.get("title") or name), data=str(raw["data"]),
                 methods=[method_spec(item, path) for item in raw["methods"]],
                 ratios=[float(r) for r in raw["ratios"]], seeds=[int(s) for s in raw["seeds"]],
                 config=raw.get("config"), overrides=overrides,
                 late_fusion=[str(stream) for stream in raw.get("late_fusion") or []],
                 work_dir=str(raw.get("work_dir") or Path("work_dirs") / "suites" / name), jobs=int(raw.get("jobs", 1)),
                 description=str(raw.get("description") or "").strip(), source=str(path))


def method_spec(item: Any, source: Path) -> str:
    """A suite's method entry as a bench method spec: ``fixmatch``, or ``{name: aplt, params: {preset:
    paper}}`` -> ``aplt@preset=paper`` (values as JSON, so that mappings survive)."""
    if isinstance(item, str):
        return item
    if isinstance(item, dict) and set(item) <= {"name", "params"} and isinstance(item.get("params", {}), dict):
        params = item.get("params") or {}
        joined = VARIANT_JOIN.join(f"{key}={json.dumps(value)}" for key, value in params.items())
        return f"{item['name']}{VARIANT_MARK}{joined}" if params else str(item["name"])
    raise SsmarError(f"{source}: method entry {item!r} is neither a name nor {{name: ..., params: {{...}}}}")


def suite_cells(suite: Suite) -> list[Cell]:
    return plan_grid(suite.methods, suite.ratios, suite.seeds)


def data_file(suite: Suite) -> Path:
    """The suite's data file; the synthetic set is generated into the work dir on first use."""
    if suite.data != SYNTHETIC:
        return Path(suite.data)
    from ssmar.data.skeleton_format import save_skeleton_pickle
    from ssmar.data.synth import generate_synthetic

    path = Path(suite.work_dir) / "synth.pkl"
    if not path.is_file():
        save_skeleton_pickle(generate_synthetic(seed=0), path)
    return path


def run_suite(suite: Suite, jobs: int | None = None, rerun_stale: bool = False, device: str | None = None) -> None:
    """Run the suite's missing cells (resuming interrupted ones) and write the grid's reports."""
    base = base_config(suite.config, suite.overrides, device)
    cells = suite_cells(suite)
    run_and_report(base, cells, Path(suite.work_dir), data_file(suite), jobs or suite.jobs, rerun_stale,
                   suite.late_fusion)


def suite_results(suite: Suite) -> list[dict[str, Any]]:
    """The finished cells of the suite (a work dir may hold other cells too)."""
    wanted = {(cell.method, cell.ratio, cell.seed) for cell in suite_cells(suite)}
    return [r for r in collect_results(Path(suite.work_dir)) if (r["method"], r["ratio"], r["seed"]) in wanted]


def suite_markdown(suite: Suite) -> str:
    """The suite's block for BENCHMARKS.md, between its markers: what ran, at which code, the tables."""
    results = suite_results(suite)
    cells = suite_cells(suite)
    if not results:
        raise SsmarError(f"suite {suite.name}: no finished cells in {suite.work_dir}; run ssmar suite {suite.source}")
    lines = [f"<!-- suite:{suite.name} -->",
             f"*Generated from `{suite.source}` by `ssmar suite {suite.source} --update-markdown FILE`; "
             "edit the suite, not this block.*", "",
             f"**{suite.title}** ({len(results)} of {len(cells)} cells finished"
             + ("" if len(results) == len(cells) else ": **partial**") + ").", ""]
    if suite.description:
        lines += [suite.description, ""]
    lines += [budget_line(results), "", code_line(results), ""]
    for metric, title in TABLES:
        if any(r.get(metric) is not None for r in results):
            lines += [f"{title}:", "", markdown_table(results, metric)]
    if streams := stream_table(results):
        lines += [f"{STREAM_TITLE}:", "", streams]
    lines.append(f"<!-- /suite:{suite.name} -->")
    return "\n".join(lines) + "\n"


def write_suite_tables(suite: Suite) -> Path:
    """The grid's reports (results.md, .csv, timing, plot) and ``suite.md`` (the block) in the work dir."""
    root = Path(suite.work_dir)
    write_reports(root)
    path = root / "suite.md"
    save_text(suite_markdown(suite), path)
    return path


def update_markdown(document: str | Path, block: str, name: str) -> None:
    """Replace the text between ``<!-- suite:NAME -->`` and ``<!-- /suite:NAME -->`` in ``document``."""
    document = Path(document)
    text = document.read_text() if document.is_file() else ""
    pattern = re.compile(rf"<!-- suite:{re.escape(name)} -->.*?<!-- /suite:{re.escape(name)} -->\n?", re.DOTALL)
    if not pattern.search(text):
        raise SsmarError(f"{document} has no <!-- suite:{name} --> ... <!-- /suite:{name} --> markers; add them "
                         "where the table belongs")
    save_text(pattern.sub(lambda _: block, text, count=1), document)
