"""``ssmar report``: one self-contained HTML page of a run or a benchmark grid."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report`` command."""
    report = subparsers.add_parser(
        "report", help="one self-contained HTML page of a run or a benchmark grid",
        description="Write DIR/report.html: result table, accuracy vs labelled ratio, confusion matrix, per-class "
                    "accuracy, pseudo-label coverage/accuracy per round and the suggested next labels with their "
                    "previews; figures are embedded, the page loads nothing from the network.")
    report.add_argument("directory", metavar="RUN_OR_BENCH_DIR", help="work dir of `ssmar train` or `ssmar bench`")
    report.add_argument("-o", "--output", metavar="HTML", help="default DIR/report.html")
    report.set_defaults(func=_run_report)


def _run_report(args: argparse.Namespace) -> int:
    from ssmar.bench.html_report import write_report

    print(f"wrote {write_report(args.directory, args.output)}")
    return 0
