"""Turn variable-length annotations into fixed-size tensors ``[C, T, V, M]``.

Normalisation keeps what micro-actions are made of: the body centre is subtracted as
one clip-level offset (not per frame), so whole-body motion such as shaking or turning
survives; scale is divided out with a clip-level body size, so subjects and camera
distances become comparable.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ssmar.data.layouts import Layout
from ssmar.errors import SsmarError

CHANNELS = ("xy", "xyz", "xy_score", "xyz_score")


def has_score(channels: str) -> bool:
    """Whether ``channels`` ends with the confidence channel."""
    return channels.endswith("_score")


def resolve_channels(channels: str | None, annotations: list[dict[str, Any]], source: str,
                     fix: str = "use data.channels=xy or xy_score") -> str:
    """The channel set for these clips: ``channels`` checked against their coordinates, or, when
    ``None``, the coordinates the clips have (``xyz`` or ``xy``, without score). ``fix`` ends the
    error for 2-D clips where 3 coordinates are needed."""
    if channels is not None and channels not in CHANNELS:
        raise SsmarError(f"unknown data.channels '{channels}'; use one of: {', '.join(CHANNELS)} "
                         "(or leave it unset for the file's coordinates)")
    if not annotations:
        return channels or "xyz"
    counts = {int(np.shape(ann["keypoint"])[-1]) for ann in annotations}
    if len(counts) > 1:
        raise SsmarError(f"{source}: clips mix 2-D and 3-D keypoints ({sorted(counts)} coordinates); "
                         "give every clip the same number of coordinates")
    coordinates = counts.pop()
    if channels is None:
        return "xyz" if coordinates == 3 else "xy"
    if channels.startswith("xyz") and coordinates < 3:
        name = annotations[0].get("frame_dir")
        raise SsmarError(f"data.channels={channels} needs 3 coordinates per joint, but {source} (e.g. clip '{name}') "
                         f"has 2; {fix}")
    return channels


def select_persons(keypoint: np.ndarray, score: np.ndarray | None, max_persons: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep the ``max_persons`` most confident (then most moving) persons; zero-pad if fewer."""
    persons, frames, joints, channels = keypoint.shape
    if score is None:
        score = np.ones(keypoint.shape[:3], dtype=np.float32)
    if persons > max_persons:
        confidence = score.mean(axis=(1, 2))
        motion = np.abs(np.diff(keypoint, axis=1)).sum(axis=(1, 2, 3)) if frames > 1 else np.zeros(persons)
        order = np.lexsort((-motion, -confidence))[:max_persons]
        keypoint, score = keypoint[order], score[order]
    elif persons < max_persons:
        pad = max_persons - persons
        keypoint = np.concatenate([keypoint, np.zeros((pad, frames, joints, channels), keypoint.dtype)])
        score = np.concatenate([score, np.zeros((pad, frames, joints), score.dtype)])
    return keypoint, score


def normalise(keypoint: np.ndarray, score: np.ndarray, layout: Layout) -> np.ndarray:
    """Centre on the first person's mean body centre (``layout.center_joints``) and divide by its mean body size.

    The body size is the mean length of ``layout.scale_pair`` and of its mirror image (through
    ``flip_pairs``; the same pair for the shoulder pairs most layouts use) over the frames that show
    it. A clip that never shows either (a crop to the upper or lower body) falls back to twice the
    root-mean-square spread of its visible joints, which keeps its coordinates near unit size too.
    """
    valid = score > 0
    main = keypoint[0]
    centre_joints = list(layout.center_joints)
    centre_ok = valid[0][:, centre_joints].all(axis=1)
    if centre_ok.any():
        centre = main[centre_ok][:, centre_joints].mean(axis=(0, 1))
    else:  # body centre never seen: fall back to the mean of all visible joints
        centre = main[valid[0]].mean(axis=0) if valid[0].any() else 0.0
    mirror = dict(layout.flip_pairs) | {b: a for a, b in layout.flip_pairs}
    lengths = []
    for a, b in {tuple(sorted(pair)) for pair in (layout.scale_pair, [mirror.get(j, j) for j in layout.scale_pair])}:
        pair_ok = valid[0, :, a] & valid[0, :, b]
        lengths.append(np.linalg.norm(main[pair_ok, a] - main[pair_ok, b], axis=-1))
    lengths = np.concatenate(lengths)
    size = lengths.mean() if lengths.size else 0.0
    if (not np.isfinite(size) or size < 1e-6) and valid[0].sum() > 1:
        seen = main[valid[0]]
        size = 2.0 * np.sqrt(((seen - seen.mean(axis=0)) ** 2).sum(axis=-1).mean())
    if not np.isfinite(size) or size < 1e-6:
        size = 1.0
    out = (keypoint - centre) / size
    out[~valid] = 0.0
    return out.astype(np.float32)


def resample(keypoint: np.ndarray, frames: int) -> np.ndarray:
    """Linear interpolation of ``[M, T, V, C]`` to ``frames`` time steps."""
    length = keypoint.shape[1]
    if length == frames:
        return keypoint
    position = np.linspace(0, length - 1, frames)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, length - 1)
    weight = (position - low)[None, :, None, None].astype(np.float32)
    return (1 - weight) * keypoint[:, low] + weight * keypoint[:, high]


def clip_to_array(annotation: dict[str, Any], layout: Layout, frames: int, max_persons: int,
                  channels: str | None = None) -> np.ndarray:
    """One annotation → float32 ``[C, T, V, M]`` ready for the backbone.

    ``channels`` (see :data:`CHANNELS`, checked by :func:`resolve_channels`) drops ``z`` for ``xy*``
    and appends the score for ``*_score``; ``None`` keeps the coordinates as they are.
    """
    keypoint = np.asarray(annotation["keypoint"], dtype=np.float32)
    score = annotation.get("keypoint_score")
    score = None if score is None else np.asarray(score, dtype=np.float32)
    keypoint, score = select_persons(keypoint, score, max_persons)
    keypoint = normalise(keypoint, score, layout)
    if channels is not None:
        keypoint = keypoint[..., :3 if channels.startswith("xyz") else 2]
        if has_score(channels):
            keypoint = np.concatenate([keypoint, np.where(score > 0, score, 0)[..., None]], axis=-1)
    keypoint = resample(keypoint, frames)
    return np.ascontiguousarray(keypoint.transpose(3, 1, 2, 0), dtype=np.float32)
