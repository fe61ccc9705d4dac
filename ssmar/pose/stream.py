"""Poses as a stream: one RGB frame in, one :class:`PoseFrame` out (the timeline's input)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Iterator

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


def parallel_pose_frames(path: str, workers: int, thumbnail_every: int = 0, chunk: int = 150,
                         thumbnail_side: int = 160) -> Iterator[PoseFrame]:
    """:func:`pose_frames` of a video file with ``workers`` processes: worker ``k`` decodes the whole file
    and runs MediaPipe on chunks ``k, k + workers, ...`` of ``chunk`` frames (decoding is the cheap
    part), the chunks come back in order. Each worker's queue holds at most two chunks, so memory stays
    bounded. MediaPipe's tracking restarts at every chunk (one re-detection per ``chunk`` frames)."""
    import multiprocessing

    from ssmar.video.decode import VideoError

    context = multiprocessing.get_context("spawn")
    queues = [context.Queue(maxsize=2) for _ in range(workers)]
    processes = [context.Process(target=_pose_worker, daemon=True,
                                 args=(path, k, workers, chunk, thumbnail_every, thumbnail_side, queues[k]))
                 for k in range(workers)]
    for process in processes:
        process.start()
    try:
        for index in itertools.count():
            kind, payload = queues[index % workers].get()
            if kind == "error":
                raise VideoError(payload)
            if kind == "end":
                return
            yield from payload
    finally:
        for process in processes:
            process.terminate()
            process.join(timeout=2)


def _pose_worker(path: str, worker: int, workers: int, chunk: int, thumbnail_every: int, thumbnail_side: int,
                 out: Any) -> None:
    """One worker of :func:`parallel_pose_frames`: ``("poses", [PoseFrame...])`` per chunk of its own, then
    ``("end", None)`` once the video ends (a chunk that would start later is never sent), or ``("error", why)``."""
    from ssmar.errors import SsmarError
    from ssmar.video.decode import VideoReader

    try:
        with PoseEstimator() as estimator, VideoReader(path, keep=lambda i: (i // chunk) % workers == worker) as reader:
            batch: list[PoseFrame] = []
            current = -1
            for index, rgb in reader.indexed():
                if index // chunk != current:
                    if batch:
                        out.put(("poses", batch))
                    batch, current = [], index // chunk
                    estimator.reset()
                pose = estimator.process(rgb)
                image = thumbnail(rgb, thumbnail_side) if thumbnail_every and index % thumbnail_every == 0 else None
                batch.append(PoseFrame(pose.keypoint[None], pose.score[None], pose.detected, image))
            if batch:
                out.put(("poses", batch))
            last_chunk = (reader.decoded_frames - 1) // chunk
        # the chunk after the video's last one belongs to some worker: that worker says "end"
        if (last_chunk + 1) % workers == worker:
            out.put(("end", None))
    except SsmarError as exc:
        out.put(("error", str(exc)))
    except Exception as exc:  # a decoder or MediaPipe failure in the worker: one line for the user
        out.put(("error", f"pose worker failed ({type(exc).__name__}: {exc})"))
