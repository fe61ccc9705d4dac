"""Frames from a file, a camera, a stream URL or raw RGB24 on stdin, one at a time, for the timeline.

A file goes through :class:`ssmar.video.decode.VideoReader`; a camera index (``0``) or a URL
(``rtsp://``, ``http://``...) through OpenCV; ``-`` reads raw ``rgb24`` frames of a size given
by the caller (e.g. ``ffmpeg -i in.mp4 -f rawvideo -pix_fmt rgb24 -``). Nothing is read ahead
beyond a small bounded queue (:func:`prefetch`), so a stream of any length uses bounded memory.
"""

from __future__ import annotations

import queue
import re
import sys
import threading
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterator

import numpy as np

from ssmar.errors import SsmarError
from ssmar.runtime.native_logs import quiet_native_stderr
from ssmar.video.decode import VideoError, VideoReader

STDIN = "-"


@dataclass
class FrameStream:
    frames: Iterator[np.ndarray]  # RGB uint8 [H, W, 3]
    fps: float  # 0.0 when unknown
    total: int | None  # frames to expect, None for live sources
    live: bool  # camera, URL or stdin: segments are printed as they close
    close: Callable[[], None]


def parse_frame_size(text: str) -> tuple[int, int]:
    """``WxH`` -> (width, height)."""
    match = re.fullmatch(r"(\d+)x(\d+)", text.strip())
    if not match or min(int(match[1]), int(match[2])) < 1:
        raise SsmarError(f"--stdin-frames takes WIDTHxHEIGHT, e.g. 640x480, got '{text}'")
    return int(match[1]), int(match[2])


def is_live_source(source: str) -> bool:
    return source == STDIN or source.isdigit() or "://" in source


def open_frame_stream(source: str, *, frame_size: tuple[int, int] | None = None, fps: float = 0.0,
                      stdin: BinaryIO | None = None) -> FrameStream:
    """Open ``source``: ``-`` (raw rgb24 of ``frame_size`` on stdin), a camera index, a URL or a video file."""
    if source == STDIN:
        if frame_size is None:
            raise SsmarError("reading frames from stdin needs their size: pass --stdin-frames WIDTHxHEIGHT "
                             "(raw rgb24, e.g. from ffmpeg -f rawvideo -pix_fmt rgb24 -)")
        return FrameStream(_raw_frames(stdin or sys.stdin.buffer, *frame_size), fps, None, True, lambda: None)
    if source.isdigit() or "://" in source:
        return _opencv_stream(source, fps)
    reader = VideoReader(source)
    return FrameStream(iter(reader), fps or reader.info.fps, reader.info.declared_frames or None, False, reader.close)


def _raw_frames(handle: BinaryIO, width: int, height: int) -> Iterator[np.ndarray]:
    size = width * height * 3
    while True:
        data = _read_exactly(handle, size)
        if not data:
            return
        if len(data) < size:
            print(f"warning: stdin ended inside a frame ({len(data)} of {size} bytes); the partial frame is dropped "
                  "(is --stdin-frames the right size?)", file=sys.stderr)
            return
        yield np.frombuffer(data, np.uint8).reshape(height, width, 3)


def _read_exactly(handle: BinaryIO, size: int) -> bytes:
    chunks, got = [], 0
    while got < size:
        chunk = handle.read(size - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _opencv_stream(source: str, fps: float) -> FrameStream:
    try:
        import cv2
    except ImportError:
        raise SsmarError("cameras and stream URLs are read with OpenCV; pip install 'ssmar[pose]'") from None
    with quiet_native_stderr():  # OpenCV's own warnings about a missing device
        capture = cv2.VideoCapture(int(source) if source.isdigit() else source)
    if not capture.isOpened():
        what = "camera" if source.isdigit() else "stream"
        raise VideoError(f"cannot open as a {what} (OpenCV); check the index or URL and that nothing else holds it")
    rate = fps or float(capture.get(cv2.CAP_PROP_FPS) or 0.0)

    def frames() -> Iterator[np.ndarray]:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    return FrameStream(frames(), rate, None, True, capture.release)


def prefetch(items: Iterator, depth: int = 4) -> Iterator:
    """Run ``items`` in a thread, at most ``depth`` ahead: decoding overlaps pose estimation (both release
    the GIL) while memory stays bounded. Errors are raised here, in order."""
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def worker() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        buffer.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put((done, None))
        except BaseException as exc:  # handed to the consumer, raised there
            buffer.put((done, exc))

    thread = threading.Thread(target=worker, daemon=True, name="ssmar-prefetch")
    thread.start()
    try:
        while True:
            item, error = buffer.get()
            if item is done:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        thread.join(timeout=1.0)

