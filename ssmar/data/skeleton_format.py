"""The canonical on-disk format: the PYSKL / MMAction2 skeleton pickle.

A file is a dict::

    {"split": {"train": [frame_dir, ...], "test": [...]},
     "annotations": [{"frame_dir": str, "label": int (-1 = not labelled yet), "total_frames": int,
                      "keypoint": float32 [M, T, V, C],
                      "keypoint_score": float32 [M, T, V]  (optional), ...}, ...]}

Files written by PYSKL or MMAction2 load unchanged. They are read with a restricted unpickler
(:func:`ssmar.runtime.io.load_plain_pickle`): a file that asks for any other Python global than
plain containers, scalars and NumPy arrays is refused before anything runs. ssmar adds optional top-level keys
(``class_names``, ``layout``, ``edges`` for custom layouts, ``body_map`` /
``body_names`` for body-level classes as in MA-52) and optional per-clip keys
(``subject``, ``img_shape``, ``fps``, ``video``: the source video's path, for previews). Unknown keys
are kept and ignored.

A clip whose class nobody has named yet carries ``label: -1`` (:data:`UNKNOWN_LABEL`): it can only
ever be an unlabelled clip for training, and a split that is evaluated must have every label
(:func:`require_known_labels`); ``ssmar label`` fills labels in.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from ssmar.errors import SsmarError
from ssmar.runtime.io import UnsafePickleError, load_plain_pickle, save_pickle

OPTIONAL_TOP_KEYS = ("class_names", "layout", "edges", "body_map", "body_names")
UNKNOWN_LABEL = -1


def load_skeleton_pickle(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a skeleton pickle; raise :class:`SsmarError` naming the bad clip."""
    path = Path(path)
    if not path.is_file():
        raise SsmarError(f"skeleton file not found: {path}; create it with `ssmar data synth` or `ssmar import`")
    data = read_pickle(path, "skeleton")
    validate_skeleton_data(data, source=str(path))
    return data


def read_pickle(path: Path, what: str) -> Any:
    """The one place ssmar unpickles data files (``what``: skeleton, or label for array-format label
    files), through the restricted unpickler: plain data only, nothing in the file runs."""
    try:
        return load_plain_pickle(path)
    except UnsafePickleError as exc:
        raise SsmarError(f"{path}: refused to load: the pickle asks for the Python global '{exc.refused}', "
                         f"which a {what} file never holds (plain lists, dicts, numbers, strings and NumPy arrays "
                         "only) and which could run code; re-create the file from its source (ssmar import, "
                         "ssmar extract-pose) or re-save it with plain containers") from None
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError, IndexError) as exc:
        raise SsmarError(f"{path}: not a readable {what} pickle ({type(exc).__name__}: {exc}); "
                         "the file is corrupt or truncated, re-create it") from exc


def save_skeleton_pickle(data: dict[str, Any], path: str | os.PathLike) -> None:
    """Validate, then write atomically (an existing file is replaced only on success)."""
    validate_skeleton_data(data, source=str(path))
    save_pickle(data, path)


def validate_skeleton_data(data: Any, source: str = "<data>") -> None:
    """Check structure, shapes, finiteness, labels and split membership."""
    if not isinstance(data, dict) or "annotations" not in data:
        raise SsmarError(f"{source}: expected a dict with 'annotations' (PYSKL/MMAction2 skeleton pickle), "
                         f"got {type(data).__name__}")
    annotations = data["annotations"]
    if not isinstance(annotations, list) or not annotations:
        raise SsmarError(f"{source}: 'annotations' must be a non-empty list of clips")
    class_names = data.get("class_names")
    num_classes = len(class_names) if class_names else None
    names = set()
    for index, ann in enumerate(annotations):
        _validate_clip(ann, index, source, num_classes)
        if ann["frame_dir"] in names:
            raise SsmarError(f"{source}: clip '{ann['frame_dir']}' appears twice; frame_dir must be unique")
        names.add(ann["frame_dir"])
    split = data.get("split", {})
    if not isinstance(split, dict):
        raise SsmarError(f"{source}: 'split' must map split names to lists of frame_dir")
    for split_name, members in split.items():
        missing = [m for m in members if m not in names]
        if missing:
            raise SsmarError(f"{source}: split '{split_name}' lists {len(missing)} clip(s) not in annotations, "
                             f"e.g. '{missing[0]}'; fix the split or add the clips")
    body_map = data.get("body_map")
    if body_map is not None and num_classes is not None and len(body_map) != num_classes:
        raise SsmarError(f"{source}: body_map has {len(body_map)} entries but there are {num_classes} classes")


