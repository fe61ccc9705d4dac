"""``ssmar bench`` (run a method × ratio × seed grid) and ``ssmar bench-report`` (rebuild its tables)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable

from ssmar.errors import SsmarError


def _parse_list(option: str, text: str, convert: Callable[[str], float | int | str], example: str) -> list:
    try:
        return [convert(item.strip()) for item in text.split(",") if item.strip()]
    except ValueError as exc:
        raise SsmarError(f"bench: {option} '{text}' is not a comma-separated list ({exc}); "
                         f"write e.g. {option} {example}") from exc


def register(subparsers: argparse._SubParsersAction) -> None:
    bench = subparsers.add_parser(
        "bench", help="run a resumable method × labelled-ratio × seed grid and tabulate it",
        description="Train every (method, ratio, seed) cell as an ordinary run in WORK_DIR/<method>/ratio<r>/seed<s>; "
                    "rerunning the same command skips finished cells and resumes interrupted ones. Trailing "
                    "key=value pairs override the config of every run, e.g. train.epochs=20.")
    bench.add_argument("--data", help="skeleton pickle (default: data.file of --config)")
    bench.add_argument("--config", "-c", help="base YAML config shared by every run")
    bench.add_argument("--methods", help="comma-separated algorithms, e.g. supervised,fixmatch,fullysupervised; a "
                                         "variant carries its own params: aplt@preset=paper+fusion=0")
    bench.add_argument("--ratios", help="comma-separated labelled ratios in (0, 1] (default: data.labelled_ratio)")
    bench.add_argument("--seeds", help="comma-separated seeds; a seed fixes the labelled split for every method "
                                       "(default: the config's seed)")
    bench.add_argument("--work-dir", default="work_dirs/bench", help="grid directory (default: work_dirs/bench)")
    bench.add_argument("--jobs", type=int, default=1, help="cells run in parallel, each in its own process; "
                                                           "threads per cell default to cores // jobs")
    bench.add_argument("--device", help="cpu, cuda or cuda:N for every run")
    bench.add_argument("--report-only", action="store_true", help="only rebuild the tables and plot from WORK_DIR")
    bench.add_argument("--rescore", action="store_true",
                       help="train nothing: re-evaluate the finished cells' final checkpoints with the current "
                            "code (e.g. after a change of inference rule) and rebuild the tables")
    bench.add_argument("--rerun-stale", action="store_true",
                       help="recompute cells that finished (or started) under other resolved settings, e.g. after "
                            "a default changed; without it such a cell stops the grid with one error line")
    bench.add_argument("--late-fusion", metavar="STREAMS",
                       help="comma-separated input streams, e.g. joint,bone,joint_motion,bone_motion: each cell trains "
                            "one model per stream (in <cell>/<stream>/) and scores their late fusion")
    bench.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    bench.set_defaults(func=cmd_bench)

    report = subparsers.add_parser("bench-report", help="rebuild results.csv/md, timing.md and the plot of a grid",
                                   description="Rebuild the tables and the plot from the finished cells of WORK_DIR.")
    report.add_argument("work_dir", metavar="WORK_DIR")
    report.set_defaults(func=cmd_bench_report)


def cmd_bench(args: argparse.Namespace) -> int:
    from ssmar.bench.grid import base_config, run_and_report
    from ssmar.bench.runner import plan_grid

    root = Path(args.work_dir)
    if args.report_only:
        return _report(root)
    if not args.methods:
        raise SsmarError("bench: --methods is required, e.g. --methods supervised,fixmatch,fullysupervised")
    base = base_config(args.config, list(args.overrides or []), args.device)
    methods = _parse_list("--methods", args.methods, str, "supervised,fixmatch")
    ratios = (_parse_list("--ratios", args.ratios, float, "0.1,0.2,0.5") if args.ratios is not None
              else [base["data"]["labelled_ratio"]])
    seeds = _parse_list("--seeds", args.seeds, int, "0,1,2") if args.seeds is not None else [base["seed"]]
    cells = plan_grid(methods, ratios, seeds)
    data = args.data or base["data"]["file"]
    if not data:
        raise SsmarError("bench: no data file; pass --data FILE or set data.file in --config")
    late_fusion = _parse_list("--late-fusion", args.late_fusion, str, "joint,bone") if args.late_fusion else []
    if args.rescore:
        if late_fusion:
            raise SsmarError("bench: --rescore re-evaluates single runs; rescore each stream's runs, then fuse with "
                             "the same command without --rescore")
        return _rescore(base, cells, root, Path(data))
    run_and_report(base, cells, root, Path(data), args.jobs, args.rerun_stale, late_fusion)
    print(f"bench: {len(cells)} cells done; tables in {root / 'results.md'}, plot in {root / 'top1_vs_ratio.png'}")
    return 0


def _rescore(base: dict[str, Any], cells: list, root: Path, data_file: Path) -> int:
    from ssmar.bench.grid import rescore_grid

    for cell, result in rescore_grid(base, cells, root, data_file):
        if result is None:
            print(f"bench: {cell} has not finished; skipped")
        else:
            print(f"bench: {cell} top1 {result['rescored_from']['top1']:.2f} -> {result['top1']:.2f}")
    return 0


def cmd_bench_report(args: argparse.Namespace) -> int:
    return _report(Path(args.work_dir))


def _report(root: Path) -> int:
    from ssmar.bench.report import write_reports

    if not root.is_dir():
        raise SsmarError(f"bench: work dir not found: {root}; pass the --work-dir the grid ran in")
    for path in write_reports(root):
        print(path)
    return 0
