"""Micro-actions over time: a long pose sequence (or a live one) in, segments (start, end, class, score) out.

The recognizer was trained on trimmed clips, so the timeline slides a clip-sized window over the
sequence and preprocesses every window exactly as training preprocessed a clip
(:func:`ssmar.data.preprocess.clip_to_array` through :meth:`Recognizer.encode`: body-centred,
scaled, resampled to the checkpoint's ``frames``). Poses arrive one frame at a time and only the
last window (a ring buffer) is held, so a recording of any length, or a camera, runs in bounded
memory.

"No micro-action here" is decided without a background class (checkpoints are trained on trimmed
clips and have none), by gates and a score rule. Gates: a window with a person in fewer than
``min_detected`` of its frames is background; for the ``runs`` rule, so is a frame where the body
is still (mean joint speed, smoothed, below ``min_motion`` body sizes per frame): micro-actions
are movements, and a classifier that never saw "nothing" still names *some* class for a resting
body, often confidently. ``min_motion`` defaults (in ``ssmar timeline``) to the 25th percentile of
the per-frame speed in the checkpoint's training clips (:func:`training_statistics`). Score rule:
a frame or window whose best class probability is below ``threshold`` is left unlabelled.

Two rules turn window scores into segments (:data:`RULES`; ``peaks`` is the default):

* ``runs``: every frame averages the probabilities of the windows covering it (a gated window
  votes for background), the result is smoothed over ``smooth`` frames, each frame takes its
  best class (or background under ``threshold``) and runs of one class of at least ``min_frames``
  become segments. Its extents come from the scores.
* ``peaks``: sliding-window detection with non-maximum suppression: a window whose best
  probability reaches ``threshold`` and is the highest of every window starting less than one
  window length away becomes a segment of exactly that window. It assumes an action lasts about
  a training clip, which is what the recognizer knows.
"""

from __future__ import annotations

import collections
import contextlib
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from ssmar.data.skeleton_format import load_skeleton_pickle
from ssmar.engine.inference import Recognizer
from ssmar.errors import SsmarError
from ssmar.pose.stream import PoseFrame

RULES = ("peaks", "runs")
SEGMENT_COLUMNS = ("start_frame", "end_frame", "start_s", "end_s", "class_id", "class", "score")


@dataclass(frozen=True)
class Segment:
    start: int  # first frame
    end: int  # one past the last frame
    class_id: int
    score: float  # the class's mean probability over the segment (runs) or the window's (peaks)
    closed_at: int  # frames seen when the segment was decided

    def row(self, fps: float, class_names: list[str]) -> dict[str, Any]:
        seconds = (lambda frame: round(frame / fps, 3)) if fps > 0 else (lambda frame: None)
        return {"start_frame": self.start, "end_frame": self.end, "start_s": seconds(self.start),
                "end_s": seconds(self.end), "class_id": self.class_id, "class": class_names[self.class_id],
                "score": round(self.score, 4)}


