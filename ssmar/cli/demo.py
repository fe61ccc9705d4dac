"""``ssmar demo``: the main job on the embedded synthetic data.

Generates the synthetic seated micro-action set, trains supervised-only, FixMatch and
APLT at one labelled ratio with the same budget (configs/synth.yaml), and prints the
comparison table and where the plots are. A rerun reuses finished runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ssmar.errors import SsmarError

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="main job: APLT vs FixMatch vs supervised on the synthetic data",
                                   description=__doc__)
    parser.add_argument("--work-dir", default="work_dirs/demo", help="output directory (default: work_dirs/demo)")
    parser.add_argument("--config", default=str(CONFIG_DIR / "synth.yaml"), help="base config (default: configs/synth.yaml)")
    parser.add_argument("--methods", default="supervised,fixmatch,aplt", help="comma-separated methods")
    parser.add_argument("--ratio", type=float, default=0.1, help="labelled ratio (default 0.1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel (default 2: one per core here)")
    parser.add_argument("--device", help="cpu, cuda or cuda:N")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    parser.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from ssmar.bench.grid import base_config, run_and_report
    from ssmar.bench.report import collect_results, summary_markdown
    from ssmar.bench.runner import plan_grid
    from ssmar.data.skeleton_format import save_skeleton_pickle
    from ssmar.data.synth import generate_synthetic

    root = Path(args.work_dir)
    data_file = root / "synth.pkl"
    if not data_file.is_file():
        print(f"demo: generating the synthetic micro-action data set -> {data_file}")
        save_skeleton_pickle(generate_synthetic(seed=0), data_file)
    base = base_config(args.config, list(args.overrides or []), args.device)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not methods:
        raise SsmarError("demo: --methods is empty; e.g. --methods supervised,fixmatch,aplt")
    cells = plan_grid(methods, [args.ratio], [args.seed])
    print(f"demo: training {', '.join(methods)} at {args.ratio:.0%} labels, {args.jobs} at a time "
          f"(logs in {root}/<method>/...)")
    run_and_report(base, cells, root, data_file, args.jobs)
    results = [r for r in collect_results(root) if r["ratio"] == args.ratio and r["seed"] == args.seed
               and r["method"] in methods]
    print(summary_markdown(results, f"ssmar demo: {args.ratio:.0%} labels, seed {args.seed}, synthetic seated "
                                    f"micro-actions ({base['data']['eval_on']} split)"))
    print(f"tables: {root / 'results.md'} (every measure), {root / 'timing.md'}")
    print("plots:")
    print(f"  {root / 'top1_vs_ratio.png'}")
    for cell in cells:
        run_dir = cell.work_dir(root)
        for name in ("confusion.png", "aplt_rounds.png"):
            if (run_dir / name).is_file():
                print(f"  {run_dir / name}")
    return 0
