"""Batch pose extraction: a folder of videos → one canonical skeleton pickle.

Each video is decoded and run through MediaPipe in a worker process (spawned, one
estimator per worker), and its skeleton is written at once to a small per-video
``.npz`` in the cache directory. The final pickle is assembled from the cache, so an
interrupted run resumes where it stopped, and a cache entry is reused only while the
video file (size, mtime) and the extraction options are unchanged. Bad videos never
stop the batch: each becomes one ``{file, reason}`` entry in the failure report.
Workers write MediaPipe's native log chatter to ``<cache>/worker.log``.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from ssmar.data.ma52 import MA52_NUM_CLASSES, ma52_body_map, read_list_file
from ssmar.data.skeleton_format import UNKNOWN_LABEL, save_skeleton_pickle
from ssmar.errors import SsmarError
from ssmar.pose.mediapipe_pose import POSE_LAYOUT, PoseEstimator, holistic_edges
from ssmar.runtime.io import atomic_open, save_json
from ssmar.runtime.native_logs import show_native_logs
from ssmar.video.decode import VIDEO_EXTENSIONS, VideoError, VideoReader, find_videos, frame_dir_of

@dataclass(frozen=True)
class ExtractOptions:
    """Settings that change the extracted skeletons (part of the cache key).

    ``max_side`` (long side in pixels, None = as decoded) is off by default: on the
    1080x1296 MA-52 clips a 480 px downscale saved no CPU time (swscale's scaling path
    costs what MediaPipe saves) and it lowers hand detection with ``holistic``; it
    pays off for 4K input.
    """

    holistic: bool = False
    max_frames: int | None = None
    stride: int = 1
    max_side: int | None = None

    def __post_init__(self) -> None:
        if self.stride < 1:
            raise SsmarError(f"--stride must be >= 1, got {self.stride}")
        if self.max_frames is not None and self.max_frames < 1:
            raise SsmarError(f"--max-frames must be >= 1, got {self.max_frames}")
        if self.max_side is not None and self.max_side < 64:
            raise SsmarError(f"--max-side must be >= 64 pixels (0 keeps full resolution), got {self.max_side}")

    def cache_key(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass(frozen=True)
class VideoJob:
    frame_dir: str
    path: Path
    label: int = UNKNOWN_LABEL  # -1: nobody has labelled the clip yet


@dataclass
class ClipPose:
    """One video's skeleton sequence plus how long decoding and MediaPipe took."""

    keypoint: np.ndarray  # float32 [T, V, 3]
    keypoint_score: np.ndarray  # float32 [T, V]
    detected: np.ndarray  # bool [T]: a person was found
    img_shape: tuple[int, int]  # (H, W) of the source video
    fps: float  # of the keypoint sequence (source fps / stride); 0 if unknown
    decode_seconds: float
    pose_seconds: float

    @property
    def detection_rate(self) -> float:
        return float(self.detected.mean())

    def annotation(self, frame_dir: str, label: int, video: Path | None = None) -> dict[str, Any]:
        """The canonical per-clip dict (one person: keypoint [1, T, V, 3]); ``video``, the source
        file, lets ``ssmar suggest`` render a preview of the clip."""
        ann: dict[str, Any] = {
            "frame_dir": frame_dir,
            "label": int(label),
            "total_frames": int(self.keypoint.shape[0]),
            "img_shape": tuple(int(v) for v in self.img_shape),
            "keypoint": self.keypoint[None].astype(np.float32),
            "keypoint_score": self.keypoint_score[None].astype(np.float32),
        }
        if self.fps > 0:
            ann["fps"] = float(self.fps)
        if video is not None:
            ann["video"] = str(Path(video).resolve())
        return ann


@dataclass
class ExtractionReport:
    """Outcome of :func:`run_extraction`; ``exit_code`` is 0, 3 (some failed) or 2 (all failed)."""

    output: Path | None
    failures_path: Path
    stats_path: Path
    succeeded: list[str] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    extracted: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        if not self.failures:
            return 0
        return 3 if self.succeeded else 2