@dataclass(frozen=True)
class TimelineSettings:
    window: int  # frames per window (raw frames, before resampling to the checkpoint's length); the longest scale
    stride: int  # frames between window starts
    scales: tuple[int, ...] = ()  # shorter window lengths, centred in each window (multi-scale); () = window only
    rule: str = "peaks"
    threshold: float = 0.5  # below this probability: no micro-action
    smooth: int = 0  # runs: moving average over this many frames (0: stride)
    min_frames: int = 0  # runs: shorter runs are dropped (0: window // 4)
    min_motion: float = 0.0  # gate: mean joint speed (body sizes per frame) below this is background (0: off)
    min_detected: float = 0.5  # gate: windows with a person in fewer of their frames are background
    batch: int = 16  # windows scored together (1 for the lowest live latency)

    def __post_init__(self) -> None:
        if self.window < 2:
            raise SsmarError(f"--window must be >= 2 frames, got {self.window}")
        if not 1 <= self.stride <= self.window:
            raise SsmarError(f"--stride must be between 1 and the window ({self.window}), got {self.stride}")
        if self.rule not in RULES:
            raise SsmarError(f"unknown --rule '{self.rule}'; use one of: {', '.join(RULES)}")
        if not 0.0 <= self.threshold <= 1.0:
            raise SsmarError(f"--threshold is a probability in [0, 1], got {self.threshold}")
        for name, value in (("smooth", self.smooth), ("min_frames", self.min_frames), ("min_motion", self.min_motion)):
            if value < 0:
                raise SsmarError(f"--{name.replace('_', '-')} must be >= 0, got {value}")
        if not 0.0 <= self.min_detected <= 1.0:
            raise SsmarError(f"--min-detected is a fraction in [0, 1], got {self.min_detected}")
        if self.batch < 1:
            raise SsmarError(f"--batch must be >= 1, got {self.batch}")
        if any(not 2 <= length <= self.window for length in self.scales):
            raise SsmarError(f"--scales must lie between 2 and the window ({self.window}), got {list(self.scales)}")

    @property
    def lengths(self) -> tuple[int, ...]:
        """Every window length scored at each position, longest first."""
        return tuple(sorted(set(self.scales) | {self.window}, reverse=True))

    @property
    def smooth_frames(self) -> int:
        return self.smooth or self.stride

    @property
    def min_run(self) -> int:
        return self.min_frames or max(1, self.window // 4)


def training_statistics(recognizer: Recognizer) -> tuple[tuple[int, int, int], float]:
    """The 20th, 50th and 80th percentiles of the checkpoint's training clip lengths (raw frames: window
    scales that look like what the model was trained on; it learned each clip resampled to a fixed
    length, so one window length alone misreads the tempo of actions much shorter or longer than it)
    and the 25th percentile of their per-frame body speed (the default ``min_motion``), read from the
    training file named in the checkpoint's config."""
    data_cfg = recognizer.config["data"]
    source = Path(str(data_cfg.get("file")))
    if not source.is_file():
        raise SsmarError(f"cannot tell the training clips' length: the checkpoint's training data {source} is not "
                         "here; pass --window FRAMES (about one training clip) and --min-motion (0: off)")
    data = load_skeleton_pickle(source)
    train = set(data["split"].get(data_cfg.get("train_split", "train"), ()))
    clips = [ann for ann in data["annotations"] if ann["frame_dir"] in train] or data["annotations"]
    speeds = np.concatenate([body_speed(np.asarray(ann["keypoint"], np.float32)[0],
                                        recognizer.layout.scale_pair) for ann in clips])
    lengths = np.percentile([np.shape(ann["keypoint"])[1] for ann in clips], (20, 50, 80))
    short, middle, long = (max(2, int(round(length))) for length in lengths)
    return (short, middle, long), float(np.percentile(speeds, 25))


def body_speed(keypoint: np.ndarray, scale_pair: tuple[int, int]) -> np.ndarray:
    """Per frame ``[T]`` of one person's ``[T, V, C]``: mean joint displacement in the image plane since the
    previous frame (0 for the first), in body sizes (the frame's scale bone of the layout)."""
    a, b = scale_pair
    size = np.linalg.norm(keypoint[1:, a, :2] - keypoint[1:, b, :2], axis=-1)
    step = np.linalg.norm(np.diff(keypoint[..., :2], axis=0), axis=-1).mean(-1) / np.where(size > 0, size, 1.0)
    return np.concatenate([[0.0], step]).astype(np.float32)


# --- frame sources -------------------------------------------------------------------------------


def skeleton_frames(annotation: dict[str, Any]) -> Iterator[PoseFrame]:
    """The frames of one (long) annotation; a person counts as found where any joint has a score."""
    keypoint = np.asarray(annotation["keypoint"], np.float32)  # [M, T, V, C]
    score = annotation.get("keypoint_score")
    score = (np.abs(keypoint).sum(-1) > 0).astype(np.float32) if score is None else np.asarray(score, np.float32)
    for t in range(keypoint.shape[1]):
        yield PoseFrame(keypoint[:, t], score[:, t], bool((score[:, t] > 0).any()))


def load_skeleton_sequence(path: str | Path, clip: str | None = None) -> dict[str, Any]:
    """One long sequence as an annotation: a skeleton pickle (its only clip, or ``clip``) or a ``.npy``
    array ``[T, V, C]`` / ``[M, T, V, C]`` (a joint at the origin counts as missing)."""
    path = Path(path)
    if path.suffix == ".npy":
        try:
            keypoint = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise SsmarError(f"{path}: not a readable .npy array ({exc})") from exc
        if keypoint.ndim == 3:
            keypoint = keypoint[None]
        if keypoint.ndim != 4 or keypoint.shape[-1] not in (2, 3):
            raise SsmarError(f"{path}: expected an array [T, V, C] or [M, T, V, C] with C = 2 or 3, got shape "
                             f"{list(keypoint.shape)}")
        return {"frame_dir": path.stem, "label": 0, "keypoint": keypoint.astype(np.float32)}
    data = load_skeleton_pickle(path)
    annotations = data["annotations"]
    if clip is None and len(annotations) != 1:
        examples = ", ".join(ann["frame_dir"] for ann in annotations[:3])
        raise SsmarError(f"{path} holds {len(annotations)} clips (e.g. {examples}); pass --clip NAME")
    for ann in annotations:
        if clip is None or ann["frame_dir"] == clip:
            return ann
    raise SsmarError(f"{path}: no clip '{clip}'; pass --clip with one of its frame_dir names")


# --- windows and their scores --------------------------------------------------------------------


@dataclass
class Window:
    position: int  # start of the longest window at this position (all scales share its centre)
    start: int
    keypoint: np.ndarray  # [M, W, V, C]
    score: np.ndarray  # [M, W, V]
    detected: float  # fraction of frames with a person
    arrived: float  # perf_counter when its last frame arrived


class Windower:
    """The last ``window`` frames (a ring buffer); every ``stride`` frames hands out one window per length,
    the shorter ones centred in the longest."""

    def __init__(self, lengths: tuple[int, ...], stride: int):
        self.window, self.lengths, self.stride = max(lengths), lengths, stride
        self._frames: collections.deque[PoseFrame] = collections.deque(maxlen=self.window)
        self.seen = 0

    def push(self, frame: PoseFrame, arrived: float) -> list[Window]:
        self._frames.append(frame)
        self.seen += 1
        position = self.seen - self.window
        if position < 0 or position % self.stride:
            return []
        keypoint = np.stack([f.keypoint for f in self._frames], axis=1)
        score = np.stack([f.score for f in self._frames], axis=1)
        detected = np.array([f.detected for f in self._frames])
        windows = []
        for length in self.lengths:
            offset = (self.window - length) // 2
            part = slice(offset, offset + length)
            windows.append(Window(position, position + offset, keypoint[:, part], score[:, part],
                                  float(detected[part].mean()), arrived))
        return windows


def score_windows(recognizer: Recognizer, windows: list[Window]) -> np.ndarray:
    """Class probabilities ``[n, K]`` of windows preprocessed as training preprocessed a clip."""
    annotations = [{"frame_dir": f"window_{w.start}", "label": 0, "keypoint": w.keypoint, "keypoint_score": w.score}
                   for w in windows]
    clips, _, _ = recognizer.encode(annotations)
    return recognizer.probabilities(clips)


# --- segment rules -------------------------------------------------------------------------------


class RunsRule:
    """Per-frame averaged window votes, smoothed, thresholded; runs of one class become segments."""

    def __init__(self, num_classes: int, settings: TimelineSettings):
        self.k, self.s = num_classes, settings
        self._votes: collections.deque[np.ndarray] = collections.deque()  # frames from self._next on
        self._next = 0  # first frame not yet final
        self._smooth: collections.deque[np.ndarray] = collections.deque()
        self._speeds: collections.deque[float] = collections.deque()  # per frame from self._smooth's first on
        self._decided = 0  # frames labelled so far
        self._run: list[Any] = [-1, 0, 0.0]  # class (-1: background), start, probability sum

    def speed(self, value: float) -> None:
        """The body speed of the next frame (called once per frame, before the windows that cover it)."""
        self._speeds.append(value)

    def push(self, position: int, scored: list[tuple[Window, np.ndarray, bool]], seen: int) -> list[Segment]:
        """The windows of one position (every scale): each votes on the frames it covers."""
        for window, probs, background in scored:
            vote = np.zeros(self.k + 2, np.float32)  # K classes, background, number of votes
            if background:
                vote[self.k] = 1.0
            else:
                vote[:self.k] = probs
            vote[-1] = 1.0
            end = window.start + window.keypoint.shape[1]
            while self._next + len(self._votes) < end:
                self._votes.append(np.zeros(self.k + 2, np.float32))
            for offset in range(window.start - self._next, end - self._next):
                self._votes[offset] += vote
        final_until = position + self.s.stride  # no later window covers frames before this
        return self._finalise(final_until, seen)

    def finish(self, total: int) -> list[Segment]:
        while self._next + len(self._votes) < total:
            self._votes.append(np.zeros(self.k + 2, np.float32))
        out = self._finalise(total, total) + self._label_ready(total, final=True)
        return out + self._close(total, total)

    def _finalise(self, until: int, seen: int) -> list[Segment]:
        out: list[Segment] = []
        while self._next < until and self._votes:
            votes = self._votes.popleft()
            self._next += 1
            background = np.eye(self.k + 1, dtype=np.float32)[self.k]  # a frame no window covers
            self._smooth.append(votes[:-1] / votes[-1] if votes[-1] else background)
            out += self._label_ready(seen, final=False)
        return out

    def _label_ready(self, seen: int, final: bool) -> list[Segment]:
        """Label every frame whose centred smoothing span is final (all of them at the end)."""
        out: list[Segment] = []
        span, half = self.s.smooth_frames, self.s.smooth_frames // 2
        while self._decided < self._next and (final or self._next >= self._decided - half + span):
            frame = self._decided
            first = self._next - len(self._smooth)  # frame of self._smooth[0]
            while first < frame - half:
                self._smooth.popleft()
                self._speeds.popleft()
                first += 1
            count = min(len(self._smooth), frame - half + span - first)
            mean = np.mean([self._smooth[i] for i in range(count)], axis=0)
            still = float(np.mean([self._speeds[i] for i in range(count)])) < self.s.min_motion
            best = int(np.argmax(mean))
            label = best if best < self.k and mean[best] >= self.s.threshold and not still else -1
            if label != self._run[0]:
                out += self._close(frame, seen)
                self._run = [label, frame, 0.0]
            if label >= 0:
                self._run[2] += float(mean[label])
            self._decided += 1
        return out

    def _close(self, end: int, seen: int) -> list[Segment]:
        label, start, total = self._run
        self._run = [-1, end, 0.0]
        if label < 0 or end - start < self.s.min_run:
            return []
        return [Segment(start, end, label, total / (end - start), seen)]


class PeaksRule:
    """Sliding-window detection with non-maximum suppression over positions and scales. A window is a
    candidate when its best class reaches ``threshold``; its NMS score is that class's probability averaged
    over the windows (any scale) centred within a quarter of its length of its centre (so that the middle
    of a plateau of saturated scores wins, not its first window); it becomes a segment of its own extent
    when no overlapping candidate has a higher NMS score."""

    def __init__(self, num_classes: int, settings: TimelineSettings):
        self.s = settings
        self._recent: collections.deque[tuple[int, int, np.ndarray]] = collections.deque()  # start, length, probs
        self._pending: collections.deque[tuple[int, int, np.ndarray]] = collections.deque()  # candidates

    def speed(self, value: float) -> None:
        """This rule uses the scores alone: a window half at rest is still a good detection."""

    def push(self, position: int, scored: list[tuple[Window, np.ndarray, bool]], seen: int) -> list[Segment]:
        for window, probs, background in scored:
            entry = (window.start, window.keypoint.shape[1], np.zeros_like(probs) if background else probs)
            self._recent.append(entry)
            if entry[2].max() >= self.s.threshold:
                self._pending.append(entry)
        return self._decide(position, seen)

    def finish(self, total: int) -> list[Segment]:
        return self._decide(None, total)

    def _nms_score(self, entry: tuple[int, int, np.ndarray]) -> float:
        start, length, probs = entry
        centre, cls = start + length / 2, int(np.argmax(probs))
        return float(np.mean([p[cls] for s, n, p in self._recent if abs(s + n / 2 - centre) <= length / 4]))

    def _decide(self, latest: int | None, seen: int) -> list[Segment]:
        out = []
        reach = self.s.window + self.s.window // 4
        while self._pending and (latest is None or latest - self._pending[0][0] >= reach):
            entry = self._pending.popleft()
            start, length, probs = entry
            mine = self._nms_score(entry)
            beaten = False
            for rival in self._recent:
                if rival is entry or rival[2].max() < self.s.threshold:
                    continue
                if min(start + length, rival[0] + rival[1]) <= max(start, rival[0]):
                    continue  # no overlap
                theirs = self._nms_score(rival)
                if theirs > mine or (theirs == mine and (rival[0], -rival[1]) < (start, -length)):
                    beaten = True
                    break
            if not beaten:
                cls = int(np.argmax(probs))
                out.append(Segment(start, start + length, cls, float(probs[cls]), seen))
        oldest = (self._pending[0][0] if self._pending else latest if latest is not None else 0) - 2 * self.s.window
        while self._recent and self._recent[0][0] < oldest:
            self._recent.popleft()
        return out


def make_rule(num_classes: int, settings: TimelineSettings) -> RunsRule | PeaksRule:
    return (RunsRule if settings.rule == "runs" else PeaksRule)(num_classes, settings)


# --- the pipeline --------------------------------------------------------------------------------


@dataclass
class Preview:
    frame: int
    image: np.ndarray  # RGB uint8 thumbnail


@dataclass
class TimelineResult:
    segments: list[Segment]
    frames: int
    windows: int
    detected_frames: int
    source_seconds: float  # waiting for frames: decoding and pose extraction (video), reading (skeleton)
    score_seconds: float  # windows preprocessed, scored and turned into segments
    wall_seconds: float
    window_latency: list[float]  # per window: last frame in -> its scores out (seconds)
    segment_latency: list[float]  # per segment: its last frame in -> segment out (seconds), where still known
    curve: np.ndarray | None = None  # [windows, K] probabilities (offline runs), float16
    curve_frames: np.ndarray | None = None  # [windows] centre frame of each window
    background: np.ndarray | None = None  # [windows] gated windows
    previews: dict[int, Preview] = field(default_factory=dict)  # segment index -> thumbnail

    def summary(self) -> dict[str, Any]:
        def stats(values: list[float]) -> dict[str, float | None]:
            if not values:
                return {"mean_ms": None, "p95_ms": None, "max_ms": None}
            ms = 1000 * np.asarray(values)
            return {"mean_ms": round(float(ms.mean()), 2), "p95_ms": round(float(np.percentile(ms, 95)), 2),
                    "max_ms": round(float(ms.max()), 2)}

        return {"frames": self.frames, "windows": self.windows, "segments": len(self.segments),
                "person_found": round(self.detected_frames / self.frames, 4) if self.frames else None,
                "wall_seconds": round(self.wall_seconds, 3),
                "frames_per_second": round(self.frames / self.wall_seconds, 1) if self.wall_seconds else None,
                "scoring_frames_per_second": round(self.frames / self.score_seconds, 1) if self.score_seconds else None,
                "source_seconds": round(self.source_seconds, 3), "score_seconds": round(self.score_seconds, 3),
                "window_latency": stats(self.window_latency), "segment_latency": stats(self.segment_latency)}


def run_timeline(frames: Iterable[PoseFrame], recognizer: Recognizer, settings: TimelineSettings, *,
                 on_segment: Callable[[Segment], None] | None = None, keep_curve: bool = True,
                 on_frame: Callable[[int], None] | None = None) -> TimelineResult:
    """Slide the windows over ``frames`` (consumed one at a time), score them, extract segments.

    ``on_segment`` sees each segment as soon as it is decided (live output); ``keep_curve`` keeps every
    window's probabilities for the HTML page (a few bytes per window; off for endless live streams);
    ``on_frame(n)`` is called after each frame (progress bars). Raises when the sequence is shorter
    than one window."""
    class_count = int(recognizer.meta["num_classes"])
    rule = make_rule(class_count, settings)
    windower = Windower(settings.lengths, settings.stride)
    arrivals: collections.deque[float] = collections.deque(maxlen=4 * settings.window + settings.smooth_frames)
    thumbs: collections.deque[Preview] = collections.deque(maxlen=(4 * settings.window) // settings.stride + 2)
    pending: list[Window] = []
    segments: list[Segment] = []
    previews: dict[int, Preview] = {}
    curve: list[np.ndarray] = []
    gated: list[bool] = []
    window_latency: list[float] = []
    segment_latency: list[float] = []
    clock = time.perf_counter
    scale_pair = recognizer.layout.scale_pair
    previous: PoseFrame | None = None
    source_seconds = score_seconds = 0.0
    detected = count = 0

    def emit(found: list[Segment]) -> None:
        for segment in found:
            segments.append(segment)
            last = segment.end - 1
            if windower.seen - len(arrivals) <= last < windower.seen:
                segment_latency.append(clock() - arrivals[last - (windower.seen - len(arrivals))])
            if thumbs:
                middle = (segment.start + segment.end) // 2
                previews[len(segments) - 1] = min(thumbs, key=lambda p: abs(p.frame - middle))
            if on_segment is not None:
                on_segment(segment)

    def score(batch: list[Window]) -> None:
        probs = score_windows(recognizer, batch)
        done = clock()
        scales = len(settings.lengths)
        for first in range(0, len(batch), scales):  # the windows of one position, every scale
            scored = [(w, p, w.detected < settings.min_detected)
                      for w, p in zip(batch[first:first + scales], probs[first:first + scales])]
            window_latency.append(done - batch[first].arrived)
            if keep_curve:
                curve.append(np.mean([p for _, p, _ in scored], axis=0).astype(np.float16))
                gated.append(all(background for _, _, background in scored))
            emit(rule.push(batch[first].position, scored, windower.seen))

    started = last = clock()
    for frame in frames:
        now = clock()
        source_seconds += now - last
        arrivals.append(now)
        count += 1
        detected += frame.detected
        if frame.image is not None:
            thumbs.append(Preview(count - 1, frame.image))
            frame = PoseFrame(frame.keypoint, frame.score, frame.detected)  # the window ring holds poses only
        rule.speed(_frame_speed(previous, frame, scale_pair))
        previous = frame
        pending += windower.push(frame, now)
        if len(pending) >= settings.batch * len(settings.lengths):
            score(pending)
            pending = []
        if on_frame is not None:
            on_frame(count)
        last = clock()
        score_seconds += last - now
    if count < settings.window:
        raise SsmarError(f"the sequence has {count} frames, fewer than one window ({settings.window} frames); "
                         f"pass --window {max(2, count)} or less (the model then sees shorter actions than it was "
                         "trained on)")
    tail = clock()
    if pending:
        score(pending)
    emit(rule.finish(count))
    score_seconds += clock() - tail
    starts = np.arange(len(curve)) * settings.stride
    return TimelineResult(
        segments=segments, frames=count, windows=(count - settings.window) // settings.stride + 1,
        detected_frames=detected, source_seconds=source_seconds, score_seconds=score_seconds,
        wall_seconds=clock() - started, window_latency=window_latency, segment_latency=segment_latency,
        curve=np.stack(curve) if curve else None, curve_frames=starts + settings.window // 2 if curve else None,
        background=np.asarray(gated) if curve else None, previews=previews)


def _frame_speed(previous: PoseFrame | None, frame: PoseFrame, scale_pair: tuple[int, int]) -> float:
    """:func:`body_speed` of the first person between two frames (0 where either has no person); the body
    size is this frame's scale bone."""
    if previous is None or not (previous.detected and frame.detected):
        return 0.0
    a, b = scale_pair
    now, before = frame.keypoint[0, :, :2], previous.keypoint[0, :, :2]
    size = float(np.linalg.norm(now[a] - now[b])) or 1.0
    return float(np.linalg.norm(now - before, axis=-1).mean() / size)


def frame_labels(segments: Iterable[Segment], frames: int) -> np.ndarray:
    """Per frame: the class of the segment covering it, -1 (no micro-action) elsewhere."""
    labels = np.full(frames, -1, np.int64)
    for segment in segments:
        labels[segment.start:min(segment.end, frames)] = segment.class_id
    return labels


def settings_dict(settings: TimelineSettings) -> dict[str, Any]:
    return {**asdict(settings), "lengths": list(settings.lengths), "smooth": settings.smooth_frames,
            "min_frames": settings.min_run}


def compose_sequence(clips: list[dict[str, Any]], idle: list[int],
                     rng: np.random.Generator) -> tuple[dict[str, Any], list[tuple[int, int, int]]]:
    """One long sequence of ``clips`` (best: one person's, as in a real recording) with ``idle[i]`` resting
    frames before clip ``i`` (and ``idle[-1]`` after the last when ``len(idle) == len(clips) + 1``), for
    ground-truth timelines. A rest holds the previous clip's last pose, then in its second half moves
    smoothly (a half cosine) to the next clip's first pose, so that no frame jumps; on top lies the
    clip's own per-joint sensor noise (from its second differences, which white noise dominates:
    var = 6 sigma^2). Returns the annotation and the true segments ``(start, end, label)``."""
    parts, scores, truth, position = [], [], [], 0

    def rest(before: np.ndarray, after: np.ndarray, score: np.ndarray, sigma: np.ndarray, frames: int) -> None:
        ramp = np.clip(np.linspace(-1.0, 1.0, frames), 0.0, 1.0)  # still for the first half, then moving
        weight = (0.5 - 0.5 * np.cos(np.pi * ramp)).astype(np.float32)[None, :, None, None]
        pose = (1 - weight) * before[:, None] + weight * after[:, None]
        noise = rng.normal(0.0, 1.0, pose.shape).astype(np.float32) * sigma[:, None]
        parts.append(pose + noise * (score[:, None, :, None] > 0))
        scores.append(np.repeat(score[:, None], frames, axis=1))

    last = None
    for i, clip in enumerate(clips):
        keypoint = np.asarray(clip["keypoint"], np.float32)
        score = clip.get("keypoint_score")
        score = np.ones(keypoint.shape[:3], np.float32) if score is None else np.asarray(score, np.float32)
        second = np.diff(keypoint, n=2, axis=1) if keypoint.shape[1] > 2 else np.zeros_like(keypoint[:, :1])
        sigma = second.std(axis=1) / np.sqrt(6.0)  # [M, V, C]
        rest(keypoint[:, 0] if last is None else last, keypoint[:, 0], score[:, 0], sigma, idle[i])
        position += idle[i]
        parts.append(keypoint)
        scores.append(score)
        truth.append((position, position + keypoint.shape[1], int(clip["label"])))
        position += keypoint.shape[1]
        last = keypoint[:, -1]
        if i == len(clips) - 1 and len(idle) > len(clips):
            rest(last, last, score[:, -1], sigma, idle[-1])
    annotation = {"frame_dir": "composed", "label": 0, "keypoint": np.concatenate(parts, axis=1),
                  "keypoint_score": np.concatenate(scores, axis=1)}
    annotation["total_frames"] = int(annotation["keypoint"].shape[1])
    return annotation, truth


# --- inputs and outputs --------------------------------------------------------------------------

SKELETON_SUFFIXES = (".pkl", ".pickle", ".npy")


@dataclass
class TimelineInput:
    frames: Iterator[PoseFrame]
    fps: float  # 0.0: unknown (times are then left empty)
    total: int | None  # expected frames, None when unknown (live)
    live: bool
    kind: str  # skeleton | video | live


@contextlib.contextmanager
def open_timeline_input(source: str, *, clip: str | None = None, frame_size: tuple[int, int] | None = None,
                        fps: float = 0.0, thumbnail_every: int = 0, workers: int = 1) -> Iterator[TimelineInput]:
    """Poses of ``source`` one frame at a time: a skeleton pickle / ``.npy`` (poses made elsewhere), or
    video (file, camera index, URL, ``-`` for raw rgb24 on stdin) through MediaPipe, for a video file in
    ``workers`` processes (:func:`ssmar.pose.stream.parallel_pose_frames`)."""
    if workers < 1:
        raise SsmarError(f"--workers must be >= 1, got {workers}")
    if Path(source).suffix.lower() in SKELETON_SUFFIXES:
        annotation = load_skeleton_sequence(source, clip)
        yield TimelineInput(skeleton_frames(annotation), fps or float(annotation.get("fps", 0.0)),
                            int(np.shape(annotation["keypoint"])[1]), False, "skeleton")
        return
    from ssmar.pose.mediapipe_pose import PoseEstimator
    from ssmar.pose.stream import parallel_pose_frames, pose_frames
    from ssmar.video.stream import open_frame_stream, prefetch

    from ssmar.video.decode import VideoError

    try:
        stream = open_frame_stream(source, frame_size=frame_size, fps=fps)
        try:
            if workers > 1 and not stream.live:
                stream.close()  # opened for its checks and frame rate; each worker reads the file itself
                yield TimelineInput(parallel_pose_frames(source, workers, thumbnail_every), stream.fps, stream.total,
                                    False, "video")
                return
            with PoseEstimator() as estimator:
                frames = pose_frames(prefetch(stream.frames), estimator, thumbnail_every)
                yield TimelineInput(frames, stream.fps, stream.total, stream.live, "live" if stream.live else "video")
        finally:
            stream.close()
    except VideoError as exc:
        raise VideoError(f"{source}: {exc}") from exc


class SegmentLog:
    """The live CSV: the header at once, then one line per segment as it closes (flushed and synced, so
    another program can follow the file)."""

    def __init__(self, path: Path, fps: float, class_names: list[str]):
        import csv

        self.fps, self.class_names = fps, class_names
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(path, "w", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._handle, fieldnames=list(SEGMENT_COLUMNS), lineterminator="\n")
        self._writer.writeheader()
        self._sync()

    def append(self, segment: Segment) -> None:
        self._writer.writerow(segment.row(self.fps, self.class_names))
        self._sync()

    def _sync(self) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()


def segment_line(segment: Segment, fps: float, class_names: list[str]) -> str:
    row = segment.row(fps, class_names)
    when = (f"{row['start_s']:8.2f}s-{row['end_s']:8.2f}s" if fps > 0
            else f"frames {segment.start}-{segment.end}")
    return f"{when}  {row['class']:<32} {segment.score:5.1%}"


def timeline_document(result: TimelineResult, settings: TimelineSettings, fps: float, class_names: list[str],
                      source: str, checkpoint: str) -> dict[str, Any]:
    """What ``segments.json`` holds: where it came from, how it was made, the segments, the timings."""
    return {"source": source, "checkpoint": checkpoint, "fps": fps or None, "settings": settings_dict(settings),
            "no_micro_action": "gates (a person in < min_detected of a window's frames; runs: body speed < "
                               "min_motion) and a score rule (best class probability < threshold)",
            "summary": result.summary(),
            "segments": [segment.row(fps, class_names) for segment in result.segments]}
