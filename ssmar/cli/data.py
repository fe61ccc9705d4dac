"""``ssmar data``: create (``synth``) or convert (``import``) skeleton data files."""

from __future__ import annotations

import argparse

from ssmar.cli.data_import import register_import
from ssmar.data.skeleton_format import save_skeleton_pickle
from ssmar.data.synth import generate_synthetic


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``data`` command group; each ``register_*`` below adds one sub-command to it."""
    parser = subparsers.add_parser("data", help="create or convert skeleton data files",
                                   description="Create or convert skeleton data files (PYSKL/MMAction2 pickle).")
    commands = parser.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True)
    for register_command in (register_synth, register_import):
        register_command(commands)


def register_synth(data_subparsers: argparse._SubParsersAction) -> None:
    """Add ``data synth``: write the embedded synthetic micro-action data set."""
    parser = data_subparsers.add_parser(
        "synth", help="generate the synthetic seated micro-action data set",
        description="Generate seeded, procedural seated micro-actions (MediaPipe Pose 33 joints, MA-52 class "
                    "names) with a cross-subject train/test split. See docs/synthetic_data.md.")
    parser.add_argument("-o", "--output", required=True, metavar="FILE.pkl", help="skeleton pickle to write")
    parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same file")
    parser.add_argument("--subjects", type=int, default=42, metavar="N", help="number of subjects (default 42)")
    parser.add_argument("--test-subjects", type=int, metavar="N",
                        help="subjects held out for the test split (default: a third of --subjects)")
    parser.add_argument("--clips-per-class", type=int, default=2, metavar="N",
                        help="clips of each class per subject (default 2)")
    parser.add_argument("--fps", type=int, default=30, help="frame rate (default 30)")
    parser.set_defaults(func=_run_synth)


def _run_synth(args: argparse.Namespace) -> int:
    test_subjects = args.subjects // 3 if args.test_subjects is None else args.test_subjects
    data = generate_synthetic(num_subjects=args.subjects, clips_per_class=args.clips_per_class, seed=args.seed,
                              test_subjects=test_subjects, fps=args.fps)
    save_skeleton_pickle(data, args.output)
    split = data["split"]
    print(f"wrote {args.output}: {len(data['annotations'])} clips, {len(data['class_names'])} classes, "
          f"{args.subjects} subjects, split train={len(split['train'])} test={len(split['test'])} (seed {args.seed})")
    return 0