def extract_video(path: str | os.PathLike, estimator: PoseEstimator, options: ExtractOptions) -> ClipPose:
    """Decode one video and estimate a pose per kept frame; raise :class:`VideoError` if unusable."""
    estimator.reset()
    keypoints, scores, detected = [], [], []
    decode_seconds = pose_seconds = 0.0
    with VideoReader(path, max_side=options.max_side, stride=options.stride,
                     max_frames=options.max_frames) as reader:
        frames = iter(reader)
        while True:
            start = time.perf_counter()
            frame = next(frames, None)
            decoded = time.perf_counter()
            decode_seconds += decoded - start
            if frame is None:
                break
            pose = estimator.process(frame)
            pose_seconds += time.perf_counter() - decoded
            keypoints.append(pose.keypoint)
            scores.append(pose.score)
            detected.append(pose.detected)
        info = reader.info
    if not any(detected):
        raise VideoError(f"no person detected in any of {len(detected)} frames")
    return ClipPose(keypoint=np.stack(keypoints), keypoint_score=np.stack(scores),
                    detected=np.asarray(detected, bool), img_shape=(info.height, info.width),
                    fps=info.fps / options.stride, decode_seconds=decode_seconds, pose_seconds=pose_seconds)


def extract_clip_pose(video_path: str | os.PathLike, label: int = 0,
                      options: ExtractOptions | None = None) -> dict[str, Any]:
    """Pose of a single video as one canonical annotation dict (for ``ssmar predict``).

    Runs in this process; raises :class:`SsmarError` when the video is unusable.
    """
    video_path, options = Path(video_path), options or ExtractOptions()
    with PoseEstimator(options.holistic) as estimator:
        try:
            clip = extract_video(video_path, estimator, options)
        except VideoError as exc:
            raise VideoError(f"{video_path}: {exc}") from exc
    return clip.annotation(video_path.stem, label)


def collect_jobs(videos_dir: str | os.PathLike, list_file: str | os.PathLike | None = None) -> list[VideoJob]:
    """Videos to process: the entries of an MMAction2 list (paths relative to ``videos_dir``; a
    bare clip name or label -1 is a clip not labelled yet), or every video file in ``videos_dir``,
    none of them labelled (label -1)."""
    videos_dir = Path(videos_dir)
    if list_file is not None:
        if not videos_dir.is_dir():
            raise SsmarError(f"video directory not found: {videos_dir}; pass --videos DIR")
        jobs = [VideoJob(frame_dir_of(clip), videos_dir / clip, label) for clip, label in read_list_file(list_file, allow_unlabelled=True)]
    else:
        jobs = [VideoJob(path.stem, path) for path in find_videos(videos_dir)]
        if not jobs:
            raise SsmarError(f"no videos in {videos_dir} (looked for {', '.join(VIDEO_EXTENSIONS)}); "
                             "pass --list LIST.txt for other names")
    seen: dict[str, Path] = {}
    for job in jobs:
        if job.frame_dir in seen:
            raise SsmarError(f"videos {seen[job.frame_dir]} and {job.path} would both be clip '{job.frame_dir}'; "
                             "rename one of them")
        seen[job.frame_dir] = job.path
    return jobs


