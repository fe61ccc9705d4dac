"""The array format of the CTR-GCN / MS-G3D family: one ``[N, C, T, V, M]`` array per split plus a
label file, a pickle of ``(names, labels)``; clips shorter than ``T`` are zero-padded at the end.

:func:`import_arrays` turns such pairs into the canonical skeleton dict (padding trimmed, absent
persons dropped, the split named per pair); :func:`export_arrays` writes the canonical pickle in
that form, so models of that family can train on data ssmar made. The channel axis ``C`` holds
the coordinates and, for ``*_score`` (see :data:`ssmar.data.preprocess.CHANNELS`), the
confidence last.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ssmar.data.importers import read_class_names
from ssmar.data.layouts import LAYOUTS, get_layout, layout_for_joint_count
from ssmar.data.preprocess import CHANNELS, has_score
from ssmar.data.skeleton_format import read_pickle, validate_skeleton_data
from ssmar.errors import SsmarError
from ssmar.runtime.io import save_npy, save_pickle


def coordinate_count(channels: str) -> int:
    return 3 if channels.startswith("xyz") else 2


def split_name_of(data_path: str | os.PathLike) -> str:
    """Default split name of a data file: the stem up to its first ``_`` (``train_data_joint.npy`` -> train)."""
    return Path(data_path).stem.split("_", 1)[0]


def import_arrays(pairs: Sequence[tuple[str, str | os.PathLike, str | os.PathLike]], layout: str | None = None,
                  channels: str | None = None, class_names_file: str | os.PathLike | None = None) -> dict[str, Any]:
    """``pairs`` of ``(split, DATA.npy, LABELS.pkl)`` → the canonical dict (checked, not yet written).

    ``channels`` says what the array's ``C`` axis holds; ``None`` reads C = 2 as ``xy``, 3 as ``xyz``
    and 4 as ``xyz_score`` (3-channel 2-D poses with a score need ``xy_score``). ``layout`` names the
    skeleton; ``None`` infers it from the joint count.
    """
    if channels is not None and channels not in CHANNELS:
        raise SsmarError(f"unknown --channels '{channels}'; use one of: {', '.join(CHANNELS)}")
    names = [split for split, _, _ in pairs]
    if len(set(names)) != len(names):
        raise SsmarError(f"split names {names} repeat; give each DATA.npy LABELS.pkl pair its own split "
                         "(--split-names train,val,...)")
    annotations: list[dict[str, Any]] = []
    split: dict[str, list[str]] = {}
    joints: dict[int, str] = {}  # joint count -> the first data file with it
    for split_name, data_path, label_path in pairs:
        clips = _read_split(split_name, Path(data_path), Path(label_path), layout, channels)
        joints.setdefault(clips[0]["keypoint"].shape[2], str(data_path))
        split[split_name] = [clip["frame_dir"] for clip in clips]
        annotations += clips
    if len(joints) > 1:
        raise SsmarError(f"the data files hold different joint counts ({', '.join(f'{v}: {n}' for n, v in joints.items())}); "
                         "every split needs the same layout")
    (count, first_file), = joints.items()
    if layout is None:
        inferred = layout_for_joint_count(count)
        if inferred is None:
            raise SsmarError(f"{first_file}: cannot infer the layout of {count}-joint arrays; pass --layout "
                             f"(one of {', '.join(LAYOUTS)})")
        layout = inferred.name
    data: dict[str, Any] = {"split": split, "annotations": annotations, "layout": layout}
    if class_names_file is not None:
        data["class_names"] = read_class_names(class_names_file)
    validate_skeleton_data(data, source=first_file)
    return data


def _read_split(split: str, data_path: Path, label_path: Path, layout: str | None,
                channels: str | None) -> list[dict[str, Any]]:
    array = _load_array(data_path)
    count, width, _, num_joints, _ = array.shape
    if count == 0:
        raise SsmarError(f"{data_path}: holds no clips, so split '{split}' would be empty; "
                         "pass a data file with clips or drop this pair")
    names, labels = _read_labels(label_path)
    if len(names) != count:
        raise SsmarError(f"{label_path} lists {len(names)} clip(s) but {data_path} holds {count}; "
                         "pass the label file written with this data file")
    channels = channels or {2: "xy", 3: "xyz", 4: "xyz_score"}.get(width)
    expected = None if channels is None else coordinate_count(channels) + has_score(channels)
    if width != expected:
        raise SsmarError(f"{data_path}: C={width} channels per joint, but "
                         + (f"--channels {channels} needs {expected}" if channels else "ssmar reads 2 to 4")
                         + f"; pass the --channels the arrays hold ({', '.join(CHANNELS)})")
    if layout is not None and get_layout(layout).num_joints != num_joints:
        raise SsmarError(f"{data_path}: V={num_joints} joints, but layout {layout} has "
                         f"{get_layout(layout).num_joints}; pass the right --layout, or none to infer it")
    coordinates = coordinate_count(channels)
    clips = []
    for index, (name, label) in enumerate(zip(names, labels)):
        clip = np.asarray(array[index], dtype=np.float32)  # [C, T, V, M]
        where = f"{data_path}: clip '{name}' (#{index})"
        if not np.isfinite(clip).all():
            raise SsmarError(f"{where} holds NaN or inf; write missing joints as 0 (score 0) and export again")
        frames = np.flatnonzero(clip.any(axis=(0, 2, 3)))
        if frames.size == 0:
            raise SsmarError(f"{where} has no non-zero frame; drop it from both files")
        present = clip.any(axis=(0, 1, 2))
        clip = clip[:, :frames[-1] + 1, :, present].transpose(3, 1, 2, 0)  # trailing padding, absent persons
        keypoint = np.ascontiguousarray(clip[..., :coordinates])
        score = clip[..., coordinates] if has_score(channels) else keypoint.any(axis=-1)
        clips.append({"frame_dir": name, "label": label, "keypoint": keypoint,
                      "keypoint_score": np.ascontiguousarray(score, dtype=np.float32),
                      "total_frames": keypoint.shape[1]})
    return clips


def _load_array(path: Path) -> np.ndarray:
    if not path.is_file():
        raise SsmarError(f"data file not found: {path}; check the path")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise SsmarError(f"{path}: not a readable .npy array ({exc}); it must be a numeric array saved "
                         "with numpy.save") from exc
    if not isinstance(array, np.ndarray) or not np.issubdtype(array.dtype, np.number) or array.ndim != 5:
        raise SsmarError(f"{path}: holds {getattr(array, 'dtype', type(array).__name__)} of shape "
                         f"{getattr(array, 'shape', None)}, expected a numeric array [N, C, T, V, M]")
    return array


def _read_labels(path: Path) -> tuple[list[str], list[int]]:
    if not path.is_file():
        raise SsmarError(f"label file not found: {path}; check the path")
    content = read_pickle(path, "label")
    if isinstance(content, (tuple, list)) and len(content) == 2:
        names, labels = (list(part) if isinstance(part, (list, tuple, np.ndarray)) else None for part in content)
        if (names is not None and labels is not None and len(names) == len(labels)
                and all(isinstance(n, str) for n in names)
                and all(isinstance(v, (int, np.integer)) and v >= 0 for v in labels)):
            return names, [int(v) for v in labels]
    raise SsmarError(f"{path}: expected a pickle of (names, labels), clip names and non-negative integer labels "
                     "of equal length, as CTR-GCN / MS-G3D write it")


def export_arrays(data: dict[str, Any], out_dir: str | os.PathLike, channels: str | None = None,
                  frames: int | None = None, source: str = "<data>") -> list[Path]:
    """Write ``<split>_data.npy`` ``[N, C, T, V, M]`` and ``<split>_label.pkl`` for every split of ``data``.

    ``T`` is ``frames`` or the longest clip (shorter clips are zero-padded at the end), ``M`` the most
    persons of any clip. Every array is built before the first file is written; ``source`` names ``data`` in errors.
    """
    annotations = data["annotations"]
    coordinates = {int(np.shape(ann["keypoint"])[-1]) for ann in annotations}
    if channels is None:
        channels = "xyz" if coordinates == {3} else "xy"
    elif channels not in CHANNELS:
        raise SsmarError(f"unknown --channels '{channels}'; use one of: {', '.join(CHANNELS)}")
    if coordinate_count(channels) > min(coordinates):
        raise SsmarError(f"{source}: --channels {channels} needs 3 coordinates per joint, but the clips are 2-D; "
                         "use xy or xy_score")
    longest = max(int(np.shape(ann["keypoint"])[1]) for ann in annotations)
    frames = longest if frames is None else int(frames)
    if frames < longest:
        name = next(ann["frame_dir"] for ann in annotations if np.shape(ann["keypoint"])[1] == longest)
        raise SsmarError(f"{source}: clip '{name}' has {longest} frames, more than --frames {frames}; raise --frames")
    persons = max(int(np.shape(ann["keypoint"])[0]) for ann in annotations)
    index_of = {ann["frame_dir"]: i for i, ann in enumerate(annotations)}
    outputs: list[tuple[str, np.ndarray, tuple[list[str], list[int]]]] = []
    for split, members in (data.get("split") or {}).items():
        if not members:
            raise SsmarError(f"{source}: split '{split}' is empty; remove it from the file's 'split' or add clips to it")
        clips = [annotations[index_of[name]] for name in members]
        array = np.zeros((len(clips), coordinate_count(channels) + has_score(channels), frames,
                          np.shape(clips[0]["keypoint"])[2], persons), np.float32)
        for index, ann in enumerate(clips):
            array[index, :, :ann["keypoint"].shape[1], :, :ann["keypoint"].shape[0]] = _channels_of(ann, channels)
        outputs.append((split, array, (list(members), [int(ann["label"]) for ann in clips])))
    if not outputs:
        raise SsmarError(f"{source}: the data has no splits to export; add a 'split' to the file")
    written = []
    for split, array, labels in outputs:
        data_path, label_path = Path(out_dir) / f"{split}_data.npy", Path(out_dir) / f"{split}_label.pkl"
        save_npy(array, data_path)
        save_pickle(labels, label_path)
        written += [data_path, label_path]
    return written


def _channels_of(ann: dict[str, Any], channels: str) -> np.ndarray:
    """One clip as ``[C, T, V, M]`` in ``channels``."""
    keypoint = np.asarray(ann["keypoint"], np.float32)[..., :coordinate_count(channels)]
    parts = [keypoint]
    if has_score(channels):
        score = ann.get("keypoint_score")
        score = keypoint.any(axis=-1) if score is None else np.asarray(score)
        parts.append(np.asarray(score, np.float32)[..., None])
    return np.concatenate(parts, axis=-1).transpose(3, 1, 2, 0)
