"""``ssmar import`` (alias ``ssmar data import``): convert external pose data to a skeleton pickle."""

from __future__ import annotations

import argparse
from typing import Any

from ssmar.data.arrays import import_arrays, split_name_of
from ssmar.data.importers import import_npy_folder, import_penn_action, import_utd_mhad
from ssmar.data.layouts import LAYOUTS
from ssmar.data.preprocess import CHANNELS
from ssmar.data.skeleton_format import save_skeleton_pickle
from ssmar.errors import SsmarError


def register_import(data_subparsers: argparse._SubParsersAction) -> None:
    """Add ``import`` under the ``data`` command group (same sub-commands as ``ssmar import``)."""
    register(data_subparsers)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``import`` command with its ``utd-mhad``, ``penn-action``, ``npy`` and ``arrays`` sources."""
    parser = subparsers.add_parser("import", help="convert external pose data to a skeleton pickle",
                                   description="Convert external pose data to the canonical skeleton pickle.")
    sources = parser.add_subparsers(dest="source", metavar="SOURCE", required=True)

    utd = sources.add_parser("utd-mhad", help="UTD-MHAD Kinect skeleton .mat files",
                             description="Import the 861 UTD-MHAD a*_s*_t*_skeleton.mat files "
                                         "(cross-subject split: odd subjects train, even test).")
    utd.add_argument("directory", metavar="DIR", help="folder holding a<action>_s<subject>_t<trial>_skeleton.mat")
    utd.add_argument("-o", "--output", required=True, metavar="FILE.pkl", help="skeleton pickle to write")
    utd.set_defaults(func=_run_utd_mhad)

    penn = sources.add_parser("penn-action", help="Penn Action 2-D joint annotations (labels/NNNN.mat)",
                              description="Import Penn Action's 2,326 labels/NNNN.mat files: 13 hand-annotated 2-D "
                                          "joints (invisible ones become missing: zero, score 0), 15 classes, "
                                          "the official train/test split, layout penn_action_13.")
    penn.add_argument("directory", metavar="DIR", help="Penn Action's labels/ folder")
    penn.add_argument("-o", "--output", required=True, metavar="FILE.pkl", help="skeleton pickle to write")
    penn.set_defaults(func=_run_penn_action)

    npy = sources.add_parser("npy", help="per-clip .npy arrays plus an MMAction2 list file",
                             description="Import per-clip .npy arrays ([T,V,C] or [M,T,V,C]) listed in an "
                                         "MMAction2-style '<file> <label>' list; a bare '<file>' (or label -1) "
                                         "is a clip not labelled yet. Without --list: every .npy in DIR, "
                                         "none labelled.")
    npy.add_argument("directory", metavar="DIR", help="folder the list's file names are relative to")
    npy.add_argument("--list", dest="list_file", metavar="LIST",
                     help="'<file> <label>' or '<file>' (not labelled yet) per line; default: every .npy in DIR")
    npy.add_argument("--class-names", metavar="FILE", help="one class name per line, or id<TAB>name")
    npy.add_argument("--layout", metavar="NAME", help="skeleton layout name stored in the pickle")
    npy.add_argument("--split", action="append", default=[], type=_split_arg, metavar="NAME=LIST",
                     help="a split and its list of clips (repeatable); default: all clips in 'train'")
    npy.add_argument("-o", "--output", required=True, metavar="FILE.pkl", help="skeleton pickle to write")
    npy.set_defaults(func=_run_npy)

    arrays = sources.add_parser(
        "arrays", help="[N, C, T, V, M] .npy arrays plus (names, labels) pickles (CTR-GCN / MS-G3D layout)",
        description="Import one DATA.npy [N, C, T, V, M] and LABELS.pkl (names, labels) pair per split, as the "
                    "CTR-GCN / MS-G3D family writes them; zero-padded frames and absent persons are dropped.")
    arrays.add_argument("files", nargs="+", metavar="DATA.npy LABELS.pkl",
                        help="pairs of files, one pair per split (e.g. train_data.npy train_label.pkl "
                             "val_data.npy val_label.pkl)")
    arrays.add_argument("--split-names", metavar="A,B,...", help="one split name per pair (default: each data "
                        "file's name up to its first '_', e.g. train_data_joint.npy -> train)")
    arrays.add_argument("--layout", metavar="NAME",
                        help=f"skeleton layout ({', '.join(LAYOUTS)}); default: inferred from the joint count")
    arrays.add_argument("--channels", choices=CHANNELS, help="what the C axis holds (default: C=2 xy, 3 xyz, "
                        "4 xyz_score; 2-D poses with a score need xy_score)")
    arrays.add_argument("--class-names", metavar="FILE", help="one class name per line, or id<TAB>name")
    arrays.add_argument("-o", "--output", required=True, metavar="FILE.pkl", help="skeleton pickle to write")
    arrays.set_defaults(func=_run_arrays)


def _split_arg(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=LIST (e.g. train=train_list.txt), got {text!r}")
    return name, path


def _run_utd_mhad(args: argparse.Namespace) -> int:
    return _write(import_utd_mhad(args.directory), args.output)


def _run_penn_action(args: argparse.Namespace) -> int:
    return _write(import_penn_action(args.directory), args.output)


def _run_npy(args: argparse.Namespace) -> int:
    split_files: dict[str, str] = {}
    for name, path in args.split:
        if name in split_files:
            raise SsmarError(f"--split {name}= given twice; give each split once")
        split_files[name] = path
    data = import_npy_folder(args.directory, args.list_file, class_names_file=args.class_names,
                             layout=args.layout, split_files=split_files or None)
    return _write(data, args.output)


def _run_arrays(args: argparse.Namespace) -> int:
    if len(args.files) % 2:
        raise SsmarError(f"import arrays takes pairs DATA.npy LABELS.pkl, got {len(args.files)} files; "
                         "give one label file after each data file")
    data_files, label_files = args.files[::2], args.files[1::2]
    names = args.split_names.split(",") if args.split_names else [split_name_of(path) for path in data_files]
    if len(names) != len(data_files):
        raise SsmarError(f"--split-names gives {len(names)} names for {len(data_files)} pairs; give one per pair")
    data = import_arrays(list(zip(names, data_files, label_files)), layout=args.layout, channels=args.channels,
                         class_names_file=args.class_names)
    return _write(data, args.output)


def _write(data: dict[str, Any], output: str) -> int:
    save_skeleton_pickle(data, output)
    known = {ann["label"] for ann in data["annotations"] if ann["label"] >= 0}
    num_classes = len(data.get("class_names") or known)
    unlabelled = sum(ann["label"] < 0 for ann in data["annotations"])
    splits = ", ".join(f"{name}={len(members)}" for name, members in data["split"].items())
    waiting = f" ({unlabelled} not labelled yet)" if unlabelled else ""
    print(f"wrote {output}: {len(data['annotations'])} clips{waiting}, {num_classes} classes, splits {splits}")
    return 0
