"""MA-52 (Micro-Action-52) file formats: list files, class names, body levels, submission.

MA-52 ships MMAction2 video lists (``<clip>.mp4 <action_id>`` per line), a
``label_name.txt`` (``id<TAB>name``) and defines seven body-level classes as ranges of
action ids. The MAC challenge scores a CSV of top-5 action and body predictions.
Readers fail with the file and line number, because these files are hand-edited.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ssmar.data.skeleton_format import UNKNOWN_LABEL, load_skeleton_pickle
from ssmar.errors import SsmarError
from ssmar.runtime.io import atomic_open

MA52_NUM_CLASSES = 52

#: (body-level name, first action id, last action id), inclusive, in body-class order.
MA52_BODY_RANGES: tuple[tuple[str, int, int], ...] = (
    ("body", 0, 4),
    ("head", 5, 10),
    ("upper limb", 11, 23),
    ("lower limb", 24, 31),
    ("body-hand", 32, 37),
    ("head-hand", 38, 47),
    ("leg-hand", 48, 51),
)

SUBMISSION_HEADER = (["vid"] + [f"action_pred_{k}" for k in range(1, 6)]
                     + [f"body_pred_{k}" for k in range(1, 6)])


def read_list_file(path: str | os.PathLike, allow_unlabelled: bool = False) -> list[tuple[str, int]]:
    """Read an MMAction2 video list (``<clip> <label>`` per line; blank lines skipped).

    The clip may contain spaces (the label is the last field). Duplicate clips are an
    error because they would become duplicate ``frame_dir`` entries. With ``allow_unlabelled``
    (pose extraction of clips nobody has labelled yet) a line may be a bare ``<clip>`` without
    spaces, or carry label -1: both give label -1.
    """
    path = Path(path)
    lines = _read_lines(path, "list file")
    entries: list[tuple[str, int]] = []
    first_line: dict[str, int] = {}
    for number, line in lines:
        parts = line.rsplit(None, 1)
        if len(parts) == 1 and allow_unlabelled:
            parts.append(str(UNKNOWN_LABEL))
        if len(parts) != 2:
            raise SsmarError(f"{path}:{number}: expected '<clip> <label>', got {line!r}; "
                             "write one video and its integer class id per line")
        clip, label_text = parts
        label = _parse_int(label_text, path, number, "label")
        if label < 0 and not (allow_unlabelled and label == UNKNOWN_LABEL):
            raise SsmarError(f"{path}:{number}: label {label} is negative; class ids start at 0")
        if clip in first_line:
            raise SsmarError(f"{path}:{number}: clip '{clip}' already listed on line {first_line[clip]}; "
                             "remove the duplicate")
        first_line[clip] = number
        entries.append((clip, label))
    if not entries:
        raise SsmarError(f"{path}: list file has no entries; expected '<clip> <label>' lines")
    return entries


def read_label_names(path: str | os.PathLike) -> list[str]:
    """Read ``id<TAB>name`` lines; ids must be exactly 0..N-1 (any order)."""
    path = Path(path)
    names: dict[int, str] = {}
    for number, line in _read_lines(path, "label-name file"):
        parts = line.split("\t", 1) if "\t" in line else line.split(None, 1)
        if len(parts) != 2 or not parts[1].strip():
            raise SsmarError(f"{path}:{number}: expected 'id<TAB>name', got {line!r}")
        class_id = _parse_int(parts[0].strip(), path, number, "class id")
        if class_id in names:
            raise SsmarError(f"{path}:{number}: class id {class_id} defined twice; each id needs one name")
        names[class_id] = parts[1].strip()
    if not names:
        raise SsmarError(f"{path}: label-name file is empty; expected 'id<TAB>name' lines")
    missing = sorted(set(range(len(names))) - set(names))
    if missing:
        raise SsmarError(f"{path}: class ids must be 0..{len(names) - 1} without gaps; "
                         f"missing {missing[:5]}, found max id {max(names)}")
    return [names[i] for i in range(len(names))]


def ma52_body_map() -> tuple[list[int], list[str]]:
    """``body_map[action_id]`` = body-level class (len 52) and the 7 body-level names."""
    body_map = [-1] * MA52_NUM_CLASSES
    for body_id, (_, first, last) in enumerate(MA52_BODY_RANGES):
        for action_id in range(first, last + 1):
            body_map[action_id] = body_id
    return body_map, [name for name, _, _ in MA52_BODY_RANGES]


def write_submission(path: str | os.PathLike, video_ids: Sequence[str],
                     action_top5: Any, body_top5: Any) -> None:
    """Write the MAC challenge ``prediction.csv`` (header, then one row per clip), atomically.

    ``video_ids`` are written verbatim: pass the names of the test list
    (``test0000.mp4``). ``action_top5`` / ``body_top5`` are [N, 5] integer class ids,
    best first; they are checked so that a malformed file is never submitted.
    """
    actions = _check_top5(action_top5, len(video_ids), MA52_NUM_CLASSES, "action_top5")
    bodies = _check_top5(body_top5, len(video_ids), len(MA52_BODY_RANGES), "body_top5")
    if len(set(video_ids)) != len(video_ids):
        raise SsmarError("write_submission: video_ids contain duplicates; each test clip needs exactly one row")
    with atomic_open(path, "w") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(SUBMISSION_HEADER)
        for vid, action_row, body_row in zip(video_ids, actions, bodies):
            writer.writerow([vid, *action_row, *body_row])


def load_ma52_pose_pickle(path: str | os.PathLike,
                          label_names: str | os.PathLike | None = None) -> dict[str, Any]:
    """Load an MA-52 pose pickle (MMAction2 format) and add MA-52 class metadata.

    Published pickles carry only ``split`` and ``annotations``; ``class_names`` (from
    ``label_names``, if given) and ``body_map`` / ``body_names`` are filled in when
    absent so body-level metrics work. The keypoint layout is left as the file has it.
    """
    data = load_skeleton_pickle(path)
    if label_names is not None and not data.get("class_names"):
        names = read_label_names(label_names)
        if len(names) != MA52_NUM_CLASSES:
            raise SsmarError(f"{label_names}: has {len(names)} classes, MA-52 has {MA52_NUM_CLASSES}; "
                             "pass the MA-52 label_name.txt")
        data["class_names"] = names
    if "body_map" not in data:
        data["body_map"], data["body_names"] = ma52_body_map()
    return data


def _read_lines(path: Path, what: str) -> list[tuple[int, str]]:
    """Non-blank stripped lines with 1-based numbers (handles BOM and CRLF)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SsmarError(f"{what} not found: {path}; check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SsmarError(f"cannot read {what} {path}: {exc}; it must be a UTF-8 text file") from exc
    return [(number, line.strip()) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]


def _parse_int(text: str, path: Path, number: int, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise SsmarError(f"{path}:{number}: {what} {text!r} is not an integer") from None


def _check_top5(values: Any, rows: int, num_classes: int, name: str) -> list[list[int]]:
    array = np.asarray(values)
    if array.shape != (rows, 5) or not np.issubdtype(array.dtype, np.integer):
        raise SsmarError(f"write_submission: {name} must be an integer array of shape ({rows}, 5), "
                         f"got {array.dtype} {array.shape}")
    if rows and (array.min() < 0 or array.max() >= num_classes):
        raise SsmarError(f"write_submission: {name} holds ids outside 0..{num_classes - 1}")
    return array.tolist()
