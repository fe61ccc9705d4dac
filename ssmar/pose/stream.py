"""Poses as a stream: one RGB frame in, one :class:`PoseFrame` out (the timeline's input)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from ssmar.pose.mediapipe_pose import PoseEstimator


@dataclass
class PoseFrame:
    """One frame of a pose stream, from video or from a skeleton file."""

    keypoint: np.ndarray  # float32 [M, V, C]
    score: np.ndarray  # float32 [M, V]
    detected: bool  # a person was found
    image: np.ndarray | None = None  # small RGB thumbnail for previews (video input only)


def pose_frames(frames: Iterator[np.ndarray], estimator: PoseEstimator, thumbnail_every: int = 0,
                thumbnail_side: int = 160) -> Iterator[PoseFrame]:
    """MediaPipe on each frame; every ``thumbnail_every``-th frame (0: none) also carries a thumbnail."""
    estimator.reset()
    for index, rgb in enumerate(frames):
        pose = estimator.process(rgb)
        image = thumbnail(rgb, thumbnail_side) if thumbnail_every and index % thumbnail_every == 0 else None
        yield PoseFrame(pose.keypoint[None], pose.score[None], pose.detected, image)


def thumbnail(rgb: np.ndarray, side: int) -> np.ndarray:
    """``rgb`` with its long side at most ``side`` pixels (every k-th pixel: cheap, enough for a preview)."""
    step = max(1, int(np.ceil(max(rgb.shape[:2]) / side)))
    return np.ascontiguousarray(rgb[::step, ::step])