def run_extraction(jobs: Sequence[VideoJob], output: str | os.PathLike, *, options: ExtractOptions,
                   workers: int = 1, cache_dir: str | os.PathLike | None = None,
                   class_names: list[str] | None = None, split_name: str = "all",
                   progress: bool = True) -> ExtractionReport:
    """Extract every job (reusing valid cache entries) and write the pickle and reports.

    Writes ``<output stem>.failures.json`` and ``.stats.json`` next to ``output``; the
    pickle itself only if at least one video succeeded.
    """
    output = Path(output)
    if workers < 1:
        raise SsmarError(f"--workers must be >= 1, got {workers}")
    _check_labels(jobs, class_names)
    cache = Path(cache_dir) if cache_dir is not None else output.with_suffix(".cache")
    report = ExtractionReport(output=None, failures_path=output.with_suffix(".failures.json"),
                              stats_path=output.with_suffix(".stats.json"))
    failed: dict[str, str] = {}
    todo: list[VideoJob] = []
    for job in jobs:
        stamp = _source_stamp(job.path)
        if stamp is None:
            failed[job.frame_dir] = "file not found"
        elif _read_cache(_cache_path(cache, job.frame_dir), stamp, options) is not None:
            report.cached.append(job.frame_dir)
        else:
            todo.append(job)

    results, wall, startup = _run_jobs(todo, options, cache, workers, progress)
    per_worker: dict[int, dict[str, float]] = {}
    for job in todo:
        result = results[job.frame_dir]
        if not result["ok"]:
            failed[job.frame_dir] = result["reason"]
            continue
        report.extracted.append(job.frame_dir)
        worker = per_worker.setdefault(result["worker"], {"videos": 0, "frames": 0, "decode": 0.0, "pose": 0.0,
                                                          "cpu": 0.0})
        worker["videos"] += 1
        worker["frames"] += result["frames"]
        worker["decode"] += result["decode_seconds"]
        worker["pose"] += result["pose_seconds"]
        worker["cpu"] += result["cpu_seconds"]

    annotations, per_clip = [], []
    for job in jobs:
        if job.frame_dir in failed:
            report.failures.append({"file": str(job.path), "reason": failed[job.frame_dir]})
            continue
        clip = _read_cache(_cache_path(cache, job.frame_dir), _source_stamp(job.path), options)
        if clip is None:  # changed or removed while we were running
            report.failures.append({"file": str(job.path), "reason": "video changed during extraction; rerun"})
            continue
        annotations.append(clip.annotation(job.frame_dir, job.label, job.path))
        report.succeeded.append(job.frame_dir)
        per_clip.append({"clip": job.frame_dir, "frames": int(clip.keypoint.shape[0]),
                         "detection_rate": round(clip.detection_rate, 4),
                         "decode_seconds": round(clip.decode_seconds, 3),
                         "pose_seconds": round(clip.pose_seconds, 3),
                         "cached": job.frame_dir in report.cached})

    report.stats = _summarise(report, per_clip, per_worker, wall, startup, workers, options)
    save_json(report.failures, report.failures_path)
    save_json(report.stats, report.stats_path)
    if annotations:
        save_skeleton_pickle(skeleton_data(annotations, options, class_names, split_name), output)
        report.output = output
    return report


def _check_labels(jobs: Sequence[VideoJob], class_names: list[str] | None) -> None:
    if class_names is None:
        return
    bad = [job for job in jobs if job.label >= len(class_names)]
    if bad:
        raise SsmarError(f"clip '{bad[0].frame_dir}' has label {bad[0].label} but the label names define only "
                         f"{len(class_names)} classes ({len(bad)} such clip(s)); fix the list or --label-names")


def skeleton_data(annotations: list[dict[str, Any]], options: ExtractOptions,
                  class_names: list[str] | None = None, split_name: str = "all") -> dict[str, Any]:
    """The canonical file content for extracted clips: split, layout (and edges), classes."""
    data: dict[str, Any] = {"split": {split_name: [ann["frame_dir"] for ann in annotations]},
                            "annotations": annotations}
    if options.holistic:
        data["layout"] = "custom"
        data["edges"] = [list(edge) for edge in holistic_edges()]
    else:
        data["layout"] = POSE_LAYOUT
    if class_names is not None:
        data["class_names"] = list(class_names)
        if len(class_names) == MA52_NUM_CLASSES:
            data["body_map"], data["body_names"] = ma52_body_map()
    return data


