"""``ssmar export``: write a skeleton pickle in another project's format."""

from __future__ import annotations

import argparse

from ssmar.data.arrays import export_arrays
from ssmar.data.preprocess import CHANNELS
from ssmar.data.skeleton_format import load_skeleton_pickle


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export`` command with its ``arrays`` target."""
    parser = subparsers.add_parser("export", help="write a skeleton pickle in another project's format",
                                   description="Write a skeleton pickle in another project's format.")
    targets = parser.add_subparsers(dest="target", metavar="TARGET", required=True)
    arrays = targets.add_parser(
        "arrays", help="<split>_data.npy [N, C, T, V, M] and <split>_label.pkl (CTR-GCN / MS-G3D layout)",
        description="Write every split as <split>_data.npy [N, C, T, V, M] (raw coordinates, zero-padded at the "
                    "end) and <split>_label.pkl (names, labels), as the CTR-GCN / MS-G3D family reads them.")
    arrays.add_argument("data", metavar="DATA.pkl", help="skeleton pickle to export")
    arrays.add_argument("-o", "--output-dir", required=True, metavar="DIR", help="folder for the array files")
    arrays.add_argument("--channels", choices=CHANNELS, help="what to write on the C axis (default: the file's "
                        "coordinates, xyz or xy)")
    arrays.add_argument("--frames", type=int, metavar="T", help="pad every clip to T frames (default: the longest "
                        "clip; CTR-GCN's NTU arrays use 300)")
    arrays.set_defaults(func=_run_arrays)


def _run_arrays(args: argparse.Namespace) -> int:
    written = export_arrays(load_skeleton_pickle(args.data), args.output_dir, channels=args.channels,
                            frames=args.frames, source=args.data)
    print(f"wrote {len(written) // 2} split(s) to {args.output_dir}: {', '.join(path.name for path in written)}")
    return 0
