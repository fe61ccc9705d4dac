"""Convert pose data from other sources into the canonical skeleton dict.

Every importer returns a dict already checked by
:func:`~ssmar.data.skeleton_format.validate_skeleton_data`, ready for
:func:`~ssmar.data.skeleton_format.save_skeleton_pickle`. Problems in the input (missing
files, malformed lines, wrong shapes) raise :class:`SsmarError` naming the file and line.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from ssmar.data.skeleton_format import UNKNOWN_LABEL, validate_skeleton_data
from ssmar.errors import SsmarError

UTD_MHAD_CLASSES = (
    "swipe left", "swipe right", "wave", "clap", "throw", "arm cross", "basketball shoot",
    "draw X", "draw circle (clockwise)", "draw circle (counter-clockwise)", "draw triangle",
    "bowling", "boxing", "baseball swing", "tennis swing", "arm curl", "tennis serve", "push",
    "knock", "catch", "pickup and throw", "jog", "walk", "sit to stand", "stand to sit", "lunge",
    "squat",
)
# Standard UTD-MHAD cross-subject protocol (Chen et al., ICIP 2015).
UTD_MHAD_TRAIN_SUBJECTS = (1, 3, 5, 7)
UTD_MHAD_TEST_SUBJECTS = (2, 4, 6, 8)
_UTD_FILE = re.compile(r"^a(\d+)_s(\d+)_t(\d+)_skeleton\.mat$")


def import_utd_mhad(directory: str | os.PathLike) -> dict[str, Any]:
    """Read the UTD-MHAD Kinect skeleton ``.mat`` files into the canonical dict.

    Clips are sorted by (action, subject, trial) so the output is identical on every
    machine; the split is the standard cross-subject one (odd subjects train).
    """
    directory = _existing_dir(directory, "UTD-MHAD skeleton directory")
    entries = []
    for path in directory.iterdir():
        match = _UTD_FILE.match(path.name)
        if match:
            entries.append((tuple(int(g) for g in match.groups()), path))
    if not entries:
        raise SsmarError(f"no UTD-MHAD files named a<action>_s<subject>_t<trial>_skeleton.mat in {directory}; "
                         "point to the folder that holds the Kinect skeleton .mat files")
    entries.sort()

    annotations = []
    split: dict[str, list[str]] = {"train": [], "test": []}
    for (action, subject, trial), path in entries:
        if not 1 <= action <= len(UTD_MHAD_CLASSES):
            raise SsmarError(f"{path}: action number {action} outside 1..{len(UTD_MHAD_CLASSES)}; "
                             "remove or rename the file")
        contents = _load_mat(path, ("d_skel",), "a UTD-MHAD skeleton file")
        skeleton = np.asarray(contents["d_skel"])
        if skeleton.ndim != 3 or skeleton.shape[:2] != (20, 3):
            raise SsmarError(f"{path}: d_skel has shape {skeleton.shape}, expected (20 joints, 3 coords, T frames)")
        keypoint = np.ascontiguousarray(skeleton.transpose(2, 0, 1)[None], dtype=np.float32)  # [1, T, 20, 3]
        name = f"a{action:02d}_s{subject}_t{trial}"
        annotations.append({
            "frame_dir": name,
            "label": action - 1,
            "keypoint": keypoint,
            "keypoint_score": np.ones(keypoint.shape[:3], dtype=np.float32),
            "total_frames": keypoint.shape[1],
            "subject": subject,
        })
        if subject in UTD_MHAD_TRAIN_SUBJECTS:
            split["train"].append(name)
        elif subject in UTD_MHAD_TEST_SUBJECTS:
            split["test"].append(name)
    data = {"split": split, "annotations": annotations, "class_names": list(UTD_MHAD_CLASSES),
            "layout": "kinect_v1_20"}
    validate_skeleton_data(data, source=str(directory))
    return data


# Penn Action (Zhang, Zhu, Derpanis, ICCV 2013): the 15 actions in the dataset README's
# (alphabetical) order; label = index. Six files spell their action differently.
PENN_ACTION_CLASSES = (
    "baseball_pitch", "baseball_swing", "bench_press", "bowling", "clean_and_jerk", "golf_swing",
    "jumping_jacks", "jump_rope", "pull_ups", "push_ups", "sit_ups", "squats", "strumming_guitar",
    "tennis_forehand", "tennis_serve",
)
PENN_ACTION_SPELLINGS = {"bowl": "bowling", "pullup": "pull_ups", "pushup": "push_ups", "situp": "sit_ups",
                         "squat": "squats", "strum_guitar": "strumming_guitar"}
PENN_ACTION_JOINTS = 13
_PENN_KEYS = ("x", "y", "visibility", "action", "train", "dimensions")


def import_penn_action(directory: str | os.PathLike) -> dict[str, Any]:
    """Read Penn Action's ``labels/NNNN.mat`` files into the canonical dict (layout ``penn_action_13``).

    One person per clip, 2-D pixel coordinates. Joints the annotators marked invisible
    (``visibility`` 0; about 22 % of all joints, their coordinates are guesses, half of them
    outside the person's box) become missing joints: zero coordinates, score 0. The split is
    the official one (``train`` 1 / -1); ``img_shape`` is ``(height, width)`` from ``dimensions``
    and ``view`` the file's ``pose`` (front, back, left, right).
    """
    directory = _existing_dir(directory, "Penn Action labels directory")
    paths = sorted(directory.glob("*.mat"))
    if not paths:
        raise SsmarError(f"no .mat files in {directory}; point to Penn Action's labels/ folder (0001.mat ... 2326.mat)")
    index = {name: label for label, name in enumerate(PENN_ACTION_CLASSES)}
    index.update({alias: index[name] for alias, name in PENN_ACTION_SPELLINGS.items()})
    annotations = []
    split: dict[str, list[str]] = {"train": [], "test": []}
    for path in paths:
        contents = _load_mat(path, _PENN_KEYS, "a Penn Action label file")
        action = _mat_string(contents["action"])
        if action not in index:
            raise SsmarError(f"{path}: unknown action '{action}'; Penn Action has {', '.join(PENN_ACTION_CLASSES)} "
                             f"(also spelled {', '.join(PENN_ACTION_SPELLINGS)}); fix or remove the file")
        x, y = (np.asarray(contents[key], dtype=np.float32) for key in ("x", "y"))
        visible = np.asarray(contents["visibility"]) > 0
        if x.ndim != 2 or x.shape[1] != PENN_ACTION_JOINTS or not x.shape[0] or not x.shape == y.shape == visible.shape:
            raise SsmarError(f"{path}: x, y and visibility have shapes {x.shape}, {y.shape}, {visible.shape}; "
                             f"expected the same (T frames, {PENN_ACTION_JOINTS} joints) for all three")
        keypoint = np.stack([x, y], axis=-1)[None]  # [1, T, 13, 2]
        keypoint[0][~visible] = 0.0
        name, train = path.stem, int(np.asarray(contents["train"]).ravel()[0])
        if train not in (1, -1):
            raise SsmarError(f"{path}: 'train' is {train}, expected 1 (train) or -1 (test)")
        height, width = (int(v) for v in np.asarray(contents["dimensions"]).ravel()[:2])
        annotation = {
            "frame_dir": name,
            "label": index[action],
            "keypoint": np.ascontiguousarray(keypoint),
            "keypoint_score": visible[None].astype(np.float32),
            "total_frames": keypoint.shape[1],
            "img_shape": (height, width),
        }
        if "pose" in contents and np.size(contents["pose"]):
            annotation["view"] = _mat_string(contents["pose"])
        annotations.append(annotation)
        split["train" if train == 1 else "test"].append(name)
    data = {"split": split, "annotations": annotations, "class_names": list(PENN_ACTION_CLASSES),
            "layout": "penn_action_13"}
    validate_skeleton_data(data, source=str(directory))
    return data


def _load_mat(path: Path, keys: tuple[str, ...], what: str) -> dict[str, Any]:
    """A MATLAB file's variables; a clear error when it is unreadable or lacks one of ``keys``."""
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    try:
        contents = loadmat(str(path))
    except (OSError, ValueError, TypeError, NotImplementedError, MatReadError) as exc:
        raise SsmarError(f"{path}: not a readable MATLAB file ({type(exc).__name__}: {exc}); "
                         "re-download or remove it") from exc
    missing = [key for key in keys if key not in contents]
    if missing:
        raise SsmarError(f"{path}: no {', '.join(repr(k) for k in missing)} in this .mat file; is it {what}?")
    return contents


def _mat_string(value: Any) -> str:
    """A MATLAB char array as loadmat returns it (``array(['text'])``) as plain text."""
    return str(np.asarray(value).ravel()[0]).strip() if np.size(value) else ""


def import_npy_folder(directory: str | os.PathLike, list_file: str | os.PathLike | None = None,
                      class_names_file: str | os.PathLike | None = None, layout: str | None = None,
                      split_files: dict[str, str | os.PathLike] | None = None) -> dict[str, Any]:
    """Build the canonical dict from per-clip ``.npy`` arrays and an MMAction2 list file.

    Each array is ``[T, V, C]`` (one person) or ``[M, T, V, C]`` with C = 2 or 3 coordinates.
    Joints that are exactly zero count as missing (score 0), as in the canonical format.
    A list line without a label (or with label -1) is a clip nobody has labelled yet; without a
    list, every ``.npy`` in ``directory`` is imported unlabelled. ``split_files`` maps a split name
    to a list file of clips (``<file>`` or ``<file> <label>`` per line); without it every clip goes
    into split ``train``.
    """
    directory = _existing_dir(directory, "clip directory")
    class_names = read_class_names(class_names_file) if class_names_file is not None else None
    if list_file is None:
        clips = [(path.stem, UNKNOWN_LABEL, 0) for path in sorted(directory.glob("*.npy"))]
        if not clips:
            raise SsmarError(f"no .npy clips in {directory}; save one array per clip there, or pass --list")
        list_file = directory
    else:
        clips = _read_list(list_file, num_classes=len(class_names) if class_names else None)

    annotations = []
    for name, label, line_no in clips:
        path = directory / f"{name}.npy"
        if not path.is_file():
            raise SsmarError(f"clip {name} listed in {list_file} line {line_no} not found in {directory} "
                             f"(looked for {path}); fix the list or add the file")
        keypoint = _load_clip(path)
        annotations.append({
            "frame_dir": name,
            "label": label,
            "keypoint": keypoint,
            "keypoint_score": (keypoint != 0).any(axis=-1).astype(np.float32),
            "total_frames": keypoint.shape[1],
        })

    labels = {name: label for name, label, _ in clips}
    if split_files:
        split = {split_name: _read_split(split_path, labels, list_file)
                 for split_name, split_path in split_files.items()}
    else:
        split = {"train": list(labels)}
    data: dict[str, Any] = {"split": split, "annotations": annotations}
    if class_names is not None:
        data["class_names"] = class_names
    if layout is not None:
        data["layout"] = layout
    validate_skeleton_data(data, source=str(list_file))
    return data


def read_class_names(path: str | os.PathLike) -> list[str]:
    """Class names from a file with one name per line, or ``id<TAB>name`` lines (MA-52 style)."""
    lines = [(no, line) for no, line in enumerate(_read_lines(path, "class-names file"), 1) if line]
    if not lines:
        raise SsmarError(f"class-names file {path} is empty; put one class name per line")
    with_ids = ["\t" in line and line.split("\t", 1)[0].strip().isdigit() for _, line in lines]
    if not any(with_ids):
        return [line for _, line in lines]
    if not all(with_ids):
        no = lines[with_ids.index(False)][0]
        raise SsmarError(f"{path} line {no}: expected 'id<TAB>name' like the other lines; "
                         "use either plain names or id<TAB>name on every line")
    by_id: dict[int, str] = {}
    for no, line in lines:
        class_id, name = line.split("\t", 1)
        if int(class_id) in by_id:
            raise SsmarError(f"{path} line {no}: class id {int(class_id)} appears twice")
        by_id[int(class_id)] = name.strip()
    if sorted(by_id) != list(range(len(by_id))):
        raise SsmarError(f"{path}: class ids must be 0..{len(by_id) - 1} without gaps, got {sorted(by_id)[:5]}...")
    return [by_id[i] for i in range(len(by_id))]


def _read_list(path: str | os.PathLike, num_classes: int | None) -> list[tuple[str, int, int]]:
    """``(clip name, label, line number)`` for each ``<file> <label>`` or bare ``<file>`` line (label -1)."""
    clips, seen = [], {}
    for no, line in enumerate(_read_lines(path, "list file"), 1):
        if not line or line.startswith("#"):
            continue
        parts = line.rsplit(None, 1)
        if len(parts) == 1:
            parts.append(str(UNKNOWN_LABEL))
        if not _is_int(parts[1]):
            raise SsmarError(f"{path} line {no}: expected '<file> <label>' with an integer label (or a bare "
                             f"'<file>' for a clip not labelled yet), got {line!r}")
        name, label = _clip_name(parts[0]), int(parts[1])
        if label < UNKNOWN_LABEL or (num_classes is not None and label >= num_classes):
            limit = f"0..{num_classes - 1}" if num_classes is not None else ">= 0"
            raise SsmarError(f"{path} line {no}: label {label} out of range (expected {limit}, or -1 for a clip "
                             "not labelled yet); fix the label or the class-names file")
        if name in seen:
            raise SsmarError(f"{path} line {no}: clip {name} already listed on line {seen[name]}")
        seen[name] = no
        clips.append((name, label, no))
    if not clips:
        raise SsmarError(f"list file {path} lists no clips; add '<file> <label>' lines")
    return clips


def _read_split(path: str | os.PathLike, labels: dict[str, int], list_file: str | os.PathLike) -> list[str]:
    """Clip names in a split file; a label, if given, must agree with the main list (or folder)."""
    members = []
    for no, line in enumerate(_read_lines(path, "split file"), 1):
        if not line or line.startswith("#"):
            continue
        parts = line.rsplit(None, 1)
        has_label = len(parts) == 2 and _is_int(parts[1])
        name = _clip_name(parts[0] if has_label else line)
        if name not in labels:
            raise SsmarError(f"{path} line {no}: clip {name} is not in {list_file}; add it there or drop it here")
        if has_label and int(parts[1]) != labels[name]:
            raise SsmarError(f"{path} line {no}: clip {name} has label {parts[1]} here but {labels[name]} "
                             f"in {list_file}; make them agree")
        members.append(name)
    return members


def _load_clip(path: Path) -> np.ndarray:
    """A clip as float32 ``[M, T, V, C]``."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise SsmarError(f"{path}: not a readable .npy array ({exc}); save clips with numpy.save "
                         "as plain numeric arrays") from exc
    if not isinstance(array, np.ndarray) or not np.issubdtype(array.dtype, np.number):
        raise SsmarError(f"{path}: holds {getattr(array, 'dtype', type(array).__name__)}, expected a numeric "
                         "array [T, V, C] or [M, T, V, C]")
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4:
        raise SsmarError(f"{path}: array has rank {array.ndim} (shape {array.shape}), expected [T, V, C] or "
                         "[M, T, V, C]")
    return np.ascontiguousarray(array, dtype=np.float32)


def _read_lines(path: str | os.PathLike, what: str) -> list[str]:
    try:
        with open(path, encoding="utf-8-sig") as handle:
            return [line.strip() for line in handle]
    except FileNotFoundError:
        raise SsmarError(f"{what} not found: {path}; check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SsmarError(f"cannot read {what} {path}: {exc}; it must be a UTF-8 text file") from exc


def _existing_dir(directory: str | os.PathLike, what: str) -> Path:
    path = Path(directory)
    if not path.is_dir():
        raise SsmarError(f"{what} not found: {path}; check the path")
    return path


def _clip_name(entry: str) -> str:
    """Clip name (the frame_dir) from a list entry: the relative path without ``.npy``."""
    entry = entry.replace("\\", "/")
    return entry[:-4] if entry.endswith(".npy") else entry


def _is_int(text: str) -> bool:
    return text.lstrip("+-").isdigit()