def _validate_clip(ann: Any, index: int, source: str, num_classes: int | None) -> None:
    where = f"{source}: clip #{index}"
    if not isinstance(ann, dict) or "frame_dir" not in ann:
        raise SsmarError(f"{where}: each annotation must be a dict with 'frame_dir', 'label', 'keypoint'")
    where = f"{source}: clip '{ann['frame_dir']}'"
    for key in ("label", "keypoint"):
        if key not in ann:
            raise SsmarError(f"{where}: missing '{key}'")
    keypoint = np.asarray(ann["keypoint"])
    if keypoint.ndim != 4:
        raise SsmarError(f"{where}: keypoint must have rank 4 [M, T, V, C], got shape {keypoint.shape}")
    persons, frames, joints, channels = keypoint.shape
    if frames == 0 or persons == 0:
        raise SsmarError(f"{where}: keypoint has zero frames or persons (shape {keypoint.shape}); drop the clip")
    if channels not in (2, 3):
        raise SsmarError(f"{where}: keypoint must have 2 or 3 coordinates, got {channels}")
    if not np.isfinite(keypoint).all():
        bad = int((~np.isfinite(keypoint)).any(axis=(0, 2, 3)).sum())
        raise SsmarError(f"{where}: keypoint holds NaN or inf in {bad} frame(s); "
                         "fill missing joints with 0 and score 0 instead")
    score = ann.get("keypoint_score")
    if score is not None and np.asarray(score).shape != keypoint.shape[:3]:
        raise SsmarError(f"{where}: keypoint_score shape {np.asarray(score).shape} does not match "
                         f"keypoint [M, T, V] = {keypoint.shape[:3]}")
    label = ann["label"]
    valid = isinstance(label, (int, np.integer)) and label >= UNKNOWN_LABEL and (num_classes is None or label < num_classes)
    if not valid:
        limit = f"0..{num_classes - 1}" if num_classes is not None else ">= 0"
        raise SsmarError(f"{where}: label {label!r} out of range (expected an integer in {limit}, "
                         f"or {UNKNOWN_LABEL} for a clip not labelled yet)")


def require_known_labels(labels: np.ndarray, names: list[str], split: str, source: str) -> None:
    """Evaluation needs every label: fail on a split that holds clips not labelled yet."""
    unknown = np.flatnonzero(np.asarray(labels) < 0)
    if len(unknown):
        raise SsmarError(f"{source}: split '{split}' has {len(unknown)} clip(s) without a label (label -1), "
                         f"e.g. '{names[unknown[0]]}'; evaluation needs labels: label them with `ssmar label` "
                         "or evaluate on a labelled split")


def split_members(data: dict[str, Any], split_name: str, source: str = "<data>") -> list[int]:
    """Indices (into ``annotations``) of the clips in ``split_name``."""
    split = data.get("split") or {}
    if split_name not in split:
        known = ", ".join(sorted(split)) or "none"
        raise SsmarError(f"{source}: unknown split '{split_name}' (this file has: {known}); "
                         "use one of them (train: data.train_split / data.test_split; eval: --split)")
    index_of = {ann["frame_dir"]: i for i, ann in enumerate(data["annotations"])}
    return [index_of[name] for name in split[split_name]]
