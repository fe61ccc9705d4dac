"""Skeleton overlays: the video with its pose drawn on it (MP4 or GIF) and a PNG contact sheet.

Used to check an extraction by eye. Bones (from the file's layout) are drawn in white,
joints coloured by score (red = low, green = high; joints with score 0 — not detected —
are left out). A file whose layout is unknown gets its joints drawn without bones.
Keypoints in 0..1 are taken as normalised image coordinates (MediaPipe); larger ones
as pixels of the clip's ``img_shape`` (e.g. OpenPose/MMPose pickles).
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ssmar.data.layouts import layout_for_data
from ssmar.data.skeleton_format import load_skeleton_pickle
from ssmar.errors import SsmarError
from ssmar.pose.extract import ExtractOptions, extract_clip_pose, skeleton_data
from ssmar.runtime.io import atomic_open, save_figure
from ssmar.video.decode import VideoError, VideoReader

#: Long side of rendered frames: enough to judge joints, small enough for a GIF.
DEFAULT_RENDER_SIDE = 540
RENDER_FORMATS = (".mp4", ".gif")


def render_video(video: str | os.PathLike, output: str | os.PathLike, *, pose_file: str | os.PathLike | None = None,
                 clip_name: str | None = None, options: ExtractOptions | None = None,
                 max_side: int | None = DEFAULT_RENDER_SIDE, grid: int = 4) -> tuple[Path, Path]:
    """Render ``video`` with its skeleton from ``pose_file`` (or extracted now); return
    the paths of the animation and of the contact sheet ``<output stem>.sheet.png``."""
    video, output = Path(video), Path(output)
    if output.suffix.lower() not in RENDER_FORMATS:
        raise SsmarError(f"render output must end in .mp4 or .gif, got {output}")
    if pose_file is not None:
        data = load_skeleton_pickle(pose_file)
        annotation = select_clip(data, clip_name, default=video.stem, source=str(pose_file))
    else:
        options = options or ExtractOptions()
        annotation = extract_clip_pose(video, options=options)
        data = skeleton_data([annotation], options)
    try:
        edges = layout_for_data(data).edges
    except SsmarError:  # e.g. a joint count no registered layout has, and no 'layout' key: joints only
        edges = ()
    sheet = output.with_suffix(".sheet.png")
    try:
        render_clip(video, annotation, edges, output, sheet, max_side=max_side, grid=grid)
    except VideoError as exc:
        raise VideoError(f"{video}: {exc}") from exc
    return output, sheet


def select_clip(data: dict[str, Any], clip_name: str | None, default: str, source: str = "<data>") -> dict[str, Any]:
    """The annotation named ``clip_name``; without a name, the one named ``default``
    (the video's stem) or the only one in the file."""
    annotations = data["annotations"]
    for ann in annotations:
        if ann["frame_dir"] == (clip_name or default):
            return ann
    if clip_name is None and len(annotations) == 1:
        return annotations[0]
    examples = ", ".join(ann["frame_dir"] for ann in annotations[:3])
    raise SsmarError(f"{source}: no clip '{clip_name or default}' among {len(annotations)} clips "
                     f"(e.g. {examples}); pass --clip-name")


def render_clip(video: Path, annotation: dict[str, Any], edges: Sequence[tuple[int, int]], output: Path,
                sheet: Path, *, max_side: int | None = DEFAULT_RENDER_SIDE, grid: int = 4) -> None:
    """Draw ``annotation`` over the frames of ``video``; write the animation and the sheet."""
    keypoint = np.asarray(annotation["keypoint"], np.float32)  # [M, T, V, C]
    score = annotation.get("keypoint_score")
    if score is None:  # no scores in the file: a joint at (0, 0) is missing
        score = np.abs(keypoint[..., :2]).sum(-1) > 0
    score = np.asarray(score, np.float32)
    total = keypoint.shape[1]
    normalised = _is_normalised(keypoint, score)
    with VideoReader(video, max_side=max_side, stride=_frame_stride(video, annotation),
                     max_frames=total) as reader:
        source_shape = annotation.get("img_shape") or (reader.info.height, reader.info.width)
        fps = float(annotation.get("fps") or reader.info.fps or 30.0)
        sheet_indices = set(np.linspace(0, total - 1, min(grid * grid, total)).round().astype(int).tolist())
        frames, sheet_frames = [], []
        for t, frame in enumerate(reader):
            for person in range(keypoint.shape[0]):
                draw_skeleton(frame, keypoint[person, t], score[person, t], edges, source_shape, normalised)
            frames.append(frame)
            if t in sheet_indices:
                sheet_frames.append((t, frame))
    if not frames:
        raise SsmarError(f"{video}: no frames to render")
    if output.suffix.lower() == ".gif":
        _write_gif(frames, fps, output)
    else:
        _write_mp4(frames, fps, output)
    _write_sheet(sheet_frames, grid, sheet, title=f"{annotation['frame_dir']} ({len(frames)} frames)")


def draw_skeleton(frame: np.ndarray, keypoint: np.ndarray, score: np.ndarray, edges: Sequence[tuple[int, int]],
                  source_shape: Sequence[int], normalised: bool) -> None:
    """Draw one person's skeleton onto an RGB frame in place."""
    import cv2

    height, width = frame.shape[:2]
    scale = (width, height) if normalised else (width / source_shape[1], height / source_shape[0])
    points = np.round(keypoint[:, :2] * scale).astype(int)
    visible = score > 0
    thickness = max(1, round(max(height, width) / 300))
    for a, b in edges:
        if visible[a] and visible[b]:
            cv2.line(frame, tuple(points[a].tolist()), tuple(points[b].tolist()), (255, 255, 255),
                     thickness, cv2.LINE_AA)
    colours = _score_colours(score)
    for joint in np.flatnonzero(visible):
        cv2.circle(frame, tuple(points[joint].tolist()), thickness + 2, colours[joint], -1, cv2.LINE_AA)


def _is_normalised(keypoint: np.ndarray, score: np.ndarray) -> bool:
    xy = keypoint[..., :2][score > 0]
    return xy.size == 0 or float(np.abs(xy).max()) <= 1.5


def _frame_stride(video: Path, annotation: dict[str, Any]) -> int:
    """Frames were kept every ``stride`` frames if the pose fps is a fraction of the video's."""
    pose_fps = float(annotation.get("fps") or 0.0)
    if pose_fps <= 0:
        return 1
    with VideoReader(video) as reader:
        video_fps = reader.info.fps
    return max(1, round(video_fps / pose_fps)) if video_fps > 0 else 1


def _score_colours(score: np.ndarray) -> list[tuple[int, int, int]]:
    import matplotlib

    rgba = matplotlib.colormaps["RdYlGn"](np.clip(score, 0.0, 1.0))
    return [tuple(int(c) for c in row) for row in (rgba[:, :3] * 255).round()]


def _write_mp4(frames: list[np.ndarray], fps: float, output: Path) -> None:
    import cv2

    height, width = frames[0].shape[:2]
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp) / "render.mp4"
        writer = cv2.VideoWriter(str(tmp_path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
        if not writer.isOpened():
            raise SsmarError("OpenCV cannot write MP4 (mp4v) here; render to a .gif instead")
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        writer.release()
        with open(tmp_path, "rb") as source, atomic_open(output, "wb") as target:
            shutil.copyfileobj(source, target)


def _write_gif(frames: list[np.ndarray], fps: float, output: Path) -> None:
    from PIL import Image

    images = [Image.fromarray(frame) for frame in frames]
    with atomic_open(output, "wb") as handle:
        images[0].save(handle, format="GIF", save_all=True, append_images=images[1:],
                       duration=round(1000 / fps), loop=0)


def _write_sheet(frames: list[tuple[int, np.ndarray]], grid: int, path: Path, title: str) -> None:
    import matplotlib.pyplot as plt

    cols = min(grid, len(frames))
    rows = math.ceil(len(frames) / cols)
    height, width = frames[0][1].shape[:2]
    fig, axes = plt.subplots(rows, cols, figsize=(2.5 * cols, 2.5 * rows * height / width), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (t, frame) in zip(axes.ravel(), frames):
        ax.imshow(frame)
        ax.set_title(f"frame {t}", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
