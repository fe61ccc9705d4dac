"""Entry point of the ``ssmar`` console script.

Each module in :data:`COMMAND_MODULES` exposes ``register(subparsers)``, which adds its
sub-commands and sets ``func(args) -> int`` on them. User errors (:class:`SsmarError`)
become one ``error:`` line on stderr and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from ssmar import __version__
from ssmar.errors import SsmarError

COMMAND_MODULES = (
    "ssmar.cli.train",
    "ssmar.cli.data",
    "ssmar.cli.bench",
    "ssmar.cli.suite",
    "ssmar.cli.pose",
    "ssmar.cli.data_import",
    "ssmar.cli.data_export",
    "ssmar.cli.demo",
    "ssmar.cli.predict",
    "ssmar.cli.loop",
    "ssmar.cli.report",
    "ssmar.cli.timeline",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ssmar", description="Semi-supervised micro-action recognition.")
    parser.add_argument("--version", action="version", version=f"ssmar {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # key=value overrides may come before or after options: collect the stragglers (the config
    # loader names any that is not key=value).
    if extra and hasattr(args, "overrides") and not any(e.startswith("-") for e in extra):
        args.overrides = list(args.overrides or []) + extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if getattr(args, "verbose", False):  # commands that run MediaPipe offer --verbose
        from ssmar.runtime.native_logs import show_native_logs

        show_native_logs(True)
    try:
        return int(args.func(args) or 0)
    except SsmarError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted; finished work is saved: rerun the same command (train: with --resume) "
              "to continue", file=sys.stderr)
        return 130


def run() -> None:
    """Console entry point (``ssmar`` and ``python -m ssmar.cli.main``, as under torchrun)."""
    code = main()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # After a finished distributed run, gloo's threads can abort the interpreter's teardown
        # ("terminate called without an active exception"); everything is written and the process
        # group destroyed by now, so leave without that teardown.
        sys.stdout.flush()
        sys.stderr.flush()
        logging.shutdown()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
