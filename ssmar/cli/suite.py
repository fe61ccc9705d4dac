"""``ssmar suite``: run or resume a benchmark suite and write its tables (docs/benchmarking.md)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    suite = subparsers.add_parser(
        "suite", help="run or resume a benchmark suite (benchmarks/suites/*.yaml) and write its tables",
        description="Run the suite's missing cells (finished ones are reused, interrupted ones resumed), write the "
                    "grid's tables and plot and WORK_DIR/suite.md; with --update-markdown, also replace the "
                    "suite's block between <!-- suite:NAME --> and <!-- /suite:NAME --> in that file.")
    suite.add_argument("file", metavar="SUITE.yaml")
    suite.add_argument("--jobs", type=int, help="cells run in parallel (default: the suite's jobs)")
    suite.add_argument("--device", help="cpu, cuda or cuda:N for every run")
    suite.add_argument("--rerun-stale", action="store_true",
                       help="recompute cells that ran under other resolved settings")
    suite.add_argument("--tables-only", action="store_true", help="train nothing: write the tables of the finished cells")
    suite.add_argument("--update-markdown", metavar="FILE", help="replace the suite's block in FILE (e.g. BENCHMARKS.md)")
    suite.set_defaults(func=cmd_suite)


def cmd_suite(args: argparse.Namespace) -> int:
    from ssmar.bench.suite import load_suite, run_suite, suite_markdown, update_markdown, write_suite_tables

    suite = load_suite(args.file)
    if not args.tables_only:
        run_suite(suite, args.jobs, args.rerun_stale, args.device)
    path = write_suite_tables(suite)
    print(f"suite {suite.name}: tables in {suite.work_dir}/results.md, block in {path}")
    if args.update_markdown:
        update_markdown(args.update_markdown, suite_markdown(suite), suite.name)
        print(f"suite {suite.name}: block updated in {args.update_markdown}")
    return 0