def _summarise(report: ExtractionReport, per_clip: list[dict[str, Any]], per_worker: dict[int, dict[str, float]],
               wall: float, startup: float, workers: int, options: ExtractOptions) -> dict[str, Any]:
    frames = sum(w["frames"] for w in per_worker.values())
    decode = sum(w["decode"] for w in per_worker.values())
    pose = sum(w["pose"] for w in per_worker.values())
    cpu = sum(w["cpu"] for w in per_worker.values())
    busy = decode + pose
    return {
        "videos": len(report.succeeded) + len(report.failures),
        "succeeded": len(report.succeeded),
        "failed": len(report.failures),
        "extracted": len(report.extracted),
        "from_cache": len(report.cached),
        "workers": workers,
        "options": asdict(options),
        "frames_extracted": frames,
        "wall_seconds": round(wall, 3),
        "startup_seconds": round(startup, 3),
        "frames_per_second": round(frames / wall, 2) if wall > 0 else None,
        "steady_frames_per_second": round(frames / (wall - startup), 2) if wall > startup else None,
        "videos_per_second": round(len(report.extracted) / wall, 3) if wall > 0 else None,
        "decode_seconds": round(decode, 3),
        "pose_seconds": round(pose, 3),
        "decode_share": round(decode / busy, 4) if busy else None,
        "pose_share": round(pose / busy, 4) if busy else None,
        "cpu_ms_per_frame": round(1000 * cpu / frames, 2) if frames else None,
        "per_worker": [{"worker_pid": pid, "videos": w["videos"], "frames": w["frames"],
                        "decode_seconds": round(w["decode"], 3), "pose_seconds": round(w["pose"], 3),
                        "cpu_seconds": round(w["cpu"], 3),
                        "frames_per_second": round(w["frames"] / (w["decode"] + w["pose"]), 2)
                        if w["decode"] + w["pose"] > 0 else None}
                       for pid, w in sorted(per_worker.items())],
        "per_clip": per_clip,
    }


# --- cache -------------------------------------------------------------------------


def _cache_path(cache_dir: Path, frame_dir: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", frame_dir)[-80:]
    return cache_dir / f"{safe}-{hashlib.sha1(frame_dir.encode()).hexdigest()[:8]}.npz"


def _source_stamp(path: Path) -> tuple[int, int] | None:
    """(size, mtime_ns) identifies the video version a cache entry came from."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


def _write_cache(path: Path, clip: ClipPose, stamp: tuple[int, int], options: ExtractOptions) -> None:
    with atomic_open(path, "wb") as handle:
        np.savez(handle, keypoint=clip.keypoint, keypoint_score=clip.keypoint_score, detected=clip.detected,
                 img_shape=np.asarray(clip.img_shape, np.int64), fps=np.float64(clip.fps),
                 decode_seconds=np.float64(clip.decode_seconds), pose_seconds=np.float64(clip.pose_seconds),
                 source_stamp=np.asarray(stamp, np.int64), options=np.asarray(options.cache_key()))


def _read_cache(path: Path, stamp: tuple[int, int] | None, options: ExtractOptions) -> ClipPose | None:
    """The cached clip, or None when absent, unreadable or made from other inputs."""
    if stamp is None or not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["options"]) != options.cache_key() or tuple(data["source_stamp"]) != stamp:
                return None
            return ClipPose(keypoint=data["keypoint"], keypoint_score=data["keypoint_score"],
                            detected=data["detected"], img_shape=tuple(int(v) for v in data["img_shape"]),
                            fps=float(data["fps"]), decode_seconds=float(data["decode_seconds"]),
                            pose_seconds=float(data["pose_seconds"]))
    except (OSError, ValueError, KeyError, EOFError):
        return None


# --- workers -----------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _init_worker(options: ExtractOptions, cache_dir: Path) -> None:
    """Runs once per worker process: route native logs to a file, start one estimator."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    log = os.open(cache_dir / "worker.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 2)
    os.close(log)
    show_native_logs(True)  # descriptor 2 is the log file here: keep the lines there
    _WORKER.update(options=options, cache_dir=cache_dir)
    try:
        _WORKER["estimator"] = PoseEstimator(options.holistic)
    except SsmarError as exc:
        _WORKER["fatal"] = str(exc)


