"""Video decoding for the RGB path and pose extraction: PyAV first, OpenCV as fallback.

Frames come out as RGB ``uint8`` arrays, optionally downscaled inside the decoder
(swscale) so the long side is at most ``max_side`` pixels, which helps with 4K input.
Every way a file can be unusable (missing, empty, not a video, truncated, corrupt)
raises :class:`VideoError` with a one-line reason, so a batch can record it and go on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterator

import numpy as np

from ssmar.errors import SsmarError

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")


def frame_dir_of(clip: str) -> str:
    """MMAction2 convention: a clip's name is its relative path without the video extension."""
    path = PurePosixPath(clip)
    return str(path.with_suffix("")) if path.suffix.lower() in VIDEO_EXTENSIONS else clip

#: A decode that ends this many frames (or 2 %) short of the container's frame count is
#: treated as truncated; containers often over-count by a frame.
_TRUNCATION_SLACK = 1


class VideoError(SsmarError):
    """One video cannot be used; the message is the reason shown in failure reports."""


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about the video stream (before any downscaling)."""

    width: int
    height: int
    fps: float  # 0.0 when the container does not say
    declared_frames: int  # 0 when the container does not say
    backend: str


class VideoReader:
    """Iterate the RGB frames of one video (every ``stride``-th, at most ``max_frames``).

    After a full iteration the reader checks that it decoded as many frames as the
    container declares; a shortfall means a truncated file and raises :class:`VideoError`.
    ``backend`` is ``"auto"`` (PyAV, else OpenCV), ``"pyav"`` or ``"opencv"``.
    """

    def __init__(self, path: str | os.PathLike, *, max_side: int | None = None, stride: int = 1,
                 max_frames: int | None = None, backend: str = "auto", keep: Callable[[int], bool] | None = None):
        if stride < 1:
            raise SsmarError(f"stride must be >= 1, got {stride}")
        if max_frames is not None and max_frames < 1:
            raise SsmarError(f"max_frames must be >= 1, got {max_frames}")
        self.path = Path(path)
        self.stride = stride
        self.max_frames = max_frames
        self.keep = keep  # frame index -> convert it? (others are decoded, not converted; parallel readers)
        self.decoded_frames = 0
        _check_file(self.path)
        self._backend = _open_backend(self.path, backend)
        self.info: VideoInfo = self._backend.info
        self.output_size = _scaled_size(self.info.width, self.info.height, max_side)

    def __iter__(self) -> Iterator[np.ndarray]:
        for _, frame in self.indexed():
            yield frame

    def indexed(self) -> Iterator[tuple[int, np.ndarray]]:
        """``(frame index, RGB frame)`` of every kept frame, then the truncation check."""
        kept = 0
        for index, convert in self._backend.frames():
            self.decoded_frames = index + 1
            if index % self.stride or (self.keep is not None and not self.keep(index)):
                continue
            yield index, convert(self.output_size)
            kept += 1
            if self.max_frames is not None and kept >= self.max_frames:
                return
        if self.decoded_frames == 0:
            raise VideoError("no frames could be decoded; the file is corrupt or has an empty video stream")
        declared = self.info.declared_frames
        if declared and self.decoded_frames < declared - max(_TRUNCATION_SLACK, 0.02 * declared):
            raise VideoError(f"truncated: decoded {self.decoded_frames} of {declared} frames the container "
                             "declares; re-download or re-encode the file")

    def close(self) -> None:
        self._backend.close()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def find_videos(directory: str | os.PathLike) -> list[Path]:
    """Video files (by extension) directly inside ``directory``, sorted by name."""
    directory = Path(directory)
    if not directory.is_dir():
        raise SsmarError(f"video directory not found: {directory}; pass --videos DIR")
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)


def _check_file(path: Path) -> None:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise VideoError("file not found") from None
    except OSError as exc:
        raise VideoError(f"cannot read file: {exc.strerror}") from exc
    if size == 0:
        raise VideoError("empty file (0 bytes)")


def _scaled_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """(width, height) with the long side at most ``max_side``, both even for swscale."""
    if not max_side or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def _open_backend(path: Path, backend: str) -> "_PyAVBackend | _OpenCVBackend":
    if backend not in ("auto", "pyav", "opencv"):
        raise SsmarError(f"unknown video backend '{backend}'; use auto, pyav or opencv")
    if backend == "opencv" or (backend == "auto" and not _has_pyav()):
        return _OpenCVBackend(path)
    if not _has_pyav():
        raise SsmarError("PyAV is not installed; pip install 'ssmar[pose]' or use backend='opencv'")
    try:
        return _PyAVBackend(path)
    except VideoError as pyav_error:
        if backend == "pyav":
            raise
        try:  # OpenCV's own FFmpeg build occasionally reads what PyAV's cannot
            return _OpenCVBackend(path)
        except VideoError:
            raise pyav_error from None


def _has_pyav() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


class _PyAVBackend:
    def __init__(self, path: Path):
        import av

        self._av = av
        try:
            self._container = av.open(str(path))
        except av.FFmpegError as exc:
            raise VideoError(f"cannot open as a video ({_ffmpeg_reason(exc)}); "
                             "the file is truncated, corrupt or not a video") from exc
        if not self._container.streams.video:
            self._container.close()
            raise VideoError("no video stream in the file (audio only or not a video)")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"  # frame + slice threads: ~1.6x faster H.264 decode
        rate = self._stream.average_rate or self._stream.guessed_rate
        context = self._stream.codec_context
        self.info = VideoInfo(width=context.width, height=context.height, fps=float(rate) if rate else 0.0,
                              declared_frames=int(self._stream.frames or 0), backend="pyav")

    def frames(self) -> Iterator[tuple[int, Callable[[tuple[int, int]], np.ndarray]]]:
        index = -1
        try:
            for index, frame in enumerate(self._container.decode(self._stream)):
                yield index, lambda size, frame=frame: frame.to_ndarray(format="rgb24", width=size[0],
                                                                         height=size[1])
        except self._av.FFmpegError as exc:
            raise VideoError(f"decode error after {index + 1} frames ({_ffmpeg_reason(exc)}); "
                             "the file is corrupt or truncated") from exc

    def close(self) -> None:
        self._container.close()


class _OpenCVBackend:
    def __init__(self, path: Path):
        try:
            import cv2
        except ImportError:
            raise SsmarError("neither PyAV nor OpenCV is installed; pip install 'ssmar[pose]'") from None
        self._cv2 = cv2
        self._capture = cv2.VideoCapture(str(path))
        if not self._capture.isOpened():
            raise VideoError("cannot open as a video (OpenCV); the file is truncated, corrupt or not a video")
        self.info = VideoInfo(width=int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
                              height=int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                              fps=float(self._capture.get(cv2.CAP_PROP_FPS) or 0.0),
                              declared_frames=max(0, int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))),
                              backend="opencv")

    def frames(self) -> Iterator[tuple[int, Callable[[tuple[int, int]], np.ndarray]]]:
        index = 0
        while True:
            ok, frame = self._capture.read()
            if not ok:
                return
            yield index, lambda size, frame=frame: self._to_rgb(frame, size)
            index += 1

    def _to_rgb(self, frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        if (frame.shape[1], frame.shape[0]) != size:
            frame = self._cv2.resize(frame, size, interpolation=self._cv2.INTER_AREA)
        return self._cv2.cvtColor(frame, self._cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        self._capture.release()


def _ffmpeg_reason(exc: Any) -> str:
    return getattr(exc, "strerror", None) or str(exc)