def _run_job(job: VideoJob) -> dict[str, Any]:
    """Extract one video in a worker and cache it; every failure becomes a reason string."""
    result: dict[str, Any] = {"frame_dir": job.frame_dir, "ok": False, "reason": "", "fatal": False,
                              "worker": os.getpid(), "started": time.time(), "frames": 0,
                              "decode_seconds": 0.0, "pose_seconds": 0.0, "cpu_seconds": 0.0}
    cpu_start = time.process_time()  # all threads of this worker; unlike wall time, not inflated by other load
    if "fatal" in _WORKER:
        return {**result, "reason": _WORKER["fatal"], "fatal": True}
    stamp = _source_stamp(job.path)
    try:
        if stamp is None:
            raise VideoError("file not found")
        clip = extract_video(job.path, _WORKER["estimator"], _WORKER["options"])
        _write_cache(_cache_path(_WORKER["cache_dir"], job.frame_dir), clip, stamp, _WORKER["options"])
    except SsmarError as exc:
        return {**result, "reason": str(exc)}
    except Exception as exc:  # a decoder or MediaPipe bug on one file must not stop the batch
        return {**result, "reason": f"unexpected error: {type(exc).__name__}: {exc}"}
    return {**result, "ok": True, "frames": int(clip.keypoint.shape[0]),
            "decode_seconds": clip.decode_seconds, "pose_seconds": clip.pose_seconds,
            "cpu_seconds": time.process_time() - cpu_start}


def _run_jobs(jobs: list[VideoJob], options: ExtractOptions, cache_dir: Path, workers: int,
              progress: bool) -> tuple[dict[str, dict[str, Any]], float, float]:
    """Results by frame_dir of running ``jobs`` in spawned workers, the wall time and the
    start-up time (until the first worker began a video: process spawn, MediaPipe load)."""
    results: dict[str, dict[str, Any]] = {}
    start = time.perf_counter()
    start_epoch = time.time()
    if jobs:
        frames = 0
        with _progress_bar(len(jobs), progress) as bar:
            for result in _pool_results(jobs, options, cache_dir, min(workers, len(jobs))):
                if result["fatal"]:
                    raise SsmarError(result["reason"])
                results[result["frame_dir"]] = result
                frames += result["frames"]
                bar.update(1)
                bar.set_postfix_str(f"{frames / max(time.perf_counter() - start, 1e-9):.1f} frames/s")
    startup = min((r["started"] for r in results.values()), default=start_epoch) - start_epoch
    return results, time.perf_counter() - start, max(0.0, startup)


def _pool_results(jobs: list[VideoJob], options: ExtractOptions, cache_dir: Path,
                  workers: int) -> Iterator[dict[str, Any]]:
    executor = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_worker, initargs=(options, cache_dir))
    try:
        futures = {executor.submit(_run_job, job): job for job in jobs}
        for future in as_completed(futures):
            job = futures[future]
            try:
                yield future.result()
            except Exception as exc:  # BrokenProcessPool: a worker crashed (segfault, out of memory)
                yield {"frame_dir": job.frame_dir, "ok": False, "fatal": False, "worker": None,
                       "started": time.time(), "frames": 0,
                       "reason": f"worker process died ({type(exc).__name__}); rerun to retry "
                                 "(finished videos are cached)"}
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def _progress_bar(total: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="video", desc="extract-pose", disable=not enabled, file=sys.stderr,
                dynamic_ncols=True)
